"""Recency weights: the formula, per-user ages, and the opt-in path through EASE."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from movierec.data.interactions import Interactions
from movierec.models.base import ModelError
from movierec.models.ease import EASE
from movierec.models.weighting import SECONDS_PER_DAY, interaction_weights, recency_weights

DAY = int(SECONDS_PER_DAY)


def _ratings(with_times: bool = True) -> Interactions:
    rows = [(1, 10, 0), (1, 11, 30), (1, 12, 60), (2, 10, 1000), (2, 12, 1100)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "day"])
    frame["rating"] = 4.0
    if with_times:
        frame["timestamp"] = frame["day"] * DAY + 1_500_000_000
    return Interactions.from_frames(frame.drop(columns="day"), rating_scale=(0.5, 5.0))


def test_weights_follow_the_formula_with_per_user_ages() -> None:
    data = _ratings()
    weights = recency_weights(data, half_life_days=30.0)
    # CSR order: user 1's items 10, 11, 12 (days 0, 30, 60), then user 2's 10, 12 (1000, 1100).
    expected = np.exp2(-np.array([60.0, 30.0, 0.0, 100.0, 0.0]) / 30.0)
    np.testing.assert_allclose(weights, expected, rtol=1e-6)
    assert weights.dtype == np.float32


def test_each_users_latest_rating_weighs_one() -> None:
    data = _ratings()
    weights = recency_weights(data, half_life_days=7.0)
    times = data.timestamps.data
    for user in range(data.n_users):
        start, stop = data.matrix.indptr[user], data.matrix.indptr[user + 1]
        assert weights[start + np.argmax(times[start:stop])] == 1.0
    assert (weights <= 1.0).all()


def test_off_means_ones_and_missing_timestamps_are_a_clear_error() -> None:
    np.testing.assert_array_equal(interaction_weights(_ratings(False), None), np.ones(5))
    with pytest.raises(ModelError, match="timestamps"):
        recency_weights(_ratings(False), 30.0)


def test_ease_opts_in_through_its_config() -> None:
    data = _ratings()
    plain = EASE(regularization=1.0).fit(data)
    weighted = EASE(regularization=1.0, recency_half_life_days=30.0).fit(data)
    assert weighted.row_weights is not None
    np.testing.assert_allclose(weighted.row_weights, recency_weights(data, 30.0))
    assert not np.allclose(plain._score_users(np.arange(2)), weighted._score_users(np.arange(2)))
    with pytest.raises(ModelError, match="invalid ease parameters"):
        EASE(recency_half_life_days=0.0)

"""Recency weights by age and by position: the formulas, and the opt-in paths through models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from movierec.data.interactions import Interactions
from movierec.models.als import ALS
from movierec.models.base import ModelError, Recommender
from movierec.models.ease import EASE
from movierec.models.graph import RP3beta
from movierec.models.weighting import (
    SECONDS_PER_DAY,
    RecencyConfig,
    history_weights,
    interaction_weights,
    position_weights,
    recency_weights,
    scored_row_weights,
)
from tests.models.contract import checkerboard

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


def _sessions() -> Interactions:
    """User 1 rates at days 0, 30, 30 (a tie), 60; user 2 at days 5 and 9."""
    rows = [(1, 10, 0), (1, 11, 30), (1, 12, 30), (1, 13, 60), (2, 10, 5), (2, 13, 9)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "day"])
    frame["rating"] = [4.0, 3.0, 5.0, 2.0, 4.5, 1.0]
    frame["timestamp"] = frame["day"] * DAY + 1_500_000_000
    return Interactions.from_frames(frame.drop(columns="day"), rating_scale=(0.5, 5.0))


def test_position_weights_count_the_later_ratings_and_ties_share_one() -> None:
    weights = position_weights(_sessions(), half_life_ratings=2.0)
    # CSR order: user 1's items 10..13 have 3, 1, 1, 0 later ratings; user 2's 1 and 0.
    expected = np.exp2(-np.array([3.0, 1.0, 1.0, 0.0, 1.0, 0.0]) / 2.0)
    np.testing.assert_allclose(weights, expected, rtol=1e-6)
    assert weights.dtype == np.float32
    with pytest.raises(ModelError, match="timestamps"):
        position_weights(_ratings(False), 2.0)


def test_scored_rows_multiply_both_recencies() -> None:
    data = _sessions()
    both = scored_row_weights(
        data, RecencyConfig(recency_half_life_days=30.0, recency_half_life_ratings=2.0)
    )
    np.testing.assert_allclose(both, recency_weights(data, 30.0) * position_weights(data, 2.0))
    np.testing.assert_array_equal(scored_row_weights(data, RecencyConfig()), np.ones(data.nnz))


def test_a_history_counts_each_item_once_at_its_latest_position() -> None:
    items = np.array([7, 3, 7, 5])
    distinct, latest, weights = history_weights(items, 1.0)
    np.testing.assert_array_equal(distinct, [3, 5, 7])
    np.testing.assert_array_equal(latest, [1, 3, 2])
    np.testing.assert_allclose(weights, [0.25, 1.0, 0.5])
    _, _, flat = history_weights(items, None)
    np.testing.assert_array_equal(flat, np.ones(3))


@pytest.mark.parametrize(
    "model",
    [
        EASE(regularization=1.0, recency_half_life_ratings=2.0),
        RP3beta(recency_half_life_ratings=2.0),
        ALS(factors=4, regularization=1.0, alpha=3.0, iterations=20, recency_half_life_ratings=2.0),
    ],
    ids=["ease", "rp3beta", "als"],
)
def test_a_users_chronological_history_folds_in_to_their_own_scores(model: Recommender) -> None:
    """A training user's row and their history in rating order are one and the same profile."""
    data = checkerboard()
    model.fit(data)
    times = data.timestamps
    assert times is not None
    for user in (0, 17, 33):
        items, ratings = data.user_items(user)
        order = np.argsort(times.data[data.matrix.indptr[user] : data.matrix.indptr[user + 1]])
        trained = model._score_users(np.array([user]))[0]
        folded = model._score_history(np.asarray(items)[order].astype(np.int64), ratings[order])
        np.testing.assert_allclose(folded, trained, rtol=1e-4, atol=1e-5)


def test_position_weighting_changes_the_profile_not_the_item_model() -> None:
    data = checkerboard()
    plain = EASE(regularization=10.0).fit(data)
    recent = EASE(regularization=10.0, recency_half_life_ratings=2.0).fit(data)
    np.testing.assert_array_equal(recent.weights, plain.weights)
    assert not np.allclose(recent._score_users(np.arange(3)), plain._score_users(np.arange(3)))
    with pytest.raises(ModelError, match="invalid ease parameters"):
        EASE(recency_half_life_ratings=0.0)

"""Popularity: the contract, and each kind's ranking on data where it is known."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from movierec.data.interactions import Interactions
from movierec.errors import ConfigError
from movierec.models import create_model, model_class
from movierec.models.base import ModelError
from movierec.models.popularity import Popularity
from tests.models.contract import RecommenderContract


class TestPopularityContract(RecommenderContract):
    personalized: ClassVar[bool] = False
    explains: ClassVar[bool] = False

    def make_model(self) -> Popularity:
        return Popularity(kind="bayesian")


def _ratings(rows: list[tuple[int, int, float, int]]) -> Interactions:
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    return Interactions.from_frames(frame, rating_scale=(0.5, 5.0))


# Item 1: one 5-star vote. Item 2: many 4.5s. Item 3: many 2s, some recent. Item 4: recent only.
DATA = (
    [(100, 1, 5.0, 1_000)]
    + [(u, 2, 4.5, 1_000) for u in range(10)]
    + [(u, 3, 2.0, 1_000) for u in range(20, 32)]
    + [(u, 4, 3.0, 1_000 + 86_400 * 400) for u in range(40, 45)]
)


@pytest.mark.parametrize(
    ("kind", "best"),
    [("count", 3), ("mean", 1), ("bayesian", 2), ("trending", 4)],
)
def test_each_kind_ranks_what_it_measures(kind: str, best: int) -> None:
    data = _ratings(DATA)
    model = Popularity(kind=kind).fit(data)
    items, _ = model.recommend_for_history([], k=1)
    assert data.item_ids[items[0]] == best


def test_bayesian_needs_enough_votes_before_a_high_mean_counts() -> None:
    data = _ratings(DATA)
    scores = Popularity(kind="bayesian", min_votes=5).fit(data).item_scores
    assert scores is not None
    one_vote, many_votes = scores[data.item_index([1, 2])]
    assert many_votes > one_vote
    # With a tiny m the single 5-star vote wins: the prior no longer holds it back.
    tiny = Popularity(kind="bayesian", min_votes=0.01).fit(data).item_scores
    assert tiny is not None
    assert np.argmax(tiny) == data.item_index([1])[0]


def test_trending_without_timestamps_is_a_clear_error() -> None:
    frame = pd.DataFrame({"user_id": [1, 2], "item_id": [1, 1], "rating": [4.0, 5.0]})
    data = Interactions.from_frames(frame, rating_scale=(0.5, 5.0))
    with pytest.raises(ModelError, match="timestamps"):
        Popularity(kind="trending").fit(data)


def test_invalid_config_and_unknown_model_are_clear_errors() -> None:
    with pytest.raises(ModelError, match="invalid popularity parameters"):
        Popularity(kind="loudest")
    with pytest.raises(ModelError, match="invalid popularity parameters"):
        Popularity(half_life_days=-1)
    with pytest.raises(ConfigError, match=r"known models: .*popularity"):
        model_class("svd+++")
    assert isinstance(create_model("popularity", kind="count"), Popularity)

"""Biased matrix factorization: the contract, and fitting a low-rank matrix it should recover."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from movierec.data.interactions import Interactions
from movierec.models import create_model
from movierec.models.base import ModelError
from movierec.models.baseline import BaselineOnly
from movierec.models.mf import BiasedMF
from tests.models.contract import RecommenderContract, low_rank_split, rmse_on

SCALE = (1.0, 5.0)


class TestBiasedMFContract(RecommenderContract):
    rating_model: ClassVar[bool] = True

    def make_model(self) -> BiasedMF:
        # The checkerboard has 40 users: a few factors and more epochs than ml-100k needs.
        return BiasedMF(n_factors=8, n_epochs=200, lr=0.02, reg=0.05)


@pytest.mark.usefixtures("quantized_always")
class TestBiasedMFQuantizedContract(TestBiasedMFContract):
    """Similar movies by the cosine of item factors, through the QuantizedIndex."""


@pytest.fixture(scope="module")
def low_rank() -> tuple[Interactions, Interactions]:
    return low_rank_split()


@pytest.fixture(scope="module")
def fitted(low_rank: tuple[Interactions, Interactions]) -> BiasedMF:
    return BiasedMF(n_factors=10, n_epochs=150, lr=0.01, reg=0.02).fit(low_rank[0])


def test_recovers_a_low_rank_matrix(
    fitted: BiasedMF, low_rank: tuple[Interactions, Interactions]
) -> None:
    train, test = low_rank
    assert rmse_on(fitted, train) < 0.1
    assert fitted.train_rmse[-1] < fitted.train_rmse[0]
    baseline = BaselineOnly().fit(train)
    assert rmse_on(fitted, test) < 0.3 * rmse_on(baseline, test)


def test_predictions_stay_inside_the_rating_scale(fitted: BiasedMF) -> None:
    users, items = np.divmod(np.arange(fitted.n_users * fitted.n_items), fitted.n_items)
    predicted = fitted.predict(users, items)
    assert predicted.dtype == np.float32
    assert predicted.min() >= SCALE[0]
    assert predicted.max() <= SCALE[1]
    # Ranking scores are the unclipped estimates: the same values wherever no clip applies.
    scores = fitted._score_users(np.arange(fitted.n_users)).ravel()
    inside = (scores > SCALE[0]) & (scores < SCALE[1])
    np.testing.assert_allclose(scores[inside], predicted[inside], rtol=1e-4)


def test_fold_in_of_a_known_history_ranks_like_the_fitted_user(
    fitted: BiasedMF, low_rank: tuple[Interactions, Interactions]
) -> None:
    train = low_rank[0]
    overlaps = []
    for user in range(10):
        items, ratings = train.user_items(user)
        known, _ = fitted.recommend(user, k=5)
        folded, _ = fitted.recommend_for_history(items, ratings, k=5)
        overlaps.append(len(set(known.tolist()) & set(folded.tolist())))
    assert np.mean(overlaps) >= 4
    assert min(overlaps) >= 3


def test_fold_in_with_no_history_is_the_bias_ranking(fitted: BiasedMF) -> None:
    assert fitted.item_bias is not None
    items, _ = fitted.recommend_for_history([], k=5)
    np.testing.assert_array_equal(items, np.argsort(-fitted.item_bias, kind="stable")[:5])


def test_similar_items_use_the_item_factors(fitted: BiasedMF) -> None:
    vectors = fitted._item_vectors()
    items, scores = fitted.similar_items(0, k=3)
    best = int(items[0])
    cosine = vectors[0] @ vectors[best] / np.linalg.norm(vectors[0]) / np.linalg.norm(vectors[best])
    assert scores[0] == pytest.approx(cosine, rel=1e-5)


def test_unrated_items_get_no_random_factors() -> None:
    frame = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [1, 2, 1], "rating": [4.0, 2.0, 5.0]})
    movies = pd.DataFrame({"item_id": [1, 2, 3], "title": ["a", "b", "c"]})
    data = Interactions.from_frames(frame, movies, rating_scale=SCALE)
    model = BiasedMF(n_factors=4, n_epochs=2).fit(data)
    assert model.item_factors is not None
    np.testing.assert_array_equal(model.item_factors[data.item_index([3])[0]], 0.0)


@pytest.mark.parametrize(
    "params",
    [
        {"n_factors": 0},
        {"n_epochs": 0},
        {"lr": 0.0},
        {"reg": -0.1},
        {"reg_bias": -1.0},
        {"lr_decay": 1.5},
        {"init_std": -0.1},
        {"factors": 10},
    ],
)
def test_bad_config_is_a_model_error(params: dict[str, float]) -> None:
    with pytest.raises(ModelError, match="invalid svd parameters"):
        create_model("svd", **params)

"""ALS and BPR: the contract, fold-in against the trained user, persistence without implicit."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.models import create_model
from movierec.models.als import ALS, BPR
from movierec.models.base import ModelError
from tests.models.contract import N_USERS, RecommenderContract, checkerboard


class TestALSContract(RecommenderContract):
    def make_model(self) -> ALS:
        return ALS(factors=4, regularization=5.0, alpha=5.0, iterations=10)


class TestBPRContract(RecommenderContract):
    def make_model(self) -> BPR:
        return BPR(factors=8, learning_rate=0.05, regularization=0.01, iterations=100)


@pytest.mark.parametrize("confidence", ["binary", "rating"])
def test_als_fold_in_of_a_training_user_ranks_like_that_user(confidence: str) -> None:
    data = checkerboard()
    model = ALS(factors=4, regularization=5.0, alpha=5.0, iterations=15, confidence=confidence)
    model.fit(data)
    for user in range(0, N_USERS, 7):
        items, ratings = data.user_items(user)
        trained, _ = model.recommend(user, k=5)
        folded, _ = model.recommend_for_history(items, ratings, k=5)
        assert len(set(trained.tolist()) & set(folded.tolist())) >= 4


def test_als_fold_in_reproduces_the_training_user_step() -> None:
    """With the item factors fixed, ALS's last user step is exactly the fold-in solve."""
    data = checkerboard()
    model = ALS(factors=4, regularization=1.0, alpha=3.0, iterations=30).fit(data)
    assert model.user_factors is not None
    assert model.item_factors is not None
    items, ratings = data.user_items(5)
    folded = model._score_history(np.asarray(items, dtype=np.int64), ratings)
    trained = model.item_factors @ model.user_factors[5]
    np.testing.assert_allclose(folded, trained, rtol=0.05, atol=0.02)


def test_bpr_keeps_its_item_bias_out_of_the_similar_items_vectors() -> None:
    model = BPR(factors=6, iterations=5).fit(checkerboard())
    assert model.item_factors is not None
    assert model.user_factors is not None
    assert model.item_factors.shape[1] == 7
    np.testing.assert_array_equal(model.user_factors[:, -1], 1.0)
    vectors = model._item_vectors()
    assert vectors is not None
    assert vectors.shape[1] == 6


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("als", {"factors": 0}),
        ("als", {"alpha": -1.0}),
        ("als", {"confidence": "stars"}),
        ("als", {"iterations": 0}),
        ("bpr", {"learning_rate": 0.0}),
        ("bpr", {"alpha": 1.0}),
    ],
)
def test_invalid_config_is_a_clear_error(name: str, params: dict[str, object]) -> None:
    with pytest.raises(ModelError, match=f"invalid {name} parameters"):
        create_model(name, **params)

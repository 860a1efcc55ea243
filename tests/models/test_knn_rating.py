"""KNNBaseline: the contract, a hand-computed prediction, fold-in, bad configs."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from movierec.data.interactions import Interactions
from movierec.models import create_model
from movierec.models.base import ModelError
from movierec.models.knn_rating import KNNBaseline
from tests.models.contract import RecommenderContract


class TestKNNBaselineContract(RecommenderContract):
    rating_model: ClassVar[bool] = True

    def make_model(self) -> KNNBaseline:
        # 40 users: a light shrinkage, and min_k 3 so that one chance weak correlation across
        # the two groups cannot carry a whole residual over (the normalized formula would).
        # Surprise's heavier bias penalties: on 40 users a lightly penalized item bias
        # outweighs the neighbours.
        return KNNBaseline(k=10, shrink=5.0, min_k=3, baseline={"reg_u": 15.0, "reg_i": 10.0})


def _tiny() -> Interactions:
    rows = [
        (1, 1, 5.0), (1, 2, 4.0), (1, 3, 1.0),
        (2, 1, 4.0), (2, 2, 5.0), (2, 3, 2.0), (2, 4, 4.0),
        (3, 1, 1.0), (3, 2, 2.0), (3, 3, 5.0), (3, 4, 2.0),
        (4, 1, 2.0), (4, 3, 4.0), (4, 4, 1.0),
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])
    return Interactions.from_frames(frame, rating_scale=(1.0, 5.0))


def _hand_prediction(model: KNNBaseline, data: Interactions, user: int, item: int, k: int) -> float:
    """The textbook formula, one loop per co-rater, straight from the dense rating table."""
    assert model.global_mean is not None
    assert model.user_bias is not None
    assert model.item_bias is not None
    dense = data.matrix.toarray()
    rated = data.matrix.copy()
    rated.data[:] = 1.0
    mask = rated.toarray() > 0
    base = model.global_mean[0] + model.user_bias[:, None] + model.item_bias[None, :]
    resid = np.where(mask, dense - base, 0.0)

    def sim(i: int, j: int) -> float:
        both = mask[:, i] & mask[:, j]
        n = both.sum()
        num = (resid[both, i] * resid[both, j]).sum()
        den = np.sqrt((resid[both, i] ** 2).sum() * (resid[both, j] ** 2).sum())
        return 0.0 if den == 0 else num / den * (n - 1) / (n - 1 + model.config.shrink)

    candidates = [(sim(item, j), resid[user, j]) for j in np.flatnonzero(mask[user]) if j != item]
    top = sorted((c for c in candidates if c[0] > 0), reverse=True)[:k]
    offset = sum(s * r for s, r in top) / sum(s for s, _ in top) if top else 0.0
    return float(base[user, item] + offset)


@pytest.mark.parametrize("k", [1, 2, 40])
def test_prediction_matches_a_hand_computation(k: int) -> None:
    data = _tiny()
    model = KNNBaseline(k=k, shrink=1.0).fit(data)
    user, item = 3, 1  # user 4 did not rate item 2
    expected = _hand_prediction(model, data, user, item, k)
    assert model._score_users(np.array([user]))[0, item] == pytest.approx(expected, rel=1e-5)
    assert model.predict([user], [item])[0] == pytest.approx(np.clip(expected, 1.0, 5.0), rel=1e-5)


def test_a_known_history_folds_in_like_the_fitted_user() -> None:
    data = _tiny()
    # Without a user-bias penalty the folded-in bias is the fitted one's last ALS step.
    model = KNNBaseline(shrink=1.0, baseline={"reg_u": 0.0, "reg_i": 0.0}).fit(data)
    items, ratings = data.user_items(1)
    folded = model._score_history(np.asarray(items, dtype=np.int64), ratings)
    np.testing.assert_allclose(folded, model._score_users(np.array([1]))[0], atol=1e-4)


def test_min_k_falls_back_on_the_baseline() -> None:
    data = _tiny()
    model = KNNBaseline(shrink=1.0, min_k=10).fit(data)
    assert model.global_mean is not None
    assert model.user_bias is not None
    assert model.item_bias is not None
    base = model.global_mean[0] + model.user_bias[3] + model.item_bias[1]
    assert model._score_users(np.array([3]))[0, 1] == pytest.approx(base, rel=1e-6)


def test_similarities_are_positive_bounded_and_pruned() -> None:
    model = KNNBaseline(shrink=0.0, max_neighbors=1).fit(_tiny())
    assert model.similarity is not None
    assert (model.similarity.data > 0).all()
    assert (model.similarity.data <= 1.0 + 1e-6).all()
    assert np.diff(model.similarity.indptr).max() <= 1


@pytest.mark.parametrize(
    "params",
    [{"k": 0}, {"min_k": 0}, {"shrink": -1.0}, {"max_neighbors": 0}, {"baseline": {"reg_u": -1}}],
)
def test_bad_config_is_a_model_error(params: dict[str, object]) -> None:
    with pytest.raises(ModelError, match="invalid knn_baseline parameters"):
        create_model("knn_baseline", **params)

"""Rating baselines: the contract, the ALS biases against a direct solve, the normal draws."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from movierec.data.interactions import Interactions
from movierec.models import create_model
from movierec.models.base import ModelError, Recommender
from movierec.models.baseline import BaselineOnly, NormalPredictor
from tests.models.contract import N_USERS, RecommenderContract


class TestNormalPredictorContract(RecommenderContract):
    personalized: ClassVar[bool] = False
    explains: ClassVar[bool] = False
    rating_model: ClassVar[bool] = True

    def make_model(self) -> NormalPredictor:
        return NormalPredictor()

    def test_predict(self, model: Recommender) -> None:
        """Random ratings owe no order between movies: only their form is checked."""
        predicted = model.predict([0, 0, 25], [0, 15, 3])
        assert predicted.shape == (3,)
        assert ((predicted >= 0.5) & (predicted <= 5.0)).all()


class TestBaselineOnlyContract(RecommenderContract):
    personalized: ClassVar[bool] = False
    explains: ClassVar[bool] = False
    rating_model: ClassVar[bool] = True

    def make_model(self) -> BaselineOnly:
        return BaselineOnly()


def _frame(rows: list[tuple[int, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])


TINY = _frame(
    [
        *[(1, 10, 5.0), (1, 11, 3.0), (1, 12, 4.0), (2, 10, 4.0), (2, 13, 1.0)],
        *[(3, 11, 2.0), (3, 12, 0.0), (3, 13, 2.0), (4, 10, 5.0), (4, 12, 4.0)],
    ]
)


def _least_squares_biases(
    data: Interactions, reg_u: float, reg_i: float
) -> tuple[np.ndarray, np.ndarray]:
    """The ridge biases by one direct solve: rows of indicators, then penalty rows."""
    users, items = data.entry_users(), data.matrix.indices
    n_users, n_items, n = data.n_users, data.n_items, data.nnz
    design = np.zeros((n + n_users + n_items, n_users + n_items))
    design[np.arange(n), users] = 1.0
    design[np.arange(n), n_users + items] = 1.0
    design[n : n + n_users, :n_users] = np.sqrt(reg_u) * np.eye(n_users)
    design[n + n_users :, n_users:] = np.sqrt(reg_i) * np.eye(n_items)
    target = np.zeros(len(design))
    target[:n] = data.matrix.data - data.matrix.data.mean()
    solution = np.linalg.lstsq(design, target, rcond=None)[0]
    return solution[:n_users], solution[n_users:]


def test_baseline_biases_match_a_direct_least_squares_solve() -> None:
    data = Interactions.from_frames(TINY, rating_scale=(0.0, 5.0))  # a stored 0 is a rating
    model = BaselineOnly(reg_u=1.5, reg_i=0.5, n_epochs=300).fit(data)
    user_bias, item_bias = _least_squares_biases(data, reg_u=1.5, reg_i=0.5)
    assert model.global_mean is not None
    assert model.user_bias is not None
    assert model.item_bias is not None
    assert model.global_mean[0] == pytest.approx(TINY["rating"].mean())
    np.testing.assert_allclose(model.user_bias, user_bias, atol=1e-4)
    np.testing.assert_allclose(model.item_bias, item_bias, atol=1e-4)
    predicted = model.predict([0, 2], [1, 2])
    expected = TINY["rating"].mean() + user_bias[[0, 2]] + item_bias[[1, 2]]
    np.testing.assert_allclose(predicted, np.clip(expected, 0.0, 5.0), atol=1e-4)


def test_baseline_fold_in_is_the_ridge_mean_of_the_residuals() -> None:
    data = Interactions.from_frames(TINY, rating_scale=(0.0, 5.0))
    model = BaselineOnly().fit(data)
    assert model.item_bias is not None
    assert model.global_mean is not None
    items, ratings = np.array([0, 3]), np.array([5.0, 4.0], dtype=np.float32)
    residual = ratings - model.global_mean[0] - model.item_bias[items]
    user_bias = residual.sum() / (15.0 + 2)
    scores = model._score_history(items, ratings)
    np.testing.assert_allclose(
        scores, model.global_mean[0] + user_bias + model.item_bias, rtol=1e-5
    )


def _normal_data(mean: float, std: float) -> Interactions:
    rng = np.random.default_rng(3)
    n_users, n_items = 60, 50
    cells = rng.choice(n_users * n_items, size=1_500, replace=False)
    ratings = rng.normal(mean, std, size=cells.size).clip(0.0, 10.0)
    frame = pd.DataFrame(
        {"user_id": cells // n_items, "item_id": cells % n_items, "rating": ratings}
    )
    return Interactions.from_frames(frame, rating_scale=(0.0, 10.0))


def test_normal_predictions_follow_the_training_ratings_and_are_seeded() -> None:
    data = _normal_data(mean=6.0, std=1.2)
    model = NormalPredictor(seed=5).fit(data)
    users, items = np.divmod(np.arange(data.n_users * data.n_items), data.n_items)
    predicted = model.predict(users, items)
    training = data.matrix.data
    assert predicted.mean() == pytest.approx(training.mean(), abs=0.05)
    assert predicted.std() == pytest.approx(training.std(), rel=0.05)
    assert ((predicted >= 0.0) & (predicted <= 10.0)).all()
    np.testing.assert_array_equal(
        predicted, NormalPredictor(seed=5).fit(data).predict(users, items)
    )
    other_seed = NormalPredictor(seed=6).fit(data).predict(users, items)
    assert not np.allclose(predicted, other_seed)


def test_normal_predictions_are_clipped_to_the_scale() -> None:
    data = _normal_data(mean=9.0, std=3.0)
    predicted = NormalPredictor().fit(data).predict(np.zeros(500, dtype=int), np.arange(500) % 50)
    assert predicted.max() == 10.0
    assert predicted.min() >= 0.0


def test_rating_scores_for_ranking_match_predictions_inside_the_scale() -> None:
    data = _normal_data(mean=5.0, std=1.0)
    for model in (NormalPredictor().fit(data), BaselineOnly().fit(data)):
        scores = model._score_users(np.arange(N_USERS))
        predicted = model.predict(
            np.repeat(np.arange(N_USERS), data.n_items), np.tile(np.arange(data.n_items), N_USERS)
        )
        np.testing.assert_allclose(scores.ravel(), predicted, rtol=1e-5)


@pytest.mark.parametrize(
    ("name", "params"),
    [("baseline", {"reg_u": -1.0}), ("baseline", {"n_epochs": 0}), ("normal", {"std": 2.0})],
)
def test_bad_config_is_a_model_error(name: str, params: dict[str, float]) -> None:
    with pytest.raises(ModelError, match="invalid"):
        create_model(name, **params)

"""RatingBlend: the contract, the inner holdout, learned weights, persistence, bad configs."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from movierec.data.interactions import Interactions
from movierec.models import create_model
from movierec.models.base import ModelError
from movierec.models.baseline import BaselineOnly
from movierec.models.stacking import RatingBlend, inner_holdout, ridge_with_intercept
from tests.models.contract import RecommenderContract, low_rank_split, rmse_on

SCALE = (1.0, 5.0)
SMALL = {
    "svd": {"n_factors": 8, "n_epochs": 100, "lr": 0.02, "reg": 0.05},
    "svdpp": {"n_factors": 8, "n_epochs": 100, "lr": 0.02, "reg": 0.05},
    "knn_baseline": {"k": 10, "shrink": 5.0, "min_k": 3, "baseline": {"reg_u": 15, "reg_i": 10}},
}


class TestRatingBlendContract(RecommenderContract):
    rating_model: ClassVar[bool] = True

    def make_model(self) -> RatingBlend:
        return RatingBlend(components=("svd", "knn_baseline", "baseline"), **SMALL)


@pytest.fixture(scope="module")
def low_rank() -> tuple[Interactions, Interactions]:
    return low_rank_split(noise=0.2)


@pytest.fixture(scope="module")
def blend(low_rank: tuple[Interactions, Interactions]) -> RatingBlend:
    return RatingBlend(components=("svd", "baseline"), **SMALL).fit(low_rank[0])


def test_inner_holdout_takes_the_fraction_of_each_user() -> None:
    train, _ = low_rank_split(noise=0.2)
    held = inner_holdout(train, 0.2, seed=3)
    users = train.entry_users()
    counts = np.bincount(users, minlength=train.n_users)
    np.testing.assert_array_equal(
        np.bincount(users[held], minlength=train.n_users), np.floor(0.2 * counts)
    )
    np.testing.assert_array_equal(held, inner_holdout(train, 0.2, seed=3))
    assert not np.array_equal(held, inner_holdout(train, 0.2, seed=4))


def test_ridge_with_intercept_recovers_a_linear_rule() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(500, 2))
    target = 1.5 + features @ np.array([0.7, -0.2])
    np.testing.assert_allclose(
        ridge_with_intercept(features, target, 0.0), [1.5, 0.7, -0.2], atol=1e-10
    )


def test_weights_come_from_the_inner_held_out_predictions(
    blend: RatingBlend, low_rank: tuple[Interactions, Interactions]
) -> None:
    train, test = low_rank
    # Refit the components on the inner split by hand: the same ridge gives the same weights.
    held = inner_holdout(train, blend.config.holdout_fraction, blend.config.seed)
    inner, target = train.subset(~held), train.subset(held)
    fresh = RatingBlend(components=("svd", "baseline"), **SMALL)
    columns = [
        m.fit(inner).predict(target.entry_users(), target.matrix.indices)
        for m in fresh.components.values()
    ]
    expected = ridge_with_intercept(
        np.column_stack(columns).astype(np.float64), target.matrix.data.astype(np.float64), 1.0
    )
    assert blend.weights is not None
    np.testing.assert_allclose(blend.weights, expected, rtol=1e-6)
    assert blend.weights[1] > blend.weights[2], "the factor model explains this data better"
    assert rmse_on(blend, test) < rmse_on(BaselineOnly().fit(train), test)


def test_nested_components_save_in_one_file_with_prefixed_keys(
    blend: RatingBlend, tmp_path: Path
) -> None:
    folder = blend.save(tmp_path / "blend")
    with np.load(folder / "arrays.npz", allow_pickle=False) as npz:
        keys = set(npz.files)
    assert {"model.weights", "model.svd.item_factors", "model.baseline.item_bias"} <= keys
    loaded = RatingBlend.load(folder)
    users, items = np.arange(20), np.arange(20) % blend.n_items
    np.testing.assert_allclose(loaded.predict(users, items), blend.predict(users, items))


def test_too_few_ratings_to_hold_out_is_a_model_error() -> None:
    frame = pd.DataFrame({"user_id": [1, 2], "item_id": [1, 2], "rating": [4.0, 2.0]})
    data = Interactions.from_frames(frame, rating_scale=SCALE)
    with pytest.raises(ModelError, match="too few ratings"):
        RatingBlend(components=("baseline",)).fit(data)


@pytest.mark.parametrize(
    "params",
    [
        {"components": ()},
        {"components": ("svd", "svd")},
        {"components": ("svd", "als")},
        {"holdout_fraction": 0.0},
        {"holdout_fraction": 1.0},
        {"ridge": -1.0},
        {"svd": {"n_factors": 0}},
        {"knn_baseline": {"k": 0}},
    ],
)
def test_bad_config_is_a_model_error(params: dict[str, object]) -> None:
    with pytest.raises(ModelError, match="invalid rating_blend parameters"):
        create_model("rating_blend", **params)

"""SVD++: the contract, fitting quality against BiasedMF, fold-in, bad configs."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from movierec.data.interactions import Interactions
from movierec.models import create_model
from movierec.models.base import ModelError
from movierec.models.mf import BiasedMF
from movierec.models.svdpp import SVDpp
from tests.models.contract import RecommenderContract, rmse_on

SCALE = (1.0, 5.0)


class TestSVDppContract(RecommenderContract):
    rating_model: ClassVar[bool] = True

    def make_model(self) -> SVDpp:
        return SVDpp(n_factors=8, n_epochs=200, lr=0.02, reg=0.05)


def _taste_by_choice(seed: int = 0) -> tuple[Interactions, Interactions]:
    """Each user's taste shows in *which* items they rate (their own group, mostly), while
    the ratings they gave are few; held out: ratings of their own group's other items."""
    rng = np.random.default_rng(seed)
    n_users, n_items, groups = 200, 60, 3
    user_group = rng.integers(0, groups, n_users)
    item_group = np.arange(n_items) % groups
    rows, held = [], []
    for user in range(n_users):
        own = np.flatnonzero(item_group == user_group[user])
        other = np.flatnonzero(item_group != user_group[user])
        picked = np.concatenate([rng.choice(own, 6, replace=False), rng.choice(other, 2)])
        for item in np.unique(picked):
            liked = item_group[item] == user_group[user]
            rating = 4.5 if liked else 2.0
            rows.append((user, item, rating + rng.normal(0, 0.3)))
        unseen = np.setdiff1d(own, picked)
        held += [(user, item, 4.5) for item in rng.choice(unseen, 2, replace=False)]
    frame = pd.DataFrame(rows + held, columns=["user_id", "item_id", "rating"])
    frame["rating"] = frame["rating"].clip(*SCALE)
    data = Interactions.from_frames(frame, rating_scale=SCALE)
    is_held = np.zeros(data.nnz, dtype=bool)
    held_keys = {(u, i) for u, i, _ in held}
    users = data.user_ids[data.entry_users()]
    items = data.item_ids[data.matrix.indices]
    is_held[[(u, i) in held_keys for u, i in zip(users, items, strict=True)]] = True
    return data.subset(~is_held), data.subset(is_held)


@pytest.fixture(scope="module")
def taste() -> tuple[Interactions, Interactions]:
    return _taste_by_choice()


def test_fits_training_ratings_closely_and_learns(taste: tuple[Interactions, Interactions]) -> None:
    train, _ = taste
    model = SVDpp(n_factors=10, n_epochs=100, lr=0.01, reg=0.02).fit(train)
    assert model.train_rmse[-1] < model.train_rmse[0]
    assert rmse_on(model, train) < 0.25


def test_implicit_feedback_beats_biased_mf_where_choice_signals_taste(
    taste: tuple[Interactions, Interactions],
) -> None:
    train, test = taste
    params = {"n_factors": 10, "n_epochs": 60, "lr": 0.01, "reg": 0.05}
    plus = SVDpp(**params).fit(train)
    plain = BiasedMF(**params).fit(train)
    assert rmse_on(plus, test) < rmse_on(plain, test)


def test_fold_in_of_a_known_history_is_close_to_the_fitted_user(
    taste: tuple[Interactions, Interactions],
) -> None:
    train, _ = taste
    model = SVDpp(n_factors=10, n_epochs=60, lr=0.01, reg=0.05).fit(train)
    overlaps = []
    for user in range(20):
        items, ratings = train.user_items(user)
        known, _ = model.recommend(user, k=5)
        folded, _ = model.recommend_for_history(items, ratings, k=5)
        overlaps.append(len(set(known.tolist()) & set(folded.tolist())))
    assert np.mean(overlaps) >= 3


def test_the_implicit_factors_are_saved(
    taste: tuple[Interactions, Interactions], tmp_path: Path
) -> None:
    model = SVDpp(n_factors=4, n_epochs=5).fit(taste[0])
    loaded = SVDpp.load(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.implicit_factors, model.implicit_factors)
    np.testing.assert_array_equal(
        loaded.recommend_for_history([0, 1], [5.0, 1.0], k=5)[0],
        model.recommend_for_history([0, 1], [5.0, 1.0], k=5)[0],
    )


@pytest.mark.parametrize(
    "params", [{"n_factors": 0}, {"lr": 0.0}, {"reg_implicit": -1.0}, {"implicit": 1}]
)
def test_bad_config_is_a_model_error(params: dict[str, float]) -> None:
    with pytest.raises(ModelError, match="invalid svdpp parameters"):
        create_model("svdpp", **params)

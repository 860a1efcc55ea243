"""ALS and BPR: the contract, fold-in against the trained user, persistence without implicit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from movierec.data.interactions import Interactions
from movierec.models import create_model
from movierec.models.als import ALS, BPR, _solve_user, _solve_user_low_rank
from movierec.models.base import ModelError
from movierec.models.weighting import SECONDS_PER_DAY, recency_weights
from tests.models.contract import N_USERS, RecommenderContract, checkerboard


class TestALSContract(RecommenderContract):
    def make_model(self) -> ALS:
        return ALS(factors=4, regularization=5.0, alpha=5.0, iterations=10)


class TestALSPositionRecencyContract(RecommenderContract):
    """Each checkerboard user's last two ratings are the other group's movies, rated 1: a
    half-life of a few ratings rightly follows them, 10 keeps the user's own group ahead."""

    def make_model(self) -> ALS:
        return ALS(
            factors=4, regularization=5.0, alpha=5.0, iterations=10, recency_half_life_ratings=10.0
        )


class TestBPRContract(RecommenderContract):
    def make_model(self) -> BPR:
        return BPR(factors=8, learning_rate=0.05, regularization=0.01, iterations=100)


@pytest.mark.usefixtures("quantized_always")
class TestALSQuantizedContract(TestALSContract):
    pass


@pytest.mark.usefixtures("quantized_always")
class TestBPRQuantizedContract(TestBPRContract):
    pass


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


@pytest.mark.parametrize("model", [ALS(factors=6, regularization=2.0), BPR(factors=5)])
def test_fold_in_low_rank_solve_is_the_full_solve(model: ALS | BPR) -> None:
    """Woodbury's solve (short histories) answers as the Cholesky solve of the whole system:
    empty and repeated histories, confidences below 1 (recency) and above, with a bias column."""
    model.fit(checkerboard())
    assert model.item_factors is not None
    reg = 2.0
    terms = model._fold_in_terms(reg)
    rng = np.random.default_rng(0)
    for size in (0, 1, 2, 3, 5, 6, 6):
        items = rng.integers(0, model.n_items, size).astype(np.int64)
        confidence = rng.uniform(0.1, 8.0, size).astype(np.float32)
        low_rank = _solve_user_low_rank(
            model.item_factors, items, confidence, terms.ridge_inverse, terms.ridge_solution,
            model.has_bias,
        )  # fmt: skip
        full = _solve_user(
            model.item_factors, items, confidence, reg, terms.gram, terms.factors_offset,
            model.has_bias,
        )  # fmt: skip
        np.testing.assert_allclose(low_rank, full, rtol=1e-9, atol=1e-12)


def _old_and_new_tastes() -> Interactions:
    """Two tastes and a movie for each; five users who moved from one taste to the other.

    Users 0-19 rated old-taste movies 0-4 and movie 10; users 20-39 rated new-taste movies 5-9
    and movie 11 (all on one day). Users 40-44 rated all five old-taste movies two years ago and
    all five new-taste movies yesterday: counted alike, movies 10 and 11 are a tie for them.
    """
    rows = [(user, item, 0) for user in range(20) for item in (0, 1, 2, 3, 4, 10)]
    rows += [(user, item, 0) for user in range(20, 40) for item in (5, 6, 7, 8, 9, 11)]
    for user in range(40, 45):
        rows += [(user, item, 0) for item in (0, 1, 2, 3, 4)]
        rows += [(user, item, 730) for item in (5, 6, 7, 8, 9)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "day"])
    frame["rating"] = 4.0
    frame["timestamp"] = (frame["day"] * SECONDS_PER_DAY).astype(np.int64) + 1_500_000_000
    return Interactions.from_frames(frame.drop(columns="day"), rating_scale=(0.5, 5.0))


def test_als_recency_weights_scale_the_confidence(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _old_and_new_tastes()
    model = ALS(factors=4, alpha=3.0, confidence="rating", recency_half_life_days=30.0)
    captured = {}
    monkeypatch.setattr(
        model, "_train", lambda _, confidence, *args, **kwargs: captured.update(c=confidence)
    )
    model.fit(data)
    expected = (1.0 + 3.0 * data.matrix.data) * recency_weights(data, 30.0)
    np.testing.assert_allclose(captured["c"].data, expected, rtol=1e-6)


def test_als_recency_follows_the_recent_taste() -> None:
    data = _old_and_new_tastes()
    movers = np.asarray(data.user_index(np.arange(40, 45)), dtype=np.int64)
    old_movie, new_movie = data.item_index([10, 11])
    lead = {}
    for half_life in (None, 30.0):
        model = ALS(
            factors=2,
            regularization=0.1,
            alpha=20.0,
            confidence="binary",
            iterations=30,
            recency_half_life_days=half_life,
        ).fit(data)
        scores = model._score_users(movers)
        lead[half_life] = scores[:, new_movie] - scores[:, old_movie]
    assert (lead[30.0] > 0.05).all()
    assert (lead[30.0] > lead[None] + 0.05).all()


def test_als_recency_needs_timestamps() -> None:
    frame = checkerboard().to_frame().drop(columns="timestamp")
    data = Interactions.from_frames(frame, rating_scale=(0.5, 5.0))
    with pytest.raises(ModelError, match="timestamps"):
        ALS(factors=4, recency_half_life_days=30.0).fit(data)


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
        ("als", {"recency_half_life_days": 0.0}),
        ("bpr", {"learning_rate": 0.0}),
        ("bpr", {"alpha": 1.0}),
    ],
)
def test_invalid_config_is_a_clear_error(name: str, params: dict[str, object]) -> None:
    with pytest.raises(ModelError, match=f"invalid {name} parameters"):
        create_model(name, **params)

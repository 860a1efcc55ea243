"""EASE: the contract, its closed form against a direct numpy computation, its memory guard."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.data.interactions import Interactions
from movierec.models import create_model
from movierec.models.base import ModelError
from movierec.models.ease import EASE
from tests.models.contract import RecommenderContract, checkerboard


class TestEASEContract(RecommenderContract):
    def make_model(self) -> EASE:
        return EASE(regularization=10.0)


class TestEASEPositionRecencyContract(RecommenderContract):
    """Each checkerboard user's last two ratings are the other group's movies, rated 1: a
    half-life of a few ratings rightly follows them, 10 keeps the user's own group ahead."""

    def make_model(self) -> EASE:
        return EASE(regularization=10.0, recency_half_life_ratings=10.0)


def _direct_weights(data: Interactions, regularization: float) -> np.ndarray:
    binary = (data.binarize().matrix.toarray()).astype(np.float64)
    inverse = np.linalg.inv(binary.T @ binary + regularization * np.eye(data.n_items))
    weights = inverse / -np.diag(inverse)
    np.fill_diagonal(weights, 0.0)
    return weights


@pytest.mark.parametrize("regularization", [1.0, 10.0, 500.0])
def test_weights_match_the_closed_form(regularization: float) -> None:
    data = checkerboard()
    model = EASE(regularization=regularization).fit(data)
    assert model.weights is not None
    assert model.weights.dtype == np.float32
    np.testing.assert_array_equal(np.diag(model.weights), 0.0)
    expected = _direct_weights(data, regularization)
    np.testing.assert_allclose(model.weights, expected, rtol=1e-4, atol=1e-6)


def test_scores_are_the_binarized_rows_times_b() -> None:
    data = checkerboard()
    model = EASE(regularization=10.0).fit(data)
    assert model.weights is not None
    binary = data.binarize().matrix.toarray()
    _, scores = model.recommend(np.arange(3), k=data.n_items, exclude_seen=False)
    expected = np.sort(binary[:3] @ model.weights, axis=1)[:, ::-1]
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    history = data.matrix.indices[data.matrix.indptr[0] : data.matrix.indptr[1]]
    _, folded = model.recommend_for_history(history, k=data.n_items, exclude_seen=False)
    np.testing.assert_allclose(folded, expected[0], rtol=1e-5, atol=1e-6)


def _direct_edlae_weights(data: Interactions, regularization: float, dropout: float) -> np.ndarray:
    """Steck (NeurIPS 2020), full rank with the zero diagonal: B = I - P dMat(1 / diag(P))."""
    binary = (data.binarize().matrix.toarray()).astype(np.float64)
    gram = binary.T @ binary
    penalty = regularization * np.eye(data.n_items) + dropout / (1.0 - dropout) * np.diag(
        np.diag(gram)
    )
    inverse = np.linalg.inv(gram + penalty)
    return np.eye(data.n_items) - inverse @ np.diag(1.0 / np.diag(inverse))


@pytest.mark.parametrize(("regularization", "dropout"), [(1.0, 0.1), (10.0, 0.25), (50.0, 0.5)])
def test_edlae_weights_match_the_closed_form(regularization: float, dropout: float) -> None:
    data = checkerboard()
    model = EASE(regularization=regularization, dropout=dropout).fit(data)
    assert model.weights is not None
    np.testing.assert_array_equal(np.diag(model.weights), 0.0)
    expected = _direct_edlae_weights(data, regularization, dropout)
    np.testing.assert_allclose(model.weights, expected, rtol=1e-4, atol=1e-6)
    # The dropout penalty is not plain EASE's at any single lambda.
    assert not np.allclose(model.weights, _direct_weights(data, regularization), atol=1e-4)


def test_edlae_at_dropout_zero_is_ease() -> None:
    data = checkerboard()
    edlae = EASE(regularization=10.0, dropout=0.0).fit(data)
    assert edlae.weights is not None
    np.testing.assert_allclose(edlae.weights, _direct_weights(data, 10.0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        _direct_edlae_weights(data, 10.0, 0.0), _direct_weights(data, 10.0), atol=1e-12
    )


def test_too_many_items_is_refused_before_allocating() -> None:
    with pytest.raises(ModelError, match="max_items=10"):
        EASE(max_items=10).fit(checkerboard())


def test_invalid_config_is_a_clear_error() -> None:
    for params in (
        {"regularization": 0.0},
        {"max_items": 0},
        {"lambda": 5.0},
        {"dropout": 1.0},
        {"dropout": -0.1},
    ):
        with pytest.raises(ModelError, match="invalid ease parameters"):
            EASE(**params)
    assert isinstance(create_model("ease", regularization=50.0), EASE)

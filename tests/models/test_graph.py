"""RP3beta: the contract, and its similarity against a direct dense computation."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from movierec.models import create_model
from movierec.models.base import ModelError
from movierec.models.graph import RP3beta
from tests.models.contract import RecommenderContract, tiny


class TestRP3betaContract(RecommenderContract):
    def make_model(self) -> RP3beta:
        return RP3beta(neighbors=50)


class TestRP3betaPositionRecencyContract(RecommenderContract):
    """Each checkerboard user's last two ratings are the other group's movies, rated 1: a
    half-life of a few ratings rightly follows them, 10 keeps the user's own group ahead."""

    def make_model(self) -> RP3beta:
        return RP3beta(neighbors=50, recency_half_life_ratings=10.0)


def _dense_rp3beta(binary: npt.NDArray[np.float64], alpha: float, beta: float) -> np.ndarray:
    user_to_item = (binary / binary.sum(axis=1, keepdims=True)) ** alpha
    item_to_user = (binary.T / binary.T.sum(axis=1, keepdims=True)) ** alpha
    walks = item_to_user @ user_to_item / binary.sum(axis=0)[None, :] ** beta
    np.fill_diagonal(walks, 0.0)
    return walks


@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 0.5), (0.4, 0.3), (2.0, 0.0)])
def test_similarity_matches_a_dense_computation(alpha: float, beta: float) -> None:
    data = tiny()
    model = RP3beta(alpha=alpha, beta=beta, neighbors=10).fit(data)
    assert model.similarity is not None
    binary = (data.binarize().matrix.toarray()).astype(np.float64)
    expected = _dense_rp3beta(binary, alpha, beta)
    np.testing.assert_allclose(model.similarity.toarray(), expected, rtol=1e-5, atol=1e-7)
    _, scores = model.recommend(np.arange(3), k=data.n_items, exclude_seen=False)
    np.testing.assert_allclose(
        scores, np.sort(binary[:3] @ expected, axis=1)[:, ::-1], rtol=1e-5, atol=1e-7
    )
    history = data.matrix.indices[data.matrix.indptr[0] : data.matrix.indptr[1]]
    _, folded = model.recommend_for_history(history, k=data.n_items, exclude_seen=False)
    np.testing.assert_allclose(folded, scores[0], rtol=1e-5, atol=1e-7)


def test_neighbours_are_pruned_to_the_largest() -> None:
    data = tiny()
    full = RP3beta(neighbors=10).fit(data).similarity
    pruned = RP3beta(neighbors=2).fit(data).similarity
    assert full is not None
    assert pruned is not None
    assert (np.diff(pruned.indptr) <= 2).all()
    dense = full.toarray()
    for item in range(data.n_items):
        kept = pruned[item].toarray()[0]
        assert np.isclose(np.sort(kept)[-2:], np.sort(dense[item])[-2:]).all()


def test_invalid_config_is_a_clear_error() -> None:
    for params in ({"alpha": 0.0}, {"beta": -1.0}, {"neighbors": 0}, {"gamma": 1.0}):
        with pytest.raises(ModelError, match="invalid rp3beta parameters"):
            RP3beta(**params)
    assert isinstance(create_model("rp3beta", alpha=0.5), RP3beta)

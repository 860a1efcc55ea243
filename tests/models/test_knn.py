"""ItemKNN: the contract, and its similarity against a direct dense computation."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from movierec.data.interactions import Interactions
from movierec.models import create_model
from movierec.models.base import ModelError
from movierec.models.knn import ItemKNN
from tests.models.contract import RecommenderContract, tiny


class TestItemKNNContract(RecommenderContract):
    def make_model(self) -> ItemKNN:
        return ItemKNN(neighbors=50, shrink=10)


def _dense_similarity(values: npt.NDArray[np.float64], shrink: float) -> npt.NDArray[np.float64]:
    """Cosine of the columns of ``values``, damped by co-rater counts, zero diagonal."""
    observed = (values != 0).astype(np.float64) if shrink else np.ones_like(values)
    norms = np.linalg.norm(values, axis=0)
    sim = values.T @ values / np.outer(norms, norms)
    if shrink:
        common = observed.T @ observed
        sim *= common / (common + shrink)
    np.fill_diagonal(sim, 0.0)
    return sim


@pytest.mark.parametrize("shrink", [0.0, 10.0])
def test_cosine_similarity_matches_a_dense_computation(shrink: float) -> None:
    data = tiny()
    model = ItemKNN(neighbors=10, shrink=shrink).fit(data)
    assert model.similarity is not None
    binary = (data.matrix.toarray() > 0).astype(np.float64)  # all ratings here are > 0
    expected = _dense_similarity(binary, shrink)
    np.testing.assert_allclose(model.similarity.toarray(), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(model.similar_items(0, k=4)[1], np.sort(expected[0])[::-1][:4])


def test_pearson_centers_each_item_on_its_mean_rating() -> None:
    data = tiny()
    model = ItemKNN(neighbors=10, shrink=0, similarity="pearson").fit(data)
    assert model.similarity is not None
    ratings = data.matrix.toarray().astype(np.float64)
    observed = ratings > 0
    means = ratings.sum(axis=0) / observed.sum(axis=0)
    expected = _dense_similarity(np.where(observed, ratings - means, 0.0), 0.0)
    np.testing.assert_allclose(
        model.similarity.toarray(), np.clip(expected, 0.0, None), rtol=1e-5, atol=1e-6
    )


def test_a_stored_zero_is_still_a_rating() -> None:
    frame = pd.DataFrame({"user_id": [1, 1, 2, 2], "item_id": [7, 8, 7, 8], "rating": [0.0] * 4})
    data = Interactions.from_frames(frame, rating_scale=(0.0, 5.0))
    model = ItemKNN(shrink=0).fit(data)
    assert model.similarity is not None
    np.testing.assert_allclose(model.similarity.toarray(), [[0.0, 1.0], [1.0, 0.0]], rtol=1e-6)


def test_only_the_top_neighbors_are_kept_per_item() -> None:
    data = tiny()
    full = ItemKNN(neighbors=10, shrink=0).fit(data).similarity
    pruned = ItemKNN(neighbors=2, shrink=0).fit(data).similarity
    assert full is not None
    assert pruned is not None
    assert (np.diff(pruned.indptr) <= 2).all()
    for item in range(data.n_items):
        row = full[item].toarray()[0]
        kept = pruned[item].toarray()[0]
        assert set(np.flatnonzero(kept)) <= set(np.flatnonzero(row))
        assert np.sort(kept[kept > 0]).tolist() == pytest.approx(np.sort(row)[::-1][:2][::-1])


def test_blocks_do_not_change_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    data = tiny()
    whole = ItemKNN(neighbors=3).fit(data).similarity
    monkeypatch.setattr("movierec.models.knn.ITEM_BLOCK_CELLS", 1)
    blocked = ItemKNN(neighbors=3).fit(data).similarity
    assert whole is not None
    assert blocked is not None
    np.testing.assert_allclose(blocked.toarray(), whole.toarray())


def test_raw_dot_products_without_normalization() -> None:
    data = tiny()
    model = ItemKNN(neighbors=10, shrink=0, normalize=False).fit(data)
    assert model.similarity is not None
    binary = (data.matrix.toarray() > 0).astype(np.float64)
    expected = binary.T @ binary
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(model.similarity.toarray(), expected)


def test_invalid_config_is_a_clear_error() -> None:
    for params in ({"neighbors": 0}, {"shrink": -1.0}, {"similarity": "jaccard"}, {"k": 3}):
        with pytest.raises(ModelError, match="invalid item_knn parameters"):
            ItemKNN(**params)
    assert isinstance(create_model("item_knn", neighbors=5), ItemKNN)

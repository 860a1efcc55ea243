"""A kept similar-items table answers exactly what scoring answers, for every item."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.models import create_model
from tests.models.contract import checkerboard


@pytest.mark.parametrize("family", ["popularity", "item_knn", "ease", "rp3beta", "blend"])
def test_kept_similar_items_are_the_scored_ones(family: str) -> None:
    model = create_model(family).fit(checkerboard())
    scored = [model.similar_items(item, k=5) for item in range(model.n_items)]
    model.keep_similar_items(8)
    for item, (items, scores) in enumerate(scored):
        kept_items, kept_scores = model.similar_items(item, k=5)
        np.testing.assert_array_equal(kept_items, items)
        np.testing.assert_allclose(kept_scores, scores, rtol=1e-6)

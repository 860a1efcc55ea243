"""The served model's view of the catalog: "because you liked X" from every model family."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from movierec.models import create_model
from movierec.serving.catalog import Catalog, ModelView
from tests.models.contract import HALF_ITEMS, N_ITEMS, checkerboard, group_of_item

MODELS = {
    "blend": {"ease": {"regularization": 10.0}, "als": {"factors": 8, "regularization": 0.1}},
    "ease": {"regularization": 10.0},
    "item_knn": {},
    "rp3beta": {},
    "als": {"factors": 8, "regularization": 0.1},
    "hybrid": {},
    "rating_blend": {},
}


def _view(name: str, **params: object) -> ModelView:
    data = checkerboard()
    model = create_model(name, **params).fit(data)
    ids = data.item_ids.tolist()
    catalog = pd.DataFrame(
        {"item_id": ids, "title": [f"Movie {i}" for i in range(len(ids))], "year": 2000,
         "genres": [["Drama"]] * len(ids), "imdb_id": None, "tmdb_id": None}
    )  # fmt: skip
    return ModelView.build(model, Catalog.from_frame(catalog))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_each_reason_names_a_liked_movie_of_the_same_group(name: str) -> None:
    view = _view(name, **MODELS[name])
    # Liked: 0, 1 (group 0) and 12, 13 (group 1); 2 and 14 rated poorly.
    history = np.array([0, 1, 2, 12, 13, 14], dtype=np.int64)
    ratings = np.array([5.0, 4.5, 1.0, 5.0, 4.0, 1.0], dtype=np.float32)
    items = np.array([5, 9, 15, 19], dtype=np.int64)
    reasons = view.reasons(items, history, ratings)
    titles = {f"because you liked Movie {i}": i for i in range(N_ITEMS)}
    named = [titles[r] for r in reasons if r is not None]
    assert len(named) == len(items), reasons
    assert [group_of_item(i) for i in named] == [group_of_item(int(i)) for i in items]
    assert not {2, 14} & set(named), "a movie rated poorly is never the reason"


def test_no_reason_from_a_model_without_item_item_ties() -> None:
    view = _view("popularity")
    items = np.arange(HALF_ITEMS, dtype=np.int64)
    assert view.reasons(items, np.array([0, 1]), np.array([5.0, 5.0], np.float32)) == [None] * 10


def test_no_reason_without_a_history() -> None:
    view = _view("ease", regularization=10.0)
    empty = np.array([], dtype=np.int64)
    assert view.reasons(np.array([3, 4]), empty, np.array([], np.float32)) == [None, None]

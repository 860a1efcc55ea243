"""A four-movie catalogue whose served-quality figures are known by hand.

Movies (id: raters of 4 users, genres): 10: 4, Action; 20: 2, Action; 30: 1, Comedy;
40: 1, Action|Comedy. Self-information -log2(raters / 4): 0, 1, 2, 2 bits; popularity
percentiles (rank among the counts): 1, 2/3, 1/6, 1/6.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from movierec.data.interactions import Interactions
from movierec.models import create_model
from movierec.monitoring.batch import VISITOR, ServedColumns, columns
from movierec.serving.catalog import Catalog, ModelView
from movierec.serving.loading import ModelInfo
from movierec.serving.service import Answer

RATED_BY = {10: [1, 2, 3, 4], 20: [1, 2], 30: [3], 40: [4]}
GENRES = {10: ["Action"], 20: ["Action"], 30: ["Comedy"], 40: ["Action", "Comedy"]}
INFO = ModelInfo(name="popularity", version=3, source="registry", run_id=None)


def _frames(genres: dict[int, list[str]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    pairs = [(user, movie) for movie, users in RATED_BY.items() for user in users]
    ratings = pd.DataFrame(
        {
            "user_id": np.asarray([u for u, _ in pairs], dtype=np.int64),
            "item_id": np.asarray([m for _, m in pairs], dtype=np.int64),
            "rating": np.full(len(pairs), 4.0, dtype=np.float32),
            "timestamp": np.arange(len(pairs), dtype=np.int64),
        }
    )
    movies = pd.DataFrame(
        {
            "item_id": list(genres),
            "title": [f"Movie {m}" for m in genres],
            "year": [2000] * len(genres),
            "genres": list(genres.values()),
            "imdb_id": [None] * len(genres),
            "tmdb_id": [None] * len(genres),
        }
    )
    return ratings, movies


def build_view(genres: dict[int, list[str]] = GENRES) -> ModelView:
    ratings, movies = _frames(genres)
    data = Interactions.from_frames(ratings, movies, rating_scale=(0.5, 5.0))
    model = create_model("popularity").fit(data)
    return ModelView.build(model, Catalog.from_frame(movies))


@pytest.fixture(scope="module")
def view() -> ModelView:
    return build_view()


def served(
    view: ModelView,
    movies: list[int],
    *,
    user: int | None,
    at: float,
    k: int = 2,
    strategy: str = "personalized",
    info: ModelInfo = INFO,
) -> ServedColumns:
    """A list of ``movies`` (catalogue ids) served to ``user`` at ``at``, as the monitor's
    thread hands it on."""
    items = [view.item_of_movie[m] for m in movies]
    answer = Answer(strategy, view, info, items, [0.0] * len(items), [None] * len(items), [])
    return columns([(answer, VISITOR if user is None else user, k, at)])[0]

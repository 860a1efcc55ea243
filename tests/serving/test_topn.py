"""The top-N lists made at load answer exactly what scoring answers, for every known user."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from movierec.data.sources import LoadedData
from movierec.serving.service import Filter, RecommenderService
from movierec.serving.users import ServingStore
from tests.serving.conftest import ml_settings_in

FILTERS = [
    Filter(),
    Filter(genres=["Comedy"]),
    Filter(genres=["Documentary"]),  # rare: most full lists filter short and are scored
    Filter(year_min=1990, year_max=1999),
]


def service_for(
    data_dir: Path, ml_small: LoadedData, ml_model_dir: Path, depth: int
) -> RecommenderService:
    settings = ml_settings_in(data_dir, ml_small, ml_model_dir, top_n_depth=depth)
    service = RecommenderService(settings, ServingStore(settings.store_url))
    service.load()
    return service


def filled(service: RecommenderService) -> None:
    deadline = time.monotonic() + 60
    top_n = service._top_n
    assert top_n is not None
    while top_n.filled < service.state.view.model.n_users and time.monotonic() < deadline:  # type: ignore[union-attr]
        time.sleep(0.05)


@pytest.mark.parametrize("k", [1, 10, 50])
def test_cached_answers_equal_scored_ones(
    ml_small: LoadedData, ml_model_dir: Path, tmp_path: Path, k: int
) -> None:
    cached = service_for(tmp_path / "cached", ml_small, ml_model_dir, depth=50)
    scored = service_for(tmp_path / "scored", ml_small, ml_model_dir, depth=0)
    filled(cached)
    model = cached.state.view.model  # type: ignore[union-attr]
    assert model.item_ids is not None
    for user_id in model.user_ids.tolist():  # type: ignore[union-attr]
        for filters in FILTERS:
            ours = cached.recommend_user(user_id, k, filters)
            theirs = scored.recommend_user(user_id, k, filters)
            assert (ours.strategy, ours.movie_ids, ours.reasons) == (
                theirs.strategy,
                theirs.movie_ids,
                theirs.reasons,
            ), (user_id, filters)
    assert cached._answers, "unfiltered answers are kept"
    cached.close()
    scored.close()

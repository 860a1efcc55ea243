"""The hot answers' JSON, joined from cached fragments, is the very JSON pydantic writes for
the response models the routes declare: same fields, same order, same numbers and escapes."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from movierec.serving.catalog import ModelView
from movierec.serving.routes.common import recommendations, similar
from movierec.serving.schemas import RecommendationResponse, SimilarResponse
from movierec.serving.service import Answer, Filter, RecommenderService, SimilarAnswer

UNKNOWN_USER = 123_456_789
AWKWARD_SCORES = [1e-05, 1e16, math.nan, math.inf, -0.0, 0.1, 3.0, -2.5e-300, 123456.789]


@pytest.fixture(scope="module")
def service(client: TestClient) -> RecommenderService:
    app: Any = client.app
    return app.state.service


@pytest.fixture(scope="module")
def view(service: RecommenderService) -> ModelView:
    assert service.state.view is not None
    return service.state.view


def _movie(view: ModelView, item: int) -> dict[str, Any]:
    row = view.row(item)
    return {"movie_id": row.movie_id, "title": row.title, "year": row.year, "genres": row.genres}


def _model(answer: Answer | SimilarAnswer) -> dict[str, Any]:
    info = answer.info
    return {"name": info.name, "version": info.version, "source": info.source}


def pydantic_recommendations(user_id: int | None, answer: Answer) -> bytes:
    """What FastAPI sent when the route returned the response model."""
    items = [
        {**_movie(answer.view, item), "score": score, "reason": reason}
        for item, score, reason in zip(answer.items, answer.scores, answer.reasons, strict=True)
    ]
    response = RecommendationResponse.model_validate(
        {
            "user_id": user_id,
            "strategy": answer.strategy,
            "model": _model(answer),
            "items": items,
            "ignored_movie_ids": answer.ignored_movie_ids,
        }
    )
    return response.model_dump_json(by_alias=True).encode()


def pydantic_similar(answer: SimilarAnswer) -> bytes:
    items = [
        {**_movie(answer.view, item), "score": score}
        for item, score in zip(answer.items, answer.scores, strict=True)
    ]
    response = SimilarResponse.model_validate(
        {"movie": _movie(answer.view, answer.movie), "model": _model(answer), "items": items}
    )
    return response.model_dump_json(by_alias=True).encode()


def user_answers(service: RecommenderService) -> Iterator[tuple[int, Answer]]:
    for user_id in range(1, 40):
        yield user_id, service.recommend_user(user_id, 10, Filter())
    yield 2, service.recommend_user(2, 50, Filter(["Comedy", "Drama"], 1990, 2005))
    yield 3, service.recommend_user(3, 5, Filter(), exclude_seen=False)
    yield UNKNOWN_USER, service.recommend_user(UNKNOWN_USER, 10, Filter())
    yield 4, service.recommend_user(4, 10, Filter(["No Such Genre"]))  # nothing allowed


def test_user_answers_are_pydantics_bytes(service: RecommenderService) -> None:
    strategies = set()
    for user_id, answer in user_answers(service):
        strategies.add(answer.strategy)
        assert recommendations(user_id, answer).body == pydantic_recommendations(user_id, answer)
    assert strategies == {"personalized", "popular_fallback"}


@pytest.mark.parametrize(
    ("movie_ids", "ratings"),
    [
        ([1, 3114, 2355], [5.0, 4.5, 2.0]),
        ([1, 1, 260, 1196], None),  # liked, with a repeat
        ([1, 260, 193609], [4.0, 4.0, 3.0]),  # 193609: in the catalog, rated once
    ],
)
def test_anonymous_answers_are_pydantics_bytes(
    service: RecommenderService, movie_ids: list[int], ratings: list[float] | None
) -> None:
    answer = service.recommend_history(movie_ids, ratings, 10, Filter())
    assert answer.strategy == "folded_in"
    assert recommendations(None, answer).body == pydantic_recommendations(None, answer)


def test_similar_answers_are_pydantics_bytes(service: RecommenderService) -> None:
    for movie_id in (1, 2, 260, 3114, 5952):
        answer = service.similar(movie_id, 20)
        assert len(answer.items) == 20
        assert similar(answer).body == pydantic_similar(answer)


def awkward_items(view: ModelView) -> list[int]:
    """Movies whose JSON needs escapes or has no year or genres, and a plain one."""
    found: dict[str, int] = {}
    for item in range(len(view.catalog_rows)):
        row = view.row(item)
        checks = {
            "quote": '"' in row.title,
            "non-ascii": not row.title.isascii(),
            "no year": row.year is None,
            "no genres": not row.genres,
            "plain": row.title.isascii() and row.year is not None,
        }
        for name, holds in checks.items():
            if holds:
                found.setdefault(name, item)
    assert set(found) == {"quote", "non-ascii", "no year", "no genres", "plain"}
    return list(found.values())


def test_awkward_values_are_pydantics_bytes(service: RecommenderService, view: ModelView) -> None:
    """Escapes, missing years and genres, every kind of float, reasons with quotes."""
    items = (awkward_items(view) * 2)[: len(AWKWARD_SCORES)]
    scores = AWKWARD_SCORES[: len(items)]
    reasons = [None, 'because you liked "Amélie"', "\\ \n \u2028", *["x"] * len(items)]
    info = service.state.info
    assert info is not None
    answer = Answer("folded_in", view, info, items, scores, reasons[: len(items)], [7, 8])
    body = recommendations(None, answer).body
    assert body == pydantic_recommendations(None, answer)
    assert json.loads(body)["items"][2]["score"] is None  # NaN, as pydantic writes it
    similar_answer = SimilarAnswer(view, info, items[1], items, scores)
    assert similar(similar_answer).body == pydantic_similar(similar_answer)


def test_empty_answers_are_pydantics_bytes(service: RecommenderService, view: ModelView) -> None:
    info = service.state.info
    assert info is not None
    answer = Answer("popular_fallback", view, info, [], [], [], [])
    assert recommendations(None, answer).body == pydantic_recommendations(None, answer)
    similar_answer = SimilarAnswer(view, info, 0, [], [])
    assert similar(similar_answer).body == pydantic_similar(similar_answer)

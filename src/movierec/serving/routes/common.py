"""Conversions from the service's results to responses, shared by the routers.

The hot answers (recommendations and similar movies) are sent as JSON bytes joined from
fragments their model view caches: each movie's JSON, made once by pydantic's serializer of
:class:`~movierec.serving.schemas.Movie`, and each reason's. Validating the response model and
serializing it took ~70 µs for ten movies, more than finding them (measured); the joined bytes
are the very bytes pydantic writes for the response model (``tests/serving/test_common.py``),
which the routes still declare, so ``/docs`` and the OpenAPI schema describe them as before.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic_core import to_json
from starlette.responses import Response

from movierec.serving.catalog import MovieRow
from movierec.serving.loading import ModelInfo
from movierec.serving.schemas import (
    ExperimentRef,
    ModelInfoResponse,
    ModelRef,
    Movie,
    PageRef,
    ScoredMovie,
)
from movierec.serving.service import Answer, Scored, SimilarAnswer


class JSONBytes(Response):
    """An answer already serialized: FastAPI sends it as it is."""

    media_type = "application/json"


def movie(row: MovieRow) -> Movie:
    return Movie(movie_id=row.movie_id, title=row.title, year=row.year, genres=row.genres)


def scored(item: Scored) -> ScoredMovie:
    row = item.movie
    return ScoredMovie(
        movie_id=row.movie_id, title=row.title, year=row.year, genres=row.genres, score=item.score
    )


def recommendations(
    user_id: int | None,
    answer: Answer,
    experiment: ExperimentRef | None = None,
    page: PageRef | None = None,
) -> JSONBytes:
    """A :class:`~movierec.serving.schemas.RecommendationResponse` of ``answer``, made in
    ``experiment`` if any, with its ``page`` if pages were asked for."""
    view = answer.view
    items = [
        b'%b,"score":%b,"reason":%b}' % (view.movie_json(item), score, view.text_json(reason))
        for item, score, reason in zip(
            answer.items, _floats(answer.scores), answer.reasons, strict=True
        )
    ]
    return JSONBytes(
        b'{"user_id":%b,"strategy":%b,"model":%b,"items":[%b],"ignored_movie_ids":%b,'
        b'"experiment":%b,"page":%b}'
        % (
            to_json(user_id),
            view.text_json(answer.strategy),
            _model_json(answer.info),
            b",".join(items),
            to_json(answer.ignored_movie_ids),
            b"null" if experiment is None else experiment.model_dump_json().encode(),
            b"null" if page is None else page.model_dump_json().encode(),
        )
    )


def similar(answer: SimilarAnswer) -> JSONBytes:
    """A :class:`~movierec.serving.schemas.SimilarResponse` of ``answer``."""
    view = answer.view
    items = [
        b'%b,"score":%b}' % (view.movie_json(item), score)
        for item, score in zip(answer.items, _floats(answer.scores), strict=True)
    ]
    return JSONBytes(
        b'{"movie":%b},"model":%b,"items":[%b]}'
        % (view.movie_json(answer.movie), _model_json(answer.info), b",".join(items))
    )


def model_info(info: ModelInfo) -> ModelInfoResponse:
    return ModelInfoResponse.model_validate(info, from_attributes=True)


def _floats(values: list[float]) -> list[bytes]:
    """Each value's JSON as pydantic writes a float field (shortest round trip, NaN as null)."""
    return to_json(values, inf_nan_mode="null")[1:-1].split(b",") if values else []


def _model_json(info: ModelInfo) -> bytes:
    return _model_ref_json(info.name, info.version, info.source)


@lru_cache(maxsize=16)  # one entry per model a process serves
def _model_ref_json(name: str, version: int | None, source: str) -> bytes:
    return ModelRef(name=name, version=version, source=source).model_dump_json().encode()

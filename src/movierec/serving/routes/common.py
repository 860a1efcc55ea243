"""Conversions from the service's results to response schemas, shared by the routers."""

from __future__ import annotations

from movierec.serving.catalog import MovieRow
from movierec.serving.loading import ModelInfo
from movierec.serving.schemas import (
    ModelInfoResponse,
    ModelRef,
    Movie,
    RecommendationResponse,
    ScoredMovie,
)
from movierec.serving.service import Answer, Scored


def movie(row: MovieRow) -> Movie:
    return Movie(movie_id=row.movie_id, title=row.title, year=row.year, genres=row.genres)


def scored(item: Scored) -> ScoredMovie:
    return ScoredMovie.model_validate(scored_values(item))


def scored_values(item: Scored) -> dict[str, object]:
    """A scored movie's fields, for one validation of a whole response (see below)."""
    row = item.movie
    return {
        "movie_id": row.movie_id,
        "title": row.title,
        "year": row.year,
        "genres": row.genres,
        "score": item.score,
    }


def model_ref(info: ModelInfo) -> ModelRef:
    return ModelRef(name=info.name, version=info.version, source=info.source)


def recommendations(user_id: int | None, answer: Answer) -> RecommendationResponse:
    # One validation of plain values for the whole answer: a third cheaper than a model
    # built per row (measured), and a recommendation's time is counted in tenths of a ms.
    return RecommendationResponse.model_validate(
        {
            "user_id": user_id,
            "strategy": answer.strategy,
            "model": model_ref(answer.info),
            "items": [{**scored_values(i), "reason": i.reason} for i in answer.items],
            "ignored_movie_ids": answer.ignored_movie_ids,
        }
    )


def model_info(info: ModelInfo) -> ModelInfoResponse:
    return ModelInfoResponse.model_validate(info, from_attributes=True)

"""The catalog: search, details, popular movies, genres, similar movies."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status

from movierec.serving.deps import KQuery, MetricsDep, ServiceDep, SettingsDep, checked_k, errors
from movierec.serving.routes.common import JSONBytes, movie, scored, similar
from movierec.serving.schemas import (
    GenreCount,
    GenresResponse,
    MovieDetails,
    MoviePage,
    PopularResponse,
    SimilarRequest,
    SimilarResponse,
    Year,
)

router = APIRouter(tags=["movies"])

MovieIdPath = Annotated[int, Path(ge=0, le=2**63 - 1, description="The movie's id.")]
MAX_PAGE = 500


@router.get("/movies", responses=errors(422))
def search_movies(
    *,
    service: ServiceDep,
    title: Annotated[str | None, Query(max_length=200, description="Part of the title.")] = None,
    genre: Annotated[str | None, Query(max_length=100)] = None,
    year_min: Annotated[Year | None, Query()] = None,
    year_max: Annotated[Year | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> MoviePage:
    """Movies whose title contains ``title`` (any case), of ``genre``, within the years."""
    catalog = service.state.catalog
    rows = catalog.search(title, genre, year_min, year_max)
    page = rows[offset : offset + limit]
    return MoviePage(
        items=[movie(catalog.row(int(p))) for p in page],
        total=len(rows),
        limit=limit,
        offset=offset,
    )


@router.get("/movies/popular", responses=errors(422, 503))
async def popular_movies(
    service: ServiceDep,
    k: KQuery,
    genre: Annotated[str | None, Query(max_length=100)] = None,
    by: Annotated[
        Literal["count", "rating"],
        Query(description="Most rated, or best rated (mean shrunk toward the global mean)."),
    ] = "count",
) -> PopularResponse:
    """The most popular movies, overall or in one genre, from the served model's data."""
    items = service.popular(k, genre, by)
    return PopularResponse(genre=genre, by=by, items=[scored(i) for i in items])


@router.get("/genres")
async def genres(service: ServiceDep) -> GenresResponse:
    """Every genre and how many movies it has."""
    counts = service.state.catalog.genre_counts()
    return GenresResponse(genres=[GenreCount(genre=g, movies=n) for g, n in counts.items()])


@router.get("/movies/{movie_id}", responses=errors(404, 422))
async def movie_details(movie_id: MovieIdPath, service: ServiceDep) -> MovieDetails:
    """A movie with its rating count and mean (in the served model's training data)."""
    catalog = service.state.catalog
    position = catalog.position(movie_id)
    if position is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"movie {movie_id} not found")
    row = catalog.row(position)
    count, mean, in_model = service.movie_stats(movie_id)
    return MovieDetails(
        movie_id=row.movie_id,
        title=row.title,
        year=row.year,
        genres=row.genres,
        imdb_id=catalog.imdb_ids[position],
        tmdb_id=catalog.tmdb_ids[position],
        rating_count=count,
        rating_mean=mean,
        in_model=in_model,
    )


@router.get(
    "/movies/{movie_id}/similar",
    response_model=SimilarResponse,
    responses=errors(404, 422, 503),
)
async def similar_movies(
    movie_id: MovieIdPath, k: KQuery, service: ServiceDep, metrics: MetricsDep
) -> JSONBytes:
    """The movies most like this one."""
    return _similar(service, metrics, movie_id, k)


@router.post("/similar-items", response_model=SimilarResponse, responses=errors(404, 413, 422, 503))
async def similar_items(
    body: SimilarRequest, service: ServiceDep, settings: SettingsDep, metrics: MetricsDep
) -> JSONBytes:
    """The movies most like ``movie_id``."""
    return _similar(service, metrics, body.movie_id, checked_k(body.k, settings))


def _similar(service: ServiceDep, metrics: MetricsDep, movie_id: int, k: int) -> JSONBytes:
    answer = service.similar(movie_id, k)
    metrics.recommendation_served("similar")
    return similar(answer)

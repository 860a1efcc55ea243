"""Store statistics."""

from __future__ import annotations

from fastapi import APIRouter

from movierec.serving.deps import ServiceDep, errors
from movierec.serving.schemas import StatsResponse

router = APIRouter(tags=["stats"])


@router.get("/stats", responses=errors(503))
def stats(service: ServiceDep) -> StatsResponse:
    """Counts of users, movies and ratings, and ratings per day, from the store."""
    figures = service.store.stats()
    return StatsResponse(
        dataset=figures.dataset,
        n_users=figures.n_users,
        n_movies=figures.n_movies,
        n_rated_movies=figures.n_items,
        n_ratings=figures.n_ratings,
        ratings_per_day=figures.ratings_per_day,
        rating_scale=list(figures.rating_scale) if figures.rating_scale else None,
        first_rating_at=figures.first_timestamp,
        last_rating_at=figures.last_timestamp,
    )

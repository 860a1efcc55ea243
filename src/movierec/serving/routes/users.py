"""Users: a page of them, and one user's profile (ratings, favourite genres, recent ratings)."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, HTTPException, Path, Query, status

from movierec.serving.deps import ServiceDep, errors
from movierec.serving.schemas import GenreShare, UserDetails, UserPage, UserRating, UserSummary
from movierec.serving.service import RecommenderService
from movierec.serving.users import ServingStore, UserRatings

router = APIRouter(tags=["users"])

FAVOURITE_GENRES = 5
RECENT_RATINGS = 10
TOP_RATINGS = 10


def _store(service: RecommenderService) -> ServingStore:
    store = service.store
    assert isinstance(store, ServingStore)
    return store


@router.get("/users", responses=errors(422, 503))
def list_users(
    service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> UserPage:
    """Users with ratings in the store, by id."""
    page = _store(service).user_page(limit, offset)
    return UserPage(
        items=[UserSummary(user_id=u, n_ratings=n) for u, n in page], limit=limit, offset=offset
    )


@router.get("/users/{user_id}", responses=errors(404, 422, 503))
def user_details(
    user_id: Annotated[int, Path(ge=0, le=2**63 - 1)], service: ServiceDep
) -> UserDetails:
    """How many movies a user rated, their favourite genres, latest and highest ratings."""
    rated = _store(service).user_ratings(user_id)
    view = service.state.view
    known = view is not None and view.model.user_index_of(user_id) is not None
    if len(rated.item_ids) == 0 and not known:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"user {user_id} not found")
    rows = service.state.catalog.positions(rated.item_ids)
    return UserDetails(
        user_id=user_id,
        n_ratings=len(rated.item_ids),
        mean_rating=float(rated.ratings.mean()) if len(rated.ratings) else None,
        known_to_model=known,
        favourite_genres=_favourite_genres(service, rated, rows),
        recent_ratings=_ratings(service, rated, rows, np.arange(min(RECENT_RATINGS, len(rows)))),
        # A stable sort of the newest-first ratings: the newest first among equal ratings.
        top_ratings=_ratings(
            service, rated, rows, np.argsort(-rated.ratings, kind="stable")[:TOP_RATINGS]
        ),
    )


def _ratings(
    service: RecommenderService, rated: UserRatings, rows: np.ndarray, chosen: np.ndarray
) -> list[UserRating]:
    """The user's ratings at positions ``chosen`` (of their newest-first ratings)."""
    titles = service.state.catalog.titles
    return [
        UserRating(
            movie_id=movie_id,
            title=titles[row] if row >= 0 else f"Item {movie_id}",
            rating=rating,
            timestamp=timestamp,
        )
        for movie_id, row, rating, timestamp in zip(
            rated.item_ids[chosen].tolist(),
            rows[chosen].tolist(),
            rated.ratings[chosen].tolist(),
            rated.timestamps[chosen].tolist(),
            strict=True,
        )
    ]


def _favourite_genres(
    service: RecommenderService, rated: UserRatings, rows: np.ndarray
) -> list[GenreShare]:
    """Genres of the movies the user liked (the top quarter of the scale), most frequent first;
    all their movies when they liked none."""
    scale = service.state.rating_scale
    liked = np.ones(len(rows), dtype=bool)
    if scale is not None:
        liked = rated.ratings >= scale[0] + 0.75 * (scale[1] - scale[0])
        if not liked.any():
            liked[:] = True
    counts: dict[str, int] = {}
    chosen = rows[liked & (rows >= 0)]
    for row in chosen.tolist():
        for genre in service.state.catalog.genres[row]:
            counts[genre] = counts.get(genre, 0) + 1
    top = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))[:FAVOURITE_GENRES]
    total = max(len(chosen), 1)
    return [GenreShare(genre=g, ratings=n, share=n / total) for g, n in top]

"""Synthetic activity for a running server (``POST /admin/generate-ratings``): who rates and
what, drawn by :func:`movierec.data.activity.synthetic_activity` on the served catalogue."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import numpy as np

from movierec.data.activity import ActivitySpec, synthetic_activity
from movierec.data.store import RatingColumns
from movierec.data.synth import RATING_SCALE
from movierec.errors import MovierecError
from movierec.serving.schemas import GenerateRatings
from movierec.serving.service import RecommenderService


@dataclass(frozen=True)
class Activity:
    """Generated ratings, ready for the writer, and who gave them."""

    ratings: RatingColumns
    seed: int
    new_user_ids: list[int]


class ActivityConflictError(MovierecError):
    """The request asks for more than the served model or catalogue holds (HTTP 409)."""


def generate_activity(
    service: RecommenderService, request: GenerateRatings, now: int | None = None
) -> Activity:
    """Draw the ratings (blocking: the store is read; run it off the event loop).

    Raises:
        ActivityConflictError: more known raters than the served model has, or more ratings
            than the raters can give of the catalogue.
        NoModelError: no model is loaded (the known users are the served model's).
    """
    view, _ = service.current_view()
    known = np.asarray(view.model.user_ids)
    new_users = round(request.users * request.new_user_share)
    existing_users = request.users - new_users
    if existing_users > len(known):
        raise ActivityConflictError(
            f"{existing_users} known raters asked for, but the served model knows {len(known)}"
            " users: ask for fewer users or a larger new_user_share"
        )
    seed = secrets.randbits(32) if request.seed is None else request.seed
    rng = np.random.default_rng(seed)
    first_new = service.store.max_user_id() + 1
    new_ids = np.arange(first_new, first_new + new_users)
    raters = np.concatenate([rng.choice(known, existing_users, replace=False), new_ids])
    movies = service.store.movies_frame()
    counts = np.zeros(len(movies))
    items = view.item_indices(movies["item_id"].to_numpy(dtype=np.int64))
    counts[items >= 0] = view.rating_counts[items[items >= 0]]
    spec = ActivitySpec(
        users=raters.tolist(),
        ratings=request.ratings,
        seed=seed,
        timestamp=int(time.time()) if now is None else now,
        rating_shift=request.rating_shift,
        favoured_genres=request.favoured_genres,
    )
    try:
        frame = synthetic_activity(movies, counts, spec)
    except ValueError as exc:
        raise ActivityConflictError(str(exc)) from exc
    user_ids = frame["user_id"].to_numpy()
    return Activity(
        ratings=RatingColumns(
            user_id=user_ids,
            item_id=frame["item_id"].to_numpy(),
            rating=_on_scale(frame["rating"].to_numpy(), service.state.rating_scale),
            timestamp=frame["timestamp"].to_numpy(),
        ),
        seed=seed,
        new_user_ids=np.intersect1d(new_ids, user_ids).tolist(),
    )


def _on_scale(stars: np.ndarray, scale: tuple[float, float] | None) -> np.ndarray:
    """The generator's 0.5-5 stars mapped linearly onto the store's scale (MovieLens: as is)."""
    if scale is None or scale == RATING_SCALE:
        return stars.astype(np.float32)
    (low, high), (lo, hi) = scale, RATING_SCALE
    return (low + (stars - lo) * (high - low) / (hi - lo)).astype(np.float32)

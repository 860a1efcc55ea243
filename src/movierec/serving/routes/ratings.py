"""Live ratings: stored durably, then folded into the user's next recommendations."""

from __future__ import annotations

import time

import numpy as np
from fastapi import APIRouter, HTTPException, status
from starlette.concurrency import run_in_threadpool

from movierec.serving.activity import ActivityConflictError, generate_activity
from movierec.serving.deps import AdminDep, MetricsDep, ServiceDep, SettingsDep, errors
from movierec.serving.routes.common import JSONBytes
from movierec.serving.schemas import (
    GeneratedRatings,
    GenerateRatings,
    NewRating,
    RatingBatch,
    RatingsStored,
)
from movierec.serving.service import RatingEvent

router = APIRouter(tags=["ratings"])


@router.post(
    "/ratings",
    status_code=status.HTTP_201_CREATED,
    response_model=RatingsStored,
    responses=errors(404, 413, 422, 503),
)
async def post_ratings(
    body: NewRating | RatingBatch,
    service: ServiceDep,
    settings: SettingsDep,
    metrics: MetricsDep,
) -> JSONBytes:
    """Store one rating or a batch (``{"ratings": [...]}``); durable when this answers."""
    ratings = body.ratings if isinstance(body, RatingBatch) else [body]
    if len(ratings) > settings.max_batch:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"a batch holds at most {settings.max_batch} ratings, got {len(ratings)}",
        )
    now = int(time.time())
    events = [
        RatingEvent(r.user_id, r.movie_id, r.rating, now if r.timestamp is None else r.timestamp)
        for r in ratings
    ]
    # Validated here (its errors are this request's); stored by the writer thread with the
    # other requests waiting (one commit), while this loop goes on answering.
    changed = await service.store_ratings(events)
    metrics.ratings.inc(len(events))
    stored = RatingsStored(
        received=len(events), changed=changed, user_ids=sorted({e.user_id for e in events})
    )
    # Serialized here, as the hot routes' answers are: the lean path sends these very bytes.
    return JSONBytes(stored.__pydantic_serializer__.to_json(stored), status.HTTP_201_CREATED)


@router.post(
    "/admin/generate-ratings",
    status_code=status.HTTP_201_CREATED,
    dependencies=[AdminDep],
    responses=errors(401, 403, 409, 422, 503),
)
async def generate_ratings(
    body: GenerateRatings, service: ServiceDep, metrics: MetricsDep
) -> GeneratedRatings:
    """Synthetic ratings by known and new users, drawn from the synthetic generator's model on
    the served catalogue (demos, load and drift tests), stored like posted ones: durable when
    this answers, folded into those users' next recommendations. A known user may re-rate a
    movie (the newest rating wins). ``rating_shift`` and ``favoured_genres`` make drift on
    purpose."""
    try:
        activity = await run_in_threadpool(generate_activity, service, body)
    except ActivityConflictError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    changed = await service.store_columns(activity.ratings)
    metrics.ratings.inc(len(activity.ratings.user_id))
    return GeneratedRatings(
        received=len(activity.ratings.user_id),
        changed=changed,
        user_ids=np.unique(activity.ratings.user_id).tolist(),
        seed=activity.seed,
        new_user_ids=activity.new_user_ids,
    )

"""Live ratings: stored durably, then folded into the user's next recommendations."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, HTTPException, status

from movierec.serving.deps import MetricsDep, ServiceDep, SettingsDep, errors
from movierec.serving.schemas import NewRating, RatingBatch, RatingsStored
from movierec.serving.service import RatingEvent

router = APIRouter(tags=["ratings"])


@router.post("/ratings", status_code=status.HTTP_201_CREATED, responses=errors(404, 413, 422, 503))
async def post_ratings(
    body: NewRating | RatingBatch,
    service: ServiceDep,
    settings: SettingsDep,
    metrics: MetricsDep,
) -> RatingsStored:
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
    changed = await asyncio.wrap_future(service.submit_ratings(events))
    metrics.ratings.inc(len(events))
    return RatingsStored(
        received=len(events), changed=changed, user_ids=sorted({e.user_id for e in events})
    )

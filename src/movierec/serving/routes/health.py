"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status

from movierec.errors import StoreError
from movierec.serving.deps import ServiceDep, errors
from movierec.serving.schemas import HealthResponse, ReadyResponse, ReplicaFeedState

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> HealthResponse:
    """The process is alive (it answers)."""
    return HealthResponse()


@router.get("/ready", responses=errors(503))
def ready(service: ServiceDep, request: Request) -> ReadyResponse:
    """A model is loaded and the ratings store answers; 503, saying which is missing, if not.
    The channel to other replicas is reported, not required: a replica whose channel is down
    still serves, and taking every replica out at once for a shared channel's outage would
    turn a delay of other replicas' news into no service at all."""
    info = service.state.info
    if info is None:
        reason = "" if service.load_error is None else f" ({service.load_error})"
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"not ready: no model is loaded{reason}"
        )
    try:
        service.store.rating_scale  # noqa: B018 (a cheap query: does the store answer?)
    except StoreError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"not ready: {exc}") from exc
    return ReadyResponse(
        model_version=info.version,
        model_source=info.source,
        top_n_ready=service.top_n_share,
        replica_feed=_replica_feed(request),
    )


def _replica_feed(request: Request) -> ReplicaFeedState | None:
    replicas = getattr(request.app.state, "replica_feed", None)
    if replicas is None:
        return None
    state = replicas.status
    return ReplicaFeedState(feed=state.feed, connected=state.connected, down_since=state.down_since)

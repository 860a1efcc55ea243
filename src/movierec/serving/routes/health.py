"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from movierec.errors import StoreError
from movierec.serving.deps import ServiceDep, errors
from movierec.serving.schemas import HealthResponse, ReadyResponse

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> HealthResponse:
    """The process is alive (it answers)."""
    return HealthResponse()


@router.get("/ready", responses=errors(503))
def ready(service: ServiceDep) -> ReadyResponse:
    """A model is loaded and the ratings store answers; 503, saying which is missing, if not."""
    info = service.state.info
    if info is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "not ready: no model is loaded")
    try:
        service.store.rating_scale  # noqa: B018 (a cheap query: does the store answer?)
    except StoreError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"not ready: {exc}") from exc
    return ReadyResponse(
        model_version=info.version, model_source=info.source, top_n_ready=service.top_n_share
    )

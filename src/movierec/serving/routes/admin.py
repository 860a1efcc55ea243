"""The served model: what it is, and a hot reload of the registry's champion (admin)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from movierec.serving.deps import AdminDep, ServiceDep, errors
from movierec.serving.routes.common import model_info
from movierec.serving.schemas import ModelInfoResponse, ReloadResponse
from movierec.serving.service import RecommenderService

router = APIRouter(tags=["models"])


def current_info(service: RecommenderService) -> ModelInfoResponse:
    info = service.state.info
    if info is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no model is loaded")
    return model_info(info)


@router.get("/models/current", responses=errors(503))
async def current_model(service: ServiceDep) -> ModelInfoResponse:
    """The served model: name, registry version, metrics, data snapshot, when it was loaded."""
    return current_info(service)


@router.post("/admin/reload", dependencies=[AdminDep], responses=errors(401, 403, 413, 422, 503))
def reload_model(service: ServiceDep) -> ReloadResponse:
    """Load the registry's champion and swap it in; requests in flight finish on the old
    model, none fails. A registry that cannot be read keeps the current model (503)."""
    previous, current = service.load(fall_back_on_error=False)
    changed = previous is None or (previous.source, previous.version) != (
        current.source,
        current.version,
    )
    return ReloadResponse(
        changed=changed,
        previous=model_info(previous) if previous is not None else None,
        current=model_info(current),
    )

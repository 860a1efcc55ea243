"""The served model, the registry's versions and latest leaderboard, and a hot reload of the
registry's champion (admin)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, status

from movierec.serving.deps import AdminDep, ServiceDep, SettingsDep, errors
from movierec.serving.registry import latest_leaderboard, list_versions
from movierec.serving.routes.common import model_info
from movierec.serving.schemas import (
    LeaderboardEntry,
    LeaderboardResponse,
    ModelInfoResponse,
    RegistryResponse,
    RegistryVersion,
    ReloadResponse,
)
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


@router.get("/models", responses=errors(503))
def registry_versions(settings: SettingsDep) -> RegistryResponse:
    """Every version of the registered model, newest first, with its aliases and metrics."""
    return RegistryResponse(
        registered_model=settings.registered_model,
        versions=[
            RegistryVersion(
                version=v.version,
                aliases=v.aliases,
                model=v.model,
                run_id=v.run_id,
                created_at=_from_ms(v.created_at_ms),
                metrics=v.metrics,
                params=v.params,
            )
            for v in list_versions(settings)
        ],
    )


@router.get("/models/leaderboard", responses=errors(503))
def leaderboard(settings: SettingsDep) -> LeaderboardResponse:
    """The models the latest pipeline run scored on one split (empty before any run)."""
    board = latest_leaderboard(settings)
    return LeaderboardResponse(
        run_id=board.run_id,
        started_at=_from_ms(board.started_at_ms) if board.started_at_ms is not None else None,
        entries=[
            LeaderboardEntry(model=e.model, metrics=e.metrics, params=e.params)
            for e in board.entries
        ],
    )


def _from_ms(milliseconds: int) -> datetime:
    return datetime.fromtimestamp(milliseconds / 1000, tz=UTC)


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

"""Data drift of the ratings since the served model's training snapshot: JSON, Evidently's HTML
report, and the Prometheus collector of ``/metrics``.

Both routes are plain ``def``: the comparison (seconds on a large store) runs in the thread pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from movierec.config import Settings
from movierec.monitoring.drift import (
    DriftUnavailableError,
    check_drift,
    drift_html,
    drift_inputs,
)
from movierec.monitoring.drift_monitor import DriftMonitor
from movierec.serving.deps import ServiceDep, SettingsDep, errors
from movierec.serving.service import RecommenderService

router = APIRouter(prefix="/monitoring", tags=["monitoring"])

StartQuery = Annotated[
    int | None,
    Query(ge=0, description="Window start, epoch seconds (default: after the model's data)."),
]
EndQuery = Annotated[
    int | None, Query(ge=1, description="Window end, epoch seconds, excluded (default: now).")
]


class FeatureDriftModel(BaseModel):
    """One feature's comparison."""

    feature: str = Field(description="rating, user_activity, item_popularity, genre_mix, ...")
    statistic: str = Field(description="e.g. jensen_shannon_distance, ks_p_value")
    test: str
    value: float
    threshold: float
    drifted: bool
    details: dict[str, float | int | str] = Field(
        description="Small figures behind the statistic, e.g. reference and current shares."
    )


class SkippedFeatureModel(BaseModel):
    feature: str
    reason: str


class DriftWindow(BaseModel):
    start: int = Field(description="Epoch seconds, included.")
    end: int | None = Field(description="Epoch seconds, excluded; null: up to now.")


class DriftResponse(BaseModel):
    """Every feature's comparison and the verdict."""

    status: Literal["compared", "nothing_to_compare"]
    verdict: str = Field(description="drift, no drift, or nothing to compare")
    message: str
    snapshot_hash: str
    window: DriftWindow
    reference_ratings: int
    current_ratings: int
    drift_share: float = Field(description="Share of the compared features that drifted.")
    drift_share_threshold: float
    drift_detected: bool
    drifted_features: list[str]
    features: list[FeatureDriftModel]
    skipped: list[SkippedFeatureModel]
    checked_at: float = Field(description="Epoch seconds.")


@router.get("/drift", responses=errors(422, 503))
def data_drift(
    service: ServiceDep, settings: SettingsDep, start: StartQuery = None, end: EndQuery = None
) -> DriftResponse:
    """Drift of the window's ratings (by default: all since the served model's training
    snapshot) from that snapshot, feature by feature, and the verdict."""
    with _unavailable_is_503():
        report = check_drift(settings, service.store, _served_snapshot(service), start, end)
    return DriftResponse.model_validate(report.to_dict())


@router.get(
    "/drift/report",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}}, **errors(422, 503)},
)
def data_drift_report(
    service: ServiceDep, settings: SettingsDep, start: StartQuery = None, end: EndQuery = None
) -> HTMLResponse:
    """Evidently's data drift report of the same window (samples of at most 100k ratings)."""
    with _unavailable_is_503():
        inputs = drift_inputs(settings, service.store, _served_snapshot(service), start, end)
    return HTMLResponse(drift_html(inputs, drift_share=settings.drift_share))


def collector(settings: Settings, service: RecommenderService) -> DriftMonitor:
    """The ``movierec_drift_*`` gauges of the model ``service`` serves."""

    def snapshot_hash() -> str | None:
        info = service.state.info
        return info.snapshot_hash if info is not None else None

    return DriftMonitor(settings, service.store, snapshot_hash)


def _served_snapshot(service: RecommenderService) -> str | None:
    info = service.state.info
    if info is None:
        raise DriftUnavailableError(
            "no model is loaded: drift compares the ratings with the served model's training data"
        )
    return info.snapshot_hash


@contextmanager
def _unavailable_is_503() -> Iterator[None]:
    try:
        yield
    except DriftUnavailableError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc

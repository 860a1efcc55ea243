"""Data drift of the ratings since the served model's training snapshot: JSON, Evidently's HTML
report, and the Prometheus collector of ``/metrics``.

Both routes are plain ``def``: the comparison (seconds on a large store) runs in the thread pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import HTMLResponse

from movierec.config import Settings
from movierec.monitoring.drift import (
    DriftUnavailableError,
    check_drift,
    drift_html,
    drift_inputs,
)
from movierec.monitoring.drift_monitor import DriftMonitor
from movierec.serving.deps import ServiceDep, SettingsDep, errors, json_errors
from movierec.serving.schemas import DriftResponse
from movierec.serving.service import NoModelError, RecommenderService

router = APIRouter(prefix="/monitoring", tags=["monitoring"])

StartQuery = Annotated[
    int | None,
    Query(ge=0, description="Window start, epoch seconds (default: after the model's data)."),
]
EndQuery = Annotated[
    int | None, Query(ge=1, description="Window end, epoch seconds, excluded (default: now).")
]


@router.get("/drift", responses=errors(409, 422, 503))
def data_drift(
    service: ServiceDep, settings: SettingsDep, start: StartQuery = None, end: EndQuery = None
) -> DriftResponse:
    """Drift of the window's ratings (by default: all since the served model's training
    snapshot) from that snapshot, feature by feature, and the verdict."""
    with _without_reference_is_409():
        report = check_drift(settings, service.store, _served_snapshot(service), start, end)
    return DriftResponse.model_validate(report.to_dict())


@router.get(
    "/drift/report",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}}, **json_errors(409, 422, 503)},
)
def data_drift_report(
    service: ServiceDep, settings: SettingsDep, start: StartQuery = None, end: EndQuery = None
) -> HTMLResponse:
    """Evidently's data drift report of the same window (samples of at most 100k ratings)."""
    with _without_reference_is_409():
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
        raise NoModelError(
            "no model is loaded: drift compares the ratings with the served model's training data"
        )
    return info.snapshot_hash


@contextmanager
def _without_reference_is_409() -> Iterator[None]:
    """A served model whose training data is unknown here: nothing to compare with (409, the
    state of the server, not a failure; no model at all stays a 503)."""
    try:
        yield
    except DriftUnavailableError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc

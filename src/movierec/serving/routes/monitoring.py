"""Monitoring: the quality of what is served, and the online feedback on it."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from movierec.monitoring.online import online_feedback
from movierec.monitoring.served import MINUTES, read_figures, read_series
from movierec.serving.deps import MonitorDep, SettingsDep, errors
from movierec.serving.schemas import (
    DateTimeText,
    OnlineResponse,
    ServedHistoryResponse,
    ServedSeries,
    ServedStatsResponse,
)

router = APIRouter(prefix="/monitoring", tags=["monitoring"])


@router.get("/stats", responses=errors(503))
def served_stats(monitor: MonitorDep) -> ServedStatsResponse:
    """Served quality per model version: the last hour, the last day and since the start, for
    every worker of the server (a worker's last second of lists may still be on its way)."""
    monitor.flush()
    figures = read_figures(monitor.served.folder)
    return ServedStatsResponse.model_validate(
        {"generated_at": datetime.now(UTC), "versions": [dataclasses.asdict(f) for f in figures]}
    )


@router.get("/stats/history", responses=errors(422, 503))
def served_history(
    monitor: MonitorDep,
    hours: Annotated[int, Query(ge=1, le=MINUTES // 60, description="How far back.")] = 24,
    step_minutes: Annotated[int, Query(ge=1, le=240, description="Interval length.")] = 10,
) -> ServedHistoryResponse:
    """Lists served and their mean figures per interval, per model version."""
    monitor.flush()
    series = read_series(monitor.served.folder, hours, step_minutes)
    return ServedHistoryResponse(
        step_minutes=step_minutes,
        series=[
            ServedSeries.model_validate(
                {
                    "model": model,
                    "version": version,
                    "points": [
                        {**dataclasses.asdict(p), "at": datetime.fromtimestamp(p.at, UTC)}
                        for p in points
                    ],
                }
            )
            for (model, version), points in series.items()
        ],
    )


@router.get("/online", responses=errors(422, 503))
def online(
    monitor: MonitorDep,
    settings: SettingsDep,
    days: Annotated[
        float | None,
        Query(gt=0, le=365, description="Horizon: days after a showing a rating counts."),
    ] = None,
    since: Annotated[
        DateTimeText | None,
        Query(description="Only lists shown from then on (default: every one kept)."),
    ] = None,
) -> OnlineResponse:
    """Online hit rate and positive rate per model version, with 95% intervals."""
    monitor.flush()
    start = 0 if since is None else int(since.timestamp())
    report = online_feedback(
        monitor.impressions.store,
        horizon_days=settings.online_horizon_days if days is None else days,
        positive_rating=settings.positive_rating,
        since=start,
        now=time.time(),
    )
    return OnlineResponse.model_validate(
        {**dataclasses.asdict(report), "since": datetime.fromtimestamp(report.since, UTC)}
    )

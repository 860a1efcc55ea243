"""Dependencies the routes declare with ``Annotated``: the app's service, settings, metrics,
monitor, jobs; ``k`` checked against the server's limit; the experiment a path names; the admin
key check.

They are ``async``: FastAPI runs a plain ``def`` dependency in the thread pool, a hop the fast
recommendation path should not pay. One that reads a database (the experiment of a path) is a
plain ``def``, so that the read does not hold the event loop.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Path, Query, Request, status

from movierec.config import Settings
from movierec.experiments.runner import ExperimentRunner
from movierec.experiments.store import Experiment
from movierec.monitoring.recorder import ServingMonitor
from movierec.serving.controls.dismissals import Dismissals
from movierec.serving.jobs import JobCommands, JobRunner
from movierec.serving.observability import Metrics
from movierec.serving.schemas import MAX_K_CEILING, ErrorResponse
from movierec.serving.service import RecommenderService


async def _service(request: Request) -> RecommenderService:
    service: RecommenderService = request.app.state.service
    return service


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


async def _monitor(request: Request) -> ServingMonitor:
    monitor: ServingMonitor = request.app.state.monitor
    return monitor


async def _experiments(request: Request) -> ExperimentRunner:
    experiments: ExperimentRunner = request.app.state.experiments
    return experiments


async def _dismissals(request: Request) -> Dismissals:
    dismissals: Dismissals = request.app.state.dismissals
    return dismissals


async def _jobs(request: Request) -> JobRunner:
    jobs: JobRunner = request.app.state.jobs
    return jobs


async def _job_commands(request: Request) -> JobCommands:
    commands: JobCommands = request.app.state.job_commands
    return commands


ServiceDep = Annotated[RecommenderService, Depends(_service)]
SettingsDep = Annotated[Settings, Depends(_settings)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
MonitorDep = Annotated[ServingMonitor, Depends(_monitor)]
JobsDep = Annotated[JobRunner, Depends(_jobs)]
ExperimentsDep = Annotated[ExperimentRunner, Depends(_experiments)]
DismissalsDep = Annotated[Dismissals, Depends(_dismissals)]
JobCommandsDep = Annotated[JobCommands, Depends(_job_commands)]


def checked_k(k: int, settings: Settings) -> int:
    """``k`` itself, or 422 when it exceeds the server's ``max_k``."""
    if not 1 <= k <= settings.max_k:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"k must be between 1 and {settings.max_k}, got {k}",
        )
    return k


async def _k_query(
    settings: SettingsDep,
    k: Annotated[
        int, Query(ge=1, le=MAX_K_CEILING, description="How many movies; at most max_k.")
    ] = 10,
) -> int:
    return checked_k(k, settings)


KQuery = Annotated[int, Depends(_k_query)]


def _experiment_of_path(
    experiments: ExperimentsDep,
    experiment_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="An experiment's id.")],
) -> Experiment:
    experiment = experiments.store.get(experiment_id)
    if experiment is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"experiment {experiment_id} not found")
    return experiment


ExperimentDep = Annotated[Experiment, Depends(_experiment_of_path)]
"""The experiment of the path's ``{experiment_id}``; 404 when there is none."""


async def require_admin(
    settings: SettingsDep,
    x_api_key: Annotated[
        str | None, Header(description="The admin API key (MOVIEREC_API_KEY).")
    ] = None,
) -> None:
    """Let a request through only with the configured admin key.

    Without a configured key the admin routes are closed, never open: a development server
    must be given a key on purpose to expose training and reload.
    """
    configured = settings.api_key.get_secret_value() if settings.api_key is not None else ""
    if not configured:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "admin routes are disabled: no API key is configured (set MOVIEREC_API_KEY)",
        )
    if x_api_key is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "this route needs the admin API key in the X-API-Key header",
            headers={"WWW-Authenticate": "APIKey"},
        )
    # Constant time: how long the comparison takes says nothing about the key.
    if not hmac.compare_digest(x_api_key.encode("utf-8"), configured.encode("utf-8")):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "invalid API key")


AdminDep = Depends(require_admin)


def errors(*codes: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI entries for the error statuses a route answers, all ``{"detail": message}``."""
    return {code: {"model": ErrorResponse} for code in codes}


def json_errors(*codes: int) -> dict[int | str, dict[str, object]]:
    """Like :func:`errors`, for a route whose own answer is not JSON (FastAPI would document
    its errors in the route's media type, while the app answers them in JSON)."""
    schema = {"$ref": f"#/components/schemas/{ErrorResponse.__name__}"}
    return {code: {"content": {"application/json": {"schema": schema}}} for code in codes}

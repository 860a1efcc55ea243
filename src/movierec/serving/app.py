"""The FastAPI application: ``create_app(settings)`` builds it, ``serve`` runs it under uvicorn.

Start-up (the lifespan) opens the store, reads the catalog and loads the model: the registry's
champion, else the saved model folder. With neither the API still starts, answers catalog
routes and says "not ready" on ``/ready`` until a model is trained and reloaded.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp
from threadpoolctl import threadpool_limits

from movierec import __version__
from movierec.config import Settings
from movierec.errors import ConfigError, MovierecError, StoreError
from movierec.experiments.exposures import ExposureLog
from movierec.experiments.runner import ExperimentRunner
from movierec.experiments.store import ExperimentConflictError, ExperimentStore, ExposureStore
from movierec.locks import exclusive_lock
from movierec.models.base import ModelError
from movierec.monitoring.exporter import OnlineCollector, ServedCollector
from movierec.monitoring.recorder import ServingMonitor
from movierec.serving.contract import publish_settings
from movierec.serving.controls.dismissals import Dismissals, DismissalStore
from movierec.serving.docs import add_offline_docs
from movierec.serving.fastpath import FastPathMiddleware
from movierec.serving.jobs import (
    CLI_COMMANDS,
    Job,
    JobCommands,
    JobConflictError,
    JobRunner,
    settings_environment,
)
from movierec.serving.limits import BodyLimitMiddleware
from movierec.serving.loading import ModelInfo, ModelUnavailableError
from movierec.serving.observability import Metrics, MetricsMiddleware
from movierec.serving.replicas import ReplicaFeeds, build_feeds, start_feeds
from movierec.serving.routes import (
    admin,
    controls,
    drift,
    experiments,
    health,
    monitoring,
    movies,
    ratings,
    recommend,
    stats,
    training,
    users,
)
from movierec.serving.service import (
    InvalidRequestError,
    NoModelError,
    NotFoundError,
    RecommenderService,
)
from movierec.serving.users import ServingStore
from movierec.serving.workers import MULTIPROCESS_DIR, START_LOCK_ENV, uvicorn_options

logger = logging.getLogger("movierec.serving")

# Errors movierec raises on purpose, by the status they answer; the message is the detail.
_STATUS_OF: tuple[tuple[type[MovierecError], int], ...] = (
    (NotFoundError, 404),
    (JobConflictError, 409),
    (ExperimentConflictError, 409),
    (InvalidRequestError, 422),
    (ModelError, 422),
    (ConfigError, 422),
    (NoModelError, 503),
    (ModelUnavailableError, 503),
    (StoreError, 503),
)
MAX_VALIDATION_MESSAGES = 5
_NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(settings: Settings, *, job_commands: JobCommands = CLI_COMMANDS) -> FastAPI:
    """The API for ``settings``; ``job_commands`` are the training and tuning command lines."""
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        feeds = build_feeds(settings, metrics.registry)
        service = await run_in_threadpool(_start_service_in_turn, settings, metrics, feeds)
        # What start-up made (modules, catalog, model) lives as long as the process: out of
        # the collector's full passes, each of which took ~80 ms of a request's time (measured
        # on the benchmark's model), a pause that lands on the p99.
        gc.freeze()
        app.state.service = service
        app.state.replica_feed = feeds.replicas
        app.state.monitor = monitor = _start_monitor(settings, metrics)
        app.state.experiments = runner = _start_experiments(settings, service)
        app.state.dismissals = dismissals = Dismissals(DismissalStore(settings.store_url))
        metrics.add_scrape_collector(drift.collector(settings, service))
        app.state.jobs = JobRunner(
            _job_environment(settings),
            settings.jobs_dir,
            on_finish=_after_job(service),
            on_done=_count_job(metrics),
        )
        try:
            yield
        finally:
            app.state.jobs.stop()
            runner.close()
            dismissals.close()
            monitor.close()
            service.close()
            metrics.close()

    app = API(
        title="movierec",
        version=__version__,
        summary="Movie recommendations: known users, new users, anonymous visitors, similar "
        "movies; live ratings; training jobs and hot model reload.",
        lifespan=lifespan,
        docs_url=None,  # served by add_offline_docs, without a CDN
        redoc_url=None,
        telemetry=None if settings.opentelemetry else _NO_TELEMETRY,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.job_commands = job_commands
    routers = (
        health, movies, users, recommend, controls, ratings, training, admin, stats, monitoring,
        drift, experiments,
    )  # fmt: skip
    for module in routers:
        app.include_router(module.router)
    add_offline_docs(app)
    _add_error_handlers(app)
    publish_settings(app, settings)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    # The last added runs first: the size limit applies before anything reads a body, and
    # the metrics see every answer the stack gives, 413s included.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


class API(FastAPI):
    """FastAPI with the lean path of the hot routes in front of its whole middleware stack.

    Each layer of the stack (error handling, telemetry, body limits, metrics) costs a few µs a
    request; the lean path does what those layers do for its few clean requests itself (see
    :mod:`movierec.serving.fastpath`) and hands every other request to the stack.
    """

    def build_middleware_stack(self) -> ASGIApp:
        return FastPathMiddleware(super().build_middleware_stack(), api=self)


def _start_service_in_turn(
    settings: Settings, metrics: Metrics, feeds: ReplicaFeeds
) -> RecommenderService:
    with one_start_at_a_time():
        return _start_service(settings, metrics, feeds)


@contextmanager
def one_start_at_a_time() -> Iterator[None]:
    """Hold the server's start lock (a worker's load of the model), if it has several workers.

    Workers loading at once share the cores, so none is ready before all are: one at a time,
    the first answers sooner. A worker that finds numba's cache empty compiles the kernels
    while the others wait, and they then read them from the cache instead of compiling too.
    """
    path = os.environ.get(START_LOCK_ENV)
    if not path:
        yield
        return
    with exclusive_lock(Path(path)):
        yield


def _start_service(
    settings: Settings, metrics: Metrics, feeds: ReplicaFeeds | None = None
) -> RecommenderService:
    """A service with its model loaded and its feeds (``feeds``, else the settings') started."""
    feeds = feeds if feeds is not None else build_feeds(settings, metrics.registry)

    def loaded(info: ModelInfo) -> None:
        metrics.model_loaded(info)
        logger.info(
            "serving %s v%s (%s), loaded in %.2f s",
            info.name,
            info.version,
            info.source,
            info.load_seconds,
        )

    service = RecommenderService(
        settings,
        ServingStore(settings.store_url),
        on_load=loaded,
        feed=feeds.feed,
    )
    try:
        # Every worker loads at its start: telling the others would make them load again.
        service.load(fall_back_on_error=True, broadcast=False)
    except ModelUnavailableError as exc:
        logger.warning("starting without a model (not ready): %s", exc)
    start_feeds(feeds, service)
    return service


def _start_monitor(settings: Settings, metrics: Metrics) -> ServingMonitor:
    """The served-quality and impression monitor, in the workers' shared folder if any
    (called on the event loop, which counts the served lists)."""
    shared = os.environ.get(MULTIPROCESS_DIR)
    folder = Path(shared) / "monitoring" if shared else None
    monitor = ServingMonitor(settings, asyncio.get_running_loop(), folder)
    metrics.add_scrape_collector(ServedCollector(monitor))
    metrics.add_scrape_collector(OnlineCollector(monitor, settings))
    return monitor


def _start_experiments(settings: Settings, service: RecommenderService) -> ExperimentRunner:
    """This worker's view of the running experiment (it polls the store for it)."""
    runner = ExperimentRunner(
        settings,
        service,
        ExperimentStore(settings.store_url),
        ExposureLog(ExposureStore(settings.store_url)),
    )
    try:
        runner.sync()  # an experiment already running is served from the first request
    except MovierecError as exc:
        logger.warning("the running experiment is not served yet: %s", exc)
    return runner


def _job_environment(settings: Settings) -> dict[str, str]:
    # A job's metrics (if it made any) are no part of the server's: keep them out of its files.
    env = settings_environment(settings)
    env.pop(MULTIPROCESS_DIR, None)
    return env


def _after_job(service: RecommenderService) -> Callable[[Job], str | None]:
    def reload_after_training(job: Job) -> str | None:
        if job.kind != "training":
            return None
        previous, current = service.load(fall_back_on_error=False)
        if previous is not None and (previous.source, previous.version) == (
            current.source,
            current.version,
        ):
            return f"the champion is unchanged: still serving {current.name} v{current.version}"
        return f"now serving {current.name} v{current.version} ({current.source})"

    return reload_after_training


def _count_job(metrics: Metrics) -> Callable[[Job], None]:
    def count(job: Job) -> None:
        started, finished = job.started_at, job.finished_at
        seconds = (finished - started).total_seconds() if started and finished else None
        metrics.job_finished(job.kind, job.status, seconds)

    return count


# ---------------------------------------------------------------- errors


def _add_error_handlers(app: FastAPI) -> None:
    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _error(422, validation_message(exc.errors()))

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
            # FastAPI's 400 for a body it could not decode (not UTF-8, nested too deep): the
            # same 422 as any other malformed JSON body, as the schema documents.
            return _error(422, f"malformed JSON body: {exc.__cause__}")
        if exc.status_code == 405:
            return _error(405, str(exc.detail), {"Allow": allowed_methods(app, request)})
        return _error(exc.status_code, str(exc.detail), exc.headers)

    async def movierec_error(_: Request, exc: Exception) -> JSONResponse:
        status = next((code for kind, code in _STATUS_OF if isinstance(exc, kind)), 422)
        return _error(status, str(exc))

    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        # Logged with its trace here; the client learns nothing about the internals.
        logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal server error")

    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(MovierecError, movierec_error)
    app.add_exception_handler(Exception, unexpected_error)


def _error(status: int, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"detail": detail}, status_code=status, headers=dict(headers) if headers else None
    )


def validation_message(errors: Any) -> str:
    """pydantic's errors as one line: ``body.k: Input should be ...; query.x: ...``."""
    parts = []
    for error in list(errors)[:MAX_VALIDATION_MESSAGES]:
        location = ".".join(str(part) for part in error.get("loc", ()))
        if error.get("type") == "json_invalid":
            reason = jsonable_encoder(error.get("ctx", {})).get("error", "")
            parts.append(f"malformed JSON body: {reason}".rstrip(": "))
        else:
            parts.append(f"{location}: {error.get('msg', 'invalid')}")
    more = len(list(errors)) - MAX_VALIDATION_MESSAGES
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


# ---------------------------------------------------------------- running


HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(app: FastAPI, request: Request) -> str:
    """Every method some route takes at the request's path, by the router's own matching:
    Starlette's 405 names only the first route whose path matched, and GET and POST of one
    path are two routes here."""
    allowed = [
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in app.router.routes
        )
    ]
    return ", ".join(allowed)


def create_app_from_environment() -> FastAPI:
    """The app for the ``MOVIEREC_*`` environment: the factory each uvicorn worker calls."""
    single_threaded_blas()
    return create_app(Settings())


def single_threaded_blas() -> None:
    """Limit this serving process's BLAS to one thread.

    A request scores one user (a 64 x 27k product, ~0.15 ms): threads gain nothing there, and
    with several requests, workers or other programs on the cores, BLAS threads spinning for
    each other made a recommendation 4 to 10 times slower (measured on 2 cores).
    """
    threadpool_limits(limits=1, user_api="blas")


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    *,
    access_log: bool = False,
) -> None:
    """Run the API under uvicorn (uvloop and httptools).

    One worker serves the given ``settings`` object in this process. Several workers are
    separate processes that each build the app from an import string: this process becomes
    their supervisor, :mod:`movierec.serving.workers` (``exec``: it never returns), and
    ``settings`` reach the workers as ``MOVIEREC_*`` environment variables. Access logs are
    off by default: ``/metrics`` counts every request, and a log line per request costs a
    noticeable share of throughput.
    """
    if workers <= 1:
        single_threaded_blas()
        uvicorn.run(create_app(settings), **uvicorn_options(host, port, access_log=access_log))
        return
    os.environ.update(settings_environment(settings, include_secrets=True))
    command = [sys.executable, "-m", "movierec.serving.workers", host, str(port), str(workers)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command + (["--access-log"] if access_log else []))

"""Prometheus metrics (one registry per app, so apps and tests never share counters) and the
middleware that times every request by its route template.

Several uvicorn workers are separate processes, each with its own counters: their supervisor
(:mod:`movierec.serving.workers`) then sets ``PROMETHEUS_MULTIPROC_DIR`` (a fresh folder per
server start) before the workers start, every value lives in a memory-mapped file there, and
``/metrics`` adds up all the workers' files (prometheus-client's multiprocess mode). The gauges
of the served model are per worker (a ``pid`` label): a reload reaches only the worker that
answered it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from typing import Any, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from movierec.serving.loading import ModelInfo
from movierec.serving.workers import MULTIPROCESS_DIR

logger = logging.getLogger("movierec.serving")

# Training on ml-latest-small takes seconds, on 20M ratings tens of minutes.
JOB_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)
# Sub-millisecond to seconds: the recommendation target is p99 < 20 ms.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5,
                   1.0, 2.5, 5.0)  # fmt: skip
UNMATCHED = "unmatched"  # raw paths of unknown routes would make a label per probe


class ScrapeCollector(Protocol):
    """Figures computed when ``/metrics`` is read (served quality, online feedback, drift).

    They come from state every worker shares (files, the store), so the worker that answers
    the scrape reports them for the whole server, in multiprocess mode too.
    """

    def collect(self) -> Iterable[Metric]: ...


class Metrics:
    """Every metric the API exports."""

    def __init__(self) -> None:
        # prometheus-client picks its value storage from the environment when first imported;
        # a worker inherits the variable from its supervisor, so the two always agree.
        self.multiprocess = MULTIPROCESS_DIR in os.environ
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "movierec_http_requests", "HTTP requests.", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "movierec_http_request_duration_seconds",
            "HTTP request latency.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.recommendations = Counter(
            "movierec_recommendations", "Recommendation lists served.", ["strategy"], registry=r
        )
        self.model_info = Gauge(
            "movierec_model_info",
            "The served model (value 1).",
            ["name", "version", "source"],
            registry=r,
            multiprocess_mode="liveall",
        )
        self.model_load_seconds = Gauge(
            "movierec_model_load_seconds",
            "Seconds the served model took to load.",
            registry=r,
            multiprocess_mode="liveall",
        )
        self.model_loaded_at = Gauge(
            "movierec_model_loaded_timestamp_seconds", "When the served model was loaded.",
            registry=r, multiprocess_mode="liveall",
        )  # fmt: skip
        self.ratings = Counter(
            "movierec_ratings_ingested", "Ratings stored through the API.", registry=r
        )
        self.jobs = Counter(
            "movierec_jobs", "Background jobs started or finished.", ["kind", "status"], registry=r
        )
        self.job_duration = Histogram(
            "movierec_job_duration_seconds",
            "How long finished background jobs ran.",
            ["kind", "status"],
            buckets=JOB_BUCKETS,
            registry=r,
        )
        self.model_trained_at = Gauge(
            "movierec_model_trained_timestamp_seconds",
            "When the served model was registered (or saved, for a local model).",
            registry=r,
            multiprocess_mode="liveall",
        )
        self.offline_metric = Gauge(
            "movierec_model_offline_metric",
            "The served model's offline evaluation metrics, from its training run.",
            ["metric"],
            registry=r,
            multiprocess_mode="liveall",
        )
        self._scrape_collectors: list[ScrapeCollector] = []
        self._model_labels: tuple[str, str, str] | None = None
        # Labelled children by their labels: ``labels()`` takes a lock and checks its
        # arguments on every call, a measurable share of a recommendation's time.
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._strategy_children: dict[str, Any] = {}

    def request_done(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        children = self._request_children.get((method, route, status))
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            self._request_children[method, route, status] = children
        children[0].inc()
        children[1].observe(seconds)

    def recommendation_served(self, strategy: str) -> None:
        """Count one list of recommendations (or similar movies) by how it was made."""
        child = self._strategy_children.get(strategy)
        if child is None:
            child = self._strategy_children[strategy] = self.recommendations.labels(strategy)
        child.inc()

    def model_loaded(self, info: ModelInfo) -> None:
        """Describe the model just loaded: its identity, load time, age and offline metrics."""
        labels = (info.name, "none" if info.version is None else str(info.version), info.source)
        previous, self._model_labels = self._model_labels, labels
        if previous is not None and previous != labels:
            if self.multiprocess:
                # A series cannot be removed from the shared files: 0 says it is not served.
                self.model_info.labels(*previous).set(0)
            else:
                self.model_info.remove(*previous)
        self.model_info.labels(*labels).set(1)
        self.model_load_seconds.set(info.load_seconds)
        self.model_loaded_at.set(info.loaded_at.timestamp())
        if info.trained_at is not None:
            self.model_trained_at.set(info.trained_at.timestamp())
        if not self.multiprocess:  # the previous model's metrics must not linger
            self.offline_metric.clear()
        for metric, value in info.metrics.items():
            self.offline_metric.labels(metric).set(value)

    def job_finished(self, kind: str, status: str, seconds: float | None) -> None:
        """Count a finished job and how long it ran."""
        self.jobs.labels(kind, status).inc()
        if seconds is not None:
            self.job_duration.labels(kind, status).observe(seconds)

    def add_scrape_collector(self, collector: ScrapeCollector) -> None:
        """Report ``collector``'s figures in every ``/metrics`` answer."""
        self._scrape_collectors.append(collector)

    def exposition(self) -> bytes:
        """The text ``/metrics`` answers: this app's metrics, or every worker's added up, and
        the figures of the scrape collectors."""
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:
            registry = self.registry
        text = generate_latest(registry)
        if not self._scrape_collectors:
            return text
        scraped = CollectorRegistry(auto_describe=False)
        for collector in self._scrape_collectors:
            scraped.register(collector)
        return text + generate_latest(scraped)

    def close(self) -> None:
        """Drop this process's per-worker gauges from the shared files (a worker stopping)."""
        if self.multiprocess:
            multiprocess.mark_process_dead(os.getpid())


class MetricsMiddleware:
    """Count and time every HTTP request by method, route template and status (pure ASGI:
    no per-request task or body copy, unlike ``BaseHTTPMiddleware``)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the response starts is a server error

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.request_done(
                scope.get("method", ""),
                _route_template(scope),
                status,
                time.perf_counter() - started,
            )


def _route_template(scope: Scope) -> str:
    # The router stores the matched route in the (shared) scope dict.
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED

"""The monitor's figures as Prometheus metrics, computed when ``/metrics`` is scraped.

Served quality is read from every worker's files at each scrape (a few milliseconds; what
was served in the last second may not be in them yet). Online
feedback needs a query of the store: the scrape reports the last result and starts a refresh in
the background when it is older than :data:`ONLINE_REFRESH_SECONDS`, so a scrape never waits on
the database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from movierec.config import Settings
from movierec.monitoring.batch import STRATEGIES
from movierec.monitoring.online import OnlineReport, online_feedback
from movierec.monitoring.recorder import ServingMonitor
from movierec.monitoring.served import read_figures

logger = logging.getLogger(__name__)

ONLINE_REFRESH_SECONDS = 300.0  # rates move slowly; a refresh over a full log takes seconds
EMPTY_REFRESH_SECONDS = 10.0  # until the first impressions are logged: they show up soon
VERSION = ["model", "version"]
WINDOWED = [*VERSION, "window"]
_QUALITY = {  # gauge name: (help, the WindowFigures field)
    "movierec_served_coverage_ratio": ("Distinct movies served / movies the model can "
                                       "recommend.", "coverage"),
    "movierec_served_diversity": ("Mean intra-list diversity (1 - mean genre cosine "
                                  "similarity).", "diversity"),
    "movierec_served_novelty_bits": ("Mean self-information of the movies served, bits.",
                                     "novelty_bits"),
    "movierec_served_popularity_percentile": ("Mean popularity percentile of the movies "
                                              "served (1 = most rated).",
                                              "popularity_percentile"),
    "movierec_served_personalization": ("1 - mean cosine similarity of different users' "
                                        "lists (sampled).", "personalization"),
}  # fmt: skip


class ServedCollector:
    """``movierec_served_*``: served quality per model version and window."""

    def __init__(self, monitor: ServingMonitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[Metric]:
        # No flush here: /metrics answers on the event loop, and a flush may wait on the
        # store; the monitor adds what was served within a quarter second anyway.
        figures = read_figures(self.monitor.served.folder)
        lists = CounterMetricFamily(
            "movierec_served_lists",
            "Lists of recommendations served.",
            labels=[*VERSION, "strategy"],
        )
        short = CounterMetricFamily(
            "movierec_served_short_lists", "Lists shorter than the k asked for.", labels=VERSION
        )
        empty = CounterMetricFamily("movierec_served_empty_lists", "Empty lists.", labels=VERSION)
        shares = GaugeMetricFamily(
            "movierec_served_strategy_share", "Share of lists by strategy.",
            labels=[*WINDOWED, "strategy"],
        )  # fmt: skip
        gauges = {
            name: GaugeMetricFamily(name, text, labels=WINDOWED)
            for name, (text, _) in _QUALITY.items()
        }
        for version in figures:
            labels = [version.model, version.version]
            start = version.windows["start"]
            for strategy in STRATEGIES:
                lists.add_metric([*labels, strategy], start.strategy_counts[strategy])
            short.add_metric(labels, start.short_lists)
            empty.add_metric(labels, start.empty_lists)
            for window, values in version.windows.items():
                for name, (_, field) in _QUALITY.items():
                    value = getattr(values, field)
                    if value is not None:  # no lists in the window: no sample, not NaN
                        gauges[name].add_metric([*labels, window], value)
                for strategy in STRATEGIES if values.lists else ():
                    share = values.strategy_counts[strategy] / values.lists
                    shares.add_metric([*labels, window, strategy], share)
        yield from (lists, short, empty, shares, *gauges.values())


class OnlineCollector:
    """``movierec_online_*``: online feedback per model version, refreshed in the background."""

    def __init__(self, monitor: ServingMonitor, settings: Settings) -> None:
        self.monitor = monitor
        self.settings = settings
        self._report: OnlineReport | None = None
        self._computed_at = -ONLINE_REFRESH_SECONDS
        self._refreshing = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        report = self._report
        every = ONLINE_REFRESH_SECONDS if report and report.versions else EMPTY_REFRESH_SECONDS
        if time.monotonic() - self._computed_at >= every and (
            self._refreshing.acquire(blocking=False)
        ):
            threading.Thread(target=self._refresh, daemon=True).start()
        if report is None:
            return
        families = {
            name: GaugeMetricFamily(f"movierec_online_{name}", text, labels=VERSION)
            for name, text in (
                ("impressions", "Distinct (user, movie) pairs shown, in the impression log."),
                ("rated", "Pairs shown that the user then rated within the horizon."),
                ("positive", "Pairs rated within the horizon at the positive rating or more."),
                ("hit_rate", "Share of the pairs shown rated within the horizon."),
                ("positive_rate", "Share of the rated pairs rated positively."),
            )
        }
        for version in report.versions:
            labels = [version.model, version.version]
            families["impressions"].add_metric(labels, version.impressions)
            families["rated"].add_metric(labels, version.rated)
            families["positive"].add_metric(labels, version.positive)
            for name, rate in (
                ("hit_rate", version.hit_rate),
                ("positive_rate", version.positive_rate),
            ):
                if rate.value is not None:
                    families[name].add_metric(labels, rate.value)
        yield from families.values()

    def _refresh(self) -> None:
        try:
            self.monitor.flush()
            self._report = online_feedback(
                self.monitor.impressions.store,
                horizon_days=self.settings.online_horizon_days,
                positive_rating=self.settings.positive_rating,
            )
        except Exception:  # the last figures stay; the next scrape tries again
            logger.exception("online feedback could not be computed")
        finally:
            self._computed_at = time.monotonic()
            self._refreshing.release()

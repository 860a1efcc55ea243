"""Data drift as Prometheus gauges: the latest result at each scrape, recomputed in the background.

A scrape must stay cheap, and drift against a 20M-rating reference takes seconds: ``collect``
reports the latest result and, when it is older than ``settings.drift_interval`` or belongs to
another model (a load changed the served snapshot), starts one background refresh. The result
lives in one file under ``data_dir`` that a server's workers share: the refresh holds a lock on
it, and a worker that gets the lock after another finished adopts the fresh result instead of
computing it again; every worker reports the same figures.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from movierec.config import Settings
from movierec.data.store import RatingsStore
from movierec.errors import MovierecError
from movierec.locks import exclusive_lock
from movierec.monitoring.drift import DriftReport, check_drift

logger = logging.getLogger(__name__)

RESULT_FILE = "drift.json"


class DriftMonitor:
    """The ``movierec_drift_*`` gauges of the served model's training snapshot.

    Args:
        settings: ``data_dir`` (the shared result), ``drift_interval``, the reference's folder.
        store: Where the current ratings are read.
        snapshot_hash: The served model's snapshot hash now (None: no model, no figures).
    """

    def __init__(
        self, settings: Settings, store: RatingsStore, snapshot_hash: Callable[[], str | None]
    ) -> None:
        self.settings = settings
        self.store = store
        self.snapshot_hash = snapshot_hash
        self.path = settings.data_dir / "monitoring" / RESULT_FILE
        self._report: DriftReport | None = None
        self._seen_mtime: float | None = None
        self._attempt: tuple[str, float] | None = None  # (hash, when) of the last refresh started
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        """The latest result for the served snapshot (none yet: no gauges), and a background
        refresh when it is due."""
        snapshot_hash = self.snapshot_hash()
        if not snapshot_hash:
            return
        report = self._shared_report()
        if self._due(snapshot_hash, report):
            self._refresh_in_background(snapshot_hash)
        if report is not None and report.snapshot_hash == snapshot_hash:
            yield from drift_metrics(report)

    def refresh(self, snapshot_hash: str) -> DriftReport | None:
        """Compute drift and share it, unless another worker just did; None when it failed
        (logged: no reference, a store that does not answer)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with exclusive_lock(self.path.with_suffix(".lock")):
                shared = self._shared_report()
                if shared is not None and not self._stale(snapshot_hash, shared):
                    return shared
                report = check_drift(self.settings, self.store, snapshot_hash)
                _write_atomically(self.path, report.to_dict())
        except MovierecError as exc:
            logger.warning("drift check failed: %s", exc)
            return None
        self._report = report
        logger.info("drift check: %s", report.message)
        return report

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the background refresh in progress, if any (tests, shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _due(self, snapshot_hash: str, report: DriftReport | None) -> bool:
        if report is not None and not self._stale(snapshot_hash, report):
            return False
        # A refresh that failed (no snapshot here) is retried once per interval, not per scrape.
        attempt = self._attempt
        return attempt is None or attempt[0] != snapshot_hash or self._expired(attempt[1])

    def _stale(self, snapshot_hash: str, report: DriftReport) -> bool:
        return report.snapshot_hash != snapshot_hash or self._expired(report.checked_at)

    def _expired(self, at: float) -> bool:
        return time.time() - at >= self.settings.drift_interval

    def _refresh_in_background(self, snapshot_hash: str) -> None:
        with self._guard:
            if self._thread is not None and self._thread.is_alive():
                return
            self._attempt = (snapshot_hash, time.time())
            self._thread = threading.Thread(
                target=self.refresh, args=(snapshot_hash,), name="movierec-drift", daemon=True
            )
            self._thread.start()

    def _shared_report(self) -> DriftReport | None:
        """The shared file's report, read again only when the file changed (a stat a scrape)."""
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            return self._report
        if mtime != self._seen_mtime:
            try:
                self._report = DriftReport.from_dict(json.loads(self.path.read_text("utf-8")))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                logger.warning("unreadable drift result %s: %s", self.path, exc)
            self._seen_mtime = mtime
        return self._report


def drift_metrics(report: DriftReport) -> Iterator[Metric]:
    """The gauges of one report (per-feature ones only for the features compared)."""
    yield _gauge("movierec_drift_detected", "1 when the data drift verdict is drift.",
                 report.drift_detected)  # fmt: skip
    yield _gauge("movierec_drift_share", "Share of the compared features that drifted.",
                 report.drift_share)  # fmt: skip
    yield _gauge("movierec_drift_current_ratings", "Ratings in the drift check's window.",
                 report.current_ratings)  # fmt: skip
    yield _gauge("movierec_drift_checked_timestamp_seconds", "When drift was last checked.",
                 report.checked_at)  # fmt: skip
    per_feature = {  # FeatureDrift attribute: help
        "value": "The feature's drift statistic (a distance, a p-value or a share).",
        "threshold": "The statistic's drift threshold.",
        "drifted": "1 when the feature drifted.",
    }
    for attribute, help_text in per_feature.items():
        name = f"movierec_drift_feature_{attribute}"
        family = GaugeMetricFamily(name, help_text, labels=["feature"])
        for feature in report.features:
            family.add_metric([feature.feature], float(getattr(feature, attribute)))
        yield family


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=float(value))


def _write_atomically(path: Path, data: object) -> None:
    """Write JSON to ``path`` so that a reader sees the old file or the new one, never half."""
    fd, staging = tempfile.mkstemp(prefix=".drift-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise

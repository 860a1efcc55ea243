"""The serving monitor: takes each served list off the request path and, in a thread of its own,
adds it to the served-quality figures and the impression log.

A request pays one tuple and one ``deque.append`` (thread-safe, no lock); the thread drains the
queue four times a second, or at once when it grows to :data:`FLUSH_SIZE`, turns the batch into
columns once (:func:`~movierec.monitoring.batch.columns`) and adds them with vectorized numpy and
one insert. Readers call :meth:`ServingMonitor.flush` first, so what this
worker served is counted before it answers (other workers' last second may still be queued).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

from movierec.config import Settings
from movierec.monitoring.batch import VISITOR, Queued, columns
from movierec.monitoring.impressions import ImpressionLog, ImpressionStore
from movierec.monitoring.served import ServedQuality
from movierec.serving.service import Answer

logger = logging.getLogger(__name__)

# Small batches, often: a batch holds the GIL while it is added, and a second's lists of a busy
# worker at once (thousands) stalled that second's requests, doubling the p99 (measured).
FLUSH_SECONDS = 0.25
FLUSH_SIZE = 1_024  # lists queued before the thread drains at once
PURGE_SECONDS = 3_600.0  # how often the impression log's retention is applied


class ServingMonitor:
    """Counts every served list (served quality) and logs impressions (online feedback).

    Args:
        settings: The store and the impression log's settings.
        folder: The server's shared folder (several workers); None: a private temporary one.
    """

    def __init__(self, settings: Settings, folder: Path | None = None) -> None:
        self.enabled = settings.serving_monitor
        self._private = folder is None
        self.folder = (
            Path(tempfile.mkdtemp(prefix="movierec-monitor-")) if folder is None else folder
        )
        self.served = ServedQuality(self.folder / "served")
        self.impressions = ImpressionLog(ImpressionStore(settings.store_url), settings)
        self._queue: deque[Queued] = deque()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="movierec-monitor", daemon=True)
        if self.enabled:
            self._thread.start()

    def record(self, answer: Answer, user_id: int | None, k: int) -> None:
        """Queue one served list (the request path: no work beyond the append)."""
        if not self.enabled:
            return
        queue = self._queue
        queue.append((answer, VISITOR if user_id is None else user_id, k, time.time()))
        if len(queue) == FLUSH_SIZE:  # once: Event.set takes a lock, too dear per request
            self._wake.set()

    def flush(self, *, write: bool = True) -> None:
        """Add every queued list to the figures and the impression log (``write=False``:
        the log writes its rows only when they are due)."""
        with self._flush_lock:
            queue = self._queue
            batch = columns([queue.popleft() for _ in range(len(queue))])
            if batch:
                self.served.add(batch)
            self.impressions.add(batch, write=write)

    def close(self) -> None:
        """Stop the thread after a last flush; a private folder is removed."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.flush()
        self.impressions.store.close()
        if self._private:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self) -> None:
        purged_at = 0.0
        while not self._stopping.is_set():
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            try:
                self.flush(write=False)
                if time.monotonic() - purged_at > PURGE_SECONDS:
                    purged_at = time.monotonic()
                    self.impressions.purge()
            except Exception:  # a monitoring fault must never stop the counting for good
                logger.exception("the serving monitor failed to add a batch")

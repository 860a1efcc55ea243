"""The serving monitor: takes each served list off the request path and adds it to the
served-quality figures and the impression log, on the worker's event loop.

A request pays one tuple and one ``deque.append``. Every :data:`COUNT_SECONDS` the event loop
itself drains the queue, turns it into columns once (:func:`~movierec.monitoring.batch.columns`)
and adds them with vectorized numpy: a millisecond or two between two requests. A thread of its
own did this before, and cost the default champion's worker 14% of its throughput: its numpy
calls release and take back the GIL dozens of times a batch, each time wrestling it from the
thread that answers requests, and that contention alone made the same work ~6x dearer in CPU
(0.7 → 4.2 µs a list, measured with a busy second thread). What blocks on I/O, the impression
log's writes to the store and its retention, stays in a thread, woken every
:data:`~movierec.monitoring.impressions.WRITE_SECONDS`. Readers call :meth:`ServingMonitor.flush`
first, so what this worker served is counted before they answer (other workers' last quarter
second may still be queued).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

from movierec.config import Settings
from movierec.monitoring.batch import VISITOR, Queued, columns
from movierec.monitoring.impressions import WRITE_SECONDS, ImpressionLog, ImpressionStore
from movierec.monitoring.served import ServedQuality
from movierec.serving.service import Answer

logger = logging.getLogger(__name__)

COUNT_SECONDS = 0.25  # how often the loop counts what was queued (a batch of ~2,000 at most)
PURGE_SECONDS = 3_600.0  # how often the impression log's retention is applied


class ServingMonitor:
    """Counts every served list (served quality) and logs impressions (online feedback).

    Args:
        settings: The store and the impression log's settings.
        loop: The worker's event loop, which counts the queued lists.
        folder: The server's shared folder (several workers); None: a private temporary one.
    """

    def __init__(
        self, settings: Settings, loop: asyncio.AbstractEventLoop, folder: Path | None = None
    ) -> None:
        self.enabled = settings.serving_monitor
        self._private = folder is None
        self.folder = (
            Path(tempfile.mkdtemp(prefix="movierec-monitor-")) if folder is None else folder
        )
        self.served = ServedQuality(self.folder / "served")
        self.impressions = ImpressionLog(ImpressionStore(settings.store_url), settings)
        self._queue: deque[Queued] = deque()
        self._count_lock = threading.Lock()
        self._loop = loop
        self._timer: asyncio.TimerHandle | None = None
        self._stopping = threading.Event()
        self._writer = threading.Thread(
            target=self._write_impressions, name="movierec-impressions", daemon=True
        )
        if self.enabled:
            self._timer = loop.call_later(COUNT_SECONDS, self._tick)
            self._writer.start()

    def record(self, answer: Answer, user_id: int | None, k: int) -> None:
        """Queue one served list (the request path: no work beyond the append)."""
        if self.enabled:
            self._queue.append((answer, VISITOR if user_id is None else user_id, k, time.time()))

    def flush(self) -> None:
        """Count every queued list and write the impression log's pending lists (readers)."""
        self._count()
        self.impressions.write()

    def close(self) -> None:
        """Stop counting and writing after a last flush; a private folder is removed."""
        self._stopping.set()
        if self._timer is not None:
            self._timer.cancel()
        if self._writer.is_alive():
            self._writer.join(timeout=10)
        self.flush()
        self.impressions.store.close()
        if self._private:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _count(self) -> None:
        with self._count_lock:
            queue = self._queue
            batch = columns([queue.popleft() for _ in range(len(queue))])
            if batch:
                self.served.add(batch)
                self.impressions.gather(batch)

    def _tick(self) -> None:
        try:
            self._count()
        except Exception:  # a monitoring fault must never stop the counting for good
            logger.exception("the serving monitor failed to add a batch")
        if not self._stopping.is_set():
            self._timer = self._loop.call_later(COUNT_SECONDS, self._tick)

    def _write_impressions(self) -> None:
        purged_at = 0.0
        while not self._stopping.wait(WRITE_SECONDS):
            try:
                self.impressions.write()
                if time.monotonic() - purged_at > PURGE_SECONDS:
                    purged_at = time.monotonic()
                    self.impressions.purge()
            except Exception:  # the next round tries again
                logger.exception("the impression log failed to write")

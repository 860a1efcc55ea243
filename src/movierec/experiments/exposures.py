"""The exposure log: what each experiment showed to whom, off the request path.

A request appends one tuple to a deque (no lock, no I/O); a thread writes what gathered every
:data:`WRITE_SECONDS` as one row per experiment, the lists as arrays (the impression log's
columnar batches, for the same reason: a row per list would cost the serving its throughput).
Each list is stored as one sub-list per arm or team, so an interleaved list's movies keep the
team that picked them. Readers (the experiment's outcomes) call :meth:`ExposureLog.flush`
first; other workers' last few seconds may still be on their way.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import NamedTuple

import numpy as np

from movierec.experiments.store import ExposureStore

logger = logging.getLogger(__name__)

WRITE_SECONDS = 2.0


class Exposure(NamedTuple):
    experiment_id: int
    user_id: int
    code: int  # the arm or team (store.ARM_CODES)
    movie_ids: list[int]
    at: int  # epoch seconds


class ExposureLog:
    """Gathers exposures and writes them in batches from a thread of its own."""

    def __init__(self, store: ExposureStore) -> None:
        self.store = store
        self.dropped = 0  # exposures lost to a store that refused the write
        self._queue: deque[Exposure] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="movierec-exposures", daemon=True)
        self._thread.start()

    def add(self, exposure: Exposure) -> None:
        if exposure.movie_ids:
            self._queue.append(exposure)

    def flush(self) -> None:
        """Write every queued exposure now."""
        with self._lock:
            queue = self._queue
            batch = [queue.popleft() for _ in range(len(queue))]
            if not batch:
                return
            rows = [_row(experiment, lists) for experiment, lists in _by_experiment(batch)]
            try:
                self.store.add_exposures(rows)
            except Exception as exc:  # the store is down: serving goes on, the loss is counted
                self.dropped += len(batch)
                logger.warning("%d experiment exposures not logged: %s", len(batch), exc)

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)
        self.flush()
        self.store.close()

    def _run(self) -> None:
        while not self._stopping.wait(WRITE_SECONDS):
            self.flush()


def _by_experiment(batch: list[Exposure]) -> list[tuple[int, list[Exposure]]]:
    groups: dict[int, list[Exposure]] = {}
    for exposure in batch:
        groups.setdefault(exposure.experiment_id, []).append(exposure)
    return list(groups.items())


def _row(experiment_id: int, lists: list[Exposure]) -> dict[str, object]:
    count = len(lists)
    return {
        "experiment_id": experiment_id,
        "lists": count,
        "codes": np.fromiter((e.code for e in lists), "u1", count=count).tobytes(),
        "user_ids": np.fromiter((e.user_id for e in lists), "<i8", count=count).tobytes(),
        "shown_at": np.fromiter((e.at for e in lists), "<i8", count=count).tobytes(),
        "lengths": np.fromiter((len(e.movie_ids) for e in lists), "<i4", count=count).tobytes(),
        "movie_ids": np.fromiter(
            (m for e in lists for m in e.movie_ids),
            "<i8",
            count=sum(len(e.movie_ids) for e in lists),
        ).tobytes(),
    }

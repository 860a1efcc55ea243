"""Promotions made outside the API (``movierec promote``, the MLflow UI, a pipeline on another
host) reach every replica: each worker reads the registry's champion alias every
``champion_poll_interval`` seconds, and after each gap in the replicas' channel, and reloads
when it names another version than the one served.

A promotion through the API (a training job, ``POST /admin/reload``) is announced at once on
the channel; polling is what catches the rest, at the cost of one registry query per worker and
interval.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from movierec.config import Settings
from movierec.serving.feed import EventKind, FeedEvent
from movierec.serving.loading import ModelUnavailableError, champion_version

logger = logging.getLogger("movierec.serving")


class ChampionWatch:
    """A feed of one kind of news: the champion changed, reload.

    Args:
        settings: The registry to read.
        interval: Seconds between two reads; 0: read only when :meth:`check_now` asks.
    """

    def __init__(self, settings: Settings, interval: float) -> None:
        self._settings = settings
        self._interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._due = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(
        self, served: Callable[[], int | None], on_news: Callable[[], None] = lambda: None
    ) -> None:
        """Watch, comparing with ``served``: the registry version in service (None if any
        other model is); ``on_news`` is called when the champion moved."""
        self._thread = threading.Thread(
            target=self._run, args=(served, on_news), daemon=True, name="champion-watch"
        )
        self._thread.start()

    def check_now(self) -> None:
        self._wake.set()

    def publish(self, kind: EventKind, user_ids: list[int] | None = None) -> None:
        """Nothing to send: the registry itself is what the other replicas watch."""

    def poll(self) -> list[FeedEvent]:
        if not self._due:
            return []
        with self._lock:  # a request and this watch's thread may poll at once: one reload
            due, self._due = self._due, False
        return [FeedEvent("reload")] if due else []

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self, served: Callable[[], int | None], on_news: Callable[[], None]) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval or None)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                champion = champion_version(self._settings)
            except ModelUnavailableError as exc:  # the served model stays; read again later
                logger.warning("cannot read the champion: %s", exc)
                continue
            if champion is not None and champion != served():
                logger.info("the registry's champion is now version %d: reloading", champion)
                self._due = True
                on_news()

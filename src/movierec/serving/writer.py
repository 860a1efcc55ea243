"""Group commit of live ratings: one writer thread, one transaction for concurrent posts.

A commit costs one fsync (SQLite with ``synchronous = FULL``, PostgreSQL's WAL flush), a few
milliseconds on most disks; one commit per request capped a server at ~100 ratings/s. Here each
request's ratings, already validated, are queued; the writer thread takes *every* request waiting
when it is free and stores them all in one transaction, so the commits never wait on one another
and a burst of posts costs one fsync (no timer: a lone post is written at once). A request's
future resolves only after that commit: an acknowledged rating is durable.

Errors stay per request. When a grouped write fails (a movie deleted since the request was
validated, the database refusing), the writer retries the group's requests one by one, so only
the bad one fails and the others are stored.

A route awaits an :class:`asyncio.Future` of its own loop (:meth:`RatingWriter.submit_on`);
the writer settles a group's futures of one loop with one ``call_soon_threadsafe`` (one wake-up
of the loop, where a future per request wrapped by :func:`asyncio.wrap_future` cost a wake-up
and a copy of its state each: ~10% of a worker's time at 4,000 ratings/s). Other callers get a
:class:`concurrent.futures.Future` (:meth:`RatingWriter.submit`) and block on ``result()``.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from movierec.data.store import RatingColumns, is_transient
from movierec.errors import StoreError

logger = logging.getLogger(__name__)

TRANSIENT_RETRIES = 4  # tries of a group that collides with another process's writer
MAX_GROUP_RATINGS = 5_000
"""Ratings per transaction at most: bounds a commit's time (and a failed group's retries)."""


class WriterClosedError(StoreError):
    """The server is stopping: ratings are no longer accepted (a store error: HTTP 503)."""


class GroupStore(Protocol):
    """The store's part the writer needs (see :meth:`RatingsStore.append_groups`)."""

    def append_groups(self, groups: Sequence[RatingColumns]) -> list[int]: ...

    def connect_writer(self) -> None: ...


Outcome = int | BaseException
"""A request's answer: how many of its ratings were inserted or updated, or its error."""


@dataclass
class _Pending:
    """One request's ratings and the future its answer waits on."""

    ratings: RatingColumns
    future: Future[int] | asyncio.Future[int]


class RatingWriter:
    """Writes queued ratings in groups from one thread (see the module).

    Args:
        store: where the ratings go.
        on_commit: called with the users of each committed group, before their requests are
            answered (the service marks them fresh and tells the other workers).
    """

    def __init__(self, store: GroupStore, on_commit: Callable[[list[int]], None]) -> None:
        self._store = store
        self._on_commit = on_commit
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._closed = False
        self._close_lock = threading.Lock()  # no submit slips in behind the stop marker
        try:
            store.connect_writer()  # now, not at the first post (see connect_writer)
        except StoreError as exc:
            logger.warning("the rating writer could not connect yet, its first group will: %s", exc)
        self._thread = threading.Thread(target=self._run, name="rating-writer", daemon=True)
        self._thread.start()

    def submit(self, ratings: RatingColumns) -> Future[int]:
        """Queue one request's ratings; the future gives how many were inserted or updated,
        once committed, or the store's error for this request alone."""
        future: Future[int] = Future()
        self._queue_pending(_Pending(ratings, future))
        return future

    def submit_on(
        self, loop: asyncio.AbstractEventLoop, ratings: RatingColumns
    ) -> asyncio.Future[int]:
        """:meth:`submit` for a coroutine running on ``loop`` (call it from that loop): the
        future is the loop's own."""
        future: asyncio.Future[int] = loop.create_future()
        self._queue_pending(_Pending(ratings, future))
        return future

    def _queue_pending(self, pending: _Pending) -> None:
        with self._close_lock:
            if self._closed:
                raise WriterClosedError("the server is stopping: ratings are not accepted")
            self._queue.put(pending)

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            group, stopping = self._next_group()
            if group:
                self._write(group)

    def _next_group(self) -> tuple[list[_Pending], bool]:
        """Every waiting request (one at least, blocking for it) up to the group's bound, and
        whether the stop marker was met."""
        first = self._queue.get()
        if first is None:
            return [], True
        group, size = [first], len(first.ratings.user_id)
        while size < MAX_GROUP_RATINGS:
            try:
                pending = self._queue.get_nowait()
            except queue.Empty:
                break
            if pending is None:
                return self._started(group), True
            group.append(pending)
            size += len(pending.ratings.user_id)
        return self._started(group), False

    @staticmethod
    def _started(group: list[_Pending]) -> list[_Pending]:
        """The requests still waiting; a cancelled one (its client gone) is not written."""
        return [
            p
            for p in group
            if (
                not p.future.cancelled()  # read from this thread: at worst written, unanswered
                if isinstance(p.future, asyncio.Future)
                else p.future.set_running_or_notify_cancel()
            )
        ]

    def _write(self, group: list[_Pending]) -> None:
        try:
            counts = self._append(group)
        except Exception as exc:  # every request gets its own answer below
            if len(group) > 1:
                logger.info("a group of %d rating requests failed, retrying one by one", len(group))
                for pending in group:
                    self._write([pending])
            else:
                _answer(group, [exc])
            return
        self._committed(group)
        _answer(group, counts)

    def _append(self, group: list[_Pending]) -> list[int]:
        """Store the group, again when it collided with another process's writer (a deadlock
        between two workers' groups on MariaDB failed a request under load)."""
        tries = 0
        while True:
            try:
                return self._store.append_groups([p.ratings for p in group])
            except StoreError as exc:
                tries += 1
                if tries == TRANSIENT_RETRIES or not is_transient(exc):
                    raise
                logger.info("a group of %d rating requests collided, again: %s", len(group), exc)
                time.sleep(random.uniform(0.0, 0.01 * 2**tries))  # the other writer goes first

    def _committed(self, group: list[_Pending]) -> None:
        """Tell the service whose ratings are now stored; the ratings stay acknowledged if
        that fails (they are durable: the next load finds their users fresh anyway)."""
        users = sorted({int(u) for p in group for u in p.ratings.user_id.tolist()})
        try:
            self._on_commit(users)
        except Exception:
            logger.exception("telling the service about %d users' new ratings failed", len(users))


def _answer(group: list[_Pending], outcomes: Sequence[Outcome]) -> None:
    """Settle each request's future: a loop's futures in one call on that loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[int], Outcome]]] = {}
    for pending, outcome in zip(group, outcomes, strict=True):
        if isinstance(pending.future, asyncio.Future):
            by_loop.setdefault(pending.future.get_loop(), []).append((pending.future, outcome))
        else:
            _settle(pending.future, outcome)
    for loop, settled in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_all, settled)
        except RuntimeError:  # the loop is closed: nobody waits for these answers any more
            logger.info("%d rating requests' loop closed before their answers", len(settled))


def _settle_all(settled: list[tuple[asyncio.Future[int], Outcome]]) -> None:
    for future, outcome in settled:
        if not future.done():  # cancelled meanwhile
            _settle(future, outcome)


def _settle(future: Future[int] | asyncio.Future[int], outcome: Outcome) -> None:
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)

"""A feed of events shared by the workers of one server: fresh ratings and reloads.

Each uvicorn worker is a process with its own copy of the model and of which users have rated
since it was trained. When one worker stores ratings or reloads the model, the others must know
before their next request, or a user's next recommendation would ignore what they just rated
half of the time. The feed is an append-only file in the server's temporary folder (made by
:mod:`movierec.serving.workers`): a writer appends one line per event under an exclusive lock;
a reader checks the file's size on each request (one ``stat``) and reads only what is new.
A worker that starts late (after another, or after a crash) reads the feed from its start.
A single-process server has no feed and needs none.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from movierec.serving.workers import FEED_ENV  # the feed file's path, set for each worker

EventKind = Literal["ratings", "reload"]


@dataclass(frozen=True)
class FeedEvent:
    """Users with new ratings, or a reload, published by another worker."""

    kind: EventKind
    user_ids: list[int] = field(default_factory=list)


class Feed(Protocol):
    """What the service needs of a feed: this file's, or the replicas' of
    :mod:`movierec.serving.replicas` (several at once through its ``Feeds``)."""

    def publish(self, kind: EventKind, user_ids: list[int] | None = None) -> None: ...

    def poll(self) -> list[FeedEvent]: ...

    def close(self) -> None: ...


class SharedFeed:
    """One worker's end of the feed: publish its events, read the others'."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.touch(exist_ok=True)
        # Unique per reader, not per process: tests run two services in one process.
        self._me = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        # A worker reads the feed from its start: ratings posted before it started (while it
        # waited to load, or before a restart) are fresh for it too. Reloads published before
        # it existed are older than its own first load, so it skips those.
        self._offset = 0
        self._started_at = self.path.stat().st_size
        # Kept open for the size check each request makes: an fstat of an open file is a few
        # times cheaper than a stat of its path (measured 2.5% of an anonymous request's time).
        self._handle = self.path.open("rb")
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls) -> SharedFeed | None:
        """The feed of this server's workers, or None for a single-process server."""
        path = os.environ.get(FEED_ENV)
        return cls(Path(path)) if path else None

    def publish(self, kind: EventKind, user_ids: list[int] | None = None) -> None:
        """Append one event (durable in the page cache before this returns)."""
        line = json.dumps({"pid": self._me, "kind": kind, "users": user_ids or []}) + "\n"
        with self.path.open("a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # whole lines, never interleaved
            try:
                handle.write(line)
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def close(self) -> None:
        self._handle.close()

    def poll(self) -> list[FeedEvent]:
        """The other workers' events since the last poll (one ``fstat`` when there are none)."""
        if os.fstat(self._handle.fileno()).st_size <= self._offset:
            return []
        with self._lock:
            self._handle.seek(self._offset)
            chunk = self._handle.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits
            line_end = self._offset
            self._offset += len(complete)
        events = []
        for line in complete.splitlines(keepends=True):
            line_end += len(line)
            record = json.loads(line)
            older_reload = record["kind"] == "reload" and line_end <= self._started_at
            if record["pid"] != self._me and not older_reload:
                events.append(FeedEvent(record["kind"], [int(u) for u in record["users"]]))
        return events

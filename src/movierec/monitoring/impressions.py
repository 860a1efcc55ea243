"""The impression log: every list served to a known user, kept in the store for online feedback.

A worker's monitor gathers the lists it served and a thread writes them every
:data:`WRITE_SECONDS` as *one row per model version*: the lists' users, times, strategies,
lengths and movies as little-endian arrays (columnar batches). A row per list cost the serving
5% of its throughput in SQLite's own work (inserts, WAL, checkpoints: measured with the
benchmark's servers side by side); a batch costs a few numpy ``tobytes`` and one insert, and
numpy reads a million lists back at once. The price: the table is read through
:meth:`ImpressionStore.shown_since` (or ``GET /monitoring/online``), not row by row in SQL.

Retention is bounded (``impressions_retention_days``, ``impressions_max_rows`` lists), and an
``impressions_sample_rate`` below 1 logs a fixed share of users (chosen by a hash of the user
id, the same in every worker and replica, so a sampled user's feedback is complete).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import sqlalchemy as sa

from movierec.config import Settings
from movierec.data.store import RatingsStore, impressions_table, ratings_table
from movierec.monitoring.batch import ServedColumns

logger = logging.getLogger(__name__)

DAY = 86_400
WRITE_SECONDS = 5.0  # how often the gathered lists are written
USERS_PER_QUERY = 1_000  # users per ratings query (an IN list read by the ratings' key)
_MIX = 0x9E3779B97F4A7C15  # splitmix64's multiplier: user ids spread evenly over [0, 1)
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class ShownLists:
    """Lists shown, one entry per list; ``movies`` holds every list's movies in order."""

    versions: list[tuple[str, str]]  # (model, version) of each code
    codes: IntArray  # the version code of each list
    users: IntArray
    shown_at: IntArray
    lengths: IntArray
    movies: IntArray

    def __len__(self) -> int:
        return len(self.users)


@dataclass
class _Pending:
    """Lists of one model version gathered since the last write."""

    users: list[IntArray] = field(default_factory=list)
    shown_at: list[npt.NDArray[np.float64]] = field(default_factory=list)
    strategies: list[npt.NDArray[np.uint8]] = field(default_factory=list)
    lengths: list[IntArray] = field(default_factory=list)
    movies: list[IntArray] = field(default_factory=list)

    def row(self, model: str, version: str) -> dict[str, object]:
        shown_at = np.concatenate(self.shown_at)
        return {
            "model": model,
            "version": version,
            "first_shown": int(shown_at.min()),
            "last_shown": int(shown_at.max()),
            "lists": len(shown_at),
            "user_ids": _bytes(self.users, "<i8"),
            "shown_at": shown_at.astype("<i8").tobytes(),
            "strategies": _bytes(self.strategies, "u1"),
            "lengths": _bytes(self.lengths, "<i4"),
            "movie_ids": _bytes(self.movies, "<i8"),
        }


def _bytes(parts: list[Any], dtype: str) -> bytes:
    return np.concatenate(parts).astype(dtype).tobytes()


class ImpressionStore(RatingsStore):
    """The store's reads and writes of impressions.

    On SQLite its connections commit without waiting for the disk (``synchronous = NORMAL``,
    still crash-safe in WAL mode): a power cut may lose the last impressions, never a rating
    (the store's own connections keep ``FULL``).
    """

    def __init__(self, url: str) -> None:
        super().__init__(url)
        if self.dialect == "sqlite":
            sa.event.listen(self._engine, "connect", _commit_without_fsync)
            self._engine.dispose()  # the connection that made the schema had FULL

    def add_batches(self, rows: list[dict[str, object]]) -> None:
        with self._write() as conn:
            conn.execute(impressions_table.insert(), rows)

    def purge(self, before: int, keep_lists: int) -> int:
        """Delete batches last shown before ``before``, then the oldest until at most
        ``keep_lists`` lists are left; returns how many lists were deleted."""
        table = impressions_table.c
        with self._write() as conn:
            old = sa.select(sa.func.coalesce(sa.func.sum(table.lists), 0))
            deleted = int(conn.execute(old.where(table.last_shown < before)).scalar_one())
            conn.execute(impressions_table.delete().where(table.last_shown < before))
            batches = conn.execute(sa.select(table.id, table.lists).order_by(table.id.desc()))
            kept = 0
            for batch_id, lists in batches.all():
                kept += lists
                if kept > keep_lists:
                    surplus = sa.select(sa.func.sum(table.lists)).where(table.id <= batch_id)
                    deleted += int(conn.execute(surplus).scalar_one())
                    conn.execute(impressions_table.delete().where(table.id <= batch_id))
                    break
        return deleted

    def shown_since(self, since: int) -> ShownLists:
        """Every kept list shown at or after ``since``."""
        table = impressions_table.c
        query = (
            sa.select(
                table.model,
                table.version,
                table.user_ids,
                table.shown_at,
                table.lengths,
                table.movie_ids,
            )
            .where(table.last_shown >= since)
            .order_by(table.id)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return _decoded(rows, since)

    def ratings_of(self, users: IntArray, rated_from: int) -> pd.DataFrame:
        """The ratings of ``users`` from ``rated_from`` on (read by the ratings' key, user
        first, a thousand users a query)."""
        r = ratings_table.c
        rows: list[Any] = []
        with self._read() as conn:
            for start in range(0, len(users), USERS_PER_QUERY):
                chunk = users[start : start + USERS_PER_QUERY].tolist()
                query = sa.select(r.user_id, r.item_id, r.rating, r.timestamp).where(
                    r.user_id.in_(chunk), r.timestamp >= rated_from
                )
                rows += conn.execute(query).all()
        return pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])


def _commit_without_fsync(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA synchronous = NORMAL")


def _decoded(rows: Sequence[Any], since: int) -> ShownLists:
    """The batches' lists as arrays, those shown before ``since`` left out."""
    versions: dict[tuple[str, str], int] = {}
    codes, users, shown_at, lengths, movies = [], [], [], [], []
    for model, version, user_ids, times, sizes, movie_ids in rows:
        batch_users = np.frombuffer(bytes(user_ids), "<i8")
        codes.append(
            np.full(len(batch_users), versions.setdefault((model, version), len(versions)))
        )
        users.append(batch_users)
        shown_at.append(np.frombuffer(bytes(times), "<i8"))
        lengths.append(np.frombuffer(bytes(sizes), "<i4"))
        movies.append(np.frombuffer(bytes(movie_ids), "<i8"))
    shown = ShownLists(
        list(versions),
        *(np.concatenate(p).astype(np.int64) if p else np.zeros(0, np.int64)
          for p in (codes, users, shown_at, lengths, movies)),
    )  # fmt: skip
    return _since(shown, since)


def _since(shown: ShownLists, since: int) -> ShownLists:
    keep = shown.shown_at >= since
    if keep.all():
        return shown
    per_movie = np.repeat(keep, shown.lengths)
    return ShownLists(
        shown.versions, shown.codes[keep], shown.users[keep], shown.shown_at[keep],
        shown.lengths[keep], shown.movies[per_movie],
    )  # fmt: skip


class ImpressionLog:
    """Gathers the impressions of served lists and writes them in batches, sampled and within
    retention. :meth:`gather` and :meth:`write` may run in different threads."""

    def __init__(self, store: ImpressionStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.dropped = 0  # lists lost to a store that refused the write
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._lock = threading.Lock()  # gather and write exchange the pending lists under it

    def add(self, batch: Sequence[ServedColumns]) -> int:
        """Gather ``batch`` and write everything pending; returns the lists written."""
        self.gather(batch)
        return self.write()

    def gather(self, batch: Sequence[ServedColumns]) -> None:
        """Keep the lists of known users in ``batch`` (sampled) for the next write."""
        for lists in batch:
            logged = lists.rows(self._logged(lists))
            if len(logged):
                with self._lock:
                    self._gather(logged)

    def purge(self, now: float | None = None) -> int:
        """Apply the retention; returns how many lists were deleted."""
        days = self.settings.impressions_retention_days
        before = int((time.time() if now is None else now) - days * DAY)
        return self.store.purge(before, self.settings.impressions_max_rows)

    def _gather(self, lists: ServedColumns) -> None:
        info = lists.info
        key = (info.name, "none" if info.version is None else str(info.version))
        pending = self._pending.setdefault(key, _Pending())
        movie_ids = lists.view.model.item_ids
        assert movie_ids is not None
        pending.users.append(lists.users)
        pending.shown_at.append(lists.at)
        pending.strategies.append(lists.strategies)
        pending.lengths.append(lists.lengths)
        in_list = np.arange(lists.items.shape[1]) < lists.lengths[:, None]
        pending.movies.append(np.asarray(movie_ids, dtype=np.int64)[lists.items[in_list]])

    def write(self) -> int:
        """Write the lists gathered since the last write; returns how many."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return 0
        rows = [batch.row(*key) for key, batch in pending.items()]
        lists = sum(int(row["lists"]) for row in rows)  # type: ignore[call-overload]
        try:
            self.store.add_batches(rows)
        except Exception as exc:  # the store is down: serving goes on, the loss is counted
            self.dropped += lists
            logger.warning("%d impressions not logged: %s", lists, exc)
            return 0
        return lists

    def _logged(self, lists: ServedColumns) -> npt.NDArray[np.bool_]:
        """Which lists are logged: known users' lists that show something, sampled by user."""
        logged = (lists.users >= 0) & (lists.lengths > 0)
        rate = self.settings.impressions_sample_rate
        return logged if rate >= 1.0 else logged & (user_shares(lists.users) < rate)


def user_shares(user_ids: IntArray) -> npt.NDArray[np.float64]:
    """A fixed point of [0, 1) for each user id, uniform over ids (sampling by user):
    splitmix64's mixing, in uint64 arithmetic that wraps as the hash needs."""
    mixed = user_ids.astype(np.uint64) * np.uint64(_MIX)
    mixed ^= mixed >> np.uint64(31)
    return (mixed * np.uint64(_MIX)).astype(np.float64) / 2.0**64

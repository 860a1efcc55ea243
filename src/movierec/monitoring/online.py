"""Impressions and the online feedback they get.

Every list served to a known user is an *impression*: which movies, to whom, by which model
version and strategy, when (a row a list in the store's ``impressions`` table, written in
batches by the monitor's thread, never on the request path). When the user later rates a movie
they were shown, that is online feedback. Per model version:

* impressions: distinct (user, movie) pairs shown (a list served again counts its pairs once);
* hit rate: the share of those pairs the user rated between its first showing and ``horizon``
  days after its last one;
* positive rate: the share of the rated ones rated ``positive_rating`` or more;

each with a 95% Wilson interval. Pairs shown less than ``horizon`` days ago may still be rated:
they are counted (the rates are lower bounds until then) and reported as ``pending``.

Retention is bounded (``impressions_retention_days``, ``impressions_max_rows``), and a
``impressions_sample_rate`` below 1 logs a fixed share of users (chosen by a hash of the user id,
the same in every worker and replica, so a sampled user's feedback is complete).
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import sqlalchemy as sa
from scipy.stats import binomtest

from movierec.config import Settings
from movierec.data.store import RatingsStore, impressions_table, ratings_table
from movierec.monitoring.batch import ServedList, by_view, padded_items

logger = logging.getLogger(__name__)

DAY = 86_400
_MIX = 0x9E3779B97F4A7C15  # splitmix64's multiplier: user ids spread evenly over [0, 1)
_MASK = (1 << 64) - 1


@dataclass(frozen=True)
class Rate:
    """A proportion with its 95% Wilson interval; None values when nothing was counted."""

    value: float | None
    low: float | None
    high: float | None

    @classmethod
    def of(cls, successes: int, trials: int) -> Rate:
        if trials == 0:
            return cls(None, None, None)
        interval = binomtest(successes, trials).proportion_ci(method="wilson")
        return cls(successes / trials, float(interval.low), float(interval.high))


@dataclass(frozen=True)
class VersionFeedback:
    model: str
    version: str
    lists: int
    users: int
    impressions: int
    rated: int
    positive: int
    pending: int
    hit_rate: Rate
    positive_rate: Rate


@dataclass(frozen=True)
class OnlineReport:
    since: int
    horizon_days: float
    positive_rating: float
    versions: list[VersionFeedback]


_INSERTED = ("user_id", "model", "version", "strategy", "shown_at", "movie_ids")
_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s", "numeric": "?"}
WRITE_SECONDS = 2.0
WRITE_ROWS = 20_000  # rows held before a write whatever the time (bounds the memory)
_ROWS_PER_INSERT = 500  # 3,000 parameters: under every driver's and SQLite's limits


class ImpressionStore(RatingsStore):
    """The store's reads and writes of impressions.

    On SQLite its connections commit without waiting for the disk (``synchronous = NORMAL``,
    still crash-safe in WAL mode): a power cut may lose the last impressions, never a rating
    (the store's own connections keep ``FULL``), and the monitor commits several times a
    second.
    """

    def __init__(self, url: str) -> None:
        super().__init__(url)
        if self.dialect == "sqlite":
            sa.event.listen(self._engine, "connect", _commit_without_fsync)
            self._engine.dispose()  # the connection that made the schema had FULL

    def add_impressions(self, rows: list[tuple[object, ...]]) -> None:
        """Insert ``(user_id, model, version, strategy, shown_at, movie_ids)`` rows.

        A few multi-row ``INSERT``s straight to the driver. Row by row, SQLAlchemy's
        processing of a batch cost as much as the rest of the monitor, and the driver's
        ``executemany`` gave the GIL up and took it back at every row, each time making the
        request thread stop for it (11% of the serving throughput, measured; 3% this way).
        """
        with self._write() as conn:
            for start in range(0, len(rows), _ROWS_PER_INSERT):
                chunk = rows[start : start + _ROWS_PER_INSERT]
                conn.exec_driver_sql(self._insert_sql(len(chunk)), tuple(chain(*chunk)))

    @functools.cache  # noqa: B019 (a handful of sizes, for the store's lifetime)
    def _insert_sql(self, n_rows: int) -> str:
        mark = _MARKS[self._engine.dialect.paramstyle]
        row = f"({', '.join([mark] * len(_INSERTED))})"
        return (
            f"INSERT INTO impressions ({', '.join(_INSERTED)}) VALUES {', '.join([row] * n_rows)}"
        )

    def purge_impressions(self, before: int, keep_rows: int) -> int:
        """Delete impressions shown before ``before`` and all but the newest ``keep_rows``."""
        table = impressions_table
        with self._write() as conn:
            deleted = conn.execute(table.delete().where(table.c.shown_at < before)).rowcount
            newest = conn.execute(sa.select(sa.func.max(table.c.id))).scalar()
            if newest is not None:
                cut = table.c.id <= newest - keep_rows
                deleted += conn.execute(table.delete().where(cut)).rowcount
        return int(deleted)

    def impressions_since(self, since: int) -> pd.DataFrame:
        table = impressions_table.c
        query = sa.select(
            table.user_id, table.model, table.version, table.shown_at, table.movie_ids
        ).where(table.shown_at >= since)
        with self._read() as conn:
            rows = conn.execute(query).all()
        names = ["user_id", "model", "version", "shown_at", "movie_ids"]
        # Column by column: a frame built from a million row objects took twice as long.
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
        return pd.DataFrame(dict(zip(names, columns, strict=True)))

    def ratings_of_shown_users(self, since: int, rated_from: int) -> pd.DataFrame:
        """Ratings from ``rated_from`` on by users shown a list since ``since`` (read by the
        ratings' key, user first, not by a scan)."""
        r, i = ratings_table.c, impressions_table.c
        users = sa.select(i.user_id).where(i.shown_at >= since).distinct()
        query = sa.select(r.user_id, r.item_id, r.rating, r.timestamp).where(
            r.user_id.in_(users), r.timestamp >= rated_from
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])


def _commit_without_fsync(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA synchronous = NORMAL")


class ImpressionLog:
    """Writes the impressions of served lists, sampled and within retention.

    Rows are written in one transaction every :data:`WRITE_SECONDS` at most (or when a reader
    asks): each commit of a busy worker's quarter-second of lists cost the serving more than
    its rows did (measured).
    """

    def __init__(self, store: ImpressionStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.dropped = 0  # lists lost to a store that refused the write
        self._rows: list[tuple[object, ...]] = []
        self._written_at = time.monotonic()

    def add(self, batch: list[ServedList], *, write: bool = True) -> int:
        """Log the lists of known users in ``batch``; returns how many were written now
        (``write=False``: only when the last write is :data:`WRITE_SECONDS` old)."""
        logged = [served for served in batch if self._logged(served)]
        self._rows += [row for lists in by_view(logged) for row in _rows(lists)]
        due = time.monotonic() - self._written_at >= WRITE_SECONDS
        if not self._rows or not (write or due or len(self._rows) >= WRITE_ROWS):
            return 0
        rows, self._rows, self._written_at = self._rows, [], time.monotonic()
        try:
            self.store.add_impressions(rows)
        except Exception as exc:  # the store is down: serving goes on, the loss is counted
            self.dropped += len(rows)
            logger.warning("%d impressions not logged: %s", len(rows), exc)
            return 0
        return len(rows)

    def purge(self, now: float | None = None) -> int:
        """Apply the retention; returns how many impressions were deleted."""
        before = int(
            (time.time() if now is None else now) - self.settings.impressions_retention_days * DAY
        )
        return self.store.purge_impressions(before, self.settings.impressions_max_rows)

    def _logged(self, served: ServedList) -> bool:
        if served.user_id is None or not served.items:
            return False
        rate = self.settings.impressions_sample_rate
        return rate >= 1.0 or user_share(served.user_id) < rate


def _rows(lists: list[ServedList]) -> list[tuple[object, ...]]:
    """The impression rows of lists one model version served: movie ids as little-endian
    int64 bytes, in rank order (numpy writes and reads them at once, unlike text)."""
    info = lists[0].info
    version = "none" if info.version is None else str(info.version)
    movie_ids = lists[0].view.model.item_ids
    assert movie_ids is not None
    padded, lengths = padded_items(lists, 0)
    movies = np.asarray(movie_ids, dtype="<i8")[padded]
    return [
        (s.user_id, info.name, version, s.strategy, int(s.at), row[:length].tobytes())
        for s, row, length in zip(lists, movies, lengths.tolist(), strict=True)
    ]


def user_share(user_id: int) -> float:
    """A fixed point of [0, 1) for a user id, uniform over ids (sampling by user)."""
    mixed = (user_id * _MIX) & _MASK
    mixed ^= mixed >> 31
    return ((mixed * _MIX) & _MASK) / 2.0**64


def online_feedback(
    store: ImpressionStore,
    *,
    horizon_days: float,
    positive_rating: float,
    since: int | None = None,
    now: float | None = None,
) -> OnlineReport:
    """The online figures of the impressions shown since ``since`` (all that are kept when
    None), per model version."""
    now = time.time() if now is None else now
    since = 0 if since is None else since
    shown = store.impressions_since(since)
    if shown.empty:
        return OnlineReport(since, horizon_days, positive_rating, [])
    # Versions as integer codes: grouping ten million pairs by strings took most of the time.
    codes, versions = pd.MultiIndex.from_frame(shown[["model", "version"]]).factorize()
    pairs = _pairs(shown, codes)
    ratings = store.ratings_of_shown_users(since, int(pairs["first"].min()))
    joined = pairs.merge(ratings, on=["user_id", "movie_id"], how="left")
    horizon = horizon_days * DAY
    joined["hit"] = (joined["timestamp"] >= joined["first"]) & (
        joined["timestamp"] <= joined["last"] + horizon
    )
    joined["positive"] = joined["hit"] & (joined["rating"] >= positive_rating)
    joined["pending"] = joined["last"] + horizon > now
    lists = np.bincount(codes, minlength=len(versions))
    feedback = [
        _version_feedback(versions[code], joined[joined["version_code"] == code], int(lists[code]))
        for code in np.unique(joined["version_code"].to_numpy()).tolist()
    ]
    feedback.sort(key=lambda entry: (entry.model, entry.version))
    return OnlineReport(since, horizon_days, positive_rating, feedback)


def _pairs(shown: pd.DataFrame, codes: npt.NDArray[np.intp]) -> pd.DataFrame:
    """One row per (version, user, movie) shown, with its first and last showing.

    numpy all the way (a million lists hold ten million ids; pandas' groupby of them took
    three times as long): the ids are read from the joined bytes at once, and the pairs found
    by sorting one integer key.
    """
    blobs = [bytes(blob) for blob in shown["movie_ids"]]
    counts = np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs)) // 8
    movies = np.frombuffer(b"".join(blobs), dtype="<i8").astype(np.int64)
    user_codes, list_users = np.unique(
        shown["user_id"].to_numpy(dtype=np.int64), return_inverse=True
    )
    users = np.repeat(list_users, counts)
    shown_at = np.repeat(shown["shown_at"].to_numpy(dtype=np.int64), counts)
    versions = np.repeat(codes, counts).astype(np.int64)
    # One integer per (version, user, movie); ids are dense enough that it fits in 63 bits.
    span = int(movies.max()) + 1
    if (int(versions.max()) + 1) * len(user_codes) * span >= 2**63:
        raise ValueError("movie ids too large to pair with users in one integer key")
    key = (versions * len(user_codes) + users) * span + movies
    order = np.argsort(key)
    key, shown_at = key[order], shown_at[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    first = order[starts]
    return pd.DataFrame(
        {
            "version_code": versions[first],
            "user_id": user_codes[users[first]],
            "movie_id": movies[first],
            "first": np.minimum.reduceat(shown_at, starts),
            "last": np.maximum.reduceat(shown_at, starts),
        }
    )


def _version_feedback(labels: Any, group: pd.DataFrame, lists: int) -> VersionFeedback:
    """The figures of one version's pairs; ``labels``: its (model, version)."""
    model, version = (str(label) for label in labels)
    impressions = len(group)
    rated = int(group["hit"].sum())
    positive = int(group["positive"].sum())
    return VersionFeedback(
        model=model,
        version=version,
        lists=lists,
        users=int(group["user_id"].nunique()),
        impressions=impressions,
        rated=rated,
        positive=positive,
        pending=int(group["pending"].sum()),
        hit_rate=Rate.of(rated, impressions),
        positive_rate=Rate.of(positive, rated),
    )

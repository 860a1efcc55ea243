"""The ratings store: movies, users and ratings in SQL (SQLAlchemy Core).

SQLite (a WAL-mode file) is the embedded default, PostgreSQL the production store, MySQL or
MariaDB (``mysql+pymysql://``) works too. All hold the same tables:

* ``movies``: the catalog, genres ``|``-joined;
* ``users``: users the source names (a rating needs no row here);
* ``ratings``: one rating per (user, item); the newest timestamp wins;
* ``ingestion_log``: one row per ingest attempt, failures included;
* ``dataset_meta``: key/value pairs (the dataset name and rating scale), which snapshots carry.

Bulk loads run in one transaction: on PostgreSQL through binary ``COPY`` with the tuples built
by numpy, on MySQL through ``LOAD DATA LOCAL INFILE`` (:mod:`movierec.data.mysql`), on SQLite
through ``executemany`` of an upsert. Usage::

    with RatingsStore(url) as store:
        result = store.ingest(loaded_data)
        ratings = store.ratings_frame()
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, Self

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from movierec.data import group_writes
from movierec.data import mysql as mysql_paths
from movierec.data.group_writes import SQLITE_UPSERT as _SQLITE_UPSERT
from movierec.data.group_writes import UPSERT_SET as _UPSERT_SET
from movierec.data.schema import (
    RATING_COLUMNS,
    RATING_DTYPES,
    as_canonical_movies,
    as_canonical_ratings,
    empty_movies,
)
from movierec.errors import MovierecError, StoreError
from movierec.locks import exclusive_lock

if TYPE_CHECKING:
    from movierec.config import Settings

__all__ = [
    "IngestResult",
    "LoadedDataLike",
    "RatingsStore",
    "StoreContents",
    "StoreStats",
    "redact_url",
]

metadata = sa.MetaData()

# MySQL: 4-byte utf8 (titles with emoji), and binary collation so text compares exactly as on
# SQLite and PostgreSQL (the default collation folds case: "ML-100K" would equal "ml-100k").
_MYSQL_TABLE: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

movies_table = sa.Table(
    "movies",
    metadata,
    sa.Column("item_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("year", sa.Integer),
    sa.Column("genres", sa.Text, nullable=False),
    sa.Column("imdb_id", sa.Text),
    sa.Column("tmdb_id", sa.BigInteger),
    **_MYSQL_TABLE,
)

users_table = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("name", sa.Text),
    **_MYSQL_TABLE,
)

ratings_table = sa.Table(
    "ratings",
    metadata,
    sa.Column("user_id", sa.BigInteger, nullable=False),
    sa.Column("item_id", sa.BigInteger, nullable=False),
    # 4 bytes everywhere (SQLAlchemy's REAL is an 8-byte DOUBLE on MySQL).
    sa.Column(
        "rating",
        sa.REAL().with_variant(mysql_paths.RatingType(), *mysql_paths.DIALECTS),
        nullable=False,
    ),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.PrimaryKeyConstraint("user_id", "item_id", name="ratings_pkey"),
    # No index on "timestamp": it cost a third of a 20M-row bulk load, and nothing reads by
    # rating time on a hot path (retraining keys off the ingestion log; a drift report's
    # range scan over 20M rows takes about a second).
    # Clustered on the key: no separate key index, and scans come back sorted by user, item.
    sqlite_with_rowid=False,
    **_MYSQL_TABLE,
)

ingestion_log_table = sa.Table(
    "ingestion_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("checksum", sa.Text, nullable=False),
    sa.Column("started_at", sa.Text, nullable=False),
    sa.Column("finished_at", sa.Text),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("rows_read", sa.BigInteger),
    sa.Column("rows_rejected", sa.BigInteger),
    sa.Column("rows_inserted", sa.BigInteger),
    sa.Column("rows_updated", sa.BigInteger),
    sa.Column("rows_unchanged", sa.BigInteger),
    sa.Column("details", sa.Text),
    **_MYSQL_TABLE,
)

dataset_meta_table = sa.Table(
    "dataset_meta",
    metadata,
    # MySQL keys a text column only by a prefix of given length: a VARCHAR there.
    sa.Column(
        "key", sa.Text().with_variant(sa.String(64), *mysql_paths.DIALECTS), primary_key=True
    ),
    sa.Column("value", sa.Text, nullable=False),
    **_MYSQL_TABLE,
)

# MySQL's BLOB holds 64 KB; a batch of lists can be larger.
_ARRAY = sa.LargeBinary().with_variant(mysql.LONGBLOB(), *mysql_paths.DIALECTS)

# Lists of recommendations served to known users (movierec.monitoring.impressions): a row per
# model version per write of a worker, its lists as little-endian arrays (columnar batches).
impressions_table = sa.Table(
    "impressions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("version", sa.Text, nullable=False),  # "none" for a model outside the registry
    sa.Column("first_shown", sa.BigInteger, nullable=False),
    sa.Column("last_shown", sa.BigInteger, nullable=False),
    sa.Column("lists", sa.Integer, nullable=False),
    sa.Column("user_ids", _ARRAY, nullable=False),  # int64, a list each
    sa.Column("shown_at", _ARRAY, nullable=False),  # int64 epoch seconds
    sa.Column("strategies", _ARRAY, nullable=False),  # uint8 codes
    sa.Column("lengths", _ARRAY, nullable=False),  # int32 movies per list
    sa.Column("movie_ids", _ARRAY, nullable=False),  # int64, the lists one after another
    **_MYSQL_TABLE,
)  # fmt: skip

# dataset_meta keys. "since_log_id": the ingestion that first loaded the current dataset; only
# checksums ingested from then on count as "already loaded".
_META_DATASET = "dataset"
_META_SCALE = "rating_scale"
_META_SINCE = "since_log_id"

_CHUNK_ROWS = 1_000_000
# PostgreSQL binary COPY: a 19-byte header (signature, flags, extension length), a -1 trailer.
_PG_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_PG_COPY_TRAILER = b"\xff\xff"
# One ratings tuple: field count, then (length, value) per field; all fixed-size, so the whole
# chunk is one numpy structured array in network byte order.
_PG_TUPLE = np.dtype(
    [
        ("fields", ">i2"),
        ("user_len", ">i4"),
        ("user_id", ">i8"),
        ("item_len", ">i4"),
        ("item_id", ">i8"),
        ("rating_len", ">i4"),
        ("rating", ">f4"),
        ("ts_len", ">i4"),
        ("timestamp", ">i8"),
    ]
)
# ~1.1M ratings per read query (heap pages hold ~136 rating tuples).
_PG_READ_BLOCKS = 8192


class IngestReportLike(Protocol):
    """The parse report a source hands over with its data."""

    @property
    def rows_read(self) -> int: ...

    @property
    def rows_rejected(self) -> int: ...


class LoadedDataLike(Protocol):
    """What a source produces (``movierec.data.sources.LoadedData`` satisfies it)."""

    @property
    def name(self) -> str: ...

    @property
    def ratings(self) -> pd.DataFrame: ...

    @property
    def movies(self) -> pd.DataFrame: ...

    @property
    def users(self) -> pd.DataFrame | None: ...

    @property
    def rating_scale(self) -> tuple[float, float]: ...

    @property
    def checksum(self) -> str: ...

    @property
    def report(self) -> IngestReportLike: ...


@dataclass(frozen=True)
class IngestResult:
    """What one ``ingest`` did.

    Attributes:
        source: The data set name.
        rows: Ratings offered after de-duplication per (user, item).
        inserted: New (user, item) ratings.
        updated: Existing ratings replaced by a newer one.
        unchanged: Ratings already stored (same value) or older than the stored one.
        rejected: Rows the source rejected while parsing.
        skipped_reason: Why nothing was loaded (same data already ingested), else None.
        log_id: The ``ingestion_log`` row.
        seconds: Wall time.
    """

    source: str
    rows: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    skipped_reason: str | None
    log_id: int
    seconds: float


class RatingColumns(NamedTuple):
    """One request's ratings as canonical columns (int64 ids and times, float32 ratings)."""

    user_id: np.ndarray
    item_id: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray


@dataclass(frozen=True)
class StoreStats:
    """A summary of the store's content."""

    dataset: str | None
    rating_scale: tuple[float, float] | None
    n_ratings: int
    n_users: int
    n_items: int
    n_movies: int
    rating_min: float | None
    rating_max: float | None
    rating_mean: float | None
    first_timestamp: int | None
    last_timestamp: int | None

    @property
    def ratings_per_day(self) -> float | None:
        """Average ratings per day between the first and the last one."""
        if self.first_timestamp is None or self.last_timestamp is None:
            return None
        days = max((self.last_timestamp - self.first_timestamp) / 86_400, 1.0)
        return self.n_ratings / days


@dataclass(frozen=True)
class StoreContents:
    """Everything in the store, read in one consistent transaction (for snapshots)."""

    dataset: str | None
    rating_scale: tuple[float, float] | None
    ratings: pd.DataFrame
    movies: pd.DataFrame
    users: pd.DataFrame


def redact_url(url: str | sa.URL) -> str:
    """``url`` as text with any password replaced by ``***``."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable URL>"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# Errors a database raises when concurrent transactions collide, not because of what they
# write: the same transaction run again succeeds. MySQL/MariaDB: deadlock (1213), lock wait
# timeout (1205); PostgreSQL: deadlock_detected, serialization_failure; SQLite: busy.
_TRANSIENT_MYSQL_CODES = {1205, 1213}
_TRANSIENT_SQLSTATES = {"40P01", "40001"}


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (a :class:`StoreError` or the driver's error under it, wrapped by
    SQLAlchemy or not) is a collision of concurrent writers, worth running the same transaction
    again."""
    cause: BaseException | None = exc
    while isinstance(cause, StoreError):
        cause = cause.__cause__
    orig = cause.orig if isinstance(cause, sa.exc.DBAPIError) else cause
    if orig is None:
        return False
    code = orig.args[0] if orig.args else None
    return (
        code in _TRANSIENT_MYSQL_CODES
        or getattr(orig, "sqlstate", None) in _TRANSIENT_SQLSTATES
        or "database is locked" in str(orig)
    )


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__


class RatingsStore:
    """The ratings/movies store behind one SQLAlchemy engine.

    Args:
        url: ``sqlite:///PATH``, ``postgresql+psycopg://...`` or ``mysql+pymysql://...``. The
            schema is created if absent.

    Raises:
        StoreError: the database cannot be opened (the message names the redacted URL).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = _make_engine(url)
        self._live: sa.PoolProxiedConnection | None = None  # the live writer's connection
        self._live_pool: sa.Pool | None = None
        self._live_lock = threading.Lock()
        name = self._engine.dialect.name
        # "mysql" for MariaDB too (a mariadb:// URL names it "mariadb"): the same SQL serves both.
        self.dialect: str = "mysql" if name in mysql_paths.DIALECTS else name
        try:
            with (
                self._engine.execution_options(movierec_write=True).begin() as conn,
                self._schema_lock(conn),
            ):
                metadata.create_all(conn)
        except sa.exc.DBAPIError as exc:
            self._engine.dispose()
            raise StoreError(
                f"cannot open the ratings store at {redact_url(url)}: {_first_line(exc)}"
            ) from exc

    @classmethod
    def from_settings(cls, settings: Settings) -> RatingsStore:
        """The store at ``settings.store_url``."""
        return cls(settings.store_url)

    def close(self) -> None:
        """Release every pooled connection."""
        with self._live_lock:
            if self._live is not None:
                self._live.close()
                self._live = None
            if self._live_pool is not None:
                self._live_pool.dispose()
                self._live_pool = None
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RatingsStore({redact_url(self.url)!r})"

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """A write transaction (on SQLite taken with BEGIN IMMEDIATE: no late lock upgrade)."""
        try:
            with self._engine.execution_options(movierec_write=True).begin() as conn:
                yield conn
        except sa.exc.DBAPIError as exc:
            raise StoreError(f"the ratings store refused a write: {_first_line(exc)}") from exc

    @contextmanager
    def _driver_write(self) -> Iterator[Any]:
        """A write transaction on the driver's connection itself (see
        :mod:`movierec.data.group_writes`); the driver's errors become StoreError. The live
        writer keeps one pooled connection for itself: checking one in and out of the pool
        for each group cost a fifth of the writer's time."""
        with self._live_lock:
            raw: Any = self._live_connection().driver_connection
            try:
                group_writes.begin(raw, self.dialect)
                yield raw
                raw.commit()
            except self._engine.dialect.loaded_dbapi.Error as exc:
                self._drop_live()  # perhaps broken: the next group connects afresh
                raise StoreError(f"the ratings store refused a write: {_first_line(exc)}") from exc
            except BaseException:
                raw.rollback()
                raise

    def connect_writer(self) -> None:
        """Open the live writer's connection now (a server does at start-up), so its first
        group does not depend on the database taking a new connection: a worker that had
        not yet written failed its first post while PostgreSQL refused new connections.

        Raises:
            StoreError: the database refused the connection (the first group tries again).
        """
        with self._live_lock:
            self._live_connection()

    def _live_connection(self) -> sa.PoolProxiedConnection:
        """The live writer's connection (call holding ``_live_lock``), opened if need be."""
        if self._live is None:
            if self._live_pool is None:
                # A pool of its own, alike (same connect events): the writer keeps its
                # connection out of the pool the reads share, whose idle ones stay theirs
                # (readiness still answers while a database refuses new connections).
                self._live_pool = self._engine.pool.recreate()
            try:
                self._live = self._live_pool.connect()
            except self._engine.dialect.loaded_dbapi.Error as exc:  # the pool's: not wrapped
                raise StoreError(
                    f"the ratings store refused a connection: {_first_line(exc)}"
                ) from exc
        return self._live

    def _drop_live(self) -> None:
        if self._live is not None:
            self._live.invalidate()  # closed, rolled back, never pooled again
            self._live = None

    @contextmanager
    def _writers_turn(self) -> Iterator[None]:
        """On a SQLite file, the live writers of every process take turns on a lock file beside
        it. A writer waiting there wakes the moment the other one is done, where SQLite's own
        busy handler sleeps up to 100 ms between tries: two workers posting ratings at once
        had a p99 of 0.65 s (``benchmarks/feedback.py``)."""
        database = self._engine.url.database
        if self.dialect != "sqlite" or not database or database == ":memory:":
            yield
            return
        with exclusive_lock(Path(f"{database}.writers.lock")):
            yield

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        """A read transaction with one consistent view of the data."""
        try:
            with self._engine.connect() as plain:
                conn = plain
                if self.dialect != "sqlite":  # MySQL's default, but a server may set another
                    conn = plain.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    yield conn
        except sa.exc.DBAPIError as exc:
            raise StoreError(f"cannot read the ratings store: {_first_line(exc)}") from exc

    # ------------------------------------------------------------------ metadata

    @property
    def dataset_name(self) -> str | None:
        """The name of the dataset the store holds, or None when empty."""
        with self._read() as conn:
            return _read_meta(conn).get(_META_DATASET)

    @property
    def rating_scale(self) -> tuple[float, float] | None:
        """The (min, max) rating scale of the stored dataset, or None when empty."""
        with self._read() as conn:
            return _scale_of(_read_meta(conn))

    # ------------------------------------------------------------------ ingest

    def ingest(
        self, data: LoadedDataLike, *, replace: bool = False, force: bool = False
    ) -> IngestResult:
        """Load a source's ratings, movies and users in one transaction.

        Ratings are upserted: a (user, item) pair already stored is replaced only by a rating
        with an equal or newer timestamp. Any failure leaves the store as it was; the failure
        is recorded in ``ingestion_log`` in a separate transaction.

        Args:
            data: The parsed source.
            replace: Replace a different dataset the store holds (else that is refused), or
                reload this one from scratch.
            force: Load even if this exact input (same checksum) was ingested already.

        Raises:
            StoreError: the store holds another dataset, the data is invalid (ratings off the
                scale, unknown movie ids) or the database refused the load.
        """
        started_at, clock = _now(), time.perf_counter()
        try:
            ratings = _prepare_ratings(data.ratings, data.rating_scale)
            movies = _movie_records(as_canonical_movies(data.movies))
            users = _user_records(data.users)
            with self._ingest_lock(), self._write() as conn:
                return self._ingest_in(
                    conn,
                    data,
                    ratings=ratings,
                    movies=movies,
                    users=users,
                    replace=replace,
                    force=force,
                    started_at=started_at,
                    clock=clock,
                )
        except Exception as exc:
            self._log_failure(data, started_at, exc)
            if isinstance(exc, MovierecError):
                raise
            raise StoreError(f"ingest of {data.name!r} failed: {_first_line(exc)}") from exc

    def _ingest_in(
        self,
        conn: sa.Connection,
        data: LoadedDataLike,
        *,
        ratings: dict[str, np.ndarray],
        movies: list[dict[str, Any]],
        users: list[dict[str, Any]],
        replace: bool,
        force: bool,
        started_at: str,
        clock: float,
    ) -> IngestResult:
        if self.dialect == "postgresql":
            # Serializes ingests and appends; readers go on.
            conn.exec_driver_sql("LOCK TABLE ratings IN SHARE ROW EXCLUSIVE MODE")
        meta = _read_meta(conn)
        current = meta.get(_META_DATASET)
        log_id = _start_log(conn, data, started_at)
        n_rows = len(ratings["user_id"])

        def result(counts: tuple[int, int, int], skipped: str | None) -> IngestResult:
            return IngestResult(
                data.name, n_rows, *counts, data.report.rows_rejected, skipped, log_id,
                time.perf_counter() - clock,
            )  # fmt: skip

        if current == data.name and not (replace or force):
            reason = _already_ingested(conn, data, int(meta.get(_META_SINCE, 0)))
            if reason is not None:
                _finish_log(conn, log_id, "skipped", (0, 0, 0), {"reason": reason})
                return result((0, 0, 0), reason)
        if current is not None and current != data.name and not replace:
            raise StoreError(
                f"the store holds dataset {current!r}; refusing to load {data.name!r} into it "
                "(replace it with replace=True / --replace, or use another database)"
            )
        if replace:
            self._clear(conn)
        if replace or current is None:
            meta[_META_SINCE] = str(log_id)
        _upsert_movies(conn, movies)
        _check_movies_exist(conn, ratings["item_id"])
        _upsert_users(conn, users)
        counts = self._load_ratings(conn, ratings)
        meta[_META_DATASET] = data.name
        meta[_META_SCALE] = json.dumps([float(v) for v in data.rating_scale])
        self._write_meta(conn, meta)
        details = {"replace": replace, "force": force, "movies": len(movies), "users": len(users)}
        _finish_log(conn, log_id, "success", counts, details)
        return result(counts, None)

    @contextmanager
    def _schema_lock(self, conn: sa.Connection) -> Iterator[None]:
        """Stores opened at once (workers, pipelines) take turns to create the schema: two
        could both find a table missing, and the second CREATE TABLE fail. SQLite's write
        transaction serializes them already."""
        if self.dialect == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('movierec.schema'))")
        if self.dialect != "mysql":
            yield
            return
        with mysql_paths.named_lock(conn, "schema"):
            yield

    @contextmanager
    def _ingest_lock(self) -> Iterator[None]:
        """On MySQL, ingests one at a time: a named lock held around the whole transaction.

        LOCK TABLES would commit the transaction, and MySQL has no transaction-scoped advisory
        lock, so another connection holds it until the ingest has committed; the next ingest
        then sees what this one loaded ("already ingested"). Appends meet an ingest on the
        ratings' row locks. Elsewhere the transaction itself serializes ingests.
        """
        if self.dialect != "mysql":
            yield
            return
        with self._engine.connect() as conn, mysql_paths.named_lock(conn, "ingest"):
            yield

    def _clear(self, conn: sa.Connection) -> None:
        # Impressions name movies and users of the data set being replaced: they go too.
        if self.dialect == "postgresql":
            conn.exec_driver_sql("TRUNCATE ratings, movies, users, impressions")
        else:  # MySQL's TRUNCATE would commit the transaction
            for table in (ratings_table, movies_table, users_table, impressions_table):
                conn.execute(table.delete())

    def _write_meta(self, conn: sa.Connection, meta: dict[str, str]) -> None:
        conn.execute(dataset_meta_table.delete())
        conn.execute(dataset_meta_table.insert(), [{"key": k, "value": v} for k, v in meta.items()])

    def _load_ratings(
        self, conn: sa.Connection, cols: dict[str, np.ndarray]
    ) -> tuple[int, int, int]:
        """Upsert sorted, de-duplicated ratings; returns (inserted, updated, unchanged)."""
        if len(cols["user_id"]) == 0:
            return 0, 0, 0
        return _BULK_LOAD[self.dialect](conn, cols)

    def _log_failure(self, data: LoadedDataLike, started_at: str, exc: Exception) -> None:
        # Its own transaction: the failed one is rolled back with everything it wrote.
        try:
            with self._write() as conn:
                log_id = _start_log(conn, data, started_at)
                details = {"error": f"{type(exc).__name__}: {_first_line(exc)}"}
                _finish_log(conn, log_id, "failed", None, details)
        except (StoreError, sa.exc.SQLAlchemyError):
            pass  # the store itself is unreachable; the original error is what matters

    # ------------------------------------------------------------------ live feedback

    def append(
        self, user_id: int, item_id: int, rating: float, timestamp: int | None = None
    ) -> None:
        """Store one rating (durable on return); a newer rating replaces an older one.

        Raises:
            StoreError: no dataset loaded, the movie is unknown or the rating is off the scale.
        """
        self.append_many(
            pd.DataFrame(
                {
                    "user_id": [user_id],
                    "item_id": [item_id],
                    "rating": [rating],
                    "timestamp": [timestamp if timestamp is not None else int(time.time())],
                }
            )
        )

    def append_many(self, frame: pd.DataFrame) -> int:
        """Store ratings (columns user_id, item_id, rating, optional timestamp) in one commit.

        A missing or null timestamp means now. New users are fine; movies must exist.

        Returns:
            The number of ratings inserted or updated.

        Raises:
            StoreError: no dataset loaded, unknown movie ids or ratings off the scale.
        """
        with self._write() as conn:
            cols = _prepare_ratings(_with_timestamps(frame), _appendable_scale(conn))
            _check_movies_exist(conn, cols["item_id"])
            return sum(_BULK_UPSERT[self.dialect](conn, cols)[:2])

    def append_groups(self, groups: Sequence[RatingColumns]) -> list[int]:
        """Store several requests' ratings (canonical columns, timestamps given) in one commit.

        Group commit: one transaction and one fsync for all of them, on the driver's connection
        with a fixed handful of statements (:mod:`movierec.data.group_writes`). All or nothing:
        one bad group fails the lot (a caller retries the groups one by one to find it).

        Returns:
            Each group's number of ratings inserted or updated, in order.

        Raises:
            StoreError: as :meth:`append_many`.
        """
        rows = [group_writes.newest_rows(g) for g in groups]
        ratings = np.fromiter((r[2] for part in rows for r in part), dtype=np.float64)
        with self._writers_turn(), self._driver_write() as raw:
            read = group_writes.read_group(raw, self.dialect, _META_SCALE, rows)
            if read.scale is None:
                raise StoreError(_NO_DATASET)
            _check_scale(ratings, read.scale)
            _raise_missing(np.asarray(read.missing_movies, dtype=np.int64))
            return group_writes.upsert_groups(raw, self.dialect, rows, read)

    # ------------------------------------------------------------------ readers

    def ratings_frame(self, since: int | None = None) -> pd.DataFrame:
        """All ratings (or those with ``timestamp >= since``) with the canonical dtypes."""
        with self._read() as conn:
            return self._ratings_in(conn, since)

    def _ratings_in(self, conn: sa.Connection, since: int | None) -> pd.DataFrame:
        return _READ_RATINGS[self.dialect](conn, since)

    def movies_frame(self) -> pd.DataFrame:
        """The catalog with the canonical movie dtypes (genres as lists), sorted by item_id."""
        with self._read() as conn:
            return _read_movies(conn)

    def users_frame(self) -> pd.DataFrame:
        """Named users: user_id int64, name (None where unknown)."""
        with self._read() as conn:
            return _read_users(conn)

    def read_all(self) -> StoreContents:
        """Ratings, movies, users and metadata from one consistent read transaction."""
        with self._read() as conn:
            meta = _read_meta(conn)
            return StoreContents(
                dataset=meta.get(_META_DATASET),
                rating_scale=_scale_of(meta),
                ratings=self._ratings_in(conn, None),
                movies=_read_movies(conn),
                users=_read_users(conn),
            )

    def stats(self) -> StoreStats:
        """Counts and ranges of what the store holds."""
        r = ratings_table.c
        query = sa.select(
            sa.func.count(),
            sa.func.count(sa.distinct(r.user_id)),
            sa.func.count(sa.distinct(r.item_id)),
            sa.func.min(r.rating),
            sa.func.max(r.rating),
            sa.func.avg(r.rating),
            sa.func.min(r.timestamp),
            sa.func.max(r.timestamp),
        )
        with self._read() as conn:
            meta = _read_meta(conn)
            row = conn.execute(query).one()
            n_movies = conn.execute(sa.select(sa.func.count()).select_from(movies_table)).scalar()

        def opt(value: Any, kind: type) -> Any:
            return None if value is None else kind(value)

        return StoreStats(
            dataset=meta.get(_META_DATASET),
            rating_scale=_scale_of(meta),
            n_ratings=int(row[0]),
            n_users=int(row[1]),
            n_items=int(row[2]),
            n_movies=int(n_movies or 0),
            rating_min=opt(row[3], float),
            rating_max=opt(row[4], float),
            rating_mean=opt(row[5], float),
            first_timestamp=opt(row[6], int),
            last_timestamp=opt(row[7], int),
        )

    def max_user_id(self) -> int:
        """The largest user id with a rating (0 for an empty store): new ids start above it."""
        with self._read() as conn:
            found = conn.execute(sa.select(sa.func.max(ratings_table.c.user_id))).scalar()
        return 0 if found is None else int(found)

    def ingestion_log(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest ``limit`` ingestion attempts, newest first (details decoded)."""
        query = sa.select(ingestion_log_table).order_by(ingestion_log_table.c.id.desc())
        with self._read() as conn:
            rows = [dict(row._mapping) for row in conn.execute(query.limit(limit))]
        for row in rows:
            row["details"] = json.loads(row["details"]) if row["details"] else {}
        return rows


# ---------------------------------------------------------------------- engine


def _make_engine(url: str) -> sa.Engine:
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"not a database URL: {redact_url(url)}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend == "postgresql":
        return sa.create_engine(parsed, pool_pre_ping=True)
    if backend in mysql_paths.DIALECTS:
        return mysql_paths.make_engine(parsed)
    raise StoreError(
        f"unsupported store URL {redact_url(url)}: use sqlite:///, postgresql+psycopg:// "
        "or mysql+pymysql://"
    )


SQLITE_BUSY_TIMEOUT_S = 30  # how long a SQLite connection waits for another one's lock


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.
        dbapi_conn.isolation_level = None
        _use_wal(dbapi_conn)
        for pragma in (
            "synchronous = FULL",  # a committed append survives a power cut
            "foreign_keys = ON",
            f"busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}",
            "cache_size = -65536",
            "temp_store = MEMORY",
        ):
            dbapi_conn.execute(f"PRAGMA {pragma}")

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get("movierec_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _use_wal(dbapi_conn: Any) -> None:
    """Put the database in WAL mode. While another connection sets the mode of a new database,
    SQLite answers "database is locked" at once, without its busy handler (two stores opened
    at the same moment failed one time in two), so the mode is asked for again meanwhile."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            dbapi_conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


# ---------------------------------------------------------------------- preparation


def _with_timestamps(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a missing or null timestamp set to now."""
    frame = frame.copy()
    if "timestamp" not in frame.columns:
        frame["timestamp"] = None
    frame["timestamp"] = frame["timestamp"].fillna(int(time.time()))
    return frame


_NO_DATASET = "the store holds no dataset yet: ingest one before appending"


def _appendable_scale(conn: sa.Connection) -> tuple[float, float]:
    """The store's rating scale; StoreError when no dataset was ingested yet."""
    scale = _scale_of(_read_meta(conn))
    if scale is None:
        raise StoreError(_NO_DATASET)
    return scale


def _prepare_ratings(frame: pd.DataFrame, scale: tuple[float, float]) -> dict[str, np.ndarray]:
    """Validate ratings and return their columns sorted by (user, item), newest per pair kept.

    Raises:
        StoreError: ratings that are not finite or fall outside ``scale``.
    """
    return _newest_per_pair(_checked_columns(frame, scale))


def _newest_per_pair(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``cols`` sorted by (user, item), the newest rating per pair kept."""
    order = newest_per_pair_order(cols["user_id"], cols["item_id"], cols["timestamp"])
    if order is None:
        return cols
    return {c: v[order] for c, v in cols.items()}


def _checked_columns(frame: pd.DataFrame, scale: tuple[float, float]) -> dict[str, np.ndarray]:
    """The ratings' canonical columns; StoreError for ratings not finite or off ``scale``."""
    canonical = as_canonical_ratings(frame)
    cols = {c: canonical[c].to_numpy() for c in RATING_COLUMNS}
    _check_scale(cols["rating"], scale)
    return cols


def _check_scale(rating: np.ndarray, scale: tuple[float, float]) -> None:
    """StoreError for ratings that are not finite or fall outside ``scale``."""
    low, high = scale
    bad = ~np.isfinite(rating) | (rating < low) | (rating > high)
    if bad.any():
        examples = rating[bad][:5].tolist()
        raise StoreError(
            f"{int(bad.sum())} rating(s) outside the rating scale [{low}, {high}], e.g. {examples}"
        )


def newest_per_pair_order(
    user: np.ndarray, item: np.ndarray, timestamp: np.ndarray
) -> np.ndarray | None:
    """Row order sorting by (user, item) that keeps the newest row per pair; None if sorted.

    Among equal timestamps the last row of the input wins.
    """
    if len(user) < 2:
        return None
    du, di = np.diff(user), np.diff(item)
    if ((du > 0) | ((du == 0) & (di > 0))).all():
        return None  # the common case (MovieLens files are sorted): no sort at all
    if min(user.min(), item.min()) < 0 or max(user.max(), item.max()) >= 2**31:
        order = np.lexsort((timestamp, item, user))
        pairs = np.stack([user[order], item[order]], axis=1)
        last = np.ones(len(order), dtype=bool)
        last[:-1] = (pairs[1:] != pairs[:-1]).any(axis=1)
        return order[last]
    # One int64 key sorts ~10x faster than a lexsort over columns; only the rows of repeated
    # pairs (usually few or none) are then ordered by timestamp.
    key = (user << 32) | item
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    same_as_next = sorted_key[1:] == sorted_key[:-1]
    if not same_as_next.any():
        return order
    repeated = np.zeros(len(order), dtype=bool)
    repeated[1:] |= same_as_next
    repeated[:-1] |= same_as_next
    positions = np.flatnonzero(repeated)
    # lexsort is stable and positions follow input order within a pair: ties keep the last.
    positions = positions[np.lexsort((timestamp[order[positions]], sorted_key[positions]))]
    newest = np.ones(len(positions), dtype=bool)
    newest[:-1] = sorted_key[positions[1:]] != sorted_key[positions[:-1]]
    keep = ~repeated
    keep[positions[newest]] = True
    return order[keep]


def _movie_records(movies: pd.DataFrame) -> list[dict[str, Any]]:
    def optional_int(series: pd.Series) -> list[int | None]:
        return [None if pd.isna(v) else int(v) for v in series]

    return [
        {
            "item_id": item_id,
            "title": title,
            "year": year,
            "genres": "|".join(genres) if isinstance(genres, list | tuple | np.ndarray) else "",
            "imdb_id": imdb_id,
            "tmdb_id": tmdb_id,
        }
        for item_id, title, year, genres, imdb_id, tmdb_id in zip(
            movies["item_id"].tolist(),
            movies["title"].astype(str).tolist(),
            optional_int(movies["year"]),
            movies["genres"].tolist(),
            movies["imdb_id"].tolist(),
            optional_int(movies["tmdb_id"]),
            strict=True,
        )
    ]


def _user_records(users: pd.DataFrame | None) -> list[dict[str, Any]]:
    if users is None or users.empty:
        return []
    names = users["name"] if "name" in users.columns else pd.Series([None] * len(users))
    return [
        {"user_id": int(u), "name": None if pd.isna(n) else str(n)}
        for u, n in zip(users["user_id"].tolist(), names.tolist(), strict=True)
    ]


# ---------------------------------------------------------------------- SQL helpers


def _read_meta(conn: sa.Connection) -> dict[str, str]:
    rows = conn.execute(sa.select(dataset_meta_table.c.key, dataset_meta_table.c.value))
    return {key: value for key, value in rows}


def _scale_of(meta: dict[str, str]) -> tuple[float, float] | None:
    if _META_SCALE not in meta:
        return None
    low, high = json.loads(meta[_META_SCALE])
    return float(low), float(high)


def _start_log(conn: sa.Connection, data: LoadedDataLike, started_at: str) -> int:
    # inserted_primary_key, not RETURNING: MySQL has none (MariaDB has it since 10.5).
    inserted = conn.execute(
        ingestion_log_table.insert(),
        {
            "source": data.name,
            "checksum": data.checksum,
            "started_at": started_at,
            "status": "running",
            "rows_read": int(data.report.rows_read),
            "rows_rejected": int(data.report.rows_rejected),
        },
    )
    key = inserted.inserted_primary_key
    assert key is not None
    return int(key[0])


def _finish_log(
    conn: sa.Connection,
    log_id: int,
    status: str,
    counts: tuple[int, int, int] | None,
    details: dict[str, Any],
) -> None:
    inserted, updated, unchanged = counts if counts is not None else (None, None, None)
    conn.execute(
        ingestion_log_table.update()
        .where(ingestion_log_table.c.id == log_id)
        .values(
            finished_at=_now(),
            status=status,
            rows_inserted=inserted,
            rows_updated=updated,
            rows_unchanged=unchanged,
            details=json.dumps(details),
        )
    )


def _already_ingested(conn: sa.Connection, data: LoadedDataLike, since_log_id: int) -> str | None:
    log = ingestion_log_table.c
    row = conn.execute(
        sa.select(log.id, log.finished_at)
        .where(
            log.checksum == data.checksum,
            log.source == data.name,
            log.status == "success",
            log.id >= since_log_id,
        )
        .order_by(log.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return (
        f"{data.name} with checksum {data.checksum[:12]} was already ingested "
        f"(log #{row.id} at {row.finished_at}); pass force=True to load it again"
    )


def _upsert(conn: sa.Connection, table: sa.Table, key: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    upsert: Any
    if conn.dialect.name in mysql_paths.DIALECTS:
        stmt = mysql.insert(table)
        upsert = stmt.on_duplicate_key_update(
            {c.name: stmt.inserted[c.name] for c in table.columns if c.name != key}
        )
    else:
        dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(table)
        update = {c.name: stmt.excluded[c.name] for c in table.columns if c.name != key}
        upsert = stmt.on_conflict_do_update(index_elements=[key], set_=update)
    for start in range(0, len(rows), 50_000):
        conn.execute(upsert, rows[start : start + 50_000])


def _upsert_movies(conn: sa.Connection, movies: list[dict[str, Any]]) -> None:
    _upsert(conn, movies_table, "item_id", movies)


def _upsert_users(conn: sa.Connection, users: list[dict[str, Any]]) -> None:
    _upsert(conn, users_table, "user_id", users)


# Up to this many distinct movies are looked up by key; more read the whole catalog's ids
# (reading 10k-27k ids for every group of live ratings cost more than writing the group).
MAX_LOOKED_UP_MOVIES = 1_000


def _check_movies_exist(conn: sa.Connection, item_ids: np.ndarray) -> None:
    """Raise StoreError naming rated item ids that have no row in ``movies``."""
    wanted = pd.unique(item_ids)
    if len(wanted) == 0:
        return
    query = sa.select(movies_table.c.item_id)
    if len(wanted) <= MAX_LOOKED_UP_MOVIES:  # a few ids (live ratings): looked up by key
        query = query.where(movies_table.c.item_id.in_(wanted.tolist()))
    known = np.fromiter(conn.execute(query).scalars(), dtype=np.int64)
    _raise_missing(wanted[~np.isin(wanted, known)])


def _raise_missing(missing: np.ndarray) -> None:
    """StoreError naming some of the ``missing`` rated movie ids, if any."""
    if len(missing):
        raise StoreError(
            f"{len(missing)} rated movie id(s) are not in the catalog, "
            f"e.g. {np.sort(missing)[:5].tolist()}"
        )


# ---------------------------------------------------------------------- SQLite ratings


def _sqlite_upsert_ratings(
    conn: sa.Connection, cols: dict[str, np.ndarray]
) -> tuple[int, int, int]:
    """executemany of an upsert straight into ``ratings`` (a staging table only costs more)."""
    raw = conn.connection.driver_connection
    assert raw is not None
    count = "SELECT count(*) FROM ratings"
    before = raw.execute(count).fetchone()[0]
    changes_before = raw.total_changes
    n = len(cols["user_id"])
    for start in range(0, n, _CHUNK_ROWS):
        part = [cols[c][start : start + _CHUNK_ROWS].tolist() for c in RATING_COLUMNS]
        raw.executemany(_SQLITE_UPSERT, zip(*part, strict=True))
    inserted = raw.execute(count).fetchone()[0] - before
    updated = raw.total_changes - changes_before - inserted
    return inserted, updated, n - inserted - updated


def _sqlite_read_ratings(conn: sa.Connection, since: int | None) -> pd.DataFrame:
    raw = conn.connection.driver_connection
    assert raw is not None
    sql = 'SELECT user_id, item_id, rating, "timestamp" FROM ratings'
    cursor = (
        raw.execute(sql + ' WHERE "timestamp" >= ?', (since,))
        if since is not None
        else (raw.execute(sql))
    )
    dtype = np.dtype([(c, RATING_DTYPES[c]) for c in RATING_COLUMNS])
    # fromiter fills the arrays from the cursor directly: no list of 20M tuples in between.
    records = np.fromiter(cursor, dtype=dtype)
    return pd.DataFrame({c: records[c] for c in RATING_COLUMNS})


# ---------------------------------------------------------------------- PostgreSQL ratings


def _pg_copy_chunks(cols: dict[str, np.ndarray]) -> Iterator[memoryview]:
    """Binary COPY data for the ratings: header, ~1M-row chunks built by numpy, trailer."""
    yield memoryview(_PG_COPY_HEADER)
    n = len(cols["user_id"])
    for start in range(0, n, _CHUNK_ROWS):
        stop = min(start + _CHUNK_ROWS, n)
        tuples = np.empty(stop - start, dtype=_PG_TUPLE)
        tuples["fields"] = 4
        tuples["user_len"] = tuples["item_len"] = tuples["ts_len"] = 8
        tuples["rating_len"] = 4
        for column in RATING_COLUMNS:
            tuples[column] = cols[column][start:stop]
        yield tuples.view(np.uint8).data
    yield memoryview(_PG_COPY_TRAILER)


def _pg_copy_in(
    conn: sa.Connection, table: str, cols: dict[str, np.ndarray], *, freeze: bool
) -> None:
    raw = conn.connection.driver_connection
    assert raw is not None
    options = "FORMAT BINARY, FREEZE" if freeze else "FORMAT BINARY"
    sql = f'COPY {table} (user_id, item_id, rating, "timestamp") FROM STDIN ({options})'
    with raw.cursor() as cursor, cursor.copy(sql) as copy:
        for chunk in _pg_copy_chunks(cols):
            copy.write(chunk)


def _pg_load_ratings(conn: sa.Connection, cols: dict[str, np.ndarray]) -> tuple[int, int, int]:
    empty = conn.exec_driver_sql("SELECT NOT EXISTS (SELECT 1 FROM ratings)").scalar()
    if not empty:
        return _pg_upsert_via_staging(conn, cols)
    # Empty table (first load or replace): COPY into a bare heap, then build the key by
    # sorting once; far faster than maintaining it per row. The rows are already unique per
    # (user, item), so adding the key cannot fail. TRUNCATE (of an empty table) lets COPY
    # FREEZE skip the later hint-bit rewrite of every page. 1 GB of sort memory keeps the key
    # build of 20M rows in memory, and parallel workers share it.
    conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '1GB'")
    conn.exec_driver_sql("SET LOCAL max_parallel_maintenance_workers = 2")
    conn.exec_driver_sql("TRUNCATE ratings")
    conn.exec_driver_sql("ALTER TABLE ratings DROP CONSTRAINT ratings_pkey")
    _pg_copy_in(conn, "ratings", cols, freeze=True)
    conn.exec_driver_sql(
        "ALTER TABLE ratings ADD CONSTRAINT ratings_pkey PRIMARY KEY (user_id, item_id)"
    )
    return len(cols["user_id"]), 0, 0


def _pg_upsert_via_staging(
    conn: sa.Connection, cols: dict[str, np.ndarray]
) -> tuple[int, int, int]:
    conn.exec_driver_sql(
        "CREATE TEMP TABLE ratings_staging (user_id bigint, item_id bigint, rating real, "
        '"timestamp" bigint) ON COMMIT DROP'
    )
    _pg_copy_in(conn, "ratings_staging", cols, freeze=False)
    # xmax = 0 marks a freshly inserted row; rows the WHERE clause skipped are not returned.
    inserted, updated = conn.exec_driver_sql(
        "WITH up AS (INSERT INTO ratings SELECT * FROM ratings_staging "
        f"ON CONFLICT (user_id, item_id) DO UPDATE SET {_UPSERT_SET} "
        "RETURNING (xmax = 0) AS inserted) "
        "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up"
    ).one()
    conn.exec_driver_sql("DROP TABLE ratings_staging")
    return int(inserted), int(updated), len(cols["user_id"]) - inserted - updated


def _pg_read_ratings(conn: sa.Connection, since: int | None) -> pd.DataFrame:
    """Read ratings as big-endian byte strings aggregated server-side, one per column.

    ``COPY ... TO STDOUT`` sends one message per row, which costs ~2 µs each in Python (43 s
    for 20M); ``string_agg`` of ``int8send`` returns ~1M values per column in one bytea that
    numpy reads as is (~9 s for 20M). The heap is walked in block ranges (TID range scans).
    """
    raw = conn.connection.driver_connection
    assert raw is not None
    n_blocks = conn.exec_driver_sql(
        "SELECT pg_relation_size('ratings') / current_setting('block_size')::int"
    ).scalar_one()
    where_since = ' AND "timestamp" >= %(since)s' if since is not None else ""
    sql = (
        "SELECT string_agg(int8send(user_id), ''::bytea), string_agg(int8send(item_id), ''::bytea),"
        " string_agg(float4send(rating), ''::bytea), string_agg(int8send(\"timestamp\"), ''::bytea)"
        " FROM ratings WHERE ctid >= %(lo)s::tid AND (%(hi)s::tid IS NULL OR ctid < %(hi)s::tid)"
        + where_since
    )
    wire = {"user_id": ">i8", "item_id": ">i8", "rating": ">f4", "timestamp": ">i8"}
    parts: dict[str, list[np.ndarray]] = {c: [] for c in RATING_COLUMNS}
    with raw.cursor(binary=True) as cursor:
        for first in range(0, int(n_blocks) + 1, _PG_READ_BLOCKS):
            last = first + _PG_READ_BLOCKS
            # The last range is open-ended: pages added since the size was read may hold rows.
            hi = None if last > n_blocks else f"({last},0)"
            cursor.execute(sql, {"lo": f"({first},0)", "hi": hi, "since": since})
            row = cursor.fetchone()
            if row is None or row[0] is None:
                continue
            for column, blob in zip(RATING_COLUMNS, row, strict=True):
                parts[column].append(np.frombuffer(blob, dtype=wire[column]))
    return pd.DataFrame(
        {
            c: np.concatenate(parts[c]).astype(RATING_DTYPES[c])
            if parts[c]
            else np.empty(0, RATING_DTYPES[c])
            for c in RATING_COLUMNS
        }
    )


# ---------------------------------------------------------------------- movies and users


def _read_movies(conn: sa.Connection) -> pd.DataFrame:
    m = movies_table.c
    rows = conn.execute(
        sa.select(m.item_id, m.title, m.year, m.genres, m.imdb_id, m.tmdb_id).order_by(m.item_id)
    ).all()
    if not rows:
        return empty_movies()
    item_id, title, year, genres, imdb_id, tmdb_id = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "item_id": np.asarray(item_id, dtype=np.int64),
            "title": pd.Series(title, dtype=object),
            "year": pd.array(year, dtype="Int64"),
            "genres": pd.Series([g.split("|") if g else [] for g in genres], dtype=object),
            "imdb_id": pd.Series(imdb_id, dtype=object),
            "tmdb_id": pd.array(tmdb_id, dtype="Int64"),
        }
    )


def _read_users(conn: sa.Connection) -> pd.DataFrame:
    rows = conn.execute(
        sa.select(users_table.c.user_id, users_table.c.name).order_by(users_table.c.user_id)
    ).all()
    return pd.DataFrame(
        {
            "user_id": np.asarray([r[0] for r in rows], dtype=np.int64),
            "name": pd.Series([r[1] for r in rows], dtype=object),
        }
    )


# ---------------------------------------------------------------------- per dialect

_RatingColumns = dict[str, np.ndarray]
# Into the ratings table, empty or not: (inserted, updated, unchanged).
_BULK_LOAD: dict[str, Callable[[sa.Connection, _RatingColumns], tuple[int, int, int]]] = {
    "postgresql": _pg_load_ratings,
    "mysql": mysql_paths.load_ratings,
    "sqlite": _sqlite_upsert_ratings,
}
# Into a table that holds ratings already (appends).
_BULK_UPSERT: dict[str, Callable[[sa.Connection, _RatingColumns], tuple[int, int, int]]] = {
    "postgresql": _pg_upsert_via_staging,
    "mysql": mysql_paths.upsert_many,
    "sqlite": _sqlite_upsert_ratings,
}
_READ_RATINGS: dict[str, Callable[[sa.Connection, int | None], pd.DataFrame]] = {
    "postgresql": _pg_read_ratings,
    "mysql": mysql_paths.read_ratings,
    "sqlite": _sqlite_read_ratings,
}

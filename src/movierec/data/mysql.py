"""The ratings store's MySQL/MariaDB paths: engine, bulk load, upserts, fast reads.

:class:`movierec.data.store.RatingsStore` calls these for ``mysql+pymysql://`` (and
``mariadb+pymysql://``) URLs; everything else it does through SQLAlchemy Core like on SQLite and
PostgreSQL. What differs from PostgreSQL, and why:

* DDL commits the open transaction, so the one-transaction ingest never drops or adds a key:
  ratings go into the clustered primary key as they come, sorted by it (InnoDB appends pages).
* Bulk loads use ``LOAD DATA LOCAL INFILE`` of ~1M-row CSV chunks written by Arrow (C++); a
  server that refuses local files (MySQL 8's default), or a URL that says ``?local_infile=0``,
  gets large multi-row INSERTs instead.
* The newest-wins upsert is ``INSERT ... ON DUPLICATE KEY UPDATE`` with ``IF`` on the timestamp.
* MySQL prints a FLOAT with 6 significant digits (73.12346 reads back as 73.1235), so ratings are
  always read as ``CAST(rating AS DOUBLE)``: the exact float32 value, as SQLite and PostgreSQL
  give it, hence the same snapshot hash.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from movierec.data.schema import RATING_COLUMNS, RATING_DTYPES
from movierec.errors import StoreError

__all__ = [
    "DIALECTS",
    "UPSERT",
    "RatingType",
    "load_ratings",
    "make_engine",
    "named_lock",
    "read_ratings",
    "upsert_many",
]

# SQLAlchemy names the dialect "mysql" or "mariadb" after the URL's scheme; the SQL is the same.
DIALECTS = ("mysql", "mariadb")

_CHUNK_ROWS = 1_000_000
# Rows per multi-row INSERT when the server refuses LOAD DATA LOCAL INFILE (~40 bytes a row
# of SQL text: ~2 MB statements, well under the 16 MB default max_allowed_packet).
_INSERT_ROWS = 50_000
# A row of the read path's text: four numbers of at most 20 characters plus separators.
_MAX_ROW_TEXT = 90
_COLUMN_LIST = "(user_id, item_id, rating, `timestamp`)"
# Newest wins. The rating is assigned first: MySQL evaluates the assignments in order, so the
# timestamp test of both must see the stored timestamp, not one just replaced. A row given its
# current values counts as unchanged (the server compares the stored bytes).
UPSERT = (
    f"INSERT INTO ratings {_COLUMN_LIST} {{source}} ON DUPLICATE KEY UPDATE "
    "ratings.rating = IF(VALUES(`timestamp`) >= ratings.`timestamp`, VALUES(rating), "
    "ratings.rating), ratings.`timestamp` = IF(VALUES(`timestamp`) >= ratings.`timestamp`, "
    "VALUES(`timestamp`), ratings.`timestamp`)"
)


class RatingType(sa.types.TypeDecorator[float]):
    """MySQL's 4-byte FLOAT (PostgreSQL's ``real``), selected as ``CAST(... AS DOUBLE)``.

    Any Core select of a rating (a user's history, ``min``/``max`` in stats) then gets the exact
    value: MySQL's own text form of a FLOAT keeps only 6 significant digits.
    """

    impl = mysql.FLOAT
    cache_ok = True

    def column_expression(self, column: Any) -> Any:
        return sa.cast(column, mysql.DOUBLE())


def make_engine(url: sa.URL) -> sa.Engine:
    """An engine with utf8mb4 connections and the client side of LOAD DATA LOCAL enabled,
    unless the URL says ``?local_infile=0``.

    A client that accepts LOAD DATA LOCAL sends whatever file the server names: a store whose
    server is not trusted as much as the host's files turns it off (bulk loads then use
    multi-row INSERTs, 2.6x slower).
    """
    return sa.create_engine(
        url,
        pool_pre_ping=True,
        connect_args={"local_infile": _client_local_infile(url), "charset": "utf8mb4"},
    )


def _client_local_infile(url: sa.URL) -> bool:
    return str(url.query.get("local_infile", "1")).lower() not in {"0", "false", "off"}


@contextmanager
def named_lock(conn: sa.Connection, what: str, timeout_s: int = 3600) -> Iterator[None]:
    """MySQL's named lock ``what`` of this database, held by ``conn``'s session until the block
    ends (MySQL has no transaction-scoped lock but LOCK TABLES, which commits the transaction).

    Raises:
        StoreError: another session held it for ``timeout_s``.
    """
    name = f"CONCAT('movierec.{what}.', DATABASE())"  # named locks are server-wide
    if conn.exec_driver_sql(f"SELECT GET_LOCK({name}, {int(timeout_s)})").scalar() != 1:
        raise StoreError(f"another session has held the store's {what} lock for {timeout_s} s")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"SELECT RELEASE_LOCK({name})")


def _raw(conn: sa.Connection) -> Any:
    raw = conn.connection.driver_connection
    assert raw is not None
    return raw


def _local_infile_allowed(conn: sa.Connection) -> bool:
    """Whether both sides allow LOAD DATA LOCAL (MySQL 8 servers refuse it by default)."""
    if not _client_local_infile(conn.engine.url):
        return False
    return bool(conn.exec_driver_sql("SELECT @@GLOBAL.local_infile").scalar())


# ---------------------------------------------------------------------- writing


def load_ratings(conn: sa.Connection, cols: dict[str, np.ndarray]) -> tuple[int, int, int]:
    """Upsert sorted, de-duplicated ratings; returns (inserted, updated, unchanged)."""
    n = len(cols["user_id"])
    if conn.exec_driver_sql("SELECT NOT EXISTS (SELECT 1 FROM ratings)").scalar():
        # An empty table: straight into it, no staging copy. The rows are unique per key, so
        # the load either inserts all of them or fails (a concurrent writer's row) as a whole.
        _copy_in(conn, "ratings", cols, local_infile=_local_infile_allowed(conn))
        return n, 0, 0
    return upsert_many(conn, cols)


def upsert_many(conn: sa.Connection, cols: dict[str, np.ndarray]) -> tuple[int, int, int]:
    """Bulk upsert through a temporary staging table; (inserted, updated, unchanged)."""
    # Temporary tables neither commit the transaction nor show to other sessions.
    conn.exec_driver_sql(
        "CREATE TEMPORARY TABLE ratings_staging (user_id BIGINT NOT NULL, "
        "item_id BIGINT NOT NULL, rating FLOAT NOT NULL, `timestamp` BIGINT NOT NULL, "
        "PRIMARY KEY (user_id, item_id))"
    )
    try:
        _copy_in(conn, "ratings_staging", cols, local_infile=_local_infile_allowed(conn))
        existing = conn.exec_driver_sql(
            "SELECT count(*) FROM ratings_staging s JOIN ratings r USING (user_id, item_id) "
            "FOR UPDATE"
        ).scalar_one()
        affected = _execute(conn, UPSERT.format(source="SELECT * FROM ratings_staging"))
    finally:
        conn.exec_driver_sql("DROP TEMPORARY TABLE IF EXISTS ratings_staging")
    return _counts(len(cols["user_id"]), int(existing), affected)


def _counts(n: int, existing: int, affected: int) -> tuple[int, int, int]:
    """(inserted, updated, unchanged) of an upsert of ``n`` rows, ``existing`` of them stored.

    ``existing`` is counted by a locking read: a plain one would see the transaction's snapshot,
    not the rows a concurrent append committed since, which the upsert then meets.

    SQLAlchemy's MySQL drivers connect with CLIENT_FOUND_ROWS, under which an upsert counts 1
    per inserted row, 2 per updated row and 1 per row left as it was: ``affected = n + updated``.
    """
    updated = affected - n
    return n - existing, updated, existing - updated


def _execute(conn: sa.Connection, sql: str) -> int:
    with _raw(conn).cursor() as cursor:
        cursor.execute(sql)
        return int(cursor.rowcount)


def _rows(cols: dict[str, np.ndarray], start: int, stop: int) -> list[tuple[Any, ...]]:
    parts = [cols[c][start:stop].tolist() for c in RATING_COLUMNS]
    return list(zip(*parts, strict=True))


def _copy_in(
    conn: sa.Connection, table: str, cols: dict[str, np.ndarray], *, local_infile: bool
) -> None:
    """Insert all rows into ``table`` (no key conflicts expected), in ~1M-row chunks."""
    n = len(cols["user_id"])
    if not local_infile:
        insert = f"INSERT INTO {table} {_COLUMN_LIST} VALUES (%s, %s, %s, %s)"
        with _raw(conn).cursor() as cursor:
            for start in range(0, n, _INSERT_ROWS):  # the driver makes each one multi-row
                cursor.executemany(insert, _rows(cols, start, start + _INSERT_ROWS))
        return
    with tempfile.TemporaryDirectory(prefix="movierec-load-") as folder:
        for path, rows in _csv_chunks(cols, Path(folder) / "ratings.csv"):
            with _raw(conn).cursor() as cursor:
                loaded = cursor.execute(
                    f"LOAD DATA LOCAL INFILE %s INTO TABLE {table} CHARACTER SET ascii "
                    f"FIELDS TERMINATED BY ',' LINES TERMINATED BY '\\n' {_COLUMN_LIST}",
                    (str(path),),
                )
            # LOCAL turns rejected rows into warnings; a short count must not pass silently.
            if loaded != rows:
                raise StoreError(f"LOAD DATA into {table} took {loaded:,} of {rows:,} rows")


def _csv_chunks(cols: dict[str, np.ndarray], path: Path) -> Iterator[tuple[Path, int]]:
    """Write each chunk of ratings to ``path`` as CSV (overwritten per chunk) and yield it.

    Arrow writes a float32 in its shortest exact form ("3.7"), which the server parses back to
    the same FLOAT.
    """
    options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
    n = len(cols["user_id"])
    for start in range(0, n, _CHUNK_ROWS):
        chunk = pa.table({c: cols[c][start : start + _CHUNK_ROWS] for c in RATING_COLUMNS})
        pa_csv.write_csv(chunk, str(path), options)
        yield path, chunk.num_rows


# ---------------------------------------------------------------------- reading


def read_ratings(conn: sa.Connection, since: int | None) -> pd.DataFrame:
    """All ratings (or those rated at ``since`` or later) with the canonical dtypes.

    Row by row, a pure-Python driver parses every field of 20M rows itself. Instead the server
    joins ~100k-1M rows into one CSV text per query (``GROUP_CONCAT``, sized to fit its packet
    limit), which Arrow's C++ reader parses; blocks follow the primary key (keyset paging).
    Rows come sorted within a block most often, not always.
    """
    block = _block_rows(conn)
    # GROUP_CONCAT cuts its result at this many bytes (with only a warning): above a block's.
    conn.exec_driver_sql(f"SET SESSION group_concat_max_len = {block * _MAX_ROW_TEXT}")
    since_sql = "" if since is None else f" AND `timestamp` >= {int(since)}"
    parts: list[pa.Table] = []
    after = (np.iinfo(np.int64).min, np.iinfo(np.int64).min)
    while True:
        count, text = conn.exec_driver_sql(
            "SELECT count(*), GROUP_CONCAT(CONCAT_WS(',', user_id, item_id, "
            "CAST(rating AS DOUBLE), `timestamp`) SEPARATOR '\\n') "
            "FROM (SELECT user_id, item_id, rating, `timestamp` FROM ratings "
            "WHERE (user_id > %(u)s OR (user_id = %(u)s AND item_id > %(i)s))" + since_sql
            + " ORDER BY user_id, item_id LIMIT %(n)s) AS page",
            {"u": after[0], "i": after[1], "n": block},
        ).one()  # fmt: skip
        if not count:
            break
        table = _parse_block(text, int(count))
        parts.append(table)
        if count < block:
            break
        after = _last_key(table)
    return _frame(parts)


def _last_key(table: pa.Table) -> tuple[int, int]:
    """The block's greatest (user, item): where the next block starts.

    Sorting inside GROUP_CONCAT doubled the read time, so blocks come in any order (snapshots
    sort them; most often they are sorted already).
    """
    users, items = table["user_id"].to_numpy(), table["item_id"].to_numpy()
    last_user = users.max()
    return int(last_user), int(items[users == last_user].max())


def _block_rows(conn: sa.Connection) -> int:
    packet = int(conn.exec_driver_sql("SELECT @@max_allowed_packet").scalar_one())
    return max(1_000, min(_CHUNK_ROWS, packet // _MAX_ROW_TEXT))


def _parse_block(text: str | bytes, count: int) -> pa.Table:
    data = text.encode("ascii") if isinstance(text, str) else text
    types = {"user_id": pa.int64(), "item_id": pa.int64(), "rating": pa.float64(),
             "timestamp": pa.int64()}  # fmt: skip
    try:
        table = pa_csv.read_csv(
            pa.py_buffer(data),
            read_options=pa_csv.ReadOptions(column_names=list(RATING_COLUMNS)),
            convert_options=pa_csv.ConvertOptions(column_types=types),
        )
    except pa.ArrowInvalid:  # cut inside a row
        table = None
    # GROUP_CONCAT cuts an over-long result with only a warning: never lose ratings silently.
    if table is None or table.num_rows != count:
        raise StoreError(f"the MySQL server cut a block of {count:,} ratings (GROUP_CONCAT)")
    return table


def _frame(parts: list[pa.Table]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame({c: np.empty(0, RATING_DTYPES[c]) for c in RATING_COLUMNS})
    whole = pa.concat_tables(parts)
    return pd.DataFrame(
        {c: whole[c].to_numpy().astype(RATING_DTYPES[c], copy=False) for c in RATING_COLUMNS}
    )

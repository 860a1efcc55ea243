"""The live rating writer's groups, written on the driver's own connection.

:class:`movierec.serving.writer.RatingWriter` stores the ratings of concurrent posts in one
transaction. Written through SQLAlchemy Core, with a statement per request, a group of ~20
one-rating posts cost ~2.9 ms of CPU and ~5.4 ms with the write lock held: ~140 µs a rating
beside a ~190 µs request, so a server took 2,300-2,900 ratings/s where it answered 5,500 with
the writes skipped (``benchmarks/feedback.py``). Most of it was not SQL but the GIL: each driver
call gives the GIL up and must win it back from the thread answering requests, a wait of up to
a switch interval each time. So a group here is a fixed handful of driver calls, whatever its
size: one statement reads what the checks need, one writes every rating, then the commit.

Each request still gets its own count of ratings inserted or updated. A stored rating changes
only for a newer-or-equal timestamp that changes it (``UPSERT_SET``, the same rule as every
append); :func:`changed_counts` replays that rule over the group in order, from the pairs
already stored, which is exact because the group's transaction holds the write lock (SQLite's
writers take turns; see :meth:`RatingsStore._writers_turn`; MySQL's group reads its stored
pairs with a locking read). PostgreSQL's writers do not take turns, so there the statement
itself says which pairs it changed (``RETURNING``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from movierec.data.mysql import UPSERT as MYSQL_UPSERT
from movierec.data.schema import RATING_COLUMNS, RATING_DTYPES

UPSERT_SET = (
    'rating = excluded.rating, "timestamp" = excluded."timestamp" '
    'WHERE excluded."timestamp" >= ratings."timestamp" '
    'AND (excluded.rating <> ratings.rating OR excluded."timestamp" <> ratings."timestamp")'
)
"""An upsert's update: the newest rating per pair wins; an identical one is no change."""

SQLITE_UPSERT = (
    'INSERT INTO ratings (user_id, item_id, rating, "timestamp") VALUES (?, ?, ?, ?) '
    f"ON CONFLICT (user_id, item_id) DO UPDATE SET {UPSERT_SET}"
)

Pair = tuple[int, int]
Rows = list[list[Any]]  # (user, item, rating, timestamp) as Python values

# A group reads what its checks need in one statement of one row (each driver call gives the GIL
# up, and each row a SQLite cursor steps through is a call): the rating scale, the rated movies
# the catalog lacks and, on SQLite, the group's pairs already stored (MySQL reads those in a
# second, locking, statement). The group's rows travel as one JSON array on SQLite and MySQL, as
# arrays on PostgreSQL: one parameter, one prepared statement, however many rows (``WHERE
# true`` keeps SQLite from reading ON CONFLICT as a join's ON).
_ITEM = "json_extract(j.value, '$[1]')"
_MYSQL_ROWS = (
    "JSON_TABLE(%s, '$[*]' COLUMNS (n FOR ORDINALITY, user_id BIGINT PATH '$[0]', "
    "item_id BIGINT PATH '$[1]', rating FLOAT PATH '$[2]', `timestamp` BIGINT PATH '$[3]')) AS j"
)
_SQL = {
    "sqlite": {
        "read": (
            "SELECT (SELECT value FROM dataset_meta WHERE key = ?1), "
            f"(SELECT json_group_array(DISTINCT {_ITEM}) FROM json_each(?2) AS j "
            f"WHERE NOT EXISTS (SELECT 1 FROM movies AS m WHERE m.item_id = {_ITEM})), "
            '(SELECT json_group_array(json_array(r.user_id, r.item_id, r.rating, r."timestamp")) '
            "FROM json_each(?2) AS j JOIN ratings AS r "
            f"ON r.user_id = json_extract(j.value, '$[0]') AND r.item_id = {_ITEM})"
        ),
        "upsert": (
            'INSERT INTO ratings (user_id, item_id, rating, "timestamp") '
            "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
            "json_extract(value, '$[2]'), json_extract(value, '$[3]') FROM json_each(?) WHERE true "
            f"ON CONFLICT (user_id, item_id) DO UPDATE SET {UPSERT_SET}"
        ),
    },
    "mysql": {
        "read": (
            "SELECT (SELECT value FROM dataset_meta WHERE `key` = %s), "
            f"(SELECT JSON_ARRAYAGG(DISTINCT j.item_id) FROM {_MYSQL_ROWS} "
            "WHERE NOT EXISTS (SELECT 1 FROM movies AS m WHERE m.item_id = j.item_id))"
        ),
        # A locking read: the pairs stay as read until the commit, and the gaps of those not
        # stored yet stay empty (InnoDB's next-key locks), so the replayed counts hold while
        # another worker writes.
        "stored": (
            "SELECT r.user_id, r.item_id, CAST(r.rating AS DOUBLE), r.`timestamp` "
            f"FROM {_MYSQL_ROWS} JOIN ratings AS r "
            "ON r.user_id = j.user_id AND r.item_id = j.item_id FOR UPDATE"
        ),
        "upsert": MYSQL_UPSERT.format(
            source="SELECT j.user_id, j.item_id, j.rating, j.`timestamp` "
            f"FROM {_MYSQL_ROWS} ORDER BY j.n"
        ),
    },
    "postgresql": {
        "read": (
            "SELECT (SELECT value FROM dataset_meta WHERE key = %s), "
            "ARRAY(SELECT DISTINCT i FROM unnest(%s::bigint[]) AS i "
            "WHERE NOT EXISTS (SELECT 1 FROM movies WHERE item_id = i))"
        ),
        "upsert": (
            "INSERT INTO ratings SELECT * FROM "
            "unnest(%s::bigint[], %s::bigint[], %s::real[], %s::bigint[]) "
            f"ON CONFLICT (user_id, item_id) DO UPDATE SET {UPSERT_SET} "
            "RETURNING user_id, item_id"
        ),
    },
}


@dataclass(frozen=True)
class GroupRead:
    """What a group's checks and counts need from the store, read in its transaction."""

    scale: tuple[float, float] | None  # None before any dataset
    missing_movies: list[int]  # rated movies the catalog lacks
    stored: dict[Pair, tuple[float, int]]  # SQLite, MySQL: the group's pairs stored already
    sent: str = ""  # SQLite, MySQL: the group's rows as the JSON every statement takes


def begin(raw: Any, dialect: str) -> None:
    """Open the write transaction (PostgreSQL's driver opens one with the first statement)."""
    if dialect == "sqlite":
        raw.execute("BEGIN IMMEDIATE")  # the write lock now: no late upgrade, no deadlock
    elif dialect == "mysql":
        raw.begin()


def read_group(raw: Any, dialect: str, scale_key: str, rows: list[Rows]) -> GroupRead:
    """The scale (the dataset_meta ``scale_key``), missing movies and stored pairs of ``rows``."""
    if dialect == "postgresql":
        items = [row[1] for part in rows for row in part]
        scale, missing = _fetch(raw, _SQL[dialect]["read"], (scale_key, items))[0]
        return GroupRead(_scale(scale), list(missing), {})
    sent = json.dumps([row for part in rows for row in part])
    if dialect == "sqlite":
        scale, missing, found = _fetch(raw, _SQL[dialect]["read"], (scale_key, sent))[0]
        found = json.loads(found)
    else:  # MySQL: the stored pairs in a second, locking, statement
        scale, missing = _fetch(raw, _SQL[dialect]["read"], (scale_key, sent))[0]
        found = _fetch(raw, _SQL[dialect]["stored"], (sent,))
    # Stored ratings come back through JSON's 15 digits (SQLite) or as doubles (MySQL); every
    # rating was a float32 once, which both still name exactly: that float32 is what is compared.
    stored = {(u, i): (_as_float32(r), t) for u, i, r, t in found}
    return GroupRead(_scale(scale), json.loads(missing or "[]"), stored, sent)


def upsert_groups(raw: Any, dialect: str, rows: list[Rows], read: GroupRead) -> list[int]:
    """Write every group's rows in one statement; each group's number of ratings inserted or
    updated. A group's pairs are distinct (the newest rating per pair kept)."""
    if dialect == "postgresql":
        return _pg_upsert(raw, rows)
    _fetch(raw, _SQL[dialect]["upsert"], (read.sent,))
    return changed_counts(rows, read.stored)


def newest_rows(columns: Any) -> Rows:
    """One request's ratings (columns ``user_id``, ``item_id``, ``rating``, ``timestamp``) as
    rows of Python values, the newest per (user, movie) pair kept (the last of equal times, as
    every append keeps)."""
    newest: dict[Pair, list[Any]] = {}
    # In the store's own types: a rating is the float32 it will be once stored.
    values = (np.asarray(getattr(columns, c), RATING_DTYPES[c]).tolist() for c in RATING_COLUMNS)
    for user, item, rating, timestamp in zip(*values, strict=True):
        old = newest.get((user, item))
        if old is None or timestamp >= old[3]:
            newest[(user, item)] = [user, item, rating, timestamp]
    return list(newest.values())


def changed_counts(groups: list[Rows], stored: dict[Pair, tuple[float, int]]) -> list[int]:
    """Each group's count of rows an upsert in this order changes, from the pairs ``stored``
    before it (``UPSERT_SET``'s rule, replayed)."""
    state = dict(stored)
    counts = []
    for rows in groups:
        changed = 0
        for user, item, rating, timestamp in rows:
            old = state.get((user, item))
            if old is None or (timestamp >= old[1] and (rating != old[0] or timestamp != old[1])):
                state[(user, item)] = (rating, timestamp)
                changed += 1
        counts.append(changed)
    return counts


def _pg_upsert(raw: Any, rows: list[Rows]) -> list[int]:
    """One ``RETURNING`` statement when no pair is in two groups (it cannot change a row
    twice); else a statement per group, in order."""
    owner: dict[Pair, int] = {}
    for index, part in enumerate(rows):
        for user, item, *_ in part:
            if owner.setdefault((user, item), index) != index:
                return [_pg_returning(raw, [part])[0] for part in rows]
    return _pg_returning(raw, rows)


def _pg_returning(raw: Any, rows: list[Rows]) -> list[int]:
    owner = {(row[0], row[1]): index for index, part in enumerate(rows) for row in part}
    arrays = [list(column) for column in zip(*(row for part in rows for row in part), strict=True)]
    changed = Counter(owner[(u, i)] for u, i in _fetch(raw, _SQL["postgresql"]["upsert"], arrays))
    return [changed[index] for index in range(len(rows))]


def _scale(value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    low, high = json.loads(value)
    return float(low), float(high)


def _as_float32(value: float) -> float:
    return float(np.float32(value))


def _fetch(raw: Any, sql: str, params: Sequence[Any]) -> list[Any]:
    """Every row of one statement (none for a write), on a sqlite3, psycopg or PyMySQL
    connection."""
    cursor = raw.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()
    finally:
        cursor.close()

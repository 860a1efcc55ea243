"""The live rating writer's groups, written on the driver's own connection (SQLite, PostgreSQL).

:class:`movierec.serving.writer.RatingWriter` stores the ratings of concurrent posts in one
transaction. Written through SQLAlchemy Core, with a statement per request, a group of ~20
one-rating posts cost ~2.9 ms of CPU and ~5.4 ms with the write lock held: ~140 µs a rating
beside a ~190 µs request, so a server took 2,300-2,900 ratings/s where it answered 5,500 with
the writes skipped (``benchmarks/feedback.py``). Most of it was not SQL but the GIL: each driver
call gives the GIL up and must win it back from the thread answering requests, a wait of up to
a switch interval each time. So a group here is a fixed handful of driver calls, whatever its
size: read the scale and the known movies, read the group's pairs already stored, write every
rating in one statement.

Each request still gets its own count of ratings inserted or updated. A stored rating changes
only for a newer-or-equal timestamp that changes it (``UPSERT_SET``, the same rule as every
append); :func:`changed_counts` replays that rule over the group in order, from the pairs
already stored, which is exact because the group's transaction holds the write lock (SQLite's
writers take turns; see :meth:`RatingsStore._writers_turn`). PostgreSQL's writers do not take
turns, so there the statement itself says which pairs it changed (``RETURNING``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from movierec.data.schema import RATING_COLUMNS

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

Columns = dict[str, np.ndarray]
Pair = tuple[int, int]
Rows = list[list[Any]]  # (user, item, rating, timestamp) as Python values

# The group's rows travel as one JSON array: one parameter, one prepared statement, however
# many rows (``WHERE true`` keeps SQLite from reading ON CONFLICT as a join's ON).
_SQLITE_ROWS = (
    "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
    "json_extract(value, '$[2]'), json_extract(value, '$[3]') FROM json_each(?) WHERE true"
)
_SQL = {
    "sqlite": {
        "scale": "SELECT value FROM dataset_meta WHERE key = ?",
        "known": "SELECT item_id FROM movies WHERE item_id IN (SELECT value FROM json_each(?))",
        "stored": (
            'SELECT r.user_id, r.item_id, r.rating, r."timestamp" FROM json_each(?) AS j '
            "JOIN ratings AS r ON r.user_id = json_extract(j.value, '$[0]') "
            "AND r.item_id = json_extract(j.value, '$[1]')"
        ),
        "upsert": (
            f'INSERT INTO ratings (user_id, item_id, rating, "timestamp") {_SQLITE_ROWS} '
            f"ON CONFLICT (user_id, item_id) DO UPDATE SET {UPSERT_SET}"
        ),
    },
    "postgresql": {
        "scale": "SELECT value FROM dataset_meta WHERE key = %s",
        "known": "SELECT item_id FROM movies WHERE item_id = ANY(%s)",
        "upsert": (
            "INSERT INTO ratings SELECT * FROM "
            "unnest(%s::bigint[], %s::bigint[], %s::real[], %s::bigint[]) "
            f"ON CONFLICT (user_id, item_id) DO UPDATE SET {UPSERT_SET} "
            "RETURNING user_id, item_id"
        ),
    },
}


def begin(raw: Any, dialect: str) -> None:
    """Open the write transaction (PostgreSQL's driver opens one with the first statement)."""
    if dialect == "sqlite":
        raw.execute("BEGIN IMMEDIATE")  # the write lock now: no late upgrade, no deadlock


def stored_scale(raw: Any, dialect: str, key: str) -> tuple[float, float] | None:
    """The store's rating scale (the dataset_meta ``key``), None before any dataset."""
    row = _fetch(raw, _SQL[dialect]["scale"], (key,))
    if not row:
        return None
    low, high = json.loads(row[0][0])
    return float(low), float(high)


def known_movies(raw: Any, dialect: str, item_ids: np.ndarray) -> np.ndarray:
    """Those of the distinct ``item_ids`` the catalog holds."""
    ids = item_ids.tolist()
    rows = _fetch(raw, _SQL[dialect]["known"], (json.dumps(ids) if dialect == "sqlite" else ids,))
    return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))


def upsert_groups(raw: Any, dialect: str, groups: Sequence[Columns]) -> list[int]:
    """Write every group's ratings in one statement; each group's number of ratings inserted
    or updated. A group's pairs are distinct (the newest rating per pair kept)."""
    rows = [columns_rows(g) for g in groups]
    if dialect == "sqlite":
        everything = json.dumps([row for part in rows for row in part])
        found = _fetch(raw, _SQL[dialect]["stored"], (everything,))
        stored = {(u, i): (r, t) for u, i, r, t in found}
        raw.execute(_SQL[dialect]["upsert"], (everything,))
        return changed_counts(rows, stored)
    return _pg_upsert(raw, groups, rows)


def columns_rows(columns: Columns) -> Rows:
    """The rows (user, item, rating, timestamp) of canonical rating columns, as Python values."""
    return [list(row) for row in zip(*(columns[c].tolist() for c in RATING_COLUMNS), strict=True)]


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


def _pg_upsert(raw: Any, groups: Sequence[Columns], rows: list[Rows]) -> list[int]:
    """One ``RETURNING`` statement when no pair is in two groups (it cannot change a row
    twice); else a statement per group, in order."""
    owner: dict[Pair, int] = {}
    for index, part in enumerate(rows):
        for user, item, *_ in part:
            if owner.setdefault((user, item), index) != index:
                return [_pg_returning(raw, [g], [p])[0] for g, p in zip(groups, rows, strict=True)]
    return _pg_returning(raw, groups, rows)


def _pg_returning(raw: Any, groups: Sequence[Columns], rows: list[Rows]) -> list[int]:
    owner = {(row[0], row[1]): index for index, part in enumerate(rows) for row in part}
    arrays = [np.concatenate([g[c] for g in groups]).tolist() for c in RATING_COLUMNS]
    changed = Counter(owner[(u, i)] for u, i in _fetch(raw, _SQL["postgresql"]["upsert"], arrays))
    return [changed[index] for index in range(len(groups))]


def _fetch(raw: Any, sql: str, params: Sequence[Any]) -> list[Any]:
    """Every row of one statement, on a sqlite3 or psycopg connection."""
    cursor = raw.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()
    finally:
        cursor.close()

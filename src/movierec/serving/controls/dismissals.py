"""Dismissals: movies a user never wants recommended again, until they undo it.

Kept in the ratings store's ``dismissals`` table, which every worker and replica shares. A
request of a user reads their dismissals from the store only when the user has some: each
worker keeps the set of those users, refreshed from the store every
:data:`REFRESH_SECONDS` by a thread of its own and at once by its own writes. So a dismissal
or an undo holds at once on the worker that took it, and for a user who had dismissed before,
on every worker at once (their dismissals are read at each request); a user's very first
dismissal reaches the other workers and replicas within :data:`REFRESH_SECONDS`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa

from movierec.errors import StoreError
from movierec.experiments.store import TablesOfItsOwn

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 1.0
MAX_DISMISSALS = 10_000  # per user: a bound on what each of their requests reads

metadata = sa.MetaData()
dismissals_table = sa.Table(
    "dismissals",
    metadata,
    sa.Column("user_id", sa.BigInteger, nullable=False),
    sa.Column("movie_id", sa.BigInteger, nullable=False),
    sa.Column("dismissed_at", sa.BigInteger, nullable=False),
    sa.PrimaryKeyConstraint("user_id", "movie_id", name="dismissals_pkey"),
)


@dataclass(frozen=True)
class Dismissal:
    user_id: int
    movie_id: int
    dismissed_at: int


class DismissalStore(TablesOfItsOwn):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.create_tables(metadata)

    def add(self, user_id: int, movie_id: int) -> tuple[Dismissal, bool]:
        """Dismiss; returns the dismissal and whether it is new (a repeat keeps the first)."""
        existing = self.get(user_id, movie_id)
        if existing is not None:
            return existing, False
        row = Dismissal(user_id, movie_id, int(time.time()))
        try:
            with self._write() as conn:
                conn.execute(dismissals_table.insert().values(row.__dict__))
        except StoreError:
            found = self.get(user_id, movie_id)  # the same dismissal, sent twice at once
            if found is None:
                raise
            return found, False
        return row, True

    def remove(self, user_id: int, movie_id: int) -> bool:
        """Undo; whether there was such a dismissal."""
        table = dismissals_table.c
        delete = dismissals_table.delete().where(
            table.user_id == user_id, table.movie_id == movie_id
        )
        with self._write() as conn:
            return bool(conn.execute(delete).rowcount)

    def get(self, user_id: int, movie_id: int) -> Dismissal | None:
        table = dismissals_table.c
        query = dismissals_table.select().where(
            table.user_id == user_id, table.movie_id == movie_id
        )
        with self._read() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else Dismissal(**row)

    def of_user(self, user_id: int) -> list[Dismissal]:
        """A user's dismissals, newest first."""
        table = dismissals_table.c
        query = (
            dismissals_table.select()
            .where(table.user_id == user_id)
            .order_by(table.dismissed_at.desc(), table.movie_id)
            .limit(MAX_DISMISSALS)
        )
        with self._read() as conn:
            return [Dismissal(**row) for row in conn.execute(query).mappings()]

    def users(self) -> set[int]:
        with self._read() as conn:
            query = sa.select(dismissals_table.c.user_id).distinct()
            return {int(user) for user in conn.execute(query).scalars()}


class Dismissals:
    """One worker's way to dismissals: the store, and who has any."""

    def __init__(self, store: DismissalStore) -> None:
        self.store = store
        self._users = store.users()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="movierec-dismissals", daemon=True)
        self._thread.start()

    def movies(self, user_id: int) -> tuple[int, ...]:
        """The user's dismissed movies, newest first (no store read for a user without)."""
        if user_id not in self._users:
            return ()
        return tuple(d.movie_id for d in self.store.of_user(user_id))

    def add(self, user_id: int, movie_id: int) -> tuple[Dismissal, bool]:
        found = self.store.add(user_id, movie_id)
        self._users = self._users | {user_id}
        return found

    def remove(self, user_id: int, movie_id: int) -> bool:
        return self.store.remove(user_id, movie_id)

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)
        self.store.close()

    def _run(self) -> None:
        while not self._stopping.wait(REFRESH_SECONDS):
            try:
                before = self._users
                found = self.store.users()
                self._users = found | (self._users - before)  # added here while it was read
            except Exception:  # the store is down: keep the last set, retry
                logger.exception("cannot read who has dismissals")

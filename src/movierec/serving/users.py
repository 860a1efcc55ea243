"""User look-ups the API needs beyond :class:`RatingsStore`'s own readers.

Both read ``ratings`` by its primary key prefix ``(user_id, ...)``: one user's rows, or a page of
users in id order, without a scan of the whole table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from movierec.data.store import RatingsStore, ratings_table


@dataclass(frozen=True)
class UserRatings:
    """One user's ratings, newest first."""

    item_ids: npt.NDArray[np.int64]
    ratings: npt.NDArray[np.float32]
    timestamps: npt.NDArray[np.int64]


class ServingStore(RatingsStore):
    """The ratings store with the per-user reads of the ``/users`` routes."""

    def user_ratings(self, user_id: int) -> UserRatings:
        r = ratings_table.c
        query = (
            sa.select(r.item_id, r.rating, r.timestamp)
            .where(r.user_id == user_id)
            .order_by(r.timestamp.desc(), r.item_id)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return UserRatings(
            item_ids=np.asarray([row[0] for row in rows], dtype=np.int64),
            ratings=np.asarray([row[1] for row in rows], dtype=np.float32),
            timestamps=np.asarray([row[2] for row in rows], dtype=np.int64),
        )

    def users_rated_after(self, timestamp: int) -> set[int]:
        """Users with a rating newer than ``timestamp`` (a scan: no index on rating time)."""
        r = ratings_table.c
        query = sa.select(r.user_id).where(r.timestamp > timestamp).distinct()
        with self._read() as conn:
            return {int(row[0]) for row in conn.execute(query)}

    def user_page(self, limit: int, offset: int) -> list[tuple[int, int]]:
        """``(user_id, number of ratings)`` of users in id order."""
        r = ratings_table.c
        query = (
            sa.select(r.user_id, sa.func.count())
            .group_by(r.user_id)
            .order_by(r.user_id)
            .limit(limit)
            .offset(offset)
        )
        with self._read() as conn:
            return [(int(u), int(n)) for u, n in conn.execute(query)]

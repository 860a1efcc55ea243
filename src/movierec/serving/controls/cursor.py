"""The page cursor: the movies a client was already shown.

A cursor is the ids of every movie on the pages before, in order, joined by ``-`` (empty: the
first page). Carrying them, not an offset, is what keeps the next page free of repeats whatever
happened in between (a reload, new ratings): the next page is the ranking less these movies,
and the answer says when the ranking changed under them. Any text of the schema's pattern
(:data:`~movierec.serving.schemas.CURSOR_PATTERN`) is a cursor: a repeated id counts once, and
its length (at most 4,000 characters) bounds how deep pages go.
"""

from __future__ import annotations

import re

from movierec.serving.schemas import CURSOR_PATTERN
from movierec.serving.service import InvalidRequestError

_CURSOR = re.compile(CURSOR_PATTERN)


def encode(movie_ids: list[int]) -> str:
    """The cursor of the movies shown so far."""
    return "-".join(map(str, movie_ids))


def decode(cursor: str) -> list[int]:
    """The movie ids a cursor holds, first shown first; :class:`InvalidRequestError` (422) for
    text that is not a cursor (the schema refuses it before)."""
    if not _CURSOR.fullmatch(cursor):
        raise InvalidRequestError("cursor: not a cursor this API made")
    return list(dict.fromkeys(int(part) for part in cursor.split("-"))) if cursor else []

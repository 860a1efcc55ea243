"""One served list, as the request path hands it to the monitor."""

from __future__ import annotations

from typing import NamedTuple

from movierec.serving.catalog import ModelView
from movierec.serving.loading import ModelInfo


class ServedList(NamedTuple):
    """A list of recommendations as it was served (model items of ``view``, best first)."""

    view: ModelView
    info: ModelInfo
    strategy: str
    user_id: int | None  # None: an anonymous visitor
    items: list[int]
    k: int  # how many were asked for
    at: float  # epoch seconds

"""One served list, as the request path hands it to the monitor."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

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


def padded_items(
    lists: list[ServedList], pad: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The lists' items as the rows of one matrix, padded with ``pad``, and their lengths."""
    items = [served.items for served in lists]
    lengths = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
    width = max(int(lengths.max()), 1)
    if (lengths == width).all():  # the usual batch: every list as long as asked
        return np.array(items, dtype=np.int64), lengths
    padded = np.full((len(lists), width), pad, dtype=np.int64)
    for row, found in enumerate(items):
        padded[row, : len(found)] = found
    return padded, lengths


def by_view(lists: list[ServedList]) -> list[list[ServedList]]:
    """``lists`` grouped by the model view and info that served them, in order."""
    groups: dict[tuple[int, int], list[ServedList]] = {}
    for served in lists:
        groups.setdefault((id(served.view), id(served.info)), []).append(served)
    return list(groups.values())

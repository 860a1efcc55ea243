"""Served lists as the request path queues them, and as the columns the monitor adds up.

The request path pays only for one tuple and one ``deque.append`` (:data:`Queued`); the monitor
(on the event loop) turns each drained queue into :class:`ServedColumns` once, with C-level
loops (``map``, ``np.fromiter``) and no Python code per list, and hands the same columns to the
served-quality figures and to the impression log. Objects per list (a named tuple each, grouped
and padded once per consumer) cost the worker ~14 µs of its GIL per list, 11.5% of the default
champion's throughput (``benchmarks/serving.py --monitor-only``); columns cost ~2 µs.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain, repeat
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from movierec.serving.catalog import ModelView
from movierec.serving.loading import ModelInfo

if TYPE_CHECKING:
    from movierec.serving.service import Answer

STRATEGIES = ("personalized", "folded_in", "popular_fallback")
OTHER_STRATEGY = 255  # the code of a strategy outside STRATEGIES
CODE_OF = {name: code for code, name in enumerate(STRATEGIES)}
VISITOR = -1  # the user id of an anonymous visitor

# One served list, as queued: the answer, the user (VISITOR for none), k asked, epoch seconds.
Queued = tuple["Answer", int, int, float]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class ServedColumns:
    """Lists served by one model view, one row per list, in the order they were served."""

    view: ModelView
    info: ModelInfo
    users: IntArray  # VISITOR for an anonymous visitor
    at: npt.NDArray[np.float64]  # epoch seconds
    asked: IntArray  # the k asked for
    strategies: npt.NDArray[np.uint8]  # CODE_OF, OTHER_STRATEGY
    lengths: IntArray
    items: IntArray  # model items, one row per list, padded with ``view.model.n_items``

    def __len__(self) -> int:
        return len(self.users)

    def rows(self, keep: npt.NDArray[np.bool_]) -> ServedColumns:
        """The lists where ``keep`` is true."""
        return ServedColumns(
            self.view, self.info, self.users[keep], self.at[keep], self.asked[keep],
            self.strategies[keep], self.lengths[keep], self.items[keep],
        )  # fmt: skip


def columns(batch: list[Queued]) -> list[ServedColumns]:
    """``batch`` as columns, one :class:`ServedColumns` per model view (in order of first use)."""
    if not batch:
        return []
    answers = list(map(itemgetter(0), batch))
    view, info = answers[0].view, answers[0].info
    if all(answer.view is view and answer.info is info for answer in answers):
        return [_columns(batch, answers)]  # the usual batch: no reload in it
    groups: dict[tuple[int, int], list[Queued]] = {}
    for entry in batch:
        groups.setdefault((id(entry[0].view), id(entry[0].info)), []).append(entry)
    return [_columns(group, list(map(itemgetter(0), group))) for group in groups.values()]


def _columns(batch: list[Queued], answers: list[Answer]) -> ServedColumns:
    count = len(batch)
    view = answers[0].view
    item_lists = list(map(attrgetter("items"), answers))
    lengths = np.fromiter(map(len, item_lists), np.int64, count=count)
    flat = np.fromiter(chain.from_iterable(item_lists), np.int64, count=int(lengths.sum()))
    width = max(int(lengths.max()), 1)
    if len(flat) == count * width:  # every list as long as the longest: a plain reshape
        items = flat.reshape(count, width)
    else:
        items = np.full((count, width), view.model.n_items, dtype=np.int64)
        items[np.arange(width) < lengths[:, None]] = flat
    codes = map(CODE_OF.get, map(attrgetter("strategy"), answers), repeat(OTHER_STRATEGY))
    return ServedColumns(
        view=view,
        info=answers[0].info,
        users=np.fromiter(map(itemgetter(1), batch), np.int64, count=count),
        at=np.fromiter(map(itemgetter(3), batch), np.float64, count=count),
        asked=np.fromiter(map(itemgetter(2), batch), np.int64, count=count),
        strategies=np.fromiter(codes, np.uint8, count=count),
        lengths=lengths,
        items=items,
    )

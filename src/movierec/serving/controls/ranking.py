"""The controls applied to a ranking: exclusions, dismissals, diversity and pages.

The model ranks deeper than the page (:meth:`Controls.depth`); then, in order:

1. movies the request excludes and movies the user dismissed are removed;
2. MMR picks from what is left (``diversity`` in [0, 1]; 0 keeps the model's order), as many
   as the pages so far and this one need (see :mod:`movierec.models.rerank`);
3. each of the :data:`NEIGHBOURS` movies most similar (by the model) to a dismissed movie moves
   down :data:`DEMOTION` places per dismissed movie it neighbours (a stable re-sort by position
   plus penalty): a person who dismissed a movie sees fewer like it, none banned outright;
4. the page is that ranking less the movies the cursor says were shown, cut to ``k``; the
   ranking *changed* when the movies shown are no longer exactly its first ones (a reload, new
   ratings, a new dismissal), which the answer says. Never a repeat either way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from movierec.models.rerank import mmr
from movierec.serving.catalog import ModelView
from movierec.serving.controls import cursor
from movierec.serving.service import Answer

NEIGHBOURS = 10  # a dismissed movie's most similar movies (by the model) that are demoted
DEMOTION = 5  # places a neighbour moves down, per dismissed movie it neighbours
DEMOTION_ROOM = 2 * DEMOTION  # candidates beyond the page a demoted movie can fall below
MMR_POOL = 40  # candidates beyond the picks MMR chooses from
MAX_DISMISSED_NEIGHBOURHOODS = 50  # the newest dismissals whose neighbours are demoted


@dataclass(frozen=True)
class Controls:
    """A request's controls; movie ids throughout."""

    exclude: frozenset[int] = frozenset()
    shown: tuple[int, ...] = ()  # from the cursor, in the order they were shown
    diversity: float = 0.0
    dismissed: tuple[int, ...] = ()  # newest first
    paged: bool = False  # whether the request asked for pages (a cursor, even empty)

    @classmethod
    def of(
        cls,
        exclude: list[int] | None,
        page_cursor: str | None,
        diversity: float,
        dismissed: tuple[int, ...] = (),
    ) -> Controls:
        """The controls of a request; a malformed cursor is an InvalidRequestError (422)."""
        if not exclude and page_cursor is None and not diversity and not dismissed:
            return PLAIN  # the usual request: nothing built
        shown = tuple(cursor.decode(page_cursor)) if page_cursor else ()
        return cls(frozenset(exclude or ()), shown, diversity, dismissed, page_cursor is not None)

    @property
    def plain(self) -> bool:
        """Nothing to apply: the model's answer as it is."""
        return not (self.exclude or self.paged or self.diversity or self.dismissed)

    def picks(self, k: int) -> int:
        return len(self.shown) + k + (DEMOTION_ROOM if self.dismissed else 0)

    def depth(self, k: int) -> int:
        """How deep the model must rank for a page of ``k``."""
        removed = len(self.exclude) + len(self.dismissed)
        return self.picks(k) + removed + (MMR_POOL if self.diversity else 0)


PLAIN = Controls()


@dataclass(frozen=True)
class Page:
    next_cursor: str
    ranking_changed: bool


def page_of(controls: Controls, answer: Answer, changed: bool) -> Page | None:
    """The page the request asked for (None: it asked for none), ``answer`` its last."""
    if not controls.paged:
        return None
    return Page(cursor.encode([*controls.shown, *answer.movie_ids]), changed)


def apply(answer: Answer, k: int, controls: Controls) -> tuple[Answer, bool]:
    """``answer`` (ranked ``controls.depth(k)`` deep) under ``controls``, cut to ``k``, and
    whether the ranking changed under the pages shown before."""
    if controls.plain:
        return answer, False
    view = answer.view
    items = np.asarray(answer.items, dtype=np.int64)
    movies = np.asarray(answer.movie_ids, dtype=np.int64)
    removed = controls.exclude.union(controls.dismissed)
    kept = np.flatnonzero([movie not in removed for movie in movies.tolist()])
    scores = np.asarray(answer.scores, dtype=np.float64)[kept]
    count = controls.picks(k)
    if controls.diversity:
        order = kept[mmr(scores, _genres(view, items[kept]), count, controls.diversity)]
    else:
        order = kept[:count]
    order = order[_demoted(view, items[order], controls.dismissed)]
    ranked = movies[order].tolist()
    shown = set(controls.shown)
    changed = bool(shown) and set(ranked[: len(shown)]) != shown
    page = [position for position, movie in zip(order, ranked, strict=True) if movie not in shown]
    page = page[:k]
    result = Answer(
        answer.strategy,
        view,
        answer.info,
        items[page].tolist(),
        [answer.scores[i] for i in page],
        [answer.reasons[i] for i in page],
        answer.ignored_movie_ids,
    )
    return result, changed


def _genres(view: ModelView, items: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """The items' 0/1 genre vectors (the features the evaluation's diversity compares)."""
    if not view.genre_masks:
        return np.zeros((len(items), 1))
    return np.stack([mask[items] for mask in view.genre_masks.values()], axis=1).astype(float)


def _demoted(
    view: ModelView, items: npt.NDArray[np.int64], dismissed: tuple[int, ...]
) -> npt.NDArray[np.int64]:
    """The order of ``items`` once the neighbours of dismissed movies moved down."""
    penalty = np.zeros(len(items), dtype=np.int64)
    for movie in dismissed[:MAX_DISMISSED_NEIGHBOURHOODS]:
        item = view.item_of_movie.get(movie, -1)
        if item < 0:
            continue
        neighbours, _ = view.model.similar_items(item, k=min(NEIGHBOURS, view.model.n_items - 1))
        penalty += DEMOTION * np.isin(items, neighbours[neighbours >= 0])
    return np.argsort(np.arange(len(items)) + penalty, kind="stable").astype(np.int64)


class Controlled:
    """One request under its controls: asks the model deep enough, applies them, remembers
    whether the ranking changed (an experiment may ask twice, once per arm)."""

    def __init__(self, controls: Controls, k: int) -> None:
        self.controls = controls
        self.k = k
        self.changed = False

    def ask(self, make: Callable[[int], Answer]) -> Answer:
        """``make(depth)`` is the model's answer that deep."""
        if self.controls.plain:
            return make(self.k)
        answer, changed = apply(make(self.controls.depth(self.k)), self.k, self.controls)
        self.changed = self.changed or changed
        return answer

    def page(self, answer: Answer) -> Page | None:
        return page_of(self.controls, answer, self.changed)

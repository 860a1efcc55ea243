"""RecommenderService: the served model, the catalog, live ratings folded in, and hot swap.

State is one immutable :class:`ServingState` behind one reference. A reload builds a whole new
state and replaces the reference (atomic in CPython): a request in flight keeps the state it
read, so a swap never drops or fails it.

Ratings posted to the API are written to the store first (durable); their users are then
*fresh*: the served model was trained without some of their ratings. A fresh user is answered
by folding their whole history, read from the store in rating order (the latest last, which
models weighting recent ratings rely on), into the model without retraining; a user the model
never saw becomes personalized once they have rated :data:`MIN_FOLD_IN_RATINGS` movies the model
knows. Fresh users are found again at every load (ratings newer than the model's snapshot), so a
restart forgets nothing, and the workers of one server tell each other through a
:class:`~movierec.serving.feed.SharedFeed` (replicas on other hosts through
:mod:`movierec.serving.replicas`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from movierec.config import Settings
from movierec.data.snapshot import load_snapshot
from movierec.data.store import RatingColumns
from movierec.errors import MovierecError
from movierec.serving.catalog import Catalog, IntArray, ModelView, MovieRow
from movierec.serving.feed import Feed
from movierec.serving.loading import LoadedModel, ModelInfo, load_current_model
from movierec.serving.topn import TopN
from movierec.serving.users import ServingStore
from movierec.serving.writer import RatingWriter

logger = logging.getLogger(__name__)

MIN_FOLD_IN_RATINGS = 3
MAX_KEPT_ANSWERS = 20_000  # unfiltered answers kept for the users who ask again (~2 kB each)
"""Ratings (of movies the model knows) before a new user gets personalized recommendations."""
POPULAR_REASON = "popular with everyone"

FloatArray = npt.NDArray[np.float32]


class NotFoundError(MovierecError):
    """A movie or user the request names does not exist (HTTP 404)."""


class InvalidRequestError(MovierecError):
    """A request the schema allowed but the data refuses, e.g. a rating off the scale (422)."""


class NoModelError(MovierecError):
    """No model is loaded yet (HTTP 503)."""


@dataclass(frozen=True)
class Filter:
    genres: list[str] | None = None
    year_min: int | None = None
    year_max: int | None = None


class Scored(NamedTuple):
    """A catalog movie with a score, as the popular lists give them."""

    movie: MovieRow
    score: float


@dataclass(frozen=True)
class Answer:
    """Recommendations and how they were made: model items (of ``view``), best first."""

    strategy: str
    view: ModelView
    info: ModelInfo
    items: list[int]
    scores: list[float]
    reasons: list[str | None]
    ignored_movie_ids: list[int]

    @property
    def movie_ids(self) -> list[int]:
        return [self.view.row(item).movie_id for item in self.items]


@dataclass(frozen=True)
class SimilarAnswer:
    """The movies most like ``movie``: model items (of ``view``), most similar first."""

    view: ModelView
    info: ModelInfo
    movie: int
    items: list[int]
    scores: list[float]


@dataclass(frozen=True)
class ServedModel:
    """A model that answers instead of the served one (an experiment's arm), with its own
    top-N lists if it has any, and the unfiltered answers made from them."""

    view: ModelView
    info: ModelInfo
    top_n: TopN | None = None
    answers: dict[tuple[int, int], Answer] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class ServingState:
    """Everything one request reads, never mutated after it is built."""

    catalog: Catalog
    view: ModelView | None
    info: ModelInfo | None
    rating_scale: tuple[float, float] | None


@dataclass(frozen=True)
class RatingEvent:
    user_id: int
    movie_id: int
    rating: float
    timestamp: int


class RecommenderService:
    """The model, catalog and live ratings behind the API."""

    def __init__(
        self,
        settings: Settings,
        store: ServingStore,
        on_load: Callable[[ModelInfo], None] | None = None,
        feed: Feed | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self._on_load = on_load
        self._feed = feed
        self._state = ServingState(Catalog.from_frame(store.movies_frame()), None, None, None)
        # Users with ratings the served model was not trained on (read by requests, grown by
        # posts and the feed, rebuilt at each load).
        self._fresh: set[int] = set()
        self._fresh_lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._reloading = threading.Event()
        self.load_error: str | None = None  # why the last load failed (until one succeeds)
        # The served view's top-N lists and the unfiltered answers made from them, by (user, k):
        # replaced at each load, so they never outlive the model they came from.
        self._top_n: TopN | None = None
        self._answers: dict[tuple[int, int], Answer] = {}
        self._writer = RatingWriter(store, self._ratings_committed)

    def close(self) -> None:
        """Write the queued ratings, then close the store and the feed (a worker stopping)."""
        self._writer.close()
        self.store.close()
        if self._feed is not None:
            self._feed.close()

    # ---- state ------------------------------------------------------------------------------

    @property
    def state(self) -> ServingState:
        return self._state

    def current_view(self) -> tuple[ModelView, ModelInfo]:
        """The served model's view and info, caught up with the other workers' news first.

        Raises:
            NoModelError: no model is loaded.
        """
        return self._view()

    def _view(self) -> tuple[ModelView, ModelInfo]:
        self._sync()
        state = self._state
        if state.view is None or state.info is None:
            raise NoModelError(
                "no model is loaded: train one (`movierec train`) or promote a champion, "
                "then POST /admin/reload"
            )
        return state.view, state.info

    def load(
        self, *, fall_back_on_error: bool = True, broadcast: bool = True
    ) -> tuple[ModelInfo | None, ModelInfo]:
        """Load the current model and catalog and swap them in; returns (previous, current).

        Blocking (disk, registry, database): call it from a worker thread. Reloads are
        serialized; requests go on against the old state until the swap. ``broadcast`` tells
        the server's other workers to reload too.
        """
        with self._reload_lock:
            try:
                loaded = load_current_model(self.settings, fall_back_on_error=fall_back_on_error)
            except MovierecError as exc:
                self.load_error = str(exc)
                raise
            self.load_error = None
            state = self._build_state(loaded)
            with self._fresh_lock:
                marked_before = set(self._fresh)
            fresh = self._users_newer_than(loaded.info)
            previous = self._state.info
            self._state = state  # the swap: one reference assignment
            self._start_top_n(state.view)
            with self._fresh_lock:  # keep users who posted while the store was read
                known = self._fresh if fresh is None else fresh | (self._fresh - marked_before)
                self._fresh = set(known)
        if broadcast and self._feed is not None:
            self._feed.publish("reload")
        if self._on_load is not None:
            self._on_load(loaded.info)
        return previous, loaded.info

    @property
    def top_n_share(self) -> float:
        """The share of the served model's known users answered from top-N lists already (0
        when the lists are off)."""
        top_n = self._top_n
        return 0.0 if top_n is None else top_n.share_filled

    def _start_top_n(self, view: ModelView | None) -> None:
        self._answers = {}
        self._top_n = None
        depth = min(self.settings.top_n_depth, self.settings.max_k)
        if view is not None and depth > 0:
            self._top_n = TopN(view, depth)
            self._top_n.start()

    def _users_newer_than(self, info: ModelInfo) -> set[int] | None:
        """Users with ratings newer than the model's training snapshot; None when unknown
        (every user already marked fresh then stays so)."""
        if info.snapshot_hash is None:
            return None
        try:
            trained = load_snapshot(self.settings.snapshots_dir / info.snapshot_hash[:16])
        except MovierecError:
            logger.warning(
                "snapshot %s of the served model is not on this machine: ratings posted "
                "before this start are used after the next retraining",
                info.snapshot_hash[:12],
            )
            return None
        return self.store.users_rated_after(int(trained.manifest["max_timestamp"]))

    def sync(self) -> None:
        """Apply the feeds' news now: a feed with a thread of its own (the replicas' channel,
        the champion watch) calls it when news arrives, so an idle replica reloads too."""
        self._sync()

    def _sync(self) -> None:
        """Apply the other workers' events: their fresh users, and reloads (in the background)."""
        if self._feed is None:
            return
        for event in self._feed.poll():
            if event.kind == "ratings":
                with self._fresh_lock:
                    self._fresh.update(event.user_ids)
            elif not self._reloading.is_set():
                self._reloading.set()
                threading.Thread(target=self._reload_from_feed, daemon=True).start()

    def _reload_from_feed(self) -> None:
        try:
            self.load(fall_back_on_error=False, broadcast=False)
        except MovierecError as exc:  # the current model stays; the next reload may succeed
            logger.error("reload asked by another worker failed: %s", exc)
        finally:
            self._reloading.clear()

    def _build_state(self, loaded: LoadedModel) -> ServingState:
        loaded.model.warm_up()
        catalog = Catalog.from_frame(self.store.movies_frame())
        view = ModelView.build(loaded.model, catalog)
        view.warm_up()
        return ServingState(
            catalog=catalog, view=view, info=loaded.info, rating_scale=self.store.rating_scale
        )

    # ---- recommendations --------------------------------------------------------------------

    def recommend_user(
        self,
        user_id: int,
        k: int,
        filters: Filter,
        *,
        exclude_seen: bool = True,
        model: ServedModel | None = None,
    ) -> Answer:
        """Top-``k`` for a user: personalized, folded in with their new ratings, or popular;
        by ``model`` when given (an experiment's arm), else by the served model."""
        view, info = self._view() if model is None else (model.view, model.info)
        allowed = view.candidates(filters.genres, filters.year_min, filters.year_max)
        user = view.model.user_index_of(user_id)
        history = self._stored_history(view, user_id) if user_id in self._fresh else None
        if history is not None and (user is not None or len(history[0]) >= MIN_FOLD_IN_RATINGS):
            return self._fold_in(
                view, info, history, k=k, allowed=allowed, ignored=[], exclude_seen=exclude_seen
            )
        if user is None:
            seen = history[0] if history is not None and exclude_seen else None
            return self._popular(view, info, k=k, allowed=allowed, seen=seen)
        if history is None and exclude_seen:  # not fresh: the lists made at load hold
            cached = self._from_top_n(view, info, user, k, allowed, arm=model)
            if cached is not None:
                return cached
        ranked = view.model.recommend(
            user, k=k, exclude_seen=exclude_seen, candidates=_indices(allowed)
        )
        return self._answer(
            view, info, "personalized", ranked, history=view.history(user), ignored=[]
        )

    def _from_top_n(
        self,
        view: ModelView,
        info: ModelInfo,
        user: int,
        k: int,
        allowed: npt.NDArray[np.bool_] | None,
        *,
        arm: ServedModel | None = None,
    ) -> Answer | None:
        """The answer from the user's top-N list, None when it cannot give it (not filled yet,
        ``k`` deeper than the lists, or a filter leaving fewer than ``k`` of a full list).
        ``arm``: an experiment arm's lists and kept answers instead of the served model's."""
        top_n = self._top_n if arm is None else arm.top_n
        if top_n is None or top_n.view is not view or k > top_n.depth:
            return None
        answers = self._answers if arm is None else arm.answers
        if allowed is None and (known := answers.get((user, k))) is not None:
            return known
        row = top_n.row(user)
        if row is None:
            return None
        items, scores = row
        if allowed is not None:
            keep = allowed[items]
            if int(keep.sum()) < k and len(items) == top_n.depth:
                return None
            items, scores = items[keep], scores[keep]
        answer = self._answer(
            view, info, "personalized", (items[:k], scores[:k]), history=view.history(user),
            ignored=[],
        )  # fmt: skip
        if allowed is None:  # an unfiltered answer is asked again and again: keep it
            if len(answers) >= MAX_KEPT_ANSWERS:
                answers.pop(next(iter(answers)))
            answers[user, k] = answer
        return answer

    def recommend_history(
        self,
        movie_ids: list[int],
        ratings: list[float] | None,
        k: int,
        filters: Filter,
        model: ServedModel | None = None,
    ) -> Answer:
        """Top-``k`` for a visitor known only by this history (fold-in, no retraining), by
        ``model`` when given, else by the served model."""
        view, info = self._view() if model is None else (model.view, model.info)
        item_of = view.item_of_movie
        missing = {movie_id for movie_id in movie_ids if movie_id not in item_of}
        if missing:
            raise NotFoundError(f"movie(s) not found: {sorted(missing)[:10]}")
        if ratings is None:  # liked movies: the top of the scale
            ratings = [view.model.rating_scale[1]] * len(movie_ids)
        self._check_scale(ratings)
        # A movie given twice counts once, at its last place, with its last rating.
        history: dict[int, float] = {}
        ignored: set[int] = set()
        for movie_id, rating in zip(movie_ids, ratings, strict=True):
            item = item_of[movie_id]
            if item < 0:
                ignored.add(movie_id)
                continue
            history.pop(item, None)
            history[item] = rating
        allowed = view.candidates(filters.genres, filters.year_min, filters.year_max)
        if not history:
            return self._popular(
                view, info, k=k, allowed=allowed, seen=None, ignored=sorted(ignored)
            )
        arrays = (
            np.fromiter(history.keys(), dtype=np.int64, count=len(history)),
            np.fromiter(history.values(), dtype=np.float32, count=len(history)),
        )
        return self._fold_in(
            view, info, arrays, k=k, allowed=allowed, ignored=sorted(ignored), exclude_seen=True
        )

    def similar(self, movie_id: int, k: int) -> SimilarAnswer:
        """The ``k`` movies most like ``movie_id``."""
        view, info = self._view()
        item = view.item_of_movie.get(movie_id)
        if item is None:
            raise NotFoundError(f"movie {movie_id} not found")
        if item < 0:
            raise NotFoundError(
                f"movie {movie_id} has no ratings the model learned from: no similar movies yet"
            )
        found, scores = _valid(*view.model.similar_items(item, k=k))
        return SimilarAnswer(view, info, item, found, scores)

    def popular(self, k: int, genre: str | None, by: str) -> list[Scored]:
        """The most rated (``count``) or best rated (``rating``, shrunk mean) movies."""
        view, _ = self._view()
        allowed = view.candidates([genre] if genre else None, None, None)
        order = view.popular_order if by == "count" else view.bayesian_order
        top = _first_allowed(order, allowed, None, k)
        values = view.rating_counts if by == "count" else view.rating_means
        return [Scored(view.row(int(i)), _finite(values[i])) for i in top]

    def movie_stats(self, movie_id: int) -> tuple[int, float | None, bool]:
        """(rating count, mean rating, in the model) from the served model's training data."""
        view = self._state.view
        item = view.model.item_index_of(movie_id) if view is not None else None
        if view is None or item is None:
            return 0, None, False
        mean = float(view.rating_means[item])
        return int(view.rating_counts[item]), (None if np.isnan(mean) else mean), True

    def _fold_in(
        self,
        view: ModelView,
        info: ModelInfo,
        history: tuple[IntArray, FloatArray],
        *,
        k: int,
        allowed: npt.NDArray[np.bool_] | None,
        ignored: list[int],
        exclude_seen: bool,
    ) -> Answer:
        ranked = view.model.recommend_for_history(
            *history, k=k, exclude_seen=exclude_seen, candidates=_indices(allowed)
        )
        return self._answer(view, info, "folded_in", ranked, history=history, ignored=ignored)

    def _popular(
        self,
        view: ModelView,
        info: ModelInfo,
        *,
        k: int,
        allowed: npt.NDArray[np.bool_] | None,
        seen: IntArray | None,
        ignored: list[int] | None = None,
    ) -> Answer:
        top = _first_allowed(view.popular_order, allowed, seen, k)
        return Answer(
            "popular_fallback",
            view,
            info,
            top.tolist(),
            view.rating_counts[top].astype(float).tolist(),
            [POPULAR_REASON] * len(top),
            ignored or [],
        )

    def _answer(
        self,
        view: ModelView,
        info: ModelInfo,
        strategy: str,
        ranked: tuple[IntArray, FloatArray],
        *,
        history: tuple[IntArray, FloatArray],
        ignored: list[int],
    ) -> Answer:
        found, scores = ranked
        valid = found >= 0  # -1 pads a list shorter than k
        found = found[valid]
        reasons = view.reasons(found, *history)
        return Answer(
            strategy, view, info, found.tolist(), scores[valid].tolist(), reasons, ignored
        )

    def _stored_history(self, view: ModelView, user_id: int) -> tuple[IntArray, FloatArray]:
        """The user's ratings of movies the model knows, from the store, oldest first."""
        stored = self.store.user_ratings(user_id)  # newest first
        items = view.item_indices(stored.item_ids[::-1])
        values = stored.ratings[::-1]
        known = items >= 0
        return items[known], values[known].astype(np.float32)

    def _check_scale(self, values: Iterable[float]) -> None:
        scale = self._state.rating_scale
        if scale is None:
            view = self._state.view
            scale = view.model.rating_scale if view is not None else None
        if scale is None:
            return
        low, high = scale
        bad = {value for value in values if not low <= value <= high}  # NaN too
        if bad:
            raise InvalidRequestError(
                f"rating(s) outside the rating scale [{low:g}, {high:g}]: {sorted(bad)[:5]}"
            )

    # ---- live ratings -----------------------------------------------------------------------

    def add_ratings(self, events: list[RatingEvent]) -> int:
        """Store ``events`` durably (blocking), then fold them into their users' next
        recommendations; how many ratings were inserted or updated. Raises as
        :meth:`submit_ratings` (its errors, or its future's)."""
        return self.submit_ratings(events).result()

    def submit_ratings(self, events: list[RatingEvent]) -> Future[int]:
        """Validate ``events`` now, then queue them for the writer (see
        :mod:`movierec.serving.writer`). The future resolves after the commit, once their users
        are fresh: to how many ratings were inserted or updated, or to the store's error.

        Raises:
            NotFoundError: a movie the catalog lacks.
            InvalidRequestError: a rating off the store's scale.
            StoreError: the server is stopping (the future: the store refused the write).
        """
        return self._writer.submit(self._checked_columns(events))

    async def store_ratings(self, events: list[RatingEvent]) -> int:
        """:meth:`submit_ratings` awaited on the running loop: how many ratings changed."""
        columns = self._checked_columns(events)
        return await self._writer.submit_on(asyncio.get_running_loop(), columns)

    async def store_columns(self, ratings: RatingColumns) -> int:
        """:meth:`store_ratings` of ratings already in columns."""
        self._check_new_ratings(set(ratings.item_id.tolist()), set(ratings.rating.tolist()))
        return await self._writer.submit_on(asyncio.get_running_loop(), ratings)

    def _checked_columns(self, events: list[RatingEvent]) -> RatingColumns:
        """``events`` as the writer's columns, once valid (see :meth:`submit_ratings`)."""
        # Sets and lists, not numpy: numpy's calls cost more than a request's one rating does.
        self._check_new_ratings({e.movie_id for e in events}, {e.rating for e in events})
        return RatingColumns(
            user_id=np.array([e.user_id for e in events], dtype=np.int64),
            item_id=np.array([e.movie_id for e in events], dtype=np.int64),
            rating=np.array([e.rating for e in events], dtype=np.float32),
            timestamp=np.array([e.timestamp for e in events], dtype=np.int64),
        )

    def _check_new_ratings(self, movie_ids: set[int], ratings: set[float]) -> None:
        missing = movie_ids - self._state.catalog.id_set
        if missing:
            raise NotFoundError(f"movie(s) not found: {sorted(missing)[:10]}")
        if self._state.rating_scale is None:
            raise InvalidRequestError("the store holds no dataset yet: ingest one first")
        self._check_scale(ratings)

    def _ratings_committed(self, users: list[int]) -> None:
        """The writer stored these users' ratings: fold them in here and in the other workers."""
        with self._fresh_lock:
            self._fresh.update(users)
        if self._feed is not None:
            self._feed.publish("ratings", users)


def _indices(allowed: npt.NDArray[np.bool_] | None) -> IntArray | None:
    return None if allowed is None else np.flatnonzero(allowed)


def _valid(found: IntArray, scores: FloatArray) -> tuple[list[int], list[float]]:
    """A ranking's items and scores as lists, without the -1s that pad one shorter than k."""
    keep = found >= 0
    return found[keep].tolist(), scores[keep].tolist()


def _first_allowed(
    order: IntArray, allowed: npt.NDArray[np.bool_] | None, seen: IntArray | None, k: int
) -> IntArray:
    """The first ``k`` items of ``order`` that the filter allows and the user has not seen."""
    if allowed is None and seen is None:
        return order[:k]
    keep = np.ones(len(order), dtype=bool) if allowed is None else allowed.copy()
    if seen is not None:
        keep[seen] = False
    return order[keep[order]][:k]


def _finite(value: float) -> float:
    number = float(value)
    return number if np.isfinite(number) else 0.0

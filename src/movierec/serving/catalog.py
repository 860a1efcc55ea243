"""The catalog and the served model's view of it, built once per load as numpy arrays.

Every look-up a request makes (titles, years, genres, filters, popularity, reasons) reads these
arrays; no request queries the database for catalog data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from numba import njit
from pydantic_core import to_json

from movierec.models.base import Recommender
from movierec.serving.schemas import Movie

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
NO_YEAR = -1
LIKED_FRACTION = 0.75  # of the rating scale: a rating at or above it is "liked" (4 of 0.5-5)
REASON_HISTORY = 200  # liked movies a reason is chosen from (the best rated first)


@dataclass(frozen=True)
class MovieRow:
    movie_id: int
    title: str
    year: int | None
    genres: list[str]


@dataclass(frozen=True, eq=False)
class Catalog:
    """Every movie of the store, sorted by id."""

    movie_ids: IntArray
    titles: list[str]
    years: IntArray  # NO_YEAR where unknown
    genres: list[tuple[str, ...]]
    imdb_ids: list[str | None]
    tmdb_ids: list[int | None]
    lower_titles: list[str]

    @classmethod
    def from_frame(cls, movies: pd.DataFrame) -> Catalog:
        """From the store's canonical movies table."""
        frame = movies.sort_values("item_id")
        titles = [str(t) for t in frame["title"].tolist()]
        return cls(
            movie_ids=frame["item_id"].to_numpy(np.int64),
            titles=titles,
            years=frame["year"].fillna(NO_YEAR).to_numpy(np.int64),
            genres=[tuple(g) if _is_sequence(g) else () for g in frame["genres"].tolist()],
            imdb_ids=[v if isinstance(v, str) else None for v in frame["imdb_id"].tolist()],
            tmdb_ids=[None if pd.isna(v) else int(v) for v in frame["tmdb_id"].tolist()],
            lower_titles=[t.lower() for t in titles],
        )

    def __len__(self) -> int:
        return len(self.movie_ids)

    @cached_property
    def id_set(self) -> frozenset[int]:
        """The movie ids as a set: a request's few ids are checked without numpy's overhead."""
        return frozenset(self.movie_ids.tolist())

    def position(self, movie_id: int) -> int | None:
        """The row of ``movie_id``, or None when the catalog lacks it."""
        positions = self.positions(np.asarray([movie_id], dtype=np.int64))
        return None if positions[0] < 0 else int(positions[0])

    def positions(self, movie_ids: IntArray) -> IntArray:
        """Rows of ``movie_ids``, -1 for ids the catalog lacks."""
        return _lookup(self.movie_ids, movie_ids)

    def row(self, position: int) -> MovieRow:
        year = int(self.years[position])
        return MovieRow(
            movie_id=int(self.movie_ids[position]),
            title=self.titles[position],
            year=None if year == NO_YEAR else year,
            genres=list(self.genres[position]),
        )

    def genre_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for genres in self.genres:
            for genre in genres:
                counts[genre] = counts.get(genre, 0) + 1
        return dict(sorted(counts.items()))

    def search(
        self,
        title: str | None,
        genre: str | None,
        year_min: int | None,
        year_max: int | None,
    ) -> IntArray:
        """Rows matching every given criterion (title: case-insensitive substring)."""
        keep = np.ones(len(self), dtype=bool)
        if title:
            needle = title.lower()
            keep &= np.fromiter((needle in t for t in self.lower_titles), bool, len(self))
        if genre:
            keep &= np.fromiter((genre in g for g in self.genres), bool, len(self))
        keep &= _year_mask(self.years, year_min, year_max)
        return np.flatnonzero(keep)


@dataclass(frozen=True, eq=False)
class ModelView:
    """The served model with its items' catalog rows, filters, popularity and statistics.

    Arrays are indexed by the model's item index.
    """

    model: Recommender
    catalog: Catalog
    catalog_rows: IntArray  # catalog row of each model item, -1 where the store lacks it
    # Model item of each catalog movie id, -1 where the model lacks it: a request's few ids
    # are looked up in a dict several times faster than by numpy calls (measured).
    item_of_movie: dict[int, int]
    years: IntArray
    genre_masks: dict[str, BoolArray]
    rating_counts: IntArray
    rating_means: npt.NDArray[np.float64]
    popular_order: IntArray  # item indices, most rated first
    bayesian_order: IntArray  # item indices, best shrunk mean rating first
    liked_threshold: float
    # Rows built so far, by model item: a request needs 10 to 20, and building one costs more
    # than the rest of its share of the answer. Filled as requests come (at most one per item).
    _rows: dict[int, MovieRow] = field(default_factory=dict, repr=False)
    _reasons: dict[int, str] = field(default_factory=dict, repr=False)  # likewise, by item
    # The JSON of those rows and texts, for the answers joined from them (routes/common.py).
    _movie_json: dict[int, bytes] = field(default_factory=dict, repr=False)
    _text_json: dict[str | None, bytes] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, model: Recommender, catalog: Catalog) -> ModelView:
        assert model.item_ids is not None
        assert model.user_items is not None
        rows = catalog.positions(np.asarray(model.item_ids, dtype=np.int64))
        years = np.where(rows >= 0, catalog.years[np.maximum(rows, 0)], NO_YEAR)
        seen = model.user_items
        counts = np.bincount(seen.indices, minlength=model.n_items).astype(np.int64)
        sums = np.bincount(seen.indices, weights=seen.data, minlength=model.n_items)
        means = np.divide(sums, counts, out=np.full(model.n_items, np.nan), where=counts > 0)
        low, high = model.rating_scale
        return cls(
            model=model,
            catalog=catalog,
            catalog_rows=rows,
            item_of_movie=dict(
                zip(catalog.movie_ids.tolist(), _inverse(rows, len(catalog)).tolist(), strict=True)
            ),
            years=years.astype(np.int64),
            genre_masks=_genre_masks(catalog, rows),
            rating_counts=counts,
            rating_means=means,
            popular_order=np.argsort(-counts, kind="stable"),
            bayesian_order=np.argsort(-_shrunk_means(counts, sums), kind="stable"),
            liked_threshold=low + LIKED_FRACTION * (high - low),
        )

    def row(self, item: int) -> MovieRow:
        """The catalog row of model item ``item`` ("Item <id>" if the store lacks the movie).

        Shared between requests: never mutate it (or its genres).
        """
        row = self._rows.get(item)
        if row is None:
            row = self._rows[item] = self._build_row(item)
        return row

    def movie_json(self, item: int) -> bytes:
        """pydantic's JSON of the :class:`~movierec.serving.schemas.Movie` of model item
        ``item``, its closing brace left off for the fields a scored movie adds."""
        text = self._movie_json.get(item)
        if text is None:
            movie = Movie.model_validate(self.row(item), from_attributes=True)
            text = self._movie_json[item] = movie.model_dump_json().encode()[:-1]
        return text

    def text_json(self, text: str | None) -> bytes:
        """The JSON of a text the answers repeat (a reason), ``null`` for None."""
        found = self._text_json.get(text)
        if found is None:
            found = self._text_json[text] = to_json(text)
        return found

    def _build_row(self, item: int) -> MovieRow:
        position = int(self.catalog_rows[item])
        if position >= 0:
            return self.catalog.row(position)
        assert self.model.item_ids is not None
        movie_id = int(self.model.item_ids[item])
        return MovieRow(movie_id, f"Item {movie_id}", None, [])

    def candidates(
        self, genres: list[str] | None, year_min: int | None, year_max: int | None
    ) -> BoolArray | None:
        """Items a filter allows (any of ``genres``, years in range); None without a filter."""
        if not genres and year_min is None and year_max is None:
            return None
        keep = _year_mask(self.years, year_min, year_max)
        if genres:
            any_genre = np.zeros(len(keep), dtype=bool)
            for genre in genres:
                mask = self.genre_masks.get(genre)
                if mask is not None:
                    any_genre |= mask
            keep &= any_genre
        return keep

    def warm_up(self) -> None:
        """Compile the reasons' kernel now (~1 s the first time on a machine), not during the
        first request that asks for a reason."""
        if self.model.n_items:
            first = np.zeros(1, dtype=np.int64)
            self.reasons(first, first, np.ones(1, dtype=np.float32))

    def reasons(
        self, items: IntArray, history: IntArray, ratings: npt.NDArray[np.float32]
    ) -> list[str | None]:
        """ "Because you liked X" per recommended item: the liked history movie the model ties
        closest to it (:meth:`Recommender.item_affinity`); None where no liked movie speaks
        for the item, or the model has no item-item notion."""
        if len(history) == 0 or len(items) == 0:
            return [None] * len(items)
        pool = _liked_pool(
            np.asarray(history, dtype=np.int64),
            np.asarray(ratings, dtype=np.float32),
            np.float32(self.liked_threshold),
            REASON_HISTORY,
        )
        affinity = self.model.item_affinity(pool, items)
        if affinity is None:
            return [None] * len(items)
        closest, strongest = _strongest(pool, affinity)
        return [
            self._because(source) if value > 0 else None
            for source, value in zip(closest.tolist(), strongest.tolist(), strict=True)
        ]

    def _because(self, item: int) -> str:
        text = self._reasons.get(item)
        if text is None:
            text = self._reasons[item] = f"because you liked {self.row(item).title}"
        return text

    def history(self, user: int) -> tuple[IntArray, npt.NDArray[np.float32]]:
        """The training items and ratings of model user ``user``."""
        seen = self.model.user_items
        assert seen is not None
        start, stop = seen.indptr[user], seen.indptr[user + 1]
        return (
            seen.indices[start:stop].astype(np.int64),
            seen.data[start:stop].astype(np.float32),
        )

    def item_indices(self, movie_ids: IntArray) -> IntArray:
        """Model item indices of ``movie_ids``, -1 for movies the model does not know."""
        assert self.model.item_ids is not None
        return _lookup(np.asarray(self.model.item_ids, dtype=np.int64), movie_ids)


def _inverse(rows: IntArray, size: int) -> IntArray:
    """For each of ``size`` targets, the index of ``rows`` pointing at it, else -1."""
    inverse = np.full(size, -1, dtype=np.int64)
    present = rows >= 0
    inverse[rows[present]] = np.flatnonzero(present)
    return inverse


def _is_sequence(value: Any) -> bool:
    return isinstance(value, list | tuple | np.ndarray)


def _lookup(sorted_ids: IntArray, wanted: IntArray) -> IntArray:
    if len(sorted_ids) == 0:
        return np.full(len(wanted), -1, dtype=np.int64)
    positions = np.searchsorted(sorted_ids, wanted)
    clipped = np.minimum(positions, len(sorted_ids) - 1)
    return np.where(sorted_ids[clipped] == wanted, clipped, -1).astype(np.int64)


def _year_mask(years: IntArray, year_min: int | None, year_max: int | None) -> BoolArray:
    keep = np.ones(len(years), dtype=bool)
    if year_min is not None:
        keep &= years >= year_min  # NO_YEAR (-1) never passes a year filter
    if year_max is not None:
        keep &= (years <= year_max) & (years != NO_YEAR)
    return keep


def _genre_masks(catalog: Catalog, rows: IntArray) -> dict[str, BoolArray]:
    masks: dict[str, BoolArray] = {}
    for item, position in enumerate(rows.tolist()):
        if position < 0:
            continue
        for genre in catalog.genres[position]:
            mask = masks.get(genre)
            if mask is None:
                mask = masks[genre] = np.zeros(len(rows), dtype=bool)
            mask[item] = True
    return masks


def _shrunk_means(counts: IntArray, sums: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """IMDb's weighted rating: a mean counts once an item has about the average vote count."""
    rated = counts > 0
    if not rated.any():
        return np.zeros(len(counts))
    prior = sums.sum() / counts.sum()
    votes = float(counts[rated].mean())
    return (sums + votes * prior) / (counts + votes)


@njit(cache=True)
def _liked_pool(
    history: IntArray, ratings: npt.NDArray[np.float32], liked_threshold: np.float32, most: int
) -> IntArray:
    """The history movies a reason is chosen from: the liked ones (all when none is liked),
    the ``most`` best rated at most (the first ones on equal ratings).

    Compiled: as numpy calls this was a large share of a recommendation's time (measured).
    """
    liked = ratings >= liked_threshold
    pool, pool_ratings = history[liked], ratings[liked]
    if len(pool) == 0:
        pool, pool_ratings = history, ratings
    if len(pool) > most:
        pool = pool[np.argsort(-pool_ratings, kind="mergesort")[:most]]
    return pool


@njit(cache=True)
def _strongest(
    pool: IntArray, affinity: npt.NDArray[np.float32]
) -> tuple[IntArray, npt.NDArray[np.float32]]:
    """Per column of ``affinity`` (a recommended item), the ``pool`` movie of its largest
    entry (the first on ties) and that entry: one compiled pass instead of four numpy calls."""
    n_pool, n_items = affinity.shape
    closest = np.empty(n_items, dtype=np.int64)
    strongest = np.empty(n_items, dtype=np.float32)
    for item in range(n_items):
        best = 0
        for source in range(1, n_pool):
            if affinity[source, item] > affinity[best, item]:
                best = source
        closest[item], strongest[item] = pool[best], affinity[best, item]
    return closest, strongest

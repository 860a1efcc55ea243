"""Interactions: ratings as a CSR matrix with its id maps and catalog; the only form models consume.

An :class:`Interactions` is built once per snapshot (or from canonical frames, see
:mod:`movierec.data.schema`) and never changes: every array it holds is read-only, and every
operation (``subset``, ``binarize``, a split) returns a new one that *shares* ``user_ids``,
``item_ids`` and ``catalog``, so a model fitted on a train part scores a test part by index.

Structure versus value:
    A stored entry of ``matrix`` *is* an observed rating; its value is in ``matrix.data`` and
    may be 0 (a 0..100 scale, a 0-star rating). Matrices are assembled straight from
    ``(data, indices, indptr)`` and ``eliminate_zeros`` is never called, so those zeros stay
    stored. Consumers ask "was it rated" through the structure (``indptr``/``indices``,
    ``nnz``, :meth:`Interactions.user_items`, :meth:`Interactions.binarize`), never through
    ``matrix != 0``, and do arithmetic that scipy may prune (products, sums of matrices) on
    :meth:`Interactions.binarize`'s all-ones view. ``timestamps`` is a second CSR matrix with the
    very same ``indices``/``indptr`` arrays, so entry ``j`` of ``matrix.data`` and of
    ``timestamps.data`` describe the same rating.

Duplicates:
    A (user, item) pair rated more than once keeps its latest rating (by timestamp, then by row
    order), the way a user re-rating a movie replaces the old rating.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from movierec.data.schema import MOVIE_COLUMNS, RATING_COLUMNS, as_canonical_movies, empty_movies
from movierec.errors import ConfigError, DataSourceError, MovierecError, ParseError

log = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]

# Ids spanning at most this many values (or 4x the number of ratings) are mapped through a
# lookup table, O(n); wider ones (hashes) fall back to np.unique, a sort.
_LOOKUP_SPAN = 1 << 22
_INT32_MAX = np.iinfo(np.int32).max


class UnknownIdError(MovierecError, KeyError):
    """Ids that are not in the interactions' index space (strict look-ups only)."""

    def __str__(self) -> str:
        # KeyError would print the repr of the message, quotes included.
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True, eq=False, repr=False)
class Interactions:
    """Ratings as an immutable users x items CSR matrix, with id maps and the catalog.

    Attributes:
        matrix: ``scipy.sparse.csr_matrix``, float32, users x items, sorted indices, no
            duplicate entries; every stored entry is an observed rating (its value may be 0).
        user_ids: External user ids (int64), ascending; row ``u`` is user ``user_ids[u]``.
        item_ids: External item ids (int64), ascending; column ``i`` is item ``item_ids[i]``.
            Every catalog movie has a column, rated or not (content-based cold start).
        catalog: One row per item, indexed by ``item_id`` in column order, with the columns
            title, year, genres, imdb_id, tmdb_id. Shared between derived objects: treat it
            as read-only.
        rating_scale: ``(lowest, highest)`` rating on the source's scale.
        timestamps: int64 epoch seconds in a CSR matrix with the same ``indices``/``indptr``
            as ``matrix``, or None where the source has no times.
        snapshot_hash: Content hash of the snapshot the ratings came from, if any.
    """

    matrix: sp.csr_matrix
    user_ids: IntArray
    item_ids: IntArray
    catalog: pd.DataFrame
    rating_scale: tuple[float, float]
    timestamps: sp.csr_matrix | None = None
    snapshot_hash: str | None = None

    def __post_init__(self) -> None:
        _validate(self)
        arrays = [self.matrix.data, self.matrix.indices, self.matrix.indptr]
        arrays += [self.user_ids, self.item_ids]
        if self.timestamps is not None:
            arrays.append(self.timestamps.data)
        for array in arrays:
            array.flags.writeable = False

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_frames(
        cls,
        ratings: pd.DataFrame,
        movies: pd.DataFrame | None = None,
        *,
        rating_scale: tuple[float, float] | None = None,
        snapshot_hash: str | None = None,
    ) -> Interactions:
        """Build from a canonical ratings table and, optionally, the movies table.

        Args:
            ratings: Columns user_id, item_id, rating and, where known, timestamp.
            movies: Canonical movies table; its unrated movies still get a column.
            rating_scale: ``(lowest, highest)``; inferred from the ratings when None.
            snapshot_hash: Content hash to record, if the tables came from a snapshot.

        Raises:
            ParseError: A column is missing, holds nulls or non-finite ratings, or a rating
                lies outside ``rating_scale``.
        """
        missing = [c for c in ("user_id", "item_id", "rating") if c not in ratings.columns]
        if missing:
            raise ParseError(f"ratings table lacks column(s) {', '.join(missing)}")
        columns = [c for c in RATING_COLUMNS if c in ratings.columns]
        arrays = {c: _column_array(ratings[c], c) for c in columns}
        return cls._from_arrays(
            arrays["user_id"],
            arrays["item_id"],
            arrays["rating"],
            arrays.get("timestamp"),
            movies=movies,
            rating_scale=rating_scale,
            snapshot_hash=snapshot_hash,
        )

    @classmethod
    def from_snapshot(cls, path: str | Path) -> Interactions:
        """Read a snapshot folder: ``ratings.parquet``, ``movies.parquet``, ``manifest.json``.

        The manifest's ``rating_scale`` (inferred from the ratings when null) and
        ``content_hash`` (kept as :attr:`snapshot_hash`) are used; only the canonical columns
        are read.

        Raises:
            DataSourceError: A file or a column is missing or unreadable.
            ParseError: The ratings hold nulls or values outside the manifest's scale.
        """
        folder = Path(path)
        try:
            manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
            scale = manifest.get("rating_scale")  # None: the store did not know it
            rating_scale = None if scale is None else (float(scale[0]), float(scale[1]))
            content_hash = str(manifest["content_hash"])
            ratings = pq.read_table(folder / "ratings.parquet", columns=list(RATING_COLUMNS))
            movies = pq.read_table(folder / "movies.parquet", columns=list(MOVIE_COLUMNS))
        except (OSError, KeyError, ValueError, TypeError, pa.ArrowException) as exc:
            raise DataSourceError(f"unusable snapshot {folder}: {exc}") from exc
        arrays = {c: _arrow_array(ratings, c) for c in RATING_COLUMNS}
        return cls._from_arrays(
            arrays["user_id"],
            arrays["item_id"],
            arrays["rating"],
            arrays["timestamp"],
            movies=_movies_from_arrow(movies),
            rating_scale=rating_scale,
            snapshot_hash=content_hash,
        )

    @classmethod
    def _from_arrays(
        cls,
        users: IntArray,
        items: IntArray,
        ratings: FloatArray,
        times: IntArray | None,
        *,
        movies: pd.DataFrame | None,
        rating_scale: tuple[float, float] | None,
        snapshot_hash: str | None,
    ) -> Interactions:
        scale = _check_ratings(ratings, rating_scale)
        catalog_movies = empty_movies() if movies is None else as_canonical_movies(movies)
        # int32 positions (whenever they fit) halve the memory traffic of the steps below.
        dtype = _index_dtype(ratings.size + len(catalog_movies))
        user_ids, rows = _index_ids(users, dtype)
        rated_items, cols = _index_ids(items, dtype)
        item_ids = np.union1d(rated_items, catalog_movies["item_id"].to_numpy(np.int64))
        if item_ids.size > rated_items.size:  # unrated catalog movies shift the columns
            cols = np.searchsorted(item_ids, rated_items).astype(dtype)[cols]
        shape = (user_ids.size, item_ids.size)
        indptr, indices, ratings, times = _assemble(rows, cols, ratings, times, shape)
        return cls(
            matrix=_csr(ratings, indices, indptr, shape),
            user_ids=user_ids,
            item_ids=item_ids,
            catalog=_build_catalog(item_ids, catalog_movies),
            rating_scale=scale,
            timestamps=None if times is None else _csr(times, indices, indptr, shape),
            snapshot_hash=snapshot_hash,
        )

    # ------------------------------------------------------------------ sizes

    @property
    def n_users(self) -> int:
        """Number of users (rows)."""
        return int(self.matrix.shape[0])

    @property
    def n_items(self) -> int:
        """Number of items (columns), rated or not."""
        return int(self.matrix.shape[1])

    @property
    def nnz(self) -> int:
        """Number of observed ratings (stored entries, zeros included)."""
        return int(self.matrix.indptr[-1])

    @property
    def density(self) -> float:
        """Share of the users x items cells that hold a rating."""
        cells = self.n_users * self.n_items
        return self.nnz / cells if cells else 0.0

    # ------------------------------------------------------------------ id maps

    def user_index(self, ids: npt.ArrayLike, *, strict: bool = False) -> IntArray:
        """Row indices of external user ids: -1 for unknown ones, or UnknownIdError if strict."""
        return _lookup(self.user_ids, ids, strict, "user")

    def item_index(self, ids: npt.ArrayLike, *, strict: bool = False) -> IntArray:
        """Column indices of external item ids: -1 for unknown ones, or UnknownIdError if strict."""
        return _lookup(self.item_ids, ids, strict, "item")

    def same_index_space(self, other: Interactions) -> bool:
        """Whether ``other`` numbers users and items the same way (so indices carry over)."""
        return _same_ids(self.user_ids, other.user_ids) and _same_ids(self.item_ids, other.item_ids)

    # ------------------------------------------------------------------ views

    def entry_users(self) -> IntArray:
        """The row (user index) of every stored entry, in CSR order."""
        return np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(self.matrix.indptr))

    def user_items(self, user: int) -> tuple[npt.NDArray[np.integer[Any]], FloatArray]:
        """Item indices and ratings of user index ``user`` (read-only views, items ascending)."""
        if not 0 <= user < self.n_users:
            raise IndexError(f"user index {user} outside 0..{self.n_users - 1}")
        start, end = self.matrix.indptr[user], self.matrix.indptr[user + 1]
        return self.matrix.indices[start:end], self.matrix.data[start:end]

    def to_frame(self) -> pd.DataFrame:
        """The canonical ratings table (timestamp column only where times are known)."""
        columns: dict[str, npt.NDArray[Any]] = {
            "user_id": self.user_ids[self.entry_users()],
            "item_id": self.item_ids[self.matrix.indices],
            "rating": self.matrix.data.copy(),
        }
        if self.timestamps is not None:
            columns["timestamp"] = self.timestamps.data.copy()
        return pd.DataFrame(columns)

    # ------------------------------------------------------------------ derived interactions

    def subset(self, entries: npt.ArrayLike) -> Interactions:
        """The ratings picked by ``entries``, in the same index space.

        Args:
            entries: A boolean mask over the stored entries (length ``nnz``, CSR order) or
                their integer positions (each at most once).
        """
        return self._derive(self._entry_mask(entries))

    def genre_matrix(self) -> tuple[sp.csr_matrix, list[str]]:
        """Items x genres 0/1 matrix from the catalog, and the genre names (sorted)."""
        genre_lists = [
            g if isinstance(g, list | tuple | np.ndarray) else [] for g in self.catalog["genres"]
        ]
        names = sorted({str(name) for genres in genre_lists for name in genres})
        column = {name: j for j, name in enumerate(names)}
        lengths = np.fromiter((len(g) for g in genre_lists), dtype=np.int64, count=len(genre_lists))
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        indices = np.fromiter(
            (column[str(name)] for genres in genre_lists for name in genres),
            dtype=np.int64,
            count=int(indptr[-1]),
        )
        data = np.ones(len(indices), dtype=np.float32)
        matrix = sp.csr_matrix((data, indices, indptr), shape=(self.n_items, len(names)))
        matrix.sum_duplicates()  # a source listing a genre twice
        return matrix, names

    def binarize(self, threshold: float | None = None) -> Interactions:
        """Implicit view: 1.0 where rating >= ``threshold`` (every observed rating when None).

        Ratings below the threshold are dropped from the structure, not stored as 0, so the
        result is safe for scipy arithmetic. Its ``rating_scale`` is ``(0.0, 1.0)``.
        """
        keep = None if threshold is None else self.matrix.data >= threshold
        base = self if keep is None else self._derive(keep)
        return base._derive(None, data=np.ones(base.nnz, dtype=np.float32), rating_scale=(0.0, 1.0))

    def _entry_mask(self, entries: npt.ArrayLike) -> BoolArray:
        array = np.asarray(entries)
        if array.dtype == np.bool_:
            if array.shape != (self.nnz,):
                raise ValueError(f"entry mask has shape {array.shape}, expected ({self.nnz},)")
            return array
        if array.size and array.dtype.kind not in "iu":
            raise TypeError(
                f"entries must be a boolean mask or integer positions, not {array.dtype}"
            )
        positions = array.astype(np.int64).ravel()
        if positions.size and (positions.min() < 0 or positions.max() >= self.nnz):
            raise ValueError(f"entry positions must lie in 0..{self.nnz - 1}")
        mask = np.zeros(self.nnz, dtype=bool)
        mask[positions] = True
        if np.count_nonzero(mask) != positions.size:
            raise ValueError("entry positions repeat")
        return mask

    def _derive(
        self,
        keep: BoolArray | None,
        *,
        data: FloatArray | None = None,
        rating_scale: tuple[float, float] | None = None,
    ) -> Interactions:
        """A new Interactions with the kept entries (all when None), sharing the index space."""
        m = self.matrix
        times = None if self.timestamps is None else self.timestamps.data
        if keep is None:
            indptr, indices, values = m.indptr, m.indices, m.data
        else:
            kept_before = np.zeros(self.nnz + 1, dtype=m.indptr.dtype)
            np.cumsum(keep, out=kept_before[1:])
            # One nonzero scan shared by the three gathers (a boolean index rescans each time).
            kept = np.flatnonzero(keep)
            indptr, indices, values = kept_before[m.indptr], m.indices[kept], m.data[kept]
            times = None if times is None else times[kept]
        if data is not None:
            values = data
        return Interactions(
            matrix=_csr(values, indices, indptr, m.shape),
            user_ids=self.user_ids,
            item_ids=self.item_ids,
            catalog=self.catalog,
            rating_scale=self.rating_scale if rating_scale is None else rating_scale,
            timestamps=None if times is None else _csr(times, indices, indptr, m.shape),
            snapshot_hash=self.snapshot_hash,
        )

    def __repr__(self) -> str:
        low, high = self.rating_scale
        extras = ", timestamps" if self.timestamps is not None else ""
        if self.snapshot_hash:
            extras += f", snapshot {self.snapshot_hash[:12]}"
        return (
            f"Interactions({self.n_users:,} users x {self.n_items:,} items, "
            f"{self.nnz:,} ratings, density {self.density:.3%}, scale {low:g}..{high:g}{extras})"
        )


# ---------------------------------------------------------------------- validation


def _validate(inter: Interactions) -> None:
    """Check the invariants every consumer relies on (cheap: O(nnz) at worst, in C)."""
    m = inter.matrix
    if not isinstance(m, sp.csr_matrix):
        raise TypeError(f"matrix must be a scipy.sparse.csr_matrix, not {type(m).__name__}")
    if m.dtype != np.float32:
        raise TypeError(f"matrix must hold float32 ratings, not {m.dtype}")
    for name, ids in (("user_ids", inter.user_ids), ("item_ids", inter.item_ids)):
        if not isinstance(ids, np.ndarray) or ids.dtype != np.int64 or ids.ndim != 1:
            raise TypeError(f"{name} must be a 1-D int64 numpy array")
        if ids.size > 1 and not np.all(ids[1:] > ids[:-1]):
            raise ValueError(f"{name} must be strictly ascending")
    if m.shape != (inter.user_ids.size, inter.item_ids.size):
        raise ValueError(f"matrix shape {m.shape} does not match the id maps")
    if not m.has_canonical_format:
        raise ValueError("matrix must have sorted indices and no duplicate entries")
    if not _same_ids(inter.catalog.index.to_numpy(), inter.item_ids):
        raise ValueError("catalog must be indexed by item_ids, in the same order")
    low, high = inter.rating_scale
    if not low <= high:
        raise ValueError(f"rating_scale {inter.rating_scale} is not (lowest, highest)")
    ts = inter.timestamps
    if ts is not None:
        if not isinstance(ts, sp.csr_matrix) or ts.dtype != np.int64:
            raise TypeError("timestamps must be an int64 scipy.sparse.csr_matrix")
        if not (_same_ids(ts.indptr, m.indptr) and _same_ids(ts.indices, m.indices)):
            raise ValueError("timestamps must have the same structure as matrix")


def _same_ids(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> bool:
    """Whether two arrays hold the same values; views of one buffer answer without a scan."""
    same_view = (
        a.shape == b.shape
        and a.dtype == b.dtype
        and a.strides == b.strides
        and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    )
    return a is b or same_view or bool(np.array_equal(a, b))


def _column_array(column: pd.Series, name: str) -> npt.NDArray[Any]:
    if column.isna().any():
        raise ParseError(f"ratings column {name} holds {int(column.isna().sum())} null(s)")
    dtype = np.float32 if name == "rating" else np.int64
    try:
        # A copy: sorted input is stored as is, and a view would let the caller's frame
        # change the (read-only) matrix behind its back.
        return column.to_numpy(dtype=dtype, copy=True)
    except (TypeError, ValueError) as exc:
        raise ParseError(f"ratings column {name} does not hold {dtype.__name__}: {exc}") from exc


def _arrow_array(table: pa.Table, name: str) -> npt.NDArray[Any]:
    column = table.column(name)
    if column.null_count:
        raise ParseError(f"snapshot ratings column {name} holds {column.null_count} null(s)")
    dtype = np.float32 if name == "rating" else np.int64
    return column.to_numpy().astype(dtype, copy=False)


def _check_ratings(
    ratings: FloatArray, rating_scale: tuple[float, float] | None
) -> tuple[float, float]:
    """Validate the ratings and return the scale (inferred from them when None)."""
    if not np.isfinite(ratings).all():
        raise ParseError(f"{int((~np.isfinite(ratings)).sum())} rating(s) are not finite numbers")
    if rating_scale is None:
        if ratings.size == 0:
            raise ConfigError("rating_scale must be given when there are no ratings")
        return float(ratings.min()), float(ratings.max())
    low, high = float(rating_scale[0]), float(rating_scale[1])
    if not low <= high:
        raise ConfigError(f"rating_scale {rating_scale} is not (lowest, highest)")
    outside = (ratings < low) | (ratings > high)
    if outside.any():
        examples = np.unique(ratings[outside])[:5].tolist()
        raise ParseError(
            f"{int(outside.sum())} rating(s) outside the scale {low:g}..{high:g}, e.g. {examples}"
        )
    return low, high


# ---------------------------------------------------------------------- assembly


def _index_ids(
    ids: IntArray, dtype: type[np.signedinteger[Any]]
) -> tuple[IntArray, npt.NDArray[np.signedinteger[Any]]]:
    """The sorted distinct ids and, for every input id, its position among them."""
    if ids.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=dtype)
    low, high = int(ids.min()), int(ids.max())
    span = high - low + 1
    if span <= max(_LOOKUP_SPAN, 4 * ids.size):
        offsets = ids - low
        present = np.zeros(span, dtype=bool)
        present[offsets] = True
        position = np.cumsum(present, dtype=dtype) - 1
        return np.flatnonzero(present).astype(np.int64) + low, position[offsets]
    distinct, inverse = np.unique(ids, return_inverse=True)
    return distinct.astype(np.int64), inverse.astype(dtype).ravel()


def _assemble(
    rows: npt.NDArray[np.signedinteger[Any]],
    cols: npt.NDArray[np.signedinteger[Any]],
    ratings: FloatArray,
    times: IntArray | None,
    shape: tuple[int, int],
) -> tuple[npt.NDArray[Any], npt.NDArray[Any], FloatArray, IntArray | None]:
    """CSR ``indptr`` and ``indices``, with the ratings and times in that (row, column) order."""
    # n_users * n_items < 2**63 for any data that fits in memory.
    key = rows.astype(np.int64) * shape[1] + cols
    if np.all(key[1:] > key[:-1]):  # snapshots and MovieLens files come sorted
        return _indptr(rows, shape[0], cols.dtype), cols, ratings, times
    # scipy's COO->CSR is a counting sort by row plus small per-row sorts: several times faster
    # than argsort on 20M shuffled keys. Carrying positions as the values gives the permutation.
    positions = np.arange(rows.size, dtype=np.int64)
    carrier = sp.coo_matrix((positions, (rows, cols)), shape=shape).tocsr()
    if carrier.nnz == rows.size:
        order = carrier.data
        indptr, indices = carrier.indptr.astype(cols.dtype), carrier.indices.astype(cols.dtype)
    else:  # duplicates were summed into the carrier, useless: order them properly
        order = _latest_of_duplicates(key, times)
        indptr, indices = _indptr(rows[order], shape[0], cols.dtype), cols[order]
    return indptr, indices, ratings[order], None if times is None else times[order]


def _latest_of_duplicates(key: IntArray, times: IntArray | None) -> IntArray:
    """Positions of the last rating of each (user, item) key, by time then row, in key order."""
    # lexsort is stable, so ratings at the same time keep their row order and the later wins.
    order = np.lexsort((key,) if times is None else (times, key))
    sorted_key = key[order]
    last = np.append(sorted_key[1:] != sorted_key[:-1], True)
    log.warning("%d duplicate (user, item) rating(s) replaced by the latest", key.size - last.sum())
    return order[last]


def _index_dtype(size: int) -> type[np.signedinteger[Any]]:
    # int32 indices halve the memory and are what `implicit` and most kernels expect.
    return np.int32 if size <= _INT32_MAX else np.int64


def _indptr(
    rows: npt.NDArray[np.signedinteger[Any]], n_rows: int, dtype: np.dtype[Any]
) -> npt.NDArray[Any]:
    indptr = np.zeros(n_rows + 1, dtype=dtype)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return indptr


def _csr(
    data: npt.NDArray[Any],
    indices: npt.NDArray[Any],
    indptr: npt.NDArray[Any],
    shape: tuple[int, int],
) -> sp.csr_matrix:
    """A CSR matrix over the given arrays, no copy, flagged canonical (callers guarantee it)."""
    matrix = sp.csr_matrix((data, indices, indptr), shape=shape, copy=False)
    # Setting the flag also spares scipy an in-place sort, which read-only arrays would refuse.
    matrix.has_canonical_format = True
    return matrix


# ---------------------------------------------------------------------- catalog


def _movies_from_arrow(table: pa.Table) -> pd.DataFrame:
    """The snapshot's movies table as a canonical frame (genres as Python lists)."""
    return pd.DataFrame(
        {
            "item_id": _arrow_array(table, "item_id"),
            "title": table.column("title").to_pylist(),
            "year": pd.array(table.column("year").to_pylist(), dtype="Int64"),
            "genres": [g or [] for g in table.column("genres").to_pylist()],
            "imdb_id": table.column("imdb_id").to_pylist(),
            "tmdb_id": pd.array(table.column("tmdb_id").to_pylist(), dtype="Int64"),
        }
    )


def _build_catalog(item_ids: IntArray, movies: pd.DataFrame) -> pd.DataFrame:
    """The canonical movies in column order; rated items without a movie get "Item <id>"."""
    index = pd.Index(item_ids, name="item_id")
    catalog = movies.set_index("item_id").reindex(index)
    unknown = np.flatnonzero(~np.isin(item_ids, movies["item_id"].to_numpy(np.int64)))
    titles = catalog["title"].to_numpy(dtype=object, copy=True)
    genres = catalog["genres"].to_numpy(dtype=object, copy=True)
    titles[unknown] = [f"Item {item_id}" for item_id in item_ids[unknown]]
    for position in unknown:  # one fresh list each: a shared [] could be mutated for all
        genres[position] = []
    imdb = catalog["imdb_id"].astype(object)
    return catalog.assign(
        title=pd.Series(titles, index=index, dtype=object),
        genres=pd.Series(genres, index=index, dtype=object),
        imdb_id=imdb.where(imdb.notna(), None),
    )


# ---------------------------------------------------------------------- look-ups


def _lookup(known: IntArray, ids: npt.ArrayLike, strict: bool, kind: str) -> IntArray:
    """Positions of ``ids`` in the ascending ``known`` ids, -1 (or an error) for unknown ones."""
    array = np.asarray(ids)
    if array.size and array.dtype.kind not in "iu":
        raise TypeError(f"{kind} ids must be integers, not {array.dtype}")
    array = array.astype(np.int64, copy=False)
    positions = np.searchsorted(known, array)
    if known.size:
        found = known[np.minimum(positions, known.size - 1)] == array
    else:
        found = np.zeros(array.shape, dtype=bool)
    if strict and not found.all():
        missing = np.unique(array[~found])
        shown = ", ".join(str(i) for i in missing[:5]) + (", ..." if missing.size > 5 else "")
        raise UnknownIdError(f"{missing.size} unknown {kind} id(s): {shown}")
    return np.where(found, positions, -1).astype(np.int64, copy=False)

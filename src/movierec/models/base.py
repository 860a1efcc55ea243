"""The Recommender contract every model implements, and the helpers they share.

A model scores items for a batch of users as one dense ``(n_users, n_items)`` block; this base
class turns scores into recommendations (seen-item masking, candidate filtering, top-k by
``argpartition``), folds new users in from their history, and saves and loads models as
``.npz`` arrays plus a JSON config, never pickle (``allow_pickle=False``), in the manner of the
``implicit`` library's ``RecommenderBase``.

Subclasses implement ``_fit``, ``_score_users``, ``_score_history`` and ``_state``/``_restore``;
rating models also implement ``_predict``. ``similar_items`` and ``item_affinity`` use the
item-item weights of an item-based model (``_item_item``), else the item vectors of a factor
model (``_item_vectors``); a model may override ``_similar_scores`` instead.
"""

from __future__ import annotations

import json
import operator
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self, TypeAlias

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from numba import njit
from pydantic import BaseModel, ConfigDict, ValidationError

from movierec import __version__
from movierec.data.interactions import Interactions
from movierec.errors import MovierecError
from movierec.models.arrays import load_arrays, save_arrays
from movierec.models.quantized import QuantizedIndex, worth_indexing

FORMAT_VERSION = 1
SCORE_BATCH_CELLS = 32_000_000
"""Dense cells scored at once (users x items): bounds memory to ~128 MB of float32."""
SIMILAR_TABLE_K = 100
"""Similar items a saved model keeps per item (the API's default largest ``k``); a larger
``k`` is computed when asked."""
WARM_UP_HISTORY = 256  # longer than any factor count a model is likely to have

ItemsAndScores = tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]
ItemItem: TypeAlias = npt.NDArray[np.float32] | sp.csr_matrix


class ModelError(MovierecError):
    """A model used wrongly: not fitted, bad arguments, a file it cannot load."""


class NotARatingModelError(ModelError):
    """``predict`` called on a model that ranks items but does not predict ratings."""


class ModelConfig(BaseModel):
    """Base of every model's typed, validated configuration (logged as run parameters)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 42


class Recommender(ABC):
    """One interface for every model family.

    Indices, not external ids: users and items are rows and columns of the training
    :class:`Interactions`; mapping ids to indices (and handling unknown ids) is the caller's
    job, and the saved model keeps both id maps so a fresh process can do it.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    predicts_ratings: ClassVar[bool] = False

    def __init__(self, config: ModelConfig | None = None, **params: Any) -> None:
        if config is not None and params:
            raise ModelError("pass either a config object or keyword parameters, not both")
        try:
            self.config = config if config is not None else self.config_class(**params)
        except ValidationError as exc:
            raise ModelError(f"invalid {self.name} parameters: {exc}") from exc
        self.user_ids: npt.NDArray[np.int64] | None = None
        self.item_ids: npt.NDArray[np.int64] | None = None
        self.user_items: sp.csr_matrix | None = None
        self.rating_scale: tuple[float, float] = (0.0, 1.0)
        # Built on first use from the fitted arrays (fit() resets them, load() starts afresh).
        self._item_users: sp.csc_matrix | None = None
        self._unit_vectors: npt.NDArray[np.float32] | None = None
        self._similar_index: QuantizedIndex | None = None
        # Every item's most similar items, saved with the model (see _similar_table_to_save).
        self._similar_table: tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]] | None = None

    # ---- training -------------------------------------------------------------------------

    def fit(self, interactions: Interactions) -> Self:
        """Learn from ``interactions`` (users x items); returns ``self``."""
        if interactions.nnz == 0:
            raise ModelError(f"cannot fit {self.name} on an empty interaction matrix")
        self.user_ids = np.asarray(interactions.user_ids)
        self.item_ids = np.asarray(interactions.item_ids)
        self.user_items = interactions.matrix.tocsr()
        self.rating_scale = interactions.rating_scale
        self._item_users = None
        self._unit_vectors = None
        self._similar_index = None
        self._similar_table = None
        self._fit(interactions)
        return self

    @abstractmethod
    def _fit(self, interactions: Interactions) -> None: ...

    # ---- scoring ----------------------------------------------------------------------------

    @abstractmethod
    def _score_users(self, users: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """Scores of every item for each of ``users``: shape ``(len(users), n_items)``."""

    @abstractmethod
    def _score_history(
        self, items: npt.NDArray[np.int64], ratings: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        """Scores of every item for a user known only by this history (fold-in): a new array,
        which the caller masks in place."""

    def _item_vectors(self) -> npt.NDArray[np.float32] | None:
        """Dense item embeddings for cosine ``similar_items``, or None to fall back on
        co-occurrence (people who rated this also rated)."""
        return None

    def unit_item_vectors(self) -> npt.NDArray[np.float32] | None:
        """The item embeddings scaled to length 1, so that a dot product is their cosine
        (computed once); None for a model without embeddings."""
        if self._unit_vectors is None:
            vectors = self._item_vectors()
            if vectors is None:
                return None
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            norms[norms == 0] = 1.0
            self._unit_vectors = np.ascontiguousarray(vectors / norms, dtype=np.float32)
        return self._unit_vectors

    def _item_item(self) -> ItemItem | None:
        """The item-item weights an item-based model scores with (row ``i``: how much having
        item ``i`` raises every item's score), or None for a model without them."""
        return None

    def _similar_scores(self, item: int) -> npt.NDArray[np.float32]:
        weights = self._item_item()
        if weights is not None:
            return item_item_block(weights, np.array([item]), None)[0]
        unit = self.unit_item_vectors()
        if unit is None:
            return cooccurrence_cosine(self._seen(), self._seen_by_item(), item)
        return unit @ unit[item]

    def _dot_index(self) -> QuantizedIndex | None:
        """For a model whose scores are ``item table @ user vector`` over a large catalogue:
        that table's :class:`QuantizedIndex`, which ranks one user exactly while reading a
        quarter of the bytes. None (the default): the full scores are ranked."""
        return None

    def _user_vector(self, user: int) -> npt.NDArray[np.float32]:
        """The vector ``_dot_index``'s table is multiplied by for ``user``."""
        raise NotImplementedError

    def _history_vector(
        self, items: npt.NDArray[np.int64], ratings: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        """The vector ``_dot_index``'s table is multiplied by for a folded-in history."""
        raise NotImplementedError

    def _predict(
        self, users: npt.NDArray[np.int64], items: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float32]:
        raise NotARatingModelError(f"{self.name} ranks items but does not predict ratings")

    # ---- the public contract -------------------------------------------------------------

    @property
    def n_users(self) -> int:
        return len(self._fitted_ids()[0])

    @property
    def n_items(self) -> int:
        return len(self._fitted_ids()[1])

    def recommend(
        self,
        users: int | npt.ArrayLike,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        candidates: npt.ArrayLike | None = None,
    ) -> ItemsAndScores:
        """Top-``k`` items for one user index or a batch of them.

        Returns ``(items, scores)``: 1-D for one user, ``(n_users, k)`` for a batch. A list
        shorter than ``k`` (few candidates left) is padded with item ``-1`` and score ``-inf``.
        """
        single = np.ndim(users) == 0
        index = self._dot_index() if single else None
        if index is not None:  # one user of a large factor model (every API request)
            user = self._check_user(users)
            k = self._check_k(k)
            allowed = self._candidate_mask(candidates)
            seen = self._seen_slice(user) if exclude_seen else None
            return index.top_k(self._user_vector(user), k, _blocked(self.n_items, seen, allowed))
        batch = self._check_users(np.atleast_1d(np.asarray(users, dtype=np.int64)))
        k = self._check_k(k)
        allowed = self._candidate_mask(candidates)
        rows_per_batch = max(1, SCORE_BATCH_CELLS // max(self.n_items, 1))
        out_items = np.empty((len(batch), k), dtype=np.int64)
        out_scores = np.empty((len(batch), k), dtype=np.float32)
        for start in range(0, len(batch), rows_per_batch):
            chunk = batch[start : start + rows_per_batch]
            scores = self._score_users(chunk).astype(np.float32, copy=False)
            if exclude_seen and len(chunk) == 1:
                scores[0, self._seen_slice(int(chunk[0]))] = -np.inf
            elif exclude_seen:
                mask_rows(scores, self._seen()[chunk])
            if allowed is not None:
                scores[:, ~allowed] = -np.inf
            out_items[start : start + len(chunk)], out_scores[start : start + len(chunk)] = top_k(
                scores, k
            )
        return (out_items[0], out_scores[0]) if single else (out_items, out_scores)

    def recommend_for_history(
        self,
        items: npt.ArrayLike,
        ratings: npt.ArrayLike | None = None,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        candidates: npt.ArrayLike | None = None,
    ) -> ItemsAndScores:
        """Top-``k`` items for a user the model never saw, from their history (no retraining).

        ``items`` are item indices; ``ratings`` their ratings on the training scale, or None
        for a plain list of liked items (each taken as the top of the rating scale). Indices
        outside the catalogue raise; the caller maps external ids and reports the unknown ones.
        """
        item_array = np.asarray(items, dtype=np.int64).ravel()
        if _outside(item_array, self.n_items):
            raise ModelError(f"item indices must lie in [0, {self.n_items})")
        rating_array = self._check_history_ratings(item_array, ratings)
        k = self._check_k(k)
        allowed = self._candidate_mask(candidates)
        index = self._dot_index()
        if index is not None:
            blocked = _blocked(self.n_items, item_array if exclude_seen else None, allowed)
            return index.top_k(self._history_vector(item_array, rating_array), k, blocked)
        scores = np.asarray(self._score_history(item_array, rating_array), np.float32)[None, :]
        if exclude_seen and item_array.size:
            scores[0, item_array] = -np.inf
        if allowed is not None:
            scores[:, ~allowed] = -np.inf
        found, values = top_k(scores, k)
        return found[0], values[0]

    def similar_items(self, item: int, k: int = 10) -> ItemsAndScores:
        """The ``k`` items most similar to ``item`` (itself excluded)."""
        if not 0 <= item < self.n_items:
            raise ModelError(f"item index {item} outside [0, {self.n_items})")
        k = self._check_k(k)
        table = self._similar_table
        if table is not None and k <= table[0].shape[1]:
            return table[0][item, :k].astype(np.int64), table[1][item, :k].copy()
        index = self._similar_items_index()
        if index is not None:
            itself = np.array([item], dtype=np.int64)
            return index.top_k(index.factors[item], k, _blocked(self.n_items, itself, None))
        scores = self._similar_scores(int(item)).astype(np.float32)[None, :]
        scores[0, item] = -np.inf
        found, values = top_k(scores, k)
        return found[0], values[0]

    def item_affinity(
        self, sources: npt.ArrayLike, targets: npt.ArrayLike
    ) -> npt.NDArray[np.float32] | None:
        """How strongly the model ties each of ``sources`` to each of ``targets`` (item
        indices): shape ``(len(sources), len(targets))``, larger is closer; None for a model
        with no item-item notion (popularity, biases).

        An item-based model gives its own weights (what having the source adds to the
        target's score), a model with item vectors their cosine. It explains a recommendation:
        "because you liked X", X the liked source of largest affinity.
        """
        source_array = np.asarray(sources, dtype=np.int64).ravel()
        target_array = np.asarray(targets, dtype=np.int64).ravel()
        if _outside(source_array, self.n_items) or _outside(target_array, self.n_items):
            raise ModelError(f"item indices must lie in [0, {self.n_items})")
        return self._item_affinity(source_array, target_array)

    def _item_affinity(
        self, sources: npt.NDArray[np.int64], targets: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float32] | None:
        weights = self._item_item()
        if weights is not None:
            return item_item_block(weights, sources, targets)
        unit = self.unit_item_vectors()
        return None if unit is None else _cosines(unit, sources, targets)

    def warm_up(self) -> None:
        """Build now what answering needs (unit vectors, top-k indexes, compiled kernels)
        rather than on the first request: a server calls it while it loads the model."""
        if self.n_items == 0:
            return
        if self.n_users:
            self.recommend(0, k=1)
        # A short history and a long one: models may solve them by different kernels.
        self.recommend_for_history([0], k=1)
        self.recommend_for_history(np.arange(min(self.n_items, WARM_UP_HISTORY)), k=1)
        self.similar_items(0, k=1)

    def user_index_of(self, user_id: int) -> int | None:
        """The row of external user ``user_id``, or None for a user the model never saw."""
        return _index_of(self._fitted_ids()[0], user_id)

    def item_index_of(self, item_id: int) -> int | None:
        """The column of external movie ``item_id``, or None for a movie the model never saw."""
        return _index_of(self._fitted_ids()[1], item_id)

    def popular_items(self, k: int = 10) -> ItemsAndScores:
        """The ``k`` items most often rated in training: the explicit fallback for a user the
        model cannot personalize for."""
        counts = np.diff(self._seen_by_item().indptr).astype(np.float32)[None, :]
        found, values = top_k(counts, self._check_k(k))
        return found[0], values[0]

    def predict(self, users: npt.ArrayLike, items: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Predicted ratings for (user, item) index pairs; rating models only."""
        user_array = self._check_users(np.asarray(users, dtype=np.int64).ravel())
        item_array = np.asarray(items, dtype=np.int64).ravel()
        if user_array.shape != item_array.shape:
            raise ModelError("predict needs as many item indices as user indices")
        if _outside(item_array, self.n_items):
            raise ModelError(f"item indices must lie in [0, {self.n_items})")
        return self._predict(user_array, item_array)

    # ---- persistence ------------------------------------------------------------------------

    @abstractmethod
    def _state(self) -> dict[str, npt.NDArray[Any]]:
        """The fitted arrays a saved model needs."""

    @abstractmethod
    def _restore(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        """Set the fitted arrays back from :meth:`_state`'s output."""

    def save(self, path: str | Path) -> Path:
        """Write ``config.json`` and ``arrays.npz`` into the folder ``path`` (with the
        similar-items table of a large catalogue: see :meth:`_similar_table_to_save`)."""
        user_ids, item_ids = self._fitted_ids()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        seen = self._seen()
        arrays = {
            **{f"model.{key}": value for key, value in self._state().items()},
            "user_ids": user_ids,
            "item_ids": item_ids,
            "seen.indptr": seen.indptr,
            "seen.indices": seen.indices,
            "seen.data": seen.data,
            "rating_scale": np.asarray(self.rating_scale, dtype=np.float64),
        }
        table = self._similar_table_to_save()
        if table is not None:
            arrays["similar.items"], arrays["similar.scores"] = table
        save_arrays(folder / "arrays.npz", arrays)
        meta = {
            "model": self.name,
            "format_version": FORMAT_VERSION,
            "movierec_version": __version__,
            "config": self.config.model_dump(mode="json"),
        }
        (folder / "config.json").write_text(json.dumps(meta, indent=2))
        return folder

    def save_for_serving(self, path: str | Path) -> Path:
        """:meth:`save`, then load the folder back as a server does (mapped) and warm it up.

        A saved model that cannot be loaded or cannot answer fails here, in training, not at a
        server's start; and numba's on-disk cache then holds the kernels a server runs, so a
        first server start on this machine does not compile them (21 of its 30 s on the
        benchmark machine, measured).
        """
        folder = self.save(path)
        type(self).load(folder, mmap_mode=True).warm_up()
        return folder

    @classmethod
    def load(cls, path: str | Path, *, mmap_mode: bool = False) -> Self:
        """Load a model saved by :meth:`save` (in this or a fresh process).

        ``mmap_mode`` maps the arrays read-only instead of reading them (see
        :mod:`movierec.models.arrays`): processes serving the same file share its memory.
        """
        folder = Path(path)
        meta = _read_meta(folder)
        if meta.get("model") != cls.name:
            raise ModelError(f"{folder} holds a {meta.get('model')!r} model, not {cls.name!r}")
        model = cls(cls.config_class(**meta["config"]))
        try:
            arrays = load_arrays(folder / "arrays.npz", mmap_mode=mmap_mode)
            model.user_ids, model.item_ids = arrays["user_ids"], arrays["item_ids"]
            if "similar.items" in arrays:
                model._similar_table = (arrays["similar.items"], arrays["similar.scores"])
            low, high = arrays["rating_scale"].tolist()
            model.rating_scale = (low, high)
            model.user_items = sp.csr_matrix(
                (arrays["seen.data"], arrays["seen.indices"], arrays["seen.indptr"]),
                shape=(len(model.user_ids), len(model.item_ids)),
            )
            model._restore(
                {key[6:]: value for key, value in arrays.items() if key.startswith("model.")}
            )
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise ModelError(f"cannot load the model arrays in {folder}: {exc}") from exc
        return model

    # ---- validation -------------------------------------------------------------------------

    def _fitted_ids(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        if self.user_ids is None or self.item_ids is None:
            raise ModelError(f"{self.name} is not fitted: call fit() or load() first")
        return self.user_ids, self.item_ids

    def _seen(self) -> sp.csr_matrix:
        self._fitted_ids()
        assert self.user_items is not None
        return self.user_items

    def _seen_slice(self, user: int) -> npt.NDArray[np.int32]:
        """The items ``user`` rated in training: a slice of the CSR arrays, several times
        cheaper than scipy's row indexing."""
        seen = self._seen()
        return seen.indices[seen.indptr[user] : seen.indptr[user + 1]]

    def keep_similar_items(self, k: int) -> None:
        """Compute every item's ``k`` most similar items now and keep them, so
        :meth:`similar_items` reads a row: the server does it in the background for a model
        whose similar items are scored per request (a blend on ml-latest-small answered 1,283
        similar-movies requests/s, a seventh of its cached users', measured). The rows are that
        method's own answers.
        """
        if self._similar_table is not None or self.n_items < 2:
            return
        k = min(self._check_k(k), self.n_items - 1)
        items = np.full((self.n_items, k), -1, dtype=np.int32)
        scores = np.full((self.n_items, k), -np.inf, dtype=np.float32)
        for item in range(self.n_items):
            found, values = self.similar_items(item, k)
            items[item, : len(found)] = found
            scores[item, : len(found)] = values
        self._similar_table = (items, scores)

    def _similar_table_to_save(
        self,
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]] | None:
        """Every item's :data:`SIMILAR_TABLE_K` most similar items, for a large catalogue of
        item vectors (None otherwise); computed once, when the model is first saved.

        A saved model is a served one: "similar movies" then costs a row read instead of a
        scan of the catalogue (0.3 ms per request at 27k movies, measured). The table holds
        the index's own answers, so served answers are the same either way.
        """
        if self._similar_table is None:
            index = self._similar_items_index()
            if index is None:
                return None
            self._similar_table = index.neighbours(min(SIMILAR_TABLE_K, self.n_items - 1))
        return self._similar_table

    def _similar_items_index(self) -> QuantizedIndex | None:
        """The unit item vectors' index for a large catalogue (cosine = dot product)."""
        if self._similar_index is None:
            unit = self.unit_item_vectors()
            if unit is not None and worth_indexing(unit):
                self._similar_index = QuantizedIndex.build(unit)
        return self._similar_index

    def _seen_by_item(self) -> sp.csc_matrix:
        if self._item_users is None:
            self._item_users = self._seen().tocsc()
        return self._item_users

    def _check_users(self, users: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        if _outside(users, self.n_users):
            raise ModelError(f"user indices must lie in [0, {self.n_users})")
        return users

    def _check_user(self, user: Any) -> int:
        """One user index, checked without numpy (a request's µs)."""
        try:
            index = operator.index(user)
        except TypeError:
            raise ModelError(f"a user index must be an integer, got {user!r}") from None
        if not 0 <= index < self.n_users:
            raise ModelError(f"user indices must lie in [0, {self.n_users})")
        return index

    def _check_k(self, k: int) -> int:
        if k <= 0:
            raise ModelError(f"k must be a positive number of items, got {k}")
        return min(int(k), self.n_items)

    def _check_history_ratings(
        self, items: npt.NDArray[np.int64], ratings: npt.ArrayLike | None
    ) -> npt.NDArray[np.float32]:
        if ratings is None:
            return np.full(len(items), self.rating_scale[1], dtype=np.float32)
        values = np.asarray(ratings, dtype=np.float32).ravel()
        if values.shape != items.shape:
            raise ModelError("a history needs one rating per item")
        if not np.isfinite(values).all():
            raise ModelError("history ratings must be finite numbers")
        return values

    def _candidate_mask(self, candidates: npt.ArrayLike | None) -> npt.NDArray[np.bool_] | None:
        if candidates is None:
            return None
        chosen = np.asarray(candidates, dtype=np.int64).ravel()
        if _outside(chosen, self.n_items):
            raise ModelError(f"candidate item indices must lie in [0, {self.n_items})")
        allowed = np.zeros(self.n_items, dtype=bool)
        allowed[chosen] = True
        return allowed


@njit(cache=True)
def _outside(indices: npt.NDArray[np.int64], size: int) -> bool:
    """Whether any index lies outside ``[0, size)``. Compiled: a request's checks are counted
    in µs, and numpy's compare and ``any`` took ~3 µs on ten indices (~0.3 µs here)."""
    for index in indices.ravel():  # noqa: SIM110 (numba compiles the loop, not a generator)
        if index < 0 or index >= size:
            return True
    return False


def components_state(components: Mapping[str, Recommender]) -> dict[str, npt.NDArray[Any]]:
    """The arrays of a composite model's fitted parts, each prefixed with its part's key."""
    return {
        f"{key}.{name}": value
        for key, model in components.items()
        for name, value in model._state().items()
    }


def restore_components(
    owner: Recommender, components: Mapping[str, Recommender], arrays: dict[str, npt.NDArray[Any]]
) -> None:
    """Give each part of ``owner`` its arrays back (see :func:`components_state`) and the
    owner's ids, seen matrix and rating scale, which the parts share."""
    for key, model in components.items():
        model.user_ids, model.item_ids = owner.user_ids, owner.item_ids
        model.user_items, model.rating_scale = owner.user_items, owner.rating_scale
        prefix = f"{key}."
        model._restore(
            {
                name[len(prefix) :]: value
                for name, value in arrays.items()
                if name.startswith(prefix)
            }
        )


def _index_of(sorted_ids: npt.NDArray[np.int64], value: int) -> int | None:
    position = int(sorted_ids.searchsorted(value))
    found = position < len(sorted_ids) and sorted_ids[position] == value
    return position if found else None


def _read_meta(folder: Path) -> dict[str, Any]:
    try:
        meta: dict[str, Any] = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"no readable model in {folder}: {exc}") from exc
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelError(
            f"{folder} was saved in model format {meta.get('format_version')!r} by movierec "
            f"{meta.get('movierec_version')}; this movierec reads format {FORMAT_VERSION}"
        )
    return meta


def cooccurrence_cosine(
    user_items: sp.csr_matrix, item_users: sp.csc_matrix, item: int
) -> npt.NDArray[np.float32]:
    """Cosine between ``item``'s column and every column of the binarized matrix.

    ``item_users`` is the same matrix in CSC form. Uses structure only (a stored 0 rating
    still counts as "rated").
    """
    csc = item_users
    raters = csc.indices[csc.indptr[item] : csc.indptr[item + 1]]
    rows = user_items[raters]
    together = np.bincount(rows.indices, minlength=user_items.shape[1]).astype(np.float32)
    counts = np.diff(csc.indptr).astype(np.float32)
    denominator = np.sqrt(counts * max(len(raters), 1))
    denominator[denominator == 0] = 1.0
    return together / denominator


def item_item_block(
    weights: ItemItem,
    sources: npt.NDArray[np.int64],
    targets: npt.NDArray[np.int64] | None,
) -> npt.NDArray[np.float32]:
    """``weights[sources][:, targets]`` as a new dense float32 array (every column for None).

    A block of a few sources and targets (a recommendation's reasons) is gathered directly:
    taking the source rows first copied whole catalogue-long rows (dense: ~65 µs for 60 x 10 on
    ml-latest-small, against ~6 µs) or went through scipy's fancy indexing (sparse: ~93 µs,
    against ~7 µs compiled).
    """
    if targets is not None and isinstance(weights, np.ndarray):
        return np.asarray(weights[np.ix_(sources, targets)], dtype=np.float32)
    if (
        targets is not None
        and isinstance(weights, sp.csr_array | sp.csr_matrix)
        and weights.has_sorted_indices
    ):
        data = np.asarray(weights.data)
        return _csr_block(weights.indptr, weights.indices, data, sources, targets)
    rows = weights[sources]
    if targets is not None:
        rows = rows[:, targets]
    return np.array(
        rows.toarray() if isinstance(rows, sp.sparray | sp.spmatrix) else rows, dtype=np.float32
    )


@njit(cache=True)
def _csr_block(
    indptr: npt.NDArray[np.int32],
    indices: npt.NDArray[np.int32],
    data: npt.NDArray[np.float32],
    sources: npt.NDArray[np.int64],
    targets: npt.NDArray[np.int64],
) -> npt.NDArray[np.float32]:
    """``csr[sources][:, targets]`` dense, each target found in a source row by bisection."""
    out = np.zeros((len(sources), len(targets)), dtype=np.float32)
    for s in range(len(sources)):
        start, stop = indptr[sources[s]], indptr[sources[s] + 1]
        row = indices[start:stop]
        for t in range(len(targets)):
            at = np.searchsorted(row, targets[t])
            if at < len(row) and row[at] == targets[t]:
                out[s, t] = data[start + at]
    return out


@njit(cache=True, fastmath=True)  # an explanation's sums: their order does not matter
def _cosines(
    unit: npt.NDArray[np.float32], sources: npt.NDArray[np.int64], targets: npt.NDArray[np.int64]
) -> npt.NDArray[np.float32]:
    """``unit[sources] @ unit[targets].T`` without copying the rows out first: compiled, as
    it runs on every recommendation that gives reasons (numpy's gathers cost twice as much)."""
    out = np.empty((len(sources), len(targets)), dtype=np.float32)
    for s in range(len(sources)):
        source = unit[sources[s]]
        for t in range(len(targets)):
            target = unit[targets[t]]
            total = np.float32(0.0)
            for j in range(len(source)):
                total += source[j] * target[j]
            out[s, t] = total
    return out


def _blocked(
    n_items: int, seen: npt.NDArray[np.integer] | None, allowed: npt.NDArray[np.bool_] | None
) -> npt.NDArray[np.bool_]:
    """Items out of the running: ``seen`` ones and those ``allowed`` leaves out."""
    blocked = np.zeros(n_items, dtype=bool) if allowed is None else ~allowed
    if seen is not None:
        blocked[seen] = True
    return blocked


def weighted_rows(
    matrix: sp.csr_matrix, rows: npt.NDArray[np.int64], weights: npt.NDArray[np.floating[Any]]
) -> npt.NDArray[np.float32]:
    """``sum(weights[i] * matrix[rows[i]])`` as a dense row: a history's scores from an
    item-item matrix, reading only the history's rows. The product with the whole transposed
    matrix read all of it (~2M entries, 5 ms on ml-latest-small), scipy's row slicing cost
    ~0.3 ms of Python, a numpy gather and ``bincount`` ~30 µs; compiled, ~12 µs."""
    return _weighted_csr_rows(
        matrix.indptr,
        matrix.indices,
        np.asarray(matrix.data),
        matrix.shape[1],
        np.asarray(rows, dtype=np.int64),
        np.asarray(weights, dtype=np.float64),
    )


@njit(cache=True)
def _weighted_csr_rows(  # noqa: PLR0917 (numba takes arrays positionally)
    indptr: npt.NDArray[np.int32],
    indices: npt.NDArray[np.int32],
    data: npt.NDArray[np.floating[Any]],
    n_columns: int,
    rows: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float64],
) -> npt.NDArray[np.float32]:
    summed = np.zeros(n_columns, dtype=np.float64)
    for r in range(len(rows)):
        weight = weights[r]
        for entry in range(indptr[rows[r]], indptr[rows[r] + 1]):
            summed[indices[entry]] += weight * data[entry]
    return summed.astype(np.float32)


def dense_weighted_rows(
    matrix: npt.NDArray[np.float32],
    rows: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float32],
) -> npt.NDArray[np.float32]:
    """``weights @ matrix[rows]`` without copying the rows out first (a history's scores from
    a dense item-item matrix: ~48 µs on ml-latest-small's EASE, against ~78 µs; the rows come
    from memory either way)."""
    return _dense_weighted_rows(
        matrix, np.asarray(rows, dtype=np.int64), np.asarray(weights, dtype=np.float32)
    )


@njit(cache=True)
def _dense_weighted_rows(
    matrix: npt.NDArray[np.float32],
    rows: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float32],
) -> npt.NDArray[np.float32]:
    summed = np.zeros(matrix.shape[1], dtype=np.float32)
    for r in range(len(rows)):
        row, weight = matrix[rows[r]], weights[r]
        for column in range(len(summed)):
            summed[column] += weight * row[column]
    return summed


def mask_rows(scores: npt.NDArray[np.float32], rows: sp.csr_matrix) -> None:
    """Set ``scores[i, j] = -inf`` wherever ``rows[i, j]`` is stored, in place, vectorized."""
    counts = np.diff(rows.indptr)
    scores[np.repeat(np.arange(rows.shape[0]), counts), rows.indices] = -np.inf


def top_k(scores: npt.NDArray[np.float32], k: int) -> ItemsAndScores:
    """Row-wise top ``k`` of a dense score block, best first.

    Entries scored ``-inf`` (masked) come back as item ``-1``.
    """
    n_rows, n_cols = scores.shape
    k = min(k, n_cols)
    if 0 < k < n_cols:
        # Row by row: faster than a batched argpartition even for large batches, and ties at
        # the cut go to the lowest indices, so one user's list equals their row of a batch.
        items = np.empty((n_rows, k), dtype=np.int64)
        values = np.empty((n_rows, k), dtype=np.float32)
        for row in range(n_rows):
            best = _top_k_row(scores[row], k)
            if best is None:  # NaN scores: the general path below
                break
            items[row], values[row] = best
        else:
            items[np.isneginf(values)] = -1
            return items, values
    if k < n_cols:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols))
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    items = np.take_along_axis(part, order, axis=1).astype(np.int64)
    values = np.take_along_axis(part_scores, order, axis=1).astype(np.float32)
    items[~np.isfinite(values) & (values < 0)] = -1
    return items, values


def _top_k_row(row: npt.NDArray[np.float32], k: int) -> ItemsAndScores | None:
    """The ``k`` best of one row, best first, ties to the lowest index; None when NaN scores
    leave fewer than ``k``."""
    items, values, found = _best_of_row(row, k)
    return (items, values) if found == k else None


@njit(cache=True)
def _best_of_row(
    row: npt.NDArray[np.floating[Any]], k: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], int]:
    """One pass keeping the best ``k`` so far in order: most scores lose to the k-th at once.
    Compiled: a partition of the row, then sorting the few at its top, took ~19 µs of a
    fold-in's catalogue-long row in process (~9 µs here, Python's call included)."""
    items = np.empty(k, dtype=np.int64)
    values = np.empty(k, dtype=np.float32)
    found = 0
    for item in range(len(row)):
        value = np.float32(row[item])
        if np.isnan(value) or (found == k and not value > values[k - 1]):
            continue  # a tie with the k-th keeps the lower index, as a stable sort does
        at = found if found < k else k - 1
        while at > 0 and values[at - 1] < value:
            values[at], items[at] = values[at - 1], items[at - 1]
            at -= 1
        values[at], items[at] = value, item
        found = min(found + 1, k)
    return items, values, found

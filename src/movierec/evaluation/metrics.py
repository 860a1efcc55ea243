"""Rating, ranking and beyond-accuracy metrics, vectorized over users.

Conventions shared by every ranking and beyond-accuracy metric:

* ``recommended`` is an integer array of shape ``(n_users, width)``: row ``u`` holds user ``u``'s
  item indices in rank order (rank 1 first), the batch-first form ``Recommender.recommend`` returns.
  ``-1`` marks an empty slot (a list shorter than ``width``): it is never an item and never a hit.
  A row may not name the same item twice.
* ``relevant`` is a scipy sparse matrix ``(n_users, n_items)`` with the same rows in the same order:
  a stored nonzero entry marks a relevant item; its value is ignored.
* A metric "at k" reads the first ``k`` slots of each row. When ``k`` exceeds ``width`` the missing
  slots count as empty, exactly as ``-1`` padding does (so precision@k still divides by ``k``).
* The value returned is the mean over the users for whom the metric is defined: for accuracy
  metrics, users with at least one relevant item; for list metrics (diversity, novelty,
  popularity), users whose list holds at least one item (two for diversity). With
  ``per_user=True`` the per-user array comes back instead, ``NaN`` where the metric is undefined,
  so rows stay aligned with users for distributions and bootstrap confidence intervals.
* Bad input raises ``ValueError`` with a one-line message.

In the ranking definitions below, ``R`` is the user's set of relevant items, ``hit(r)`` is 1 when
the item at rank ``r`` is in ``R`` (0 for an empty slot), and ``m = min(k, |R|)`` is the largest
number of hits a top-k list can hold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from numbers import Integral
from typing import Literal, TypeAlias, overload

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

IntArray: TypeAlias = npt.NDArray[np.int64]
FloatArray: TypeAlias = npt.NDArray[np.float64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
SparseMatrix: TypeAlias = sp.sparray | sp.spmatrix
Distance: TypeAlias = Literal["cosine", "jaccard"]

PAD = -1
"""The value that fills the empty slots of a recommendation list shorter than its row."""

# Bounds the (users x k x k) and (users x k x features) blocks intra_list_diversity builds at once
# (2**22 float64 values = 32 MiB each), so memory stays flat however many users are evaluated.
_CHUNK_VALUES = 2**22

_NO_RELEVANT = "no user has a relevant item"
_NO_ITEMS = "no recommendation list holds an item"


# --------------------------------------------------------------------------------- validation


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, Integral) or k <= 0:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _structure(matrix: SparseMatrix, name: str) -> sp.csr_array:
    """A canonical CSR copy of ``matrix`` whose stored entries are exactly its nonzero entries."""
    if not sp.issparse(matrix) or len(matrix.shape) != 2:
        raise ValueError(
            f"{name} must be a 2-D scipy.sparse matrix (n_users x n_items), got {type(matrix)}"
        )
    # A copy, because canonicalising in place would mutate the caller's matrix.
    csr = sp.csr_array(matrix, copy=True)
    csr.sum_duplicates()
    csr.eliminate_zeros()
    return csr


def _as_recommended(recommended: npt.ArrayLike, n_items: int) -> IntArray:
    rec = np.asarray(recommended)
    if rec.ndim != 2:
        raise ValueError(f"recommended must be 2-D (n_users, k), got shape {rec.shape}")
    # An empty nested list arrives as float64; only a non-empty array must hold integers.
    if rec.size and not np.issubdtype(rec.dtype, np.integer):
        raise ValueError(f"recommended must hold integer item indices, got dtype {rec.dtype}")
    rec = rec.astype(np.int64, copy=False)
    if rec.size:
        if rec.min() < PAD:
            raise ValueError(
                f"recommended holds {rec.min()}: item indices are >= 0 and {PAD} marks padding"
            )
        if rec.max() >= n_items:
            raise ValueError(f"recommended holds item {rec.max()} but there are {n_items} items")
    _check_distinct(rec)
    return rec


def _check_distinct(rec: IntArray) -> None:
    # A repeated item would be counted as two hits, pushing precision or recall above their
    # definitions (and above 1), so a malformed list is refused rather than scored.
    ordered = np.sort(rec, axis=1)
    repeated = (ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] != PAD)
    if repeated.any():
        row = int(np.flatnonzero(repeated.any(axis=1))[0])
        raise ValueError(f"recommended row {row} names the same item twice")


def _check_rows(rec: IntArray, n_rows: int, name: str) -> None:
    if rec.shape[0] != n_rows:
        raise ValueError(
            f"recommended has {rec.shape[0]} rows but {name} has {n_rows}: "
            "the rows must be the same users in the same order"
        )


def _check_n_items(n_items: int) -> int:
    if isinstance(n_items, bool) or not isinstance(n_items, Integral) or n_items <= 0:
        raise ValueError(f"n_items must be a positive integer, got {n_items!r}")
    return int(n_items)


def _mean_defined(values: FloatArray, undefined_everywhere: str) -> float:
    defined = values[~np.isnan(values)]
    if defined.size == 0:
        raise ValueError(f"the metric is undefined for every user: {undefined_everywhere}")
    return float(defined.mean())


# ----------------------------------------------------------------------------- rating metrics


def _rating_errors(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> FloatArray:
    true = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(y_pred, dtype=np.float64)
    if true.shape != pred.shape:
        raise ValueError(f"y_true has shape {true.shape} but y_pred has shape {pred.shape}")
    if true.size == 0:
        raise ValueError("y_true and y_pred are empty: there is nothing to score")
    for name, values in (("y_true", true), ("y_pred", pred)):
        if not np.isfinite(values).all():
            raise ValueError(f"{name} holds NaN or infinite values")
    return pred - true


def rmse(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Root mean squared error: ``sqrt(mean((y_pred - y_true) ** 2))``.

    Args:
        y_true: The observed ratings, any shape.
        y_pred: The predicted ratings, the same shape.

    Returns:
        The RMSE, in rating units.

    Raises:
        ValueError: On a shape mismatch, empty input, or a NaN or infinite value.
    """
    errors = _rating_errors(y_true, y_pred)
    return float(np.sqrt(np.mean(errors**2)))


def mae(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Mean absolute error: ``mean(|y_pred - y_true|)``.

    Args:
        y_true: The observed ratings, any shape.
        y_pred: The predicted ratings, the same shape.

    Returns:
        The MAE, in rating units (never above the RMSE of the same predictions).

    Raises:
        ValueError: On a shape mismatch, empty input, or a NaN or infinite value.
    """
    errors = _rating_errors(y_true, y_pred)
    return float(np.mean(np.abs(errors)))


# ---------------------------------------------------------------------------- ranking kernels
# Each kernel maps a (n_users, k) hit matrix and the users' relevant-item counts to one value per
# user. Users without relevant items get a placeholder value that _per_user_values blanks to NaN.


def _hit_matrix(rec: IntArray, relevant: sp.csr_array) -> BoolArray:
    """``hits[u, r]`` is True when ``rec[u, r]`` is one of user ``u``'s relevant items."""
    n_users, n_items = relevant.shape
    if relevant.nnz == 0:
        return np.zeros(rec.shape, dtype=np.bool_)
    # One int64 key per (user, item) pair turns the lookup into a single binary search; the keys
    # of a canonical CSR matrix are already sorted (rows ascend, columns ascend within a row).
    rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(relevant.indptr))
    relevant_keys = rows * n_items + relevant.indices
    keys = np.arange(n_users, dtype=np.int64)[:, None] * n_items + rec
    positions = np.minimum(np.searchsorted(relevant_keys, keys), relevant_keys.size - 1)
    # The padding mask is required, not cosmetic: user u's key for -1 equals user u-1's key for
    # the last item, which may be relevant.
    return (relevant_keys[positions] == keys) & (rec != PAD)


def _top_k(hits: BoolArray, k: int) -> BoolArray:
    width = hits.shape[1]
    if k <= width:
        return hits[:, :k]
    return np.pad(hits, ((0, 0), (0, k - width)))


def _ideal_hits(hits: BoolArray, n_relevant: IntArray) -> IntArray:
    """``m = min(k, |R|)``, floored at 1 so users without relevant items do not divide by 0."""
    return np.clip(n_relevant, 1, hits.shape[1])


def _discounts(k: int) -> FloatArray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def _precision(hits: BoolArray, n_relevant: IntArray) -> FloatArray:
    return hits.sum(axis=1) / hits.shape[1]


def _recall(hits: BoolArray, n_relevant: IntArray) -> FloatArray:
    return hits.sum(axis=1) / np.maximum(n_relevant, 1)


def _recall_capped(hits: BoolArray, n_relevant: IntArray) -> FloatArray:
    return hits.sum(axis=1) / _ideal_hits(hits, n_relevant)


def _ndcg(hits: BoolArray, n_relevant: IntArray) -> FloatArray:
    discounts = _discounts(hits.shape[1])
    ideal_dcg = np.cumsum(discounts)[_ideal_hits(hits, n_relevant) - 1]
    return (hits @ discounts) / ideal_dcg


def _average_precision(hits: BoolArray, n_relevant: IntArray) -> FloatArray:
    precision_at_rank = np.cumsum(hits, axis=1) / np.arange(1, hits.shape[1] + 1)
    return (precision_at_rank * hits).sum(axis=1) / _ideal_hits(hits, n_relevant)


def _reciprocal_rank(hits: BoolArray, n_relevant: IntArray) -> FloatArray:
    first_hit = hits.argmax(axis=1)
    return np.where(hits.any(axis=1), 1.0 / (first_hit + 1), 0.0)


def _hit_rate(hits: BoolArray, n_relevant: IntArray) -> FloatArray:
    return np.asarray(hits.any(axis=1), dtype=np.float64)


_Kernel: TypeAlias = Callable[[BoolArray, IntArray], FloatArray]

_KERNELS: dict[str, _Kernel] = {
    "precision": _precision,
    "recall": _recall,
    "recall_capped": _recall_capped,
    "ndcg": _ndcg,
    "map": _average_precision,
    "mrr": _reciprocal_rank,
    "hit_rate": _hit_rate,
}


def _ranking_inputs(
    recommended: npt.ArrayLike, relevant: SparseMatrix
) -> tuple[BoolArray, IntArray]:
    """The validated hit matrix (full width) and each user's number of relevant items."""
    rel = _structure(relevant, "relevant")
    rec = _as_recommended(recommended, rel.shape[1])
    _check_rows(rec, rel.shape[0], "relevant")
    return _hit_matrix(rec, rel), np.diff(rel.indptr).astype(np.int64)


def _per_user_values(kernel: _Kernel, hits: BoolArray, n_relevant: IntArray, k: int) -> FloatArray:
    values = kernel(_top_k(hits, k), n_relevant).astype(np.float64)
    values[n_relevant == 0] = np.nan
    return values


def _ranking_metric(
    name: str, recommended: npt.ArrayLike, relevant: SparseMatrix, k: int, per_user: bool
) -> float | FloatArray:
    k = _check_k(k)
    hits, n_relevant = _ranking_inputs(recommended, relevant)
    values = _per_user_values(_KERNELS[name], hits, n_relevant, k)
    return values if per_user else _mean_defined(values, _NO_RELEVANT)


# ---------------------------------------------------------------------------- ranking metrics


@overload
def precision_at_k(
    recommended: npt.ArrayLike, relevant: SparseMatrix, k: int, *, per_user: Literal[False] = ...
) -> float: ...
@overload
def precision_at_k(
    recommended: npt.ArrayLike, relevant: SparseMatrix, k: int, *, per_user: Literal[True]
) -> FloatArray: ...
def precision_at_k(
    recommended: npt.ArrayLike, relevant: SparseMatrix, k: int, *, per_user: bool = False
) -> float | FloatArray:
    """Precision at k: ``sum(hit(r) for r in 1..k) / k``.

    Args:
        recommended: ``(n_users, width)`` item indices in rank order, ``-1`` padding.
        relevant: ``(n_users, n_items)`` sparse matrix; nonzero entries are relevant items.
        k: The cutoff, a positive integer.
        per_user: Return the per-user values (``NaN`` for users without relevant items).

    Returns:
        The mean over users with at least one relevant item, or the per-user array.

    Raises:
        ValueError: On a bad ``k``, malformed ``recommended``, mismatched rows, or (for the mean)
            no user with a relevant item.
    """
    return _ranking_metric("precision", recommended, relevant, k, per_user)


@overload
def recall_at_k(
    recommended: npt.ArrayLike, relevant: SparseMatrix, k: int, *, per_user: Literal[False] = ...
) -> float: ...
@overload
def recall_at_k(
    recommended: npt.ArrayLike, relevant: SparseMatrix, k: int, *, per_user: Literal[True]
) -> FloatArray: ...
def recall_at_k(
    recommended: npt.ArrayLike, relevant: SparseMatrix, k: int, *, per_user: bool = False
) -> float | FloatArray:
    """Recall at k: ``sum(hit(r) for r in 1..k) / |R|``, the standard definition.

    It cannot reach 1 when ``|R| > k``; :func:`recall_capped_at_k` divides by ``min(k, |R|)``.

    Args:
        recommended: ``(n_users, width)`` item indices in rank order, ``-1`` padding.
        relevant: ``(n_users, n_items)`` sparse matrix; nonzero entries are relevant items.
        k: The cutoff, a positive integer.
        per_user: Return the per-user values (``NaN`` for users without relevant items).

    Returns:
        The mean over users with at least one relevant item, or the per-user array.

    Raises:
        ValueError: On a bad ``k``, malformed ``recommended``, mismatched rows, or (for the mean)
            no user with a relevant item.
    """
    return _ranking_metric("recall", recommended, relevant, k, per_user)


@overload
def recall_capped_at_k(
    recommended: npt.ArrayLike, relevant: SparseMatrix, k: int, *, per_user: Literal[False] = ...
) -> float: ...
@overload
def recall_capped_at_k(
    recommended: npt.ArrayLike, relevant: SparseMatrix, k: int, *, per_user: Literal[True]
) -> FloatArray: ...
def recall_capped_at_k(
    recommended: npt.ArrayLike, relevant: SparseMatrix, k: int, *, per_user: bool = False
) -> float | FloatArray:
    """Capped recall at k: ``sum(hit(r) for r in 1..k) / min(k, |R|)``.

    The variant some papers report (e.g. as "recall" in the VAE-CF and EASE evaluations): a
    perfect top-k list scores 1 even when the user has more than ``k`` relevant items.

    Args:
        recommended: ``(n_users, width)`` item indices in rank order, ``-1`` padding.
        relevant: ``(n_users, n_items)`` sparse matrix; nonzero entries are relevant items.
        k: The cutoff, a positive integer.
        per_user: Return the per-user values (``NaN`` for users without relevant items).

    Returns:
        The mean over users with at least one relevant item, or the per-user array.

    Raises:
        ValueError: On a bad ``k``, malformed ``recommended``, mismatched rows, or (for the mean)
            no user with a relevant item.
    """
    return _ranking_metric("recall_capped", recommended, relevant, k, per_user)


@overload
def ndcg_at_k(
    recommended: npt.ArrayLike, relevant: SparseMatrix, k: int, *, per_user: Literal[False] = ...
) -> float: ...
@overload
def ndcg_at_k(
    recommended: npt.ArrayLike, relevant: SparseMatrix, k: int, *, per_user: Literal[True]
) -> FloatArray: ...
def ndcg_at_k(
    recommended: npt.ArrayLike, relevant: SparseMatrix, k: int, *, per_user: bool = False
) -> float | FloatArray:
    """Normalised discounted cumulative gain at k, with binary gains.

    ``DCG = sum(hit(r) / log2(r + 1) for r in 1..k)``; the ideal DCG puts a hit at each of the
    first ``m = min(k, |R|)`` ranks, ``IDCG = sum(1 / log2(r + 1) for r in 1..m)``;
    ``NDCG = DCG / IDCG``, in [0, 1].

    Args:
        recommended: ``(n_users, width)`` item indices in rank order, ``-1`` padding.
        relevant: ``(n_users, n_items)`` sparse matrix; nonzero entries are relevant items.
        k: The cutoff, a positive integer.
        per_user: Return the per-user values (``NaN`` for users without relevant items).

    Returns:
        The mean over users with at least one relevant item, or the per-user array.

    Raises:
        ValueError: On a bad ``k``, malformed ``recommended``, mismatched rows, or (for the mean)
            no user with a relevant item.
    """
    return _ranking_metric("ndcg", recommended, relevant, k, per_user)


@overload
def map_at_k(
    recommended: npt.ArrayLike, relevant: SparseMatrix, k: int, *, per_user: Literal[False] = ...
) -> float: ...
@overload
def map_at_k(
    recommended: npt.ArrayLike, relevant: SparseMatrix, k: int, *, per_user: Literal[True]
) -> FloatArray: ...
def map_at_k(
    recommended: npt.ArrayLike, relevant: SparseMatrix, k: int, *, per_user: bool = False
) -> float | FloatArray:
    """Mean average precision at k.

    ``AP@k = sum(precision@r * hit(r) for r in 1..k) / min(k, |R|)``: the precision at the rank
    of each hit, averaged over the most hits a top-k list can hold, so a perfect list scores 1.

    Args:
        recommended: ``(n_users, width)`` item indices in rank order, ``-1`` padding.
        relevant: ``(n_users, n_items)`` sparse matrix; nonzero entries are relevant items.
        k: The cutoff, a positive integer.
        per_user: Return the per-user AP values (``NaN`` for users without relevant items).

    Returns:
        The mean AP over users with at least one relevant item, or the per-user array.

    Raises:
        ValueError: On a bad ``k``, malformed ``recommended``, mismatched rows, or (for the mean)
            no user with a relevant item.
    """
    return _ranking_metric("map", recommended, relevant, k, per_user)


@overload
def mrr_at_k(
    recommended: npt.ArrayLike, relevant: SparseMatrix, k: int, *, per_user: Literal[False] = ...
) -> float: ...
@overload
def mrr_at_k(
    recommended: npt.ArrayLike, relevant: SparseMatrix, k: int, *, per_user: Literal[True]
) -> FloatArray: ...
def mrr_at_k(
    recommended: npt.ArrayLike, relevant: SparseMatrix, k: int, *, per_user: bool = False
) -> float | FloatArray:
    """Mean reciprocal rank at k: ``1 / r`` for the first hit's rank ``r <= k``, else 0.

    Args:
        recommended: ``(n_users, width)`` item indices in rank order, ``-1`` padding.
        relevant: ``(n_users, n_items)`` sparse matrix; nonzero entries are relevant items.
        k: The cutoff, a positive integer.
        per_user: Return the per-user values (``NaN`` for users without relevant items).

    Returns:
        The mean over users with at least one relevant item, or the per-user array.

    Raises:
        ValueError: On a bad ``k``, malformed ``recommended``, mismatched rows, or (for the mean)
            no user with a relevant item.
    """
    return _ranking_metric("mrr", recommended, relevant, k, per_user)


@overload
def hit_rate_at_k(
    recommended: npt.ArrayLike, relevant: SparseMatrix, k: int, *, per_user: Literal[False] = ...
) -> float: ...
@overload
def hit_rate_at_k(
    recommended: npt.ArrayLike, relevant: SparseMatrix, k: int, *, per_user: Literal[True]
) -> FloatArray: ...
def hit_rate_at_k(
    recommended: npt.ArrayLike, relevant: SparseMatrix, k: int, *, per_user: bool = False
) -> float | FloatArray:
    """Hit rate at k: 1 when at least one of the top ``k`` items is relevant, else 0.

    Args:
        recommended: ``(n_users, width)`` item indices in rank order, ``-1`` padding.
        relevant: ``(n_users, n_items)`` sparse matrix; nonzero entries are relevant items.
        k: The cutoff, a positive integer.
        per_user: Return the per-user values (``NaN`` for users without relevant items).

    Returns:
        The fraction of users with at least one relevant item who get a hit, or the per-user
        array.

    Raises:
        ValueError: On a bad ``k``, malformed ``recommended``, mismatched rows, or (for the mean)
            no user with a relevant item.
    """
    return _ranking_metric("hit_rate", recommended, relevant, k, per_user)


@overload
def ranking_metrics(
    recommended: npt.ArrayLike,
    relevant: SparseMatrix,
    ks: Iterable[int] = ...,
    *,
    per_user: Literal[False] = ...,
) -> dict[str, float]: ...
@overload
def ranking_metrics(
    recommended: npt.ArrayLike,
    relevant: SparseMatrix,
    ks: Iterable[int] = ...,
    *,
    per_user: Literal[True],
) -> dict[str, FloatArray]: ...
def ranking_metrics(
    recommended: npt.ArrayLike,
    relevant: SparseMatrix,
    ks: Iterable[int] = (5, 10, 20),
    *,
    per_user: bool = False,
) -> dict[str, float] | dict[str, FloatArray]:
    """Every ranking metric at every cutoff, from one hit matrix.

    The metrics and their definitions are those of :func:`precision_at_k`,
    :func:`recall_at_k`, :func:`recall_capped_at_k`, :func:`ndcg_at_k`, :func:`map_at_k`,
    :func:`mrr_at_k` and :func:`hit_rate_at_k`; the lookup of recommended items in ``relevant``
    runs once for all of them.

    Args:
        recommended: ``(n_users, width)`` item indices in rank order, ``-1`` padding.
        relevant: ``(n_users, n_items)`` sparse matrix; nonzero entries are relevant items.
        ks: The cutoffs, positive integers.
        per_user: Return per-user arrays (``NaN`` for users without relevant items).

    Returns:
        ``{"<metric>@<k>": value}`` with metric in ``precision``, ``recall``,
        ``recall_capped``, ``ndcg``, ``map``, ``mrr``, ``hit_rate``; each value the mean over
        users with at least one relevant item, or the per-user array.

    Raises:
        ValueError: On an empty or bad ``ks``, malformed ``recommended``, mismatched rows, or
            (for the means) no user with a relevant item.
    """
    cutoffs = [_check_k(k) for k in ks]
    if not cutoffs:
        raise ValueError("ks is empty: give at least one cutoff")
    hits, n_relevant = _ranking_inputs(recommended, relevant)
    values = {
        f"{name}@{k}": _per_user_values(kernel, hits, n_relevant, k)
        for k in cutoffs
        for name, kernel in _KERNELS.items()
    }
    if per_user:
        return values
    return {
        key: _mean_defined(per_user_values, _NO_RELEVANT) for key, per_user_values in values.items()
    }


# ------------------------------------------------------------------ beyond-accuracy: catalog


def _recommended_items(recommended: npt.ArrayLike, n_items: int) -> IntArray:
    rec = _as_recommended(recommended, _check_n_items(n_items))
    return rec[rec != PAD]


def catalog_coverage(recommended: npt.ArrayLike, n_items: int) -> float:
    """Catalog coverage: the fraction of the ``n_items`` items recommended to at least one user.

    Args:
        recommended: ``(n_users, width)`` item indices in rank order, ``-1`` padding.
        n_items: The catalog size.

    Returns:
        ``|{items in any list}| / n_items``, in [0, 1].

    Raises:
        ValueError: On a non-positive ``n_items`` or malformed ``recommended``.
    """
    items = _recommended_items(recommended, n_items)
    return np.unique(items).size / n_items


def gini_index(recommended: npt.ArrayLike, n_items: int) -> float:
    """Gini index of how often each catalog item is recommended, over all lists.

    With ``c_1 <= ... <= c_n`` the recommendation counts of the ``n = n_items`` items (never
    recommended items count 0), ``G = sum((2 i - n - 1) * c_i) / (n * sum(c))``: 0 when every
    item is recommended equally often, ``1 - 1/n`` when one item takes every slot.

    Args:
        recommended: ``(n_users, width)`` item indices in rank order, ``-1`` padding.
        n_items: The catalog size.

    Returns:
        The Gini index, in [0, 1).

    Raises:
        ValueError: On a non-positive ``n_items``, malformed ``recommended``, or no recommended
            item at all (the index is then undefined).
    """
    items = _recommended_items(recommended, n_items)
    if items.size == 0:
        raise ValueError(f"the Gini index is undefined: {_NO_ITEMS}")
    counts = np.sort(np.bincount(items, minlength=n_items)).astype(np.float64)
    weights = 2.0 * np.arange(1, n_items + 1) - n_items - 1
    return float(weights @ counts / (n_items * counts.sum()))


# ---------------------------------------------------------------- beyond-accuracy: diversity


def _as_features(item_features: npt.ArrayLike | SparseMatrix) -> FloatArray:
    # Dense is deliberate: the intended features (genres, a few dozen columns) are small, and a
    # dense block lets a whole chunk of lists be compared in one batched matrix product.
    if isinstance(item_features, sp.sparray | sp.spmatrix):
        item_features = item_features.toarray()
    features = np.asarray(item_features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] == 0:
        raise ValueError(
            f"item_features must be 2-D (n_items, n_features) with n_items > 0, "
            f"got shape {features.shape}"
        )
    if not np.isfinite(features).all():
        raise ValueError("item_features holds NaN or infinite values")
    return features


def _pair_similarity(gram: FloatArray, distance: Distance) -> FloatArray:
    """Pairwise similarities from a batch of Gram matrices; 0 where a pair has an empty item."""
    self_dot = np.diagonal(gram, axis1=1, axis2=2)
    if distance == "cosine":
        denominator = np.sqrt(self_dot[:, :, None] * self_dot[:, None, :])
    else:
        # For 0/1 vectors the dot product is |A & B| and self_dot is |A|.
        denominator = self_dot[:, :, None] + self_dot[:, None, :] - gram
    similarity = np.divide(gram, denominator, out=np.zeros_like(gram), where=denominator > 0)
    # Rounding (BLAS may sum one dot product differently at different positions) can push a
    # cosine a hair past 1, a distance of -1e-16.
    return np.clip(similarity, -1.0, 1.0)


def _list_diversity(rec: IntArray, features: FloatArray, distance: Distance) -> FloatArray:
    valid = rec != PAD
    vectors = features[np.where(valid, rec, 0)] * valid[:, :, None]
    gram = vectors @ vectors.transpose(0, 2, 1)
    width = rec.shape[1]
    pairs = valid[:, :, None] & valid[:, None, :] & np.triu(np.ones((width, width), bool), 1)
    n_pairs = pairs.sum(axis=(1, 2))
    total = np.where(pairs, 1.0 - _pair_similarity(gram, distance), 0.0).sum(axis=(1, 2))
    return np.divide(total, n_pairs, out=np.full(rec.shape[0], np.nan), where=n_pairs > 0)


@overload
def intra_list_diversity(
    recommended: npt.ArrayLike,
    item_features: npt.ArrayLike | SparseMatrix,
    *,
    distance: Distance = ...,
    per_user: Literal[False] = ...,
) -> float: ...
@overload
def intra_list_diversity(
    recommended: npt.ArrayLike,
    item_features: npt.ArrayLike | SparseMatrix,
    *,
    distance: Distance = ...,
    per_user: Literal[True],
) -> FloatArray: ...
def intra_list_diversity(
    recommended: npt.ArrayLike,
    item_features: npt.ArrayLike | SparseMatrix,
    *,
    distance: Distance = "cosine",
    per_user: bool = False,
) -> float | FloatArray:
    """Intra-list diversity: the mean distance between the items of a list, over its pairs.

    ``ILD(list) = sum(d(i, j) for i < j in list) / (n (n - 1) / 2)`` for a list of ``n >= 2``
    items (undefined for shorter lists), with ``d = 1 - similarity`` of the items' feature
    vectors:

    * ``"cosine"``: ``x_i . x_j / (|x_i| |x_j|)`` on the feature values as given (a distance in
      [0, 1] for nonnegative features such as 0/1 genres);
    * ``"jaccard"``: ``|A & B| / |A | B|`` on the sets of nonzero features.

    An item without features (a zero row) is treated as unlike every item: similarity 0.

    Args:
        recommended: ``(n_users, width)`` item indices in rank order, ``-1`` padding.
        item_features: ``(n_items, n_features)`` dense array or sparse matrix, e.g. 0/1 genres.
        distance: ``"cosine"`` or ``"jaccard"``.
        per_user: Return the per-user values (``NaN`` for lists of fewer than two items).

    Returns:
        The mean ILD over lists of at least two items, or the per-user array.

    Raises:
        ValueError: On malformed inputs, an unknown ``distance``, or (for the mean) no list of
            two items or more.
    """
    if distance not in ("cosine", "jaccard"):
        raise ValueError(f"distance must be 'cosine' or 'jaccard', got {distance!r}")
    features = _as_features(item_features)
    if distance == "jaccard":
        features = (features != 0).astype(np.float64)
    rec = _as_recommended(recommended, features.shape[0])
    values = np.empty(rec.shape[0], dtype=np.float64)
    width = max(rec.shape[1], 1)
    rows_per_chunk = max(1, _CHUNK_VALUES // (width * max(width, features.shape[1])))
    for start in range(0, rec.shape[0], rows_per_chunk):
        chunk = slice(start, start + rows_per_chunk)
        values[chunk] = _list_diversity(rec[chunk], features, distance)
    return values if per_user else _mean_defined(values, "no list holds two items or more")


# --------------------------------------------------------------- beyond-accuracy: popularity


def item_popularity(interactions: SparseMatrix) -> FloatArray:
    """Each item's popularity ``p(i)``: the fraction of users with an interaction with it.

    ``p(i) = max(1, |{u : (u, i) stored and nonzero}|) / n_users``. An item no user interacted
    with counts as if one user had, the rarest popularity observable, so its self-information in
    :func:`novelty` stays finite (``log2(n_users)``) instead of breaking the evaluation of a model
    able to recommend cold items. Popularity is proportional to interaction counts, so shares of
    total popularity are shares of interactions.

    Args:
        interactions: ``(n_users, n_items)`` sparse matrix, usually the training interactions.

    Returns:
        ``p``, shape ``(n_items,)``, values in (0, 1].

    Raises:
        ValueError: If ``interactions`` is not a 2-D sparse matrix with at least one user.
    """
    csr = _structure(interactions, "interactions")
    n_users, n_items = csr.shape
    if n_users == 0:
        raise ValueError("interactions has no users: popularity is undefined")
    counts = np.bincount(csr.indices, minlength=n_items)
    return np.maximum(counts, 1) / n_users


def _as_popularity(item_popularity: npt.ArrayLike) -> FloatArray:
    popularity = np.asarray(item_popularity, dtype=np.float64)
    if popularity.ndim != 1 or popularity.size == 0:
        raise ValueError(
            f"item_popularity must be 1-D (n_items,) and non-empty, got shape {popularity.shape}"
        )
    if not np.isfinite(popularity).all() or (popularity < 0).any() or (popularity > 1).any():
        raise ValueError("item_popularity must hold fractions of users, in [0, 1]")
    return popularity


def _list_mean(rec: IntArray, item_values: FloatArray) -> FloatArray:
    """Each list's mean of ``item_values`` over its items; ``NaN`` for an empty list."""
    valid = rec != PAD
    totals = np.where(valid, item_values[np.where(valid, rec, 0)], 0.0).sum(axis=1)
    n_valid = valid.sum(axis=1)
    return np.divide(totals, n_valid, out=np.full(rec.shape[0], np.nan), where=n_valid > 0)


def _popularity_inputs(
    recommended: npt.ArrayLike, item_popularity: npt.ArrayLike
) -> tuple[IntArray, FloatArray]:
    popularity = _as_popularity(item_popularity)
    return _as_recommended(recommended, popularity.size), popularity


@overload
def novelty(
    recommended: npt.ArrayLike, item_popularity: npt.ArrayLike, *, per_user: Literal[False] = ...
) -> float: ...
@overload
def novelty(
    recommended: npt.ArrayLike, item_popularity: npt.ArrayLike, *, per_user: Literal[True]
) -> FloatArray: ...
def novelty(
    recommended: npt.ArrayLike, item_popularity: npt.ArrayLike, *, per_user: bool = False
) -> float | FloatArray:
    """Novelty: the mean self-information of the recommended items, in bits.

    ``novelty(list) = mean(-log2 p(i) for i in list)``, with ``p(i)`` the fraction of users who
    interacted with ``i`` (see :func:`item_popularity`): an item everyone knows scores 0, an item
    one user in 1024 knows scores 10.

    Args:
        recommended: ``(n_users, width)`` item indices in rank order, ``-1`` padding.
        item_popularity: ``(n_items,)`` popularity ``p(i)`` in [0, 1].
        per_user: Return the per-user values (``NaN`` for empty lists).

    Returns:
        The mean over non-empty lists, or the per-user array.

    Raises:
        ValueError: On malformed inputs, a recommended item with ``p(i) = 0`` (infinite
            self-information), or (for the mean) no non-empty list.
    """
    rec, popularity = _popularity_inputs(recommended, item_popularity)
    items = rec[rec != PAD]
    unseen = items[popularity[items] == 0]
    if unseen.size:
        raise ValueError(
            f"item {unseen[0]} is recommended but has popularity 0, so infinite "
            "self-information; build the popularity with item_popularity(), which floors it"
        )
    self_information = np.zeros_like(popularity)
    np.log2(popularity, out=self_information, where=popularity > 0)
    values = _list_mean(rec, -self_information)
    return values if per_user else _mean_defined(values, _NO_ITEMS)


@overload
def average_recommendation_popularity(
    recommended: npt.ArrayLike, item_popularity: npt.ArrayLike, *, per_user: Literal[False] = ...
) -> float: ...
@overload
def average_recommendation_popularity(
    recommended: npt.ArrayLike, item_popularity: npt.ArrayLike, *, per_user: Literal[True]
) -> FloatArray: ...
def average_recommendation_popularity(
    recommended: npt.ArrayLike, item_popularity: npt.ArrayLike, *, per_user: bool = False
) -> float | FloatArray:
    """Average recommendation popularity (ARP): ``mean(p(i) for i in list)``, averaged over lists.

    ARP as in Abdollahpouri et al. (2019), with popularity as the fraction of users (see
    :func:`item_popularity`) rather than a raw count, so values compare across datasets.

    Args:
        recommended: ``(n_users, width)`` item indices in rank order, ``-1`` padding.
        item_popularity: ``(n_items,)`` popularity ``p(i)`` in [0, 1].
        per_user: Return the per-user values (``NaN`` for empty lists).

    Returns:
        The mean over non-empty lists, in [0, 1], or the per-user array.

    Raises:
        ValueError: On malformed inputs or (for the mean) no non-empty list.
    """
    rec, popularity = _popularity_inputs(recommended, item_popularity)
    values = _list_mean(rec, popularity)
    return values if per_user else _mean_defined(values, _NO_ITEMS)


def long_tail_items(item_popularity: npt.ArrayLike, head_share: float = 0.2) -> BoolArray:
    """The long-tail items: every item outside the popular head.

    The head is the smallest set of most popular items that together hold at least
    ``head_share`` of all interactions (of the summed popularity), plus any item exactly as
    popular as the least popular of them, so ties never split. With the default 0.2, the head
    holds the top 20% of interactions and the tail is everything else.

    Args:
        item_popularity: ``(n_items,)`` popularity ``p(i)`` in [0, 1].
        head_share: The share of interactions the head holds, in (0, 1).

    Returns:
        A boolean mask, shape ``(n_items,)``, True for long-tail items.

    Raises:
        ValueError: On a malformed popularity, an all-zero popularity, or ``head_share``
            outside (0, 1).
    """
    popularity = _as_popularity(item_popularity)
    if not 0.0 < head_share < 1.0:
        raise ValueError(f"head_share must lie in (0, 1), got {head_share}")
    if popularity.sum() == 0:
        raise ValueError("item_popularity is all zero: no item is popular, the head is undefined")
    descending = np.sort(popularity)[::-1]
    cumulative = np.cumsum(descending)
    # Dividing by the cumsum's own last term makes the final share exactly 1.0, so the search
    # always lands on an item, whatever the rounding.
    last_head = int(np.searchsorted(cumulative / cumulative[-1], head_share))
    return popularity < descending[last_head]


@overload
def long_tail_share(
    recommended: npt.ArrayLike,
    item_popularity: npt.ArrayLike,
    *,
    head_share: float = ...,
    per_user: Literal[False] = ...,
) -> float: ...
@overload
def long_tail_share(
    recommended: npt.ArrayLike,
    item_popularity: npt.ArrayLike,
    *,
    head_share: float = ...,
    per_user: Literal[True],
) -> FloatArray: ...
def long_tail_share(
    recommended: npt.ArrayLike,
    item_popularity: npt.ArrayLike,
    *,
    head_share: float = 0.2,
    per_user: bool = False,
) -> float | FloatArray:
    """The share of recommended items that lie in the long tail, averaged over lists.

    ``share(list) = |{i in list : i in tail}| / |list|``, the tail as in :func:`long_tail_items`.

    Args:
        recommended: ``(n_users, width)`` item indices in rank order, ``-1`` padding.
        item_popularity: ``(n_items,)`` popularity ``p(i)`` in [0, 1].
        head_share: The share of interactions the head holds, in (0, 1).
        per_user: Return the per-user values (``NaN`` for empty lists).

    Returns:
        The mean over non-empty lists, in [0, 1], or the per-user array.

    Raises:
        ValueError: On malformed inputs or (for the mean) no non-empty list.
    """
    tail = long_tail_items(item_popularity, head_share)
    rec = _as_recommended(recommended, tail.size)
    values = _list_mean(rec, tail.astype(np.float64))
    return values if per_user else _mean_defined(values, _NO_ITEMS)


def popularity_bias(
    recommended: npt.ArrayLike, item_popularity: npt.ArrayLike, *, head_share: float = 0.2
) -> dict[str, float]:
    """Both popularity-bias measures at once.

    Args:
        recommended: ``(n_users, width)`` item indices in rank order, ``-1`` padding.
        item_popularity: ``(n_items,)`` popularity ``p(i)`` in [0, 1].
        head_share: The share of interactions the head holds, in (0, 1).

    Returns:
        ``{"arp": ..., "long_tail_share": ...}``, see
        :func:`average_recommendation_popularity` and :func:`long_tail_share`.

    Raises:
        ValueError: On malformed inputs or no non-empty list.
    """
    return {
        "arp": average_recommendation_popularity(recommended, item_popularity),
        "long_tail_share": long_tail_share(recommended, item_popularity, head_share=head_share),
    }

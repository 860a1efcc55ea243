"""EASE: an embarrassingly shallow autoencoder (Steck, WWW 2019).

A dense items x items weight matrix ``B`` with a zero diagonal, fitted in closed form to
reproduce the binarized user x item matrix ``X`` from itself::

    G = X^T X + lambda * I,   P = G^-1,   B = -P / diag(P) (column-wise),   diag(B) = 0

Scores are ``X_u @ B``; a new user folds in the same way from their binarized history.

``lambda = 500`` was the best on a validation split of ml-latest-small (300 on ml-100k, within
1% of 500).

Opt-in recency weighting (``recency_half_life_days``, see :mod:`movierec.models.weighting`)
replaces the ones of ``X`` by recency weights, in the Gram matrix and in the scored rows. On the
validation splits a 180-day half-life raised NDCG@10 by 2% (ml-latest-small) and 1% (ml-100k);
it stays off by default because it needs timestamps.

Opt-in recency by position (``recency_half_life_ratings``) weights only the scored rows, the
user's profile, by how many of their ratings came later; ``B`` is fitted as before. On the
validation splits a half-life of 3 ratings raised NDCG@10 from 0.112 to 0.124 (ml-latest-small)
and from 0.148 to 0.182 (ml-100k) at lambda 500. It stays off by default (it needs timestamps);
the blend uses it. A folded-in history is taken in the order given, the latest last.

Opt-in EDLAE (``dropout = p``; Steck, "Autoencoders that don't overfit towards the identity",
NeurIPS 2020, full rank with the zero diagonal) is the same closed form with a per-item penalty
``Lambda = lambda I + p / (1 - p) * diag(X^T X)``: dropout regularizes popular items harder.
On the validation splits (lambda x p in {50, 100, 200, 400} x {0.1, 0.25, 0.5}) it did not beat
plain EASE consistently: best 0.1125 (lambda 400, p 0.1) against 0.1120 on ml-latest-small,
0.1508 (lambda 200, p 0.5) against 0.1478 on ml-100k, where that setting loses on
ml-latest-small (0.1113). So ``dropout`` stays 0 by default.

Memory is quadratic in the catalogue: ``B`` is ``n_items^2`` float32, 2.9 GB at 27k items (and
as much again while inverting, and on disk). :attr:`EASEConfig.max_items` refuses larger
catalogues before allocating anything. The inverse is taken in float32 through a Cholesky
factorization in place (``G`` is symmetric positive definite), which keeps the peak at about
two matrices.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from pydantic import Field
from scipy.linalg import lapack

from movierec.data.interactions import Interactions
from movierec.models.base import ModelConfig, ModelError, Recommender, dense_weighted_rows
from movierec.models.weighting import (
    RecencyConfig,
    history_weights,
    interaction_weights,
    scored_row_weights,
)


class EASEConfig(ModelConfig, RecencyConfig):
    """EASE's L2 penalty and its memory guard."""

    regularization: float = Field(default=500.0, gt=0, description="Steck's lambda.")
    dropout: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="EDLAE's dropout probability p: adds p/(1-p) * diag(X^T X) to the penalty; "
        "0 is plain EASE.",
    )
    max_items: int = Field(
        default=30_000,
        ge=1,
        description="Refuse larger catalogues: B needs 4 * n_items^2 bytes (2.9 GB at 27k).",
    )


class EASE(Recommender):
    """Item-item linear autoencoder with a closed-form solution."""

    name: ClassVar[str] = "ease"
    config_class: ClassVar[type[ModelConfig]] = EASEConfig
    config: EASEConfig

    def __init__(self, config: EASEConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self.weights: npt.NDArray[np.float32] | None = None
        self.row_weights: npt.NDArray[np.float32] | None = None  # one per stored rating

    def _fit(self, interactions: Interactions) -> None:
        n_items = interactions.n_items
        if n_items > self.config.max_items:
            gigabytes = 4 * n_items**2 / 1e9
            raise ModelError(
                f"ease needs a dense {n_items:,} x {n_items:,} matrix ({gigabytes:.1f} GB); "
                f"that is over max_items={self.config.max_items:,}: raise it if memory allows, "
                "or use item_knn or als"
            )
        matrix = interactions.matrix
        gram_weights = interaction_weights(interactions, self.config.recency_half_life_days)
        weighted = sp.csr_matrix((gram_weights, matrix.indices, matrix.indptr), matrix.shape)
        self.row_weights = scored_row_weights(interactions, self.config)
        gram = np.asarray((weighted.T @ weighted).toarray(), dtype=np.float32)
        self.weights = ease_weights(gram, self.config.regularization, self.config.dropout)

    def _b(self) -> npt.NDArray[np.float32]:
        if self.weights is None:
            raise ModelError(f"{self.name} is not fitted: call fit() or load() first")
        return self.weights

    def _score_users(self, users: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        seen = self._seen()
        # Structure only (a stored 0 is still a rating), valued 1 or by recency (age, position).
        weights = np.ones(seen.nnz, np.float32) if self.row_weights is None else self.row_weights
        rows = sp.csr_matrix((weights, seen.indices, seen.indptr), seen.shape)[users]
        return np.asarray(rows @ self._b(), dtype=np.float32)

    def _score_history(
        self, items: npt.NDArray[np.int64], ratings: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        # Binarized like the training rows; a repeated item counts once, at its latest position.
        distinct, _, weights = history_weights(items, self.config.recency_half_life_ratings)
        return dense_weighted_rows(self._b(), distinct, weights)

    def _item_item(self) -> npt.NDArray[np.float32]:
        # Row i of B: how much having seen item i raises every other item's score.
        return self._b()

    def _state(self) -> dict[str, npt.NDArray[Any]]:
        state = {"weights": self._b()}
        if self.row_weights is not None:
            state["row_weights"] = self.row_weights
        return state

    def _restore(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        self.weights = arrays["weights"]
        self.row_weights = arrays.get("row_weights")


def ease_weights(
    gram: npt.NDArray[np.float32], regularization: float, dropout: float = 0.0
) -> npt.NDArray[np.float32]:
    """EASE's (or EDLAE's) ``B`` from the item Gram matrix ``X^T X``, overwriting ``gram``.

    Args:
        gram: ``X^T X`` as a C-contiguous float32 array; reused as the output buffer.
        regularization: Steck's lambda, added to the diagonal.
        dropout: EDLAE's dropout probability ``p``; ``p / (1 - p) * diag(X^T X)`` is added to
            the diagonal as well (0: plain EASE).
    """
    diagonal = np.arange(gram.shape[0])
    penalty = np.float64(regularization) + dropout / (1.0 - dropout) * np.diag(gram)
    gram[diagonal, diagonal] += penalty.astype(np.float32)
    inverse = _spd_inverse(gram)
    inverse /= -np.diag(inverse)[None, :]
    inverse[diagonal, diagonal] = 0.0
    return inverse


def _spd_inverse(matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Inverse of a symmetric positive definite matrix by Cholesky, in place where possible."""
    # LAPACK works on Fortran order; the transpose of a C-ordered symmetric matrix is the same
    # matrix in Fortran order, so no copy is made.
    fortran = matrix.T
    factor, info = lapack.spotrf(fortran, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise ModelError(f"ease: X^T X + lambda I is not positive definite (LAPACK info {info})")
    inverse, info = lapack.spotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise ModelError(f"ease: cannot invert X^T X + lambda I (LAPACK info {info})")
    _mirror_upper(inverse)
    # Symmetric now, so its C-ordered transpose view is the same matrix.
    result: npt.NDArray[np.float32] = inverse.T
    return result


def _mirror_upper(matrix: npt.NDArray[np.float32], block: int = 1024) -> None:
    """Copy the upper triangle onto the lower one in place, a block of rows at a time."""
    n = matrix.shape[0]
    for start in range(0, n, block):
        stop = min(start + block, n)
        matrix[start:stop, :start] = matrix[:start, start:stop].T
        square = matrix[start:stop, start:stop]
        square[...] = np.triu(square) + np.triu(square, 1).T

"""RP3beta: item-item similarity from three-step random walks on the user-item graph.

Paudel et al. (ACM TiiS 2016), as benchmarked by Dacrema et al. (RecSys 2019). With ``X`` the
binarized users x items matrix, ``P_ui`` its rows and ``P_iu`` the rows of ``X^T``, each
normalized to sum to 1 (transition probabilities), raised element-wise to ``alpha``::

    W_ij = (P_iu @ P_ui)_ij / popularity_j ** beta

the probability of walking item i -> user -> item j, damped by the popularity of j so the walk
does not always end on blockbusters. Each row keeps its top ``neighbors`` entries (diagonal
excluded), as a sparse CSR matrix. A user's scores are their row of ``X`` times ``W``; a new user
folds in the same way from their history.

With ``recency_half_life_days`` set, ``X`` holds recency weights instead of ones (see
:mod:`movierec.models.weighting`), in the walk and in the user's row; with
``recency_half_life_ratings`` set, the user's row (not the walk) is also weighted by how many of
their ratings came later.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from pydantic import Field

from movierec.data.interactions import Interactions
from movierec.models.base import ModelConfig, ModelError, Recommender, weighted_rows
from movierec.models.knn import ITEM_BLOCK_CELLS, _top_per_row
from movierec.models.weighting import (
    RecencyConfig,
    history_weights,
    interaction_weights,
    scored_row_weights,
)


class RP3betaConfig(ModelConfig, RecencyConfig):
    """The walk's sharpening, popularity damping and sparsity.

    The paper's ``alpha=1, beta=0.5`` scored NDCG@10 0.080 on a validation split (the latest
    20% of each user's training ratings) of ml-latest-small; ``alpha=0.4, beta=0.3`` was the
    best of a small grid there (0.104) and on ml-100k (0.140). Recency weighting by age changed
    it by under 1% on both, so it stays off; by position (a half-life of 3 ratings) it raised
    NDCG@10 to 0.114 and 0.170, and stays off by default because it needs timestamps.
    """

    alpha: float = Field(default=0.4, gt=0, description="Exponent of the transition probabilities.")
    beta: float = Field(default=0.3, ge=0, description="Popularity damping of the target item.")
    neighbors: int = Field(default=200, ge=1, description="Similarities kept per item.")


class RP3beta(Recommender):
    """Graph-based item-item recommender (random walks with popularity re-weighting)."""

    name: ClassVar[str] = "rp3beta"
    config_class: ClassVar[type[ModelConfig]] = RP3betaConfig
    config: RP3betaConfig

    def __init__(self, config: RP3betaConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self.similarity: sp.csr_matrix | None = None
        self.user_rows: sp.csr_matrix | None = None

    def _fit(self, interactions: Interactions) -> None:
        matrix = interactions.matrix
        walk_weights = interaction_weights(interactions, self.config.recency_half_life_days)
        self.user_rows = sp.csr_matrix(
            (scored_row_weights(interactions, self.config), matrix.indices, matrix.indptr),
            shape=matrix.shape,
        )
        self.similarity = rp3beta_similarity(
            sp.csr_matrix((walk_weights, matrix.indices, matrix.indptr), shape=matrix.shape),
            alpha=self.config.alpha,
            beta=self.config.beta,
            neighbors=self.config.neighbors,
        )

    def _fitted(self) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        if self.similarity is None or self.user_rows is None:
            raise ModelError(f"{self.name} is not fitted: call fit() or load() first")
        return self.user_rows, self.similarity

    def _score_users(self, users: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        rows, similarity = self._fitted()
        return np.asarray((rows[users] @ similarity).toarray(), dtype=np.float32)

    def _score_history(
        self, items: npt.NDArray[np.int64], ratings: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        # A history has no timestamps: every item in it weighs 1 by age, like a user's latest
        # rating, and by its position in the list (the latest last) when that weighting is on.
        distinct, _, weights = history_weights(items, self.config.recency_half_life_ratings)
        return weighted_rows(self._fitted()[1], distinct, weights)

    def _item_item(self) -> sp.csr_matrix:
        return self._fitted()[1]

    def _state(self) -> dict[str, npt.NDArray[Any]]:
        rows, similarity = self._fitted()
        return {
            "sim.data": similarity.data,
            "sim.indices": similarity.indices,
            "sim.indptr": similarity.indptr,
            "row_weights": rows.data,
        }

    def _restore(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        self.similarity = sp.csr_matrix(
            (arrays["sim.data"], arrays["sim.indices"], arrays["sim.indptr"]),
            shape=(self.n_items, self.n_items),
        )
        seen = self._seen()
        self.user_rows = sp.csr_matrix(
            (arrays["row_weights"], seen.indices, seen.indptr), shape=seen.shape
        )


def _row_stochastic(matrix: sp.csr_matrix, alpha: float) -> sp.csr_matrix:
    """Rows scaled to sum to 1, then every entry raised to ``alpha``."""
    sums = np.asarray(matrix.sum(axis=1), dtype=np.float64).ravel()
    sums[sums == 0] = 1.0
    scaled = sp.csr_matrix(sp.diags(1.0 / sums) @ matrix, dtype=np.float64)
    scaled.data **= alpha
    return scaled


def rp3beta_similarity(
    user_items: sp.csr_matrix, *, alpha: float, beta: float, neighbors: int
) -> sp.csr_matrix:
    """RP3beta's sparse items x items ``W`` from a (weighted) users x items matrix.

    Args:
        user_items: Users x items, positive weights where a rating is stored.
        alpha: Exponent applied to every transition probability.
        beta: ``W[:, j]`` is divided by ``popularity_j ** beta`` (rating counts).
        neighbors: Largest entries kept per row; the diagonal is never kept.
    """
    n_items = user_items.shape[1]
    user_to_item = _row_stochastic(user_items, alpha)
    item_to_user = _row_stochastic(user_items.T.tocsr(), alpha)
    popularity = np.diff(user_items.tocsc().indptr).astype(np.float64)
    damping = np.zeros(n_items)
    damping[popularity > 0] = popularity[popularity > 0] ** -beta
    block = max(1, ITEM_BLOCK_CELLS // max(n_items, 1))
    keep = min(neighbors, n_items)
    parts = []
    for start in range(0, n_items, block):
        stop = min(start + block, n_items)
        walks = (item_to_user[start:stop] @ user_to_item).toarray() * damping[None, :]
        walks[np.arange(stop - start), np.arange(start, stop)] = 0.0
        parts.append(_top_per_row(walks.astype(np.float32), keep))
    return sp.vstack(parts, format="csr").astype(np.float32)

"""Matrix factorization for implicit feedback: ALS and BPR, trained by the ``implicit`` library.

``implicit`` only trains. The fitted user and item factors are kept as plain numpy arrays, so
scoring (``U[users] @ V.T``), fold-in and a loaded model need numpy alone, and nothing is
pickled.

* :class:`ALS` (Hu, Koren & Volinsky 2008) fits preferences ``p_ui = 1`` for every stored
  rating with confidence ``c_ui = 1 + alpha * v_ui``, where ``v_ui`` is 1 (``confidence =
  "binary"``) or the rating (``"rating"``); unobserved pairs have ``p = 0``, ``c = 1``.
* :class:`BPR` (Rendle et al. 2009) fits a pairwise ranking loss with SGD; ``implicit`` appends
  an item-bias column to the item factors and a constant 1 to the user factors.

The defaults were chosen by NDCG@10 on a validation split carved from the training part of a
per-user temporal holdout of ml-100k and ml-latest-small: ALS does best with little extra
confidence and strong regularization (``confidence="rating"``, ``alpha=0.5``,
``regularization=20``); BPR with a small learning rate and few epochs before it overfits.

Opt-in recency weighting (``recency_half_life_days``, see :mod:`movierec.models.weighting`)
multiplies each rating's whole confidence by its recency weight ``w``: ``c_ui = w * (1 + alpha *
v_ui)``. Validation NDCG@10 (mean of 3 seeds, alpha 0.5; off: 0.1122 ml-latest-small, 0.1558
ml-100k): half-life 30 days 0.1127 / 0.1573, 60 days 0.1144 / 0.1564, 90 days 0.1143 / 0.1556,
180 days 0.1134 / 0.1552.
Fading only the alpha term (``1 + alpha * w * v``) did about as well on ml-100k (7 days 0.1579)
and worse on ml-latest-small (at most 0.1134); larger alphas lost everywhere. The gains are
1-2%, within a few seed spreads, and weighting needs timestamps, so it stays off by default. A
folded-in history has no timestamps and is weighted 1.

Opt-in recency by position (``recency_half_life_ratings``) leaves the item factors as fitted and
solves every user's factors once more, after training, with each confidence also multiplied by
``2^(-n_later/half_life)`` (``n_later``: how many of the user's ratings came later): the user's
taste is read from their latest ratings. On the validation splits (30-day age half-life, one
seed) a half-life of 3 ratings raised NDCG@10 from 0.113 to 0.124 (ml-latest-small) and from
0.158 to 0.203 (ml-100k); adding 1 to every such confidence, so old ratings still count as seen,
scored lower (0.119 and 0.167). Off by default (it needs timestamps); the blend uses it. A
folded-in history is weighted by its order, the latest last.

Fold-in of a new user solves the ALS user step in closed form with the item factors frozen::

    x_u = (V^T V + V_h^T (C_h - I) V_h + reg I)^-1 V_h^T c_h

with ``V_h`` the factors of the history's items and ``c_h`` their confidences: for ALS this is
exactly the step training takes. BPR has no such step, so its fold-in is that same weighted
least-squares projection onto its item factors (bias column held fixed, confidence
``1 + fold_in_alpha``): an approximation, good for ranking, not BPR's own objective.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from numba import njit
from pydantic import Field
from threadpoolctl import threadpool_limits

from movierec.data.interactions import Interactions
from movierec.models.base import ModelConfig, ModelError, Recommender
from movierec.models.quantized import QuantizedIndex, worth_indexing
from movierec.models.weighting import (
    RecencyConfig,
    history_weights,
    interaction_weights,
    position_weights,
)

Float64s = npt.NDArray[np.float64]


class FactorConfig(ModelConfig):
    """Settings shared by the factorization models."""

    factors: int = Field(default=64, ge=1, description="Latent dimensions.")
    iterations: int = Field(default=15, ge=1, description="Training epochs.")
    num_threads: int = Field(
        default=1, ge=0, description="implicit's training threads; 0 uses every core."
    )


class ALSConfig(FactorConfig, RecencyConfig):
    """Implicit-feedback ALS: confidence ``1 + alpha * v`` (times a recency weight, opt-in)."""

    regularization: float = Field(default=20.0, ge=0, description="L2 penalty on the factors.")
    alpha: float = Field(default=0.5, ge=0, description="Extra confidence per unit of v.")
    confidence: Literal["binary", "rating"] = Field(
        default="rating", description="v: 1 for every rating, or the rating itself."
    )
    # 2, not implicit's 3: as good or better on validation NDCG@10 (mean of 3 seeds: 0.1128 vs
    # 0.1116 on ml-latest-small, 0.1559 vs 0.1547 on ml-100k; 1 step loses 0.006 to 0.017) and
    # a third less solver work per iteration.
    cg_steps: int = Field(
        default=2, ge=1, le=10, description="Conjugate-gradient steps per least-squares solve."
    )


class BPRConfig(FactorConfig):
    """Bayesian personalized ranking by SGD."""

    factors: int = Field(default=128, ge=1, description="Latent dimensions (plus a bias).")
    iterations: int = Field(default=50, ge=1, description="Training epochs.")
    learning_rate: float = Field(default=0.01, gt=0)
    regularization: float = Field(default=0.001, ge=0, description="L2 penalty on the factors.")
    fold_in_alpha: float = Field(
        default=10.0, ge=0, description="Confidence 1 + fold_in_alpha of a folded-in history."
    )
    fold_in_regularization: float = Field(
        default=1.0, ge=0, description="Ridge penalty of the fold-in projection."
    )


class _FactorModel(Recommender):
    """Scoring, fold-in and persistence of a model that is ``U @ V.T``."""

    config: FactorConfig
    has_bias: ClassVar[bool] = False
    """Whether the last factor column is an item bias (user column fixed at 1)."""

    def __init__(self, config: FactorConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self.user_factors: npt.NDArray[np.float32] | None = None
        self.item_factors: npt.NDArray[np.float32] | None = None
        # The item factors (and ridge) they were computed from, then _fold_in_terms' result /
        # the index.
        self._fold_in_cache: tuple[npt.NDArray[np.float32], float, FoldInTerms] | None = None
        self._index_cache: tuple[npt.NDArray[np.float32], QuantizedIndex] | None = None

    def _factors(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        if self.user_factors is None or self.item_factors is None:
            raise ModelError(f"{self.name} is not fitted: call fit() or load() first")
        return self.user_factors, self.item_factors

    def _train(
        self,
        trainer_class: Any,
        confidence: sp.csr_matrix,
        attributes: dict[str, Any] | None = None,
        user_confidence: sp.csr_matrix | None = None,
        **params: Any,
    ) -> None:
        """Fit ``trainer_class(**params)`` (an ``implicit`` model) and keep its factors.

        ``attributes`` are set on the trainer after construction, for options implicit does not
        take as arguments. With ``user_confidence``, every user's factors are solved once more
        from it after training, the item factors held fixed (implicit's exact user step).
        """
        # implicit parallelizes itself, and warns (on creation and fit) when BLAS does too.
        with threadpool_limits(limits=1, user_api="blas"):
            trainer = trainer_class(
                factors=self.config.factors,
                iterations=self.config.iterations,
                num_threads=self.config.num_threads,
                random_state=self.config.seed,
                dtype=np.float32,
                **params,
            )
            for name, value in (attributes or {}).items():
                setattr(trainer, name, value)
            trainer.fit(confidence, show_progress=False)
            users = (
                trainer.user_factors
                if user_confidence is None
                else trainer.recalculate_user(np.arange(confidence.shape[0]), user_confidence)
            )
        self.user_factors = np.ascontiguousarray(users, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(trainer.item_factors, dtype=np.float32)

    def _score_users(self, users: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        user_factors, item_factors = self._factors()
        return user_factors[users] @ item_factors.T

    def _score_history(
        self, items: npt.NDArray[np.int64], ratings: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        _, item_factors = self._factors()
        return item_factors @ self._history_vector(items, ratings)

    def _dot_index(self) -> QuantizedIndex | None:
        _, item_factors = self._factors()
        if not worth_indexing(item_factors):
            return None
        if self._index_cache is None or self._index_cache[0] is not item_factors:
            self._index_cache = (item_factors, QuantizedIndex.build(item_factors))
        return self._index_cache[1]

    def _user_vector(self, user: int) -> npt.NDArray[np.float32]:
        user_factors, _ = self._factors()
        return user_factors[user]

    def _fold_in(
        self, items: npt.NDArray[np.int64], confidence: npt.NDArray[np.float32], reg: float
    ) -> npt.NDArray[np.float32]:
        """The factors of a user solved from ``items`` with ``confidence`` (the ALS user
        step), in float64, returned in float32 like a known user's."""
        _, item_factors = self._factors()
        terms = self._fold_in_terms(reg)
        if len(items) <= len(terms.gram):
            user = _solve_user_low_rank(
                item_factors,
                items,
                confidence,
                terms.ridge_inverse,
                terms.ridge_solution,
                self.has_bias,
            )
        else:
            user = _solve_user(
                item_factors,
                items,
                confidence,
                reg,
                terms.gram,
                terms.factors_offset,
                self.has_bias,
            )
        if self.has_bias:  # the user's bias column is 1, as in training
            user = np.append(user, 1.0)
        # Not scored against a float64 copy of the item factors: that was a private 14 MB
        # per server worker, read in full by every fold-in.
        return user.astype(np.float32)

    def _fold_in_terms(self, reg: float) -> FoldInTerms:
        """What every fold-in solve shares, in float64, for item factors ``V`` (bias column
        ``offset`` apart) and ridge ``reg``.

        They depend on the item factors alone, so they are computed once per set of factors:
        at 27k items the Gram matrix alone took ~7 ms of a ~7.5 ms fold-in.
        """
        _, item_factors = self._factors()
        cached = self._fold_in_cache
        if cached is None or cached[0] is not item_factors or cached[1] != reg:
            factors = item_factors.astype(np.float64)
            offset = np.zeros(len(factors))
            if self.has_bias:
                offset = factors[:, -1].copy()
                factors = np.ascontiguousarray(factors[:, :-1])
            gram = factors.T @ factors
            factors_offset = factors.T @ offset
            ridge_inverse = np.linalg.inv(gram + reg * np.eye(len(gram))).astype(np.float64)
            ridge_solution = ridge_inverse @ -factors_offset
            terms = FoldInTerms(gram, factors_offset, ridge_inverse, ridge_solution)
            cached = self._fold_in_cache = (item_factors, reg, terms)
        return cached[2]

    def _item_vectors(self) -> npt.NDArray[np.float32] | None:
        _, item_factors = self._factors()
        return item_factors[:, :-1] if self.has_bias else item_factors

    def _state(self) -> dict[str, npt.NDArray[Any]]:
        user_factors, item_factors = self._factors()
        return {"user_factors": user_factors, "item_factors": item_factors}

    def _restore(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        self.user_factors = arrays["user_factors"]
        self.item_factors = arrays["item_factors"]


class FoldInTerms(NamedTuple):
    """The fold-in solve's terms that depend on the item factors ``V`` alone."""

    gram: Float64s  # V^T V
    factors_offset: Float64s  # V^T offset (the item bias column; zeros without one)
    ridge_inverse: Float64s  # (V^T V + reg I)^-1
    ridge_solution: Float64s  # the user of an empty history: ridge_inverse @ -factors_offset


def _writable_csr(matrix: sp.csr_matrix, data: npt.NDArray[np.float32]) -> sp.csr_matrix:
    """``matrix``'s structure with new values, in fresh writable arrays (implicit writes)."""
    return sp.csr_matrix(
        (data.astype(np.float32), matrix.indices.copy(), matrix.indptr.copy()),
        shape=matrix.shape,
    )


@njit(cache=True)
def _solve_user(  # noqa: PLR0917 (numba takes arrays positionally)
    item_factors: npt.NDArray[np.float32],
    items: npt.NDArray[np.int64],
    confidence: npt.NDArray[np.float32],
    reg: float,
    gram: Float64s,
    factors_offset: Float64s,
    has_bias: bool,
) -> Float64s:
    """The ALS user step for one history, in float64 (compiled: a fold-in is one request).

    Unobserved items have target ``0 - offset`` at confidence 1, history items ``1 - offset``
    at their confidence; ``gram`` and ``factors_offset`` are ``V^T V`` and ``V^T offset``.
    """
    width = gram.shape[0]
    lhs = gram.copy()
    rhs = -factors_offset
    for position in range(len(items)):
        row = item_factors[items[position]]
        weight = np.float64(confidence[position])
        offset = np.float64(row[width]) if has_bias else 0.0
        for a in range(width):
            scaled = (weight - 1.0) * np.float64(row[a])
            rhs[a] += weight * np.float64(row[a]) - scaled * offset
            for b in range(width):
                lhs[a, b] += scaled * np.float64(row[b])
    for a in range(width):
        lhs[a, a] += reg
    return _cholesky_solve(lhs, rhs)


@njit(cache=True)
def _solve_user_low_rank(  # noqa: PLR0917 (numba takes arrays positionally)
    item_factors: npt.NDArray[np.float32],
    items: npt.NDArray[np.int64],
    confidence: npt.NDArray[np.float32],
    ridge_inverse: Float64s,
    ridge_solution: Float64s,
    has_bias: bool,
) -> Float64s:
    """:func:`_solve_user`'s answer for a history shorter than the factors, by Woodbury.

    The system is the ridge system ``A = V^T V + reg I`` (inverted once per model) plus a
    change of rank n, the history's length: with ``U`` its factors (n rows), ``D = C - I``,
    ``(A + U^T D U)^-1 b = A^-1 b - A^-1 U^T y`` where ``(I + D U A^-1 U^T) y = D U A^-1 b``,
    an n x n system in place of the width x width one. Ten ratings over 64 factors: 15 µs
    against 53 µs for the Cholesky solve (same answer to 1e-14, measured).
    """
    width = ridge_inverse.shape[0]
    size = len(items)
    if size == 0:
        return ridge_solution.copy()
    rows = np.empty((size, width))
    weights = np.empty(size)  # the diagonal of D
    rhs_weights = np.empty(size)  # each row's share of b
    for position in range(size):
        row = item_factors[items[position]]
        weight = np.float64(confidence[position])
        offset = np.float64(row[width]) if has_bias else 0.0
        for a in range(width):
            rows[position, a] = row[a]
        weights[position] = weight - 1.0
        rhs_weights[position] = weight - (weight - 1.0) * offset
    solved_rows = rows @ ridge_inverse  # rows of (A^-1 U^T)^T: A^-1 is symmetric
    ridge_answer = ridge_solution + rhs_weights @ solved_rows  # A^-1 b
    system = np.eye(size) + weights.reshape(-1, 1) * (rows @ solved_rows.T)
    correction = np.linalg.solve(system, weights * (rows @ ridge_answer))
    return ridge_answer - correction @ solved_rows


@njit(cache=True)
def _cholesky_solve(lhs: Float64s, rhs: Float64s) -> Float64s:
    """``lhs^-1 rhs`` for a symmetric positive definite ``lhs`` (a ridge system): half the
    work of numpy's general solve, twice as fast at 64 x 64 (measured)."""
    lower = np.linalg.cholesky(lhs)
    size = len(rhs)
    forward = np.empty(size)
    for i in range(size):
        total = rhs[i]
        for j in range(i):
            total -= lower[i, j] * forward[j]
        forward[i] = total / lower[i, i]
    solution = np.empty(size)
    for i in range(size - 1, -1, -1):
        total = forward[i]
        for j in range(i + 1, size):
            total -= lower[j, i] * solution[j]
        solution[i] = total / lower[i, i]
    return solution


class ALS(_FactorModel):
    """Weighted matrix factorization by alternating least squares."""

    name: ClassVar[str] = "als"
    config_class: ClassVar[type[ModelConfig]] = ALSConfig
    config: ALSConfig

    def _confidence(
        self, ratings: npt.NDArray[np.float32], recency: npt.NDArray[np.float32] | None = None
    ) -> npt.NDArray[np.float32]:
        values = ratings if self.config.confidence == "rating" else np.ones_like(ratings)
        confidence = 1.0 + self.config.alpha * values
        if recency is not None:
            # The whole confidence fades: an old rating ends up weighing less than an unseen
            # pair. Fading only the alpha term scored lower on validation (see the docstring).
            confidence = confidence * recency
        return confidence.astype(np.float32)

    def _fit(self, interactions: Interactions) -> None:
        from implicit.cpu.als import AlternatingLeastSquares  # noqa: PLC0415 (training only)

        matrix = interactions.matrix
        recency = interaction_weights(interactions, self.config.recency_half_life_days)
        confidence = self._confidence(matrix.data, recency)
        half_life = self.config.recency_half_life_ratings
        self._train(
            AlternatingLeastSquares,
            _writable_csr(matrix, confidence),
            {"cg_steps": self.config.cg_steps},
            user_confidence=None
            if half_life is None
            else _writable_csr(matrix, confidence * position_weights(interactions, half_life)),
            regularization=self.config.regularization,
            alpha=1.0,  # the confidence matrix is passed in whole
        )

    def _history_vector(
        self, items: npt.NDArray[np.int64], ratings: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        half_life = self.config.recency_half_life_ratings
        if half_life is None:
            return self._fold_in(items, self._confidence(ratings), self.config.regularization)
        # Each distinct item once, at its latest position and with that rating.
        distinct, latest, weights = history_weights(items, half_life)
        confidence = self._confidence(ratings[latest]) * weights
        return self._fold_in(distinct, confidence, self.config.regularization)


class BPR(_FactorModel):
    """Matrix factorization for a pairwise ranking loss (item bias included)."""

    name: ClassVar[str] = "bpr"
    config_class: ClassVar[type[ModelConfig]] = BPRConfig
    config: BPRConfig
    has_bias: ClassVar[bool] = True

    def _fit(self, interactions: Interactions) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking  # noqa: PLC0415 (training only)

        matrix = interactions.matrix
        self._train(
            BayesianPersonalizedRanking,
            _writable_csr(matrix, np.ones(matrix.nnz, dtype=np.float32)),
            learning_rate=self.config.learning_rate,
            regularization=self.config.regularization,
        )

    def _history_vector(
        self, items: npt.NDArray[np.int64], ratings: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        confidence = np.full(len(items), 1.0 + self.config.fold_in_alpha, dtype=np.float32)
        return self._fold_in(items, confidence, self.config.fold_in_regularization)

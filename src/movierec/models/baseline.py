"""Rating baselines, as in scikit-surprise: random ratings, and mean + user and item biases.

* ``normal`` (:class:`NormalPredictor`): a rating drawn from ``N(mean, std)`` of the training
  ratings, clipped to the rating scale. The floor any rating model must beat.
* ``baseline`` (:class:`BaselineOnly`): ``mu + b_u + b_i``, the biases fitted by alternating
  regularized least squares (Koren, "Factor in the neighbors", 2010, section 2.1).

Both rank items by their predicted rating *before* clipping, so items the model rates above the
top of the scale keep their order instead of tying.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from pydantic import Field
from scipy.special import ndtri

from movierec.data.interactions import Interactions
from movierec.models.base import ModelConfig, ModelError, Recommender

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


class NormalPredictorConfig(ModelConfig):
    """No parameters beyond the seed that fixes the draws."""


class NormalPredictor(Recommender):
    """Random ratings from the normal distribution of the training ratings.

    A draw is a pure function of ``(seed, user, item)`` (a counter-based hash turned into a
    normal quantile), so a user's scores are the same in a batch or alone, after a reload or in
    another process, without storing a users x items table of draws.
    """

    name: ClassVar[str] = "normal"
    config_class: ClassVar[type[ModelConfig]] = NormalPredictorConfig
    predicts_ratings: ClassVar[bool] = True
    config: NormalPredictorConfig

    def __init__(self, config: NormalPredictorConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self.moments: FloatArray | None = None  # [mean, std]
        self.scale: FloatArray | None = None  # [lowest, highest]

    def _fit(self, interactions: Interactions) -> None:
        ratings = interactions.matrix.data.astype(np.float64)
        self.moments = np.array([ratings.mean(), ratings.std()], dtype=np.float32)
        self.scale = np.array(interactions.rating_scale, dtype=np.float32)

    def _fitted(self) -> tuple[FloatArray, FloatArray]:
        if self.moments is None or self.scale is None:
            raise ModelError(f"{self.name} is not fitted: call fit() or load() first")
        return self.moments, self.scale

    def _draws(self, users: IntArray, items: IntArray) -> FloatArray:
        """Unclipped draws for broadcastable arrays of user and item indices."""
        (mean, std), _ = self._fitted()
        uniform = _hash_uniform(self.config.seed, users, items)
        return (mean + std * ndtri(uniform)).astype(np.float32)

    def _score_users(self, users: IntArray) -> FloatArray:
        return self._draws(users[:, None], np.arange(self.n_items, dtype=np.int64)[None, :])

    def _score_history(self, items: IntArray, ratings: FloatArray) -> FloatArray:
        # A new user has no index of their own: draw with the first index past the known users.
        new_user = np.array([self.n_users], dtype=np.int64)
        return self._draws(new_user, np.arange(self.n_items, dtype=np.int64))

    def _predict(self, users: IntArray, items: IntArray) -> FloatArray:
        _, (lowest, highest) = self._fitted()
        return np.clip(self._draws(users, items), lowest, highest)

    def _state(self) -> dict[str, npt.NDArray[Any]]:
        moments, scale = self._fitted()
        return {"moments": moments, "scale": scale}

    def _restore(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        self.moments, self.scale = arrays["moments"], arrays["scale"]


def _hash_uniform(seed: int, users: IntArray, items: IntArray) -> npt.NDArray[np.float64]:
    """Uniform numbers in (0, 1), one per (user, item) pair, from the splitmix64 finalizer."""
    # Arrays throughout: numpy wraps uint64 overflow silently for arrays (as the hash needs)
    # but warns for scalars.
    seed_key = _splitmix64(np.full(1, seed % (1 << 64), dtype=np.uint64))
    key = _splitmix64(np.asarray(users, dtype=np.uint64) ^ seed_key)
    key = _splitmix64(key ^ (np.asarray(items, dtype=np.uint64) * _GOLDEN))
    # The top 53 bits make an exact double; the half step keeps 0 and 1 (infinite quantiles) out.
    return ((key >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)


def _splitmix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class BaselineOnlyConfig(ModelConfig):
    """Surprise's ``bsl_options`` for ALS, with its defaults."""

    reg_u: float = Field(default=15.0, ge=0, description="Ridge penalty on user biases.")
    reg_i: float = Field(default=10.0, ge=0, description="Ridge penalty on item biases.")
    n_epochs: int = Field(default=10, gt=0, description="Alternating passes (items, then users).")


class BaselineOnly(Recommender):
    """``mu + b_u + b_i``: global mean plus user and item biases.

    Minimizes ``sum (r - mu - b_u - b_i)^2 + reg_u sum b_u^2 + reg_i sum b_i^2`` by alternating
    exact updates (each is a per-group ridge mean, one ``np.bincount``), item biases first as in
    Surprise. Rankings are the same for every user (the user bias shifts all items alike).
    """

    name: ClassVar[str] = "baseline"
    config_class: ClassVar[type[ModelConfig]] = BaselineOnlyConfig
    predicts_ratings: ClassVar[bool] = True
    config: BaselineOnlyConfig

    def __init__(self, config: BaselineOnlyConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self.global_mean: FloatArray | None = None  # [mu]
        self.user_bias: FloatArray | None = None
        self.item_bias: FloatArray | None = None
        self.scale: FloatArray | None = None  # [lowest, highest]

    def _fit(self, interactions: Interactions) -> None:
        mu, self.user_bias, self.item_bias = fit_baseline(interactions, self.config)
        self.global_mean = np.array([mu], dtype=np.float32)
        self.scale = np.array(interactions.rating_scale, dtype=np.float32)

    def _fitted(self) -> tuple[float, FloatArray, FloatArray, FloatArray]:
        if (
            self.global_mean is None
            or self.user_bias is None
            or self.item_bias is None
            or self.scale is None
        ):
            raise ModelError(f"{self.name} is not fitted: call fit() or load() first")
        return float(self.global_mean[0]), self.user_bias, self.item_bias, self.scale

    def _score_users(self, users: IntArray) -> FloatArray:
        mu, user_bias, item_bias, _ = self._fitted()
        return (mu + user_bias[users][:, None] + item_bias[None, :]).astype(np.float32)

    def _score_history(self, items: IntArray, ratings: FloatArray) -> FloatArray:
        mu, _, item_bias, _ = self._fitted()
        residual = ratings.astype(np.float64) - mu - item_bias[items]
        user_bias = residual.sum() / (self.config.reg_u + len(items)) if len(items) else 0.0
        return (mu + user_bias + item_bias).astype(np.float32)

    def _predict(self, users: IntArray, items: IntArray) -> FloatArray:
        mu, user_bias, item_bias, (lowest, highest) = self._fitted()
        return np.clip(mu + user_bias[users] + item_bias[items], lowest, highest).astype(np.float32)

    def _state(self) -> dict[str, npt.NDArray[Any]]:
        mu, user_bias, item_bias, scale = self._fitted()
        return {
            "global_mean": np.array([mu], dtype=np.float32),
            "user_bias": user_bias,
            "item_bias": item_bias,
            "scale": scale,
        }

    def _restore(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        self.global_mean = arrays["global_mean"]
        self.user_bias, self.item_bias = arrays["user_bias"], arrays["item_bias"]
        self.scale = arrays["scale"]


def fit_baseline(
    interactions: Interactions, config: BaselineOnlyConfig
) -> tuple[float, FloatArray, FloatArray]:
    """The global mean and the float32 user and item biases of ``interactions``' ratings."""
    matrix = interactions.matrix
    ratings = matrix.data.astype(np.float64)
    mu = float(ratings.mean())
    user_bias, item_bias = fit_biases(
        interactions.entry_users(),
        matrix.indices,
        ratings - mu,
        n_users=interactions.n_users,
        n_items=interactions.n_items,
        config=config,
    )
    return mu, user_bias.astype(np.float32), item_bias.astype(np.float32)


def fit_biases(
    users: IntArray,
    items: npt.NDArray[np.integer[Any]],
    centered: npt.NDArray[np.float64],
    *,
    n_users: int,
    n_items: int,
    config: BaselineOnlyConfig,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """User and item biases of mean-centered ratings by alternating ridge means.

    Args:
        users: The user index of every rating.
        items: The item index of every rating.
        centered: Every rating minus the global mean.
        n_users: Number of users (biases of users without ratings stay 0).
        n_items: Number of items (likewise).
        config: The penalties and the number of passes.

    Returns:
        ``(user_bias, item_bias)``, float64.
    """
    user_denominator = config.reg_u + np.bincount(users, minlength=n_users)
    item_denominator = config.reg_i + np.bincount(items, minlength=n_items)
    user_bias = np.zeros(n_users)
    item_bias = np.zeros(n_items)
    for _ in range(config.n_epochs):
        item_sums = np.bincount(items, weights=centered - user_bias[users], minlength=n_items)
        item_bias = _ridge_mean(item_sums, item_denominator)
        user_sums = np.bincount(users, weights=centered - item_bias[items], minlength=n_users)
        user_bias = _ridge_mean(user_sums, user_denominator)
    return user_bias, item_bias


def _ridge_mean(sums: npt.NDArray[Any], denominator: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    # A zero penalty and no ratings is 0/0: such a bias has nothing to say, so it stays 0.
    return np.divide(sums, denominator, out=np.zeros_like(sums), where=denominator > 0)

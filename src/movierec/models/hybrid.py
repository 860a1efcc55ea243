"""Hybrids: popularity x genre taste (:class:`GenreHybrid`), a blend of CF models (:class:`Blend`).

:class:`GenreHybrid` scores item ``i`` for user ``u`` as::

    w_pop * popularity(i) + w_genre * cosine(profile(u), genres(i)) + w_cf * knn(u, i)

* ``popularity`` is the IMDb-style Bayesian average (or the rating count), min-max scaled to
  [0, 1], so it is on the same footing as a cosine.
* ``profile(u)`` sums the user's items' unit genre vectors, each weighted by how much the user
  liked it (see :attr:`GenreHybridConfig.profile`); ``genres(i)`` is the item's unit genre
  vector, so the match lies in [-1, 1] and needs no rating of ``i`` at all: a catalogue movie
  nobody rated yet can be recommended on its genres alone.
* ``knn`` is :class:`~movierec.models.knn.ItemKNN`'s score divided by the user's best score,
  in [0, 1]; it is only computed when ``w_cf > 0``.

A new user folds in from any history: the profile and the kNN row come from the history alone.
Similar items blend genre cosine with co-occurrence cosine (people who rated this also rated).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from numba import njit
from pydantic import Field, model_validator

from movierec.data.interactions import Interactions
from movierec.models.als import ALS, ALSConfig
from movierec.models.base import (
    ModelConfig,
    ModelError,
    Recommender,
    components_state,
    cooccurrence_cosine,
    item_item_block,
    restore_components,
)
from movierec.models.ease import EASE, EASEConfig
from movierec.models.graph import RP3beta, RP3betaConfig
from movierec.models.knn import item_similarity

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


class GenreHybridConfig(ModelConfig):
    """The blend's weights and how its two content signals are measured.

    Defaults chosen by NDCG@10 on a validation split (each user's latest 20% of their training
    ratings): the reference design, 0.6 x popularity (count) + 0.4 x genre match, scored 0.083
    on ml-latest-small and 0.076 on ml-100k; adding item-kNN at 0.2 / 0.1 / 0.7 scored 0.110
    and 0.143. Counts beat the Bayesian average (0.037-0.062: it favours little-seen gems that
    a user's next ratings rarely hit); a mean-centered profile beat raw or liked-only ratings
    on ml-latest-small and tied on ml-100k.
    """

    popularity_weight: float = Field(default=0.2, ge=0, description="w_pop.")
    genre_weight: float = Field(default=0.1, ge=0, description="w_genre.")
    cf_weight: float = Field(default=0.7, ge=0, description="w_cf: item-kNN's share; 0 skips it.")
    popularity: Literal["bayesian", "count"] = "count"
    profile: Literal["rating", "centered", "liked"] = Field(
        default="centered",
        description="Item weight in a user's genre profile: the rating, the rating minus the "
        "user's mean, or 1 for ratings at or above the user's mean (0 otherwise).",
    )
    neighbors: int = Field(default=200, ge=1, description="Item-kNN neighbours (w_cf > 0).")
    similar_genre_share: float = Field(
        default=0.5, ge=0, le=1, description="Genre cosine's share in similar_items."
    )

    @model_validator(mode="after")
    def _some_weight(self) -> Self:
        if self.popularity_weight + self.genre_weight + self.cf_weight <= 0:
            raise ValueError("at least one of the blend weights must be positive")
        return self


class GenreHybrid(Recommender):
    """Popularity x genre-taste hybrid, usable from the first rating (or none)."""

    name: ClassVar[str] = "hybrid"
    config_class: ClassVar[type[ModelConfig]] = GenreHybridConfig
    config: GenreHybridConfig

    def __init__(self, config: GenreHybridConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self.popularity: FloatArray | None = None
        self.item_genres: FloatArray | None = None  # items x genres, unit rows (or zero)
        self.user_profiles: FloatArray | None = None  # users x genres, unit rows (or zero)
        self.neighbours: sp.csr_matrix | None = None

    # ---- fitting ---------------------------------------------------------------------------

    def _fit(self, interactions: Interactions) -> None:
        genres, _ = interactions.genre_matrix()
        self.item_genres = _unit_rows(np.asarray(genres.toarray(), dtype=np.float32))
        self.popularity = _min_max(_popularity(interactions.matrix, self.config.popularity))
        liking = profile_weights(interactions.matrix, self.config.profile)
        self.user_profiles = _unit_rows(np.asarray(liking @ self.item_genres, dtype=np.float32))
        binary = interactions.binarize().matrix.astype(np.float32)
        self.neighbours = (
            item_similarity(binary, binary, neighbors=self.config.neighbors, shrink=50.0)
            if self.config.cf_weight > 0
            else sp.csr_matrix((interactions.n_items, interactions.n_items), dtype=np.float32)
        )

    def _fitted(self) -> tuple[FloatArray, FloatArray, FloatArray, sp.csr_matrix]:
        if (
            self.popularity is None
            or self.item_genres is None
            or self.user_profiles is None
            or self.neighbours is None
        ):
            raise ModelError(f"{self.name} is not fitted: call fit() or load() first")
        return self.popularity, self.item_genres, self.user_profiles, self.neighbours

    # ---- scoring ---------------------------------------------------------------------------

    def _blend(self, profiles: FloatArray, seen: sp.csr_matrix) -> FloatArray:
        """Scores for users given by their unit genre profiles and binarized seen rows."""
        popularity, item_genres, _, neighbours = self._fitted()
        scores = self.config.genre_weight * (profiles @ item_genres.T)
        scores += self.config.popularity_weight * popularity[None, :]
        if self.config.cf_weight > 0:
            knn = np.asarray((seen @ neighbours).toarray(), dtype=np.float32)
            best = knn.max(axis=1, keepdims=True)
            best[best <= 0] = 1.0
            scores += self.config.cf_weight * (knn / best)
        return scores.astype(np.float32, copy=False)

    def _score_users(self, users: npt.NDArray[np.int64]) -> FloatArray:
        rows = self._seen()[users].astype(np.float32)
        rows.data = np.ones_like(rows.data)  # structure only: a stored 0 is still a rating
        return self._blend(self._fitted()[2][users], rows)

    def _score_history(self, items: npt.NDArray[np.int64], ratings: FloatArray) -> FloatArray:
        item_genres = self._fitted()[1]
        history = sp.csr_matrix(
            (ratings, items, np.array([0, len(items)])), shape=(1, self.n_items)
        )
        history.sum_duplicates()
        profile = _unit_rows(
            np.asarray(profile_weights(history, self.config.profile) @ item_genres)
        )
        seen = sp.csr_matrix(
            (np.ones(len(history.indices), dtype=np.float32), history.indices, history.indptr),
            shape=history.shape,
        )
        return self._blend(profile.astype(np.float32), seen)[0]

    def _similar_scores(self, item: int) -> FloatArray:
        item_genres = self._fitted()[1]
        share = self.config.similar_genre_share
        genre = item_genres @ item_genres[item]
        together = cooccurrence_cosine(self._seen(), self._seen_by_item(), item)
        return (share * genre + (1.0 - share) * together).astype(np.float32)

    def _item_affinity(self, sources: IntArray, targets: IntArray) -> FloatArray:
        # The two parts of a score that a liked movie adds to: its genres, by the genre
        # weight, and its neighbours, by item-kNN's.
        _, item_genres, _, neighbours = self._fitted()
        genre = item_genres[sources] @ item_genres[targets].T
        knn = item_item_block(neighbours, sources, targets)
        return (self.config.genre_weight * genre + self.config.cf_weight * knn).astype(np.float32)

    # ---- persistence -----------------------------------------------------------------------

    def _state(self) -> dict[str, npt.NDArray[Any]]:
        popularity, item_genres, user_profiles, neighbours = self._fitted()
        return {
            "popularity": popularity,
            "item_genres": item_genres,
            "user_profiles": user_profiles,
            "knn.data": neighbours.data,
            "knn.indices": neighbours.indices,
            "knn.indptr": neighbours.indptr,
        }

    def _restore(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        self.popularity = arrays["popularity"]
        self.item_genres = arrays["item_genres"]
        self.user_profiles = arrays["user_profiles"]
        self.neighbours = sp.csr_matrix(
            (arrays["knn.data"], arrays["knn.indices"], arrays["knn.indptr"]),
            shape=(self.n_items, self.n_items),
        )


def profile_weights(
    ratings: sp.csr_matrix, profile: Literal["rating", "centered", "liked"]
) -> sp.csr_matrix:
    """How much each rated item counts in its user's genre profile, on ``ratings``' structure.

    A user whose ratings are all equal (a plain "I liked these" list) has nothing to center
    on: each of their items counts 1 under ``centered``, as under ``liked``.
    """
    rows = np.repeat(np.arange(ratings.shape[0]), np.diff(ratings.indptr))
    counts = np.bincount(rows, minlength=ratings.shape[0])
    sums = np.bincount(rows, weights=ratings.data, minlength=ratings.shape[0])
    user_mean = (sums / np.maximum(counts, 1))[rows]
    if profile == "rating":
        values = ratings.data.astype(np.float64)
    elif profile == "liked":
        values = (ratings.data >= user_mean).astype(np.float64)
    else:
        values = ratings.data - user_mean
        spread = np.bincount(rows, weights=np.abs(values), minlength=ratings.shape[0])
        values = np.where(spread[rows] == 0, 1.0, values)
    return sp.csr_matrix(
        (values.astype(np.float32), ratings.indices, ratings.indptr), shape=ratings.shape
    )


def _popularity(matrix: sp.csr_matrix, kind: Literal["bayesian", "count"]) -> FloatArray:
    counts = np.bincount(matrix.indices, minlength=matrix.shape[1]).astype(np.float64)
    if kind == "count":
        return counts.astype(np.float32)
    sums = np.bincount(matrix.indices, weights=matrix.data, minlength=matrix.shape[1])
    means = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    prior = sums.sum() / max(counts.sum(), 1.0)
    votes = float(counts[counts > 0].mean())  # IMDb's m: the mean vote count of rated items
    return ((counts * means + votes * prior) / (counts + votes)).astype(np.float32)


def _min_max(values: FloatArray) -> FloatArray:
    low, high = float(values.min()), float(values.max())
    return ((values - low) / (high - low) if high > low else np.zeros_like(values)).astype(
        np.float32
    )


def _unit_rows(matrix: npt.NDArray[Any]) -> FloatArray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (matrix / norms).astype(np.float32)


class BlendConfig(ModelConfig):
    """Component models and their weights in the blend of per-user standardized scores.

    Chosen by NDCG@10 on a validation split (each user's latest 20% of their training ratings),
    the one setting best on both ml-latest-small (0.115, EASE alone 0.112) and ml-100k (0.158,
    ALS alone 0.157): EASE with lambda 200 and a 180-day recency half-life at 0.2, ALS at 0.5,
    RP3beta at 0.3.

    ALS with a 30-day recency half-life (whole confidence faded, see :mod:`movierec.models.als`)
    then raised the blend's validation NDCG@10 on both data sets (one seed, weights kept):
    ml-latest-small 0.1141 -> 0.1153 (60 days 0.1159, 90 days 0.1152), ml-100k 0.1571 -> 0.1583
    (60 days 0.1571, 90 days 0.1580); 30 days was the best mean of the two.

    Recency by position (``recency_half_life_ratings``, see :mod:`movierec.models.weighting`:
    each member scores the user's profile with their latest ratings weighted up) was then
    grid-searched on the same validation splits: half-life 2, 3, 5 or 7 ratings, EASE at
    lambda 200 with the 180-day half-life or at its default 500 without, and every weight
    triple in steps of 0.1 (66), 528 settings in all, ranked by the mean of the two data sets'
    NDCG@10. The best: a half-life of 3 ratings on all three members, EASE at lambda 500, the
    weights unchanged (0.2, 0.5, 0.3): 0.1263 on ml-latest-small (from 0.1153) and 0.2025 on
    ml-100k (from 0.1583). Each data set's own best was 0.1304 and 0.2058, by settings that lose
    on the other.
    """

    ease_weight: float = Field(default=0.2, ge=0)
    als_weight: float = Field(default=0.5, ge=0)
    rp3beta_weight: float = Field(default=0.3, ge=0)
    ease: EASEConfig = EASEConfig(recency_half_life_ratings=3.0)
    als: ALSConfig = ALSConfig(recency_half_life_days=30.0, recency_half_life_ratings=3.0)
    rp3beta: RP3betaConfig = RP3betaConfig(recency_half_life_ratings=3.0)

    @model_validator(mode="after")
    def _some_weight(self) -> Self:
        if self.ease_weight + self.als_weight + self.rp3beta_weight <= 0:
            raise ValueError("at least one of the blend weights must be positive")
        return self


class Blend(Recommender):
    """Weighted sum of EASE, ALS and RP3beta scores, each standardized per user.

    Standardizing (mean 0, standard deviation 1 over the catalogue, per user) puts scores of
    different scales on one footing; a component weighted 0 is neither fitted nor saved.
    """

    name: ClassVar[str] = "blend"
    config_class: ClassVar[type[ModelConfig]] = BlendConfig
    config: BlendConfig

    def __init__(self, config: BlendConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        weights = {
            "ease": (self.config.ease_weight, EASE(self.config.ease)),
            "als": (self.config.als_weight, ALS(self.config.als)),
            "rp3beta": (self.config.rp3beta_weight, RP3beta(self.config.rp3beta)),
        }
        self.components = {key: pair for key, pair in weights.items() if pair[0] > 0}
        self._fitted_flag = False

    def _fit(self, interactions: Interactions) -> None:
        for _, model in self.components.values():
            model.fit(interactions)
        self._fitted_flag = True

    def _models(self) -> dict[str, Recommender]:
        return {key: model for key, (_, model) in self.components.items()}

    def _parts(self) -> list[tuple[float, Recommender]]:
        if not self._fitted_flag:
            raise ModelError(f"{self.name} is not fitted: call fit() or load() first")
        return list(self.components.values())

    def _score_users(self, users: npt.NDArray[np.int64]) -> FloatArray:
        return _weighted_sum([(w, m._score_users(users)) for w, m in self._parts()])

    def _score_history(self, items: npt.NDArray[np.int64], ratings: FloatArray) -> FloatArray:
        parts = [(w, m._score_history(items, ratings)[None, :]) for w, m in self._parts()]
        return _weighted_sum(parts)[0]

    def _similar_scores(self, item: int) -> FloatArray:
        parts = [(w, m._similar_scores(item)[None, :]) for w, m in self._parts()]
        return _weighted_sum(parts)[0]

    def _item_affinity(self, sources: IntArray, targets: IntArray) -> FloatArray | None:
        return _blended_affinity(self._parts(), sources, targets)

    def _state(self) -> dict[str, npt.NDArray[Any]]:
        return components_state(self._models())

    def _restore(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        restore_components(self, self._models(), arrays)
        self._fitted_flag = True


def _weighted_sum(parts: list[tuple[float, npt.NDArray[np.float32]]]) -> FloatArray:
    """``sum(weight * standardized(scores))``, rows standardized over the catalogue."""
    scores = tuple(np.ascontiguousarray(part, dtype=np.float32) for _, part in parts)
    return _standardized_sum(scores, np.array([weight for weight, _ in parts]))


# Compiled: numpy's mean, spread and weighted sum took ~58 µs for a fold-in's three
# catalogue-long rows (each step a pass and a temporary), one fused loop per row ~9 µs. Sums
# may be reordered (vectorized); NaN and infinities keep their meaning.
@njit(cache=True, fastmath={"reassoc", "nsz", "contract"})
def _standardized_sum(
    parts: tuple[npt.NDArray[np.float32], ...], weights: npt.NDArray[np.float64]
) -> FloatArray:
    n_rows, n_columns = parts[0].shape
    total = np.zeros((n_rows, n_columns), dtype=np.float32)
    for part in range(len(parts)):
        for r in range(n_rows):
            row, out = parts[part][r], total[r]
            mean = 0.0
            for column in range(n_columns):
                mean += row[column]
            mean /= n_columns
            squares = 0.0
            for column in range(n_columns):
                squares += (row[column] - mean) ** 2
            spread = np.sqrt(squares / n_columns)
            scale = np.float32(weights[part] / (spread if spread > 0 else 1.0))
            shift = np.float32(mean)
            for column in range(n_columns):
                out[column] += (row[column] - shift) * scale
    return total


def _blended_affinity(
    parts: list[tuple[float, Recommender]], sources: IntArray, targets: IntArray
) -> FloatArray | None:
    """The blend's parts' affinities, each divided by its largest magnitude (the parts measure
    on scales of their own) and weighted as in the blend; None when no part has any."""
    total: FloatArray | None = None
    for weight, model in parts:
        affinity = model._item_affinity(sources, targets)
        if affinity is None:
            continue
        if total is None:
            total = np.zeros(affinity.shape, dtype=np.float32)
        _add_scaled(total, affinity, weight)
    return total


@njit(cache=True)
def _add_scaled(total: FloatArray, affinity: FloatArray, weight: float) -> None:
    """``total += weight * affinity / max|affinity|`` (nothing added for an all-zero block), in
    one compiled call: as numpy steps (abs, max, scale, add) it cost four calls per part on
    every answer's reasons."""
    largest = 0.0
    for value in affinity.flat:
        largest = max(largest, float(abs(value)))
    if largest > 0:
        scale = np.float32(weight / largest)
        for at in np.ndindex(affinity.shape):
            total[at] += affinity[at] * scale

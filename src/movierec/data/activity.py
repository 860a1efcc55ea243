"""Synthetic activity on a real catalogue: new ratings by existing and new users, drawn from the
synthetic generator's model (:mod:`movierec.data.synth`), for demos, load and drift tests.

The generator's model, fitted to the catalogue at hand instead of a made-up one: movies are
drawn by their real popularity (rating counts, plus one so unrated movies stay possible) and
their item factors lean on their real genres; each rater gets a fresh bias, taste vector and
half-star habit (drawn from the seed, not learned from their history). Two knobs make drift on
purpose: ``favoured_genres`` multiplies the popularity of those genres' movies by
:data:`~movierec.data.genres.FAVOURED_WEIGHT`, and ``rating_shift`` moves every score by that
many stars before rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from movierec.data.genres import FAVOURED_WEIGHT, GENRES
from movierec.data.synth import (
    _item_model,
    _round_stars,
    _sample_pairs,
    _user_model,
    _water_fill,
)

RANK = 8
NOISE = 0.5
_USER_SIGMA = 1.0  # lognormal spread of the ratings per rater within one call


@dataclass(frozen=True)
class ActivitySpec:
    """What to generate: ``ratings`` ratings spread over ``users`` (existing or new ids)."""

    users: Sequence[int]
    ratings: int
    seed: int
    timestamp: int  # epoch seconds of every generated rating
    rating_shift: float = 0.0
    favoured_genres: Sequence[str] = ()


def synthetic_activity(
    movies: pd.DataFrame, rating_counts: np.ndarray, spec: ActivitySpec
) -> pd.DataFrame:
    """Canonical ratings (``user_id``, ``item_id``, ``rating``, ``timestamp``), no pair twice.

    Args:
        movies: The catalogue (``item_id``, ``genres`` as lists of names).
        rating_counts: Each movie's ratings so far, aligned with ``movies``.
        spec: Who rates, how much, and the drift knobs.

    With fewer ratings than users, the least active draws rate nothing.

    Raises:
        ValueError: More ratings than the users can give (each rates a movie once).
    """
    n_users, n_items = len(spec.users), len(movies)
    if spec.ratings > n_users * n_items:
        raise ValueError(
            f"{n_users} users can give at most {n_users * n_items} ratings of {n_items} movies"
        )
    rng = np.random.default_rng(spec.seed)
    genres_hot = _genres_hot(movies["genres"])
    popularity = np.asarray(rating_counts, dtype=np.float64) + 1.0
    favoured = np.isin(GENRES, list(spec.favoured_genres))
    popularity *= np.where(genres_hot[:, favoured].any(axis=1), FAVOURED_WEIGHT, 1.0)
    item_base, item_factors = _item_model(rng, popularity, genres_hot, RANK)
    user_base, user_factors, half_stars = _user_model(rng, n_users, RANK)
    counts = _water_fill(rng.lognormal(0.0, _USER_SIGMA, n_users), spec.ratings, n_items)
    raters = np.flatnonzero(counts)  # the sampler wants every user to rate
    keys = _sample_pairs(rng, counts[raters], popularity / popularity.sum())
    users, items = np.divmod(keys, n_items)
    users = raters[users]
    score = np.einsum("ij,ij->i", user_factors[users], item_factors[items])
    score += user_base[users] + item_base[items] + np.float32(spec.rating_shift)
    score += rng.standard_normal(len(users), dtype=np.float32) * np.float32(NOISE)
    return pd.DataFrame(
        {
            "user_id": np.asarray(spec.users, dtype=np.int64)[users],
            "item_id": movies["item_id"].to_numpy(dtype=np.int64)[items],
            "rating": _round_stars(score, half_stars[users]),
            "timestamp": np.full(len(users), spec.timestamp, dtype=np.int64),
        }
    )


def _genres_hot(genres: pd.Series) -> np.ndarray:
    """One row per movie, one column per generator genre; a movie with none of them gets all
    (its factors then lean on no genre in particular)."""
    column = {name: i for i, name in enumerate(GENRES)}
    hot = np.zeros((len(genres), len(GENRES)), dtype=np.float64)
    for row, names in enumerate(genres):
        for name in names:
            if name in column:
                hot[row, column[name]] = 1.0
    hot[hot.sum(axis=1) == 0] = 1.0
    return hot

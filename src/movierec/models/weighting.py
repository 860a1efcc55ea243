"""Recency weighting of training interactions, shared by the models that opt into it.

A per-user temporal holdout asks for each user's *next* movies, and a user's latest ratings
predict those better than the ones from years before. A model opting in through
:class:`RecencyConfig` weights each stored rating by::

    w = 2 ** (-age_days / half_life_days)

where ``age_days`` is measured back from the *same user's* latest rating, so every user's latest
rating weighs 1 whatever the calendar date (a user who left in 2003 is not faded to nothing
against one active yesterday).

A second, independent option weights a user's *profile* (the row a model scores at
recommendation time, not the data the item model is fitted on) by sequence position::

    w = 2 ** (-n_later / half_life_ratings)

where ``n_later`` counts the same user's ratings with a strictly later timestamp (ratings at the
same second share a weight). Users rate in sessions, and the next movies they rate follow their
last few ratings far more than their whole history: on the validation splits (each user's latest
20% of their training ratings) a half-life of 3 ratings raised the blend's NDCG@10 from 0.115 to
0.126 (ml-latest-small) and from 0.158 to 0.203 (ml-100k); see
:class:`movierec.models.hybrid.BlendConfig`. Weighting the data the item model is fitted on as
well scored lower (EASE at half-lives of 25, 50 and 100 ratings: 0.101 to 0.105 on
ml-latest-small against 0.108 to 0.110 for the profile alone), so only the profile is weighted.
A folded-in history has no timestamps: its items are taken in the order given, the latest last.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit
from pydantic import BaseModel, Field

from movierec.data.interactions import Interactions
from movierec.models.base import ModelError

SECONDS_PER_DAY = 86_400.0
FloatArray = npt.NDArray[np.float32]


class RecencyConfig(BaseModel):
    """The opt-in field; a model's config inherits it next to :class:`ModelConfig`."""

    recency_half_life_days: float | None = Field(
        default=None,
        gt=0,
        description="Weight each rating by 2^(-age/half-life), age from the user's latest "
        "rating; None weighs every rating 1.",
    )
    recency_half_life_ratings: float | None = Field(
        default=None,
        gt=0,
        description="Weight each rating in the user's scored profile by 2^(-n/half-life), n the "
        "number of the user's later ratings; None weighs every rating 1.",
    )


def recency_weights(interactions: Interactions, half_life_days: float) -> npt.NDArray[np.float32]:
    """One weight per stored rating (CSR order), ``2^(-age/half_life)`` with per-user ages.

    Raises:
        ModelError: When the interactions carry no timestamps.
    """
    times, indptr = _rating_times(interactions)
    counts = np.diff(indptr)
    rated = counts > 0
    latest = np.zeros(len(counts), dtype=np.int64)
    # reduceat over the non-empty rows only: an empty row's start equals the next row's.
    latest[rated] = np.maximum.reduceat(times, indptr[:-1][rated]) if times.size else 0
    age_days = (np.repeat(latest, counts) - times) / SECONDS_PER_DAY
    return np.exp2(-age_days / half_life_days).astype(np.float32)


def _rating_times(interactions: Interactions) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
    """Each stored rating's time (CSR order) and the rows' pointers into them."""
    if interactions.timestamps is None:
        raise ModelError("recency weighting needs timestamps, and these ratings have none")
    return interactions.timestamps.data.astype(np.int64), interactions.timestamps.indptr


def interaction_weights(
    interactions: Interactions, half_life_days: float | None
) -> npt.NDArray[np.float32]:
    """Recency weights, or all ones when ``half_life_days`` is None (weighting off)."""
    if half_life_days is None:
        return np.ones(interactions.nnz, dtype=np.float32)
    return recency_weights(interactions, half_life_days)


def position_weights(interactions: Interactions, half_life_ratings: float) -> FloatArray:
    """One weight per stored rating (CSR order), ``2^(-n_later/half_life)``.

    ``n_later`` is the number of the same user's ratings with a strictly later timestamp.

    Raises:
        ModelError: When the interactions carry no timestamps.
    """
    times, indptr = _rating_times(interactions)
    users = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    order = np.lexsort((times, users))  # CSR rows are grouped, so each user keeps its block
    sorted_times, sorted_users = times[order], users[order]
    starts_run = np.ones(len(order), dtype=bool)
    starts_run[1:] = (sorted_users[1:] != sorted_users[:-1]) | (
        sorted_times[1:] != sorted_times[:-1]
    )
    run_ends = np.append(np.flatnonzero(starts_run)[1:], len(order)) - 1
    last_of_run = run_ends[np.cumsum(starts_run) - 1]
    n_later = np.empty(len(order), dtype=np.float64)
    n_later[order] = indptr[1:][sorted_users] - 1 - last_of_run
    return np.exp2(-n_later / half_life_ratings).astype(np.float32)


def history_weights(
    items: npt.NDArray[np.int64], half_life_ratings: float | None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], FloatArray]:
    """A folded-in history given in rating order (the latest last), as a profile.

    Returns:
        The distinct items, the position in ``items`` of each one's latest occurrence, and
        its weight ``2^(-n_later/half_life)`` (1 when ``half_life_ratings`` is None), with
        ``n_later`` the number of history entries after that occurrence.
    """
    # 0 stands for "no half-life" in the compiled call (a real one is positive).
    return _profile(np.asarray(items, dtype=np.int64), half_life_ratings or 0.0)


@njit(cache=True)
def _profile(
    items: npt.NDArray[np.int64], half_life: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], FloatArray]:
    """:func:`history_weights` compiled: every fold-in of a blend asks once per member, and
    ``np.unique`` and the weights' numpy steps cost ~10 µs a call on ten items (~1 µs here)."""
    order = np.argsort(items, kind="mergesort")  # stable: an item's occurrences in order
    last_of_run = np.ones(len(order), dtype=np.bool_)
    for at in range(len(order) - 1):
        last_of_run[at] = items[order[at]] != items[order[at + 1]]
    latest = order[last_of_run].astype(np.int64)
    weights = np.ones(len(latest), dtype=np.float32)
    if half_life > 0:
        for at in range(len(latest)):
            weights[at] = np.exp2(-(len(items) - 1 - latest[at]) / half_life)
    return items[latest], latest, weights


def scored_row_weights(interactions: Interactions, config: RecencyConfig) -> FloatArray:
    """Weights of the scored user rows: recency by age times recency by position (each 1 when
    off)."""
    weights = interaction_weights(interactions, config.recency_half_life_days)
    if config.recency_half_life_ratings is not None:
        weights = weights * position_weights(interactions, config.recency_half_life_ratings)
    return weights

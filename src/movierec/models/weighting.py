"""Recency weighting of training interactions, shared by the models that opt into it.

A per-user temporal holdout asks for each user's *next* movies, and a user's latest ratings
predict those better than the ones from years before. A model opting in through
:class:`RecencyConfig` weights each stored rating by::

    w = 2 ** (-age_days / half_life_days)

where ``age_days`` is measured back from the *same user's* latest rating, so every user's latest
rating weighs 1 whatever the calendar date (a user who left in 2003 is not faded to nothing
against one active yesterday).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from movierec.data.interactions import Interactions
from movierec.models.base import ModelError

SECONDS_PER_DAY = 86_400.0


class RecencyConfig(BaseModel):
    """The opt-in field; a model's config inherits it next to :class:`ModelConfig`."""

    recency_half_life_days: float | None = Field(
        default=None,
        gt=0,
        description="Weight each rating by 2^(-age/half-life), age from the user's latest "
        "rating; None weighs every rating 1.",
    )


def recency_weights(interactions: Interactions, half_life_days: float) -> npt.NDArray[np.float32]:
    """One weight per stored rating (CSR order), ``2^(-age/half_life)`` with per-user ages.

    Raises:
        ModelError: When the interactions carry no timestamps.
    """
    if interactions.timestamps is None:
        raise ModelError("recency weighting needs timestamps, and these ratings have none")
    times = interactions.timestamps.data.astype(np.int64)
    indptr = interactions.timestamps.indptr
    counts = np.diff(indptr)
    rated = counts > 0
    latest = np.zeros(len(counts), dtype=np.int64)
    # reduceat over the non-empty rows only: an empty row's start equals the next row's.
    latest[rated] = np.maximum.reduceat(times, indptr[:-1][rated]) if times.size else 0
    age_days = (np.repeat(latest, counts) - times) / SECONDS_PER_DAY
    return np.exp2(-age_days / half_life_days).astype(np.float32)


def interaction_weights(
    interactions: Interactions, half_life_days: float | None
) -> npt.NDArray[np.float32]:
    """Recency weights, or all ones when ``half_life_days`` is None (weighting off)."""
    if half_life_days is None:
        return np.ones(interactions.nnz, dtype=np.float32)
    return recency_weights(interactions, half_life_days)

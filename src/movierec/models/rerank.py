"""Maximal marginal relevance (Carbonell and Goldstein 1998): a ranking made more diverse.

Greedily, the next item is the one maximizing ``(1 - diversity) * relevance - diversity *
(its highest similarity to the items already chosen)``, where relevance is the candidate's
score scaled to [0, 1] over the candidates (scores of different models live on different
scales) and similarity is the cosine of the items' feature vectors (0/1 genres in movierec:
the very similarity the evaluation's intra-list diversity measures). ``diversity = 0`` keeps
the ranking as it is; ``1`` picks by dissimilarity alone after the best item (relevance
breaking ties).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def mmr(scores: npt.ArrayLike, features: npt.ArrayLike, k: int, diversity: float) -> IntArray:
    """Positions (into the candidates) of the ``k`` items MMR picks, in pick order.

    Args:
        scores: The candidates' scores, best first or in any order (higher is better).
        features: One row per candidate (e.g. its genres); a zero row is unlike every item.
        k: How many to pick (at most the number of candidates).
        diversity: Between 0 (the scores' order) and 1 (dissimilarity only).
    """
    if not 0.0 <= diversity <= 1.0:
        raise ValueError(f"diversity must be in [0, 1], got {diversity}")
    values = np.asarray(scores, dtype=np.float64)
    count = min(k, len(values))
    if diversity == 0.0 or count <= 1:
        return np.argsort(-values, kind="stable")[:count].astype(np.int64)
    relevance = _scaled(values)
    unit = _unit_rows(np.asarray(features, dtype=np.float64))
    closest = np.zeros(len(values))  # each candidate's highest similarity to the chosen
    free = np.ones(len(values), dtype=bool)
    chosen = np.empty(count, dtype=np.int64)
    for step in range(count):
        gain = np.where(free, (1.0 - diversity) * relevance - diversity * closest, -np.inf)
        # Among equal gains the most relevant, then the first (at diversity 1 every gain is
        # equal before anything is chosen: the best item still comes first).
        tied = np.flatnonzero(gain >= gain.max() - 1e-12)
        best = int(tied[np.argmax(relevance[tied])])
        chosen[step] = best
        free[best] = False
        closest = np.maximum(closest, unit @ unit[best])
    return chosen


def _scaled(values: FloatArray) -> FloatArray:
    finite = np.where(np.isfinite(values), values, np.nan)
    low, high = np.nanmin(finite), np.nanmax(finite)
    if not np.isfinite(high - low) or high == low:
        return np.ones(len(values))
    return np.nan_to_num((finite - low) / (high - low), nan=0.0)


def _unit_rows(features: FloatArray) -> FloatArray:
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return np.divide(features, norms, out=np.zeros_like(features), where=norms > 0)

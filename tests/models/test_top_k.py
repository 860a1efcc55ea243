"""``top_k``: the row-wise ranking every model's ``recommend`` ends with, against a full sort."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from movierec.models.base import top_k

SCORES = arrays(
    np.float32,
    st.tuples(st.integers(1, 4), st.integers(1, 40)),
    # Few distinct values: ties at the cut are the common case, not a rare one.
    elements=st.sampled_from([-np.inf, -1.0, 0.0, 0.5, 1.0, 2.0]),
)


def _reference(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """A full sort by score, then by index (the lowest index wins a tie)."""
    order = np.lexsort((np.arange(scores.shape[1])[None, :].repeat(len(scores), 0), -scores))
    best = order[:, :k]
    values = np.take_along_axis(scores, best, axis=1)
    return np.where(np.isneginf(values), -1, best), values


@given(SCORES, st.integers(1, 50))
def test_top_k_is_a_stable_full_sort(scores: np.ndarray, k: int) -> None:
    items, values = top_k(scores.copy(), k)
    expected_items, expected_values = _reference(scores, min(k, scores.shape[1]))
    np.testing.assert_array_equal(values, expected_values)
    if k < scores.shape[1]:  # a full-width answer keeps the general path's order of ties
        np.testing.assert_array_equal(items, expected_items)


@given(SCORES, st.integers(1, 10))
def test_one_row_equals_its_row_of_a_batch(scores: np.ndarray, k: int) -> None:
    batch_items, batch_values = top_k(scores.copy(), k)
    for row in range(len(scores)):
        items, values = top_k(scores[row : row + 1].copy(), k)
        np.testing.assert_array_equal(items[0], batch_items[row])
        np.testing.assert_array_equal(values[0], batch_values[row])


def test_nan_scores_never_rank_and_do_not_crash() -> None:
    scores = np.array([[0.5, np.nan, 2.0, 1.0, np.nan]], dtype=np.float32)
    items, values = top_k(scores, 2)
    assert items.tolist() == [[2, 3]]
    assert values.tolist() == [[2.0, 1.0]]


def test_masked_items_come_back_as_minus_one() -> None:
    scores = np.array([[-np.inf, 3.0, -np.inf, -np.inf]], dtype=np.float32)
    items, _ = top_k(scores, 3)
    assert items.tolist() == [[1, -1, -1]]

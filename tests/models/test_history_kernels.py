"""The compiled steps of a fold-in against numpy's own formulas: a history's rows summed from
a sparse or dense item-item matrix, its profile (each item once, at its latest place), and the
blend's standardized sum."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.models.base import dense_weighted_rows, weighted_rows
from movierec.models.hybrid import _weighted_sum
from movierec.models.weighting import history_weights

N_ITEMS = 40
histories = st.lists(st.integers(0, N_ITEMS - 1), max_size=25)  # repeats and empty included


@settings(max_examples=200, deadline=None)
@given(histories, st.sampled_from([None, 1.0, 3.0]))
def test_a_profile_keeps_each_item_once_at_its_latest_place(
    history: list[int], half_life: float | None
) -> None:
    items = np.array(history, dtype=np.int64)
    distinct, latest, weights = history_weights(items, half_life)
    expected, from_end = np.unique(items[::-1], return_index=True)
    np.testing.assert_array_equal(distinct, expected)
    np.testing.assert_array_equal(latest, len(items) - 1 - from_end)
    np.testing.assert_array_equal(items[latest], distinct)
    want = np.ones(len(expected)) if half_life is None else np.exp2(-from_end / half_life)
    np.testing.assert_allclose(weights, want, rtol=1e-6)
    assert weights.dtype == np.float32


@settings(max_examples=100, deadline=None)
@given(histories, st.integers(0, 2**31 - 1))
def test_a_historys_rows_summed_equal_the_matrix_product(history: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    dense = sp.random(N_ITEMS, N_ITEMS, density=0.2, random_state=rng, dtype=np.float32)
    dense = dense.toarray()
    rows = np.array(history, dtype=np.int64)
    weights = rng.uniform(0.1, 2.0, len(rows)).astype(np.float32)
    expected = weights.astype(np.float64) @ dense[rows].astype(np.float64)
    for summed in (
        weighted_rows(sp.csr_matrix(dense), rows, weights),
        dense_weighted_rows(dense, rows, weights),
    ):
        assert summed.dtype == np.float32
        assert summed.shape == (N_ITEMS,)
        np.testing.assert_allclose(summed, expected, rtol=1e-5, atol=1e-6)


def test_the_standardized_sum_weighs_each_part_by_its_own_spread() -> None:
    rng = np.random.default_rng(3)
    parts = [
        (0.2, rng.normal(5.0, 3.0, (4, 50)).astype(np.float32)),
        (0.5, rng.normal(-1.0, 0.01, (4, 50)).astype(np.float32)),
        (0.3, np.ones((4, 50), dtype=np.float32)),  # no spread: only its mean is taken off
    ]
    expected = np.zeros((4, 50))
    for weight, scores in parts:
        values = scores.astype(np.float64)
        spread = values.std(axis=1, keepdims=True)
        expected += (
            weight
            * (values - values.mean(axis=1, keepdims=True))
            / np.where(spread > 0, spread, 1.0)
        )
    total = _weighted_sum(parts)
    assert total.dtype == np.float32
    np.testing.assert_allclose(total, expected, rtol=1e-4, atol=1e-5)
    one_row = _weighted_sum([(w, s[2][None, :]) for w, s in parts])
    np.testing.assert_allclose(one_row[0], total[2], rtol=1e-6)

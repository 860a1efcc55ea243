"""QuantizedIndex: the exact top-k of a float32 product, found from int8 codes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.models.base import top_k
from movierec.models.quantized import MAX_WIDTH, QuantizedIndex, worth_indexing


def _table(seed: int, n: int, width: int, spread: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((n, width)) * np.exp(rng.uniform(-spread, spread, (n, 1)))
    table[rng.integers(0, n, n // 50)] = 0.0  # items with no signal
    duplicates = rng.integers(0, n, n // 20)
    table[duplicates] = table[duplicates[::-1]]  # exact ties between items
    return table.astype(np.float32)


def _full_answer(table: np.ndarray, vector: np.ndarray, blocked: np.ndarray, k: int) -> tuple:
    scores = (table @ vector)[None, :]
    scores[0, blocked] = -np.inf
    items, values = top_k(scores, k)
    return items[0], values[0]


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 3_000),
    width=st.sampled_from([1, 8, 64, 65]),
    spread=st.sampled_from([0.0, 3.0]),
    k=st.integers(1, 120),
    blocked_share=st.sampled_from([0.0, 0.5, 0.999]),
    vector_scale=st.sampled_from([0.0, 1e-20, 1.0, 1e15]),
)
def test_the_answer_is_the_full_products(
    *,
    seed: int, n: int, width: int, spread: float, k: int, blocked_share: float,
    vector_scale: float,
) -> None:  # fmt: skip
    table = _table(seed, n, width, spread)
    rng = np.random.default_rng(seed + 1)
    vector = (rng.standard_normal(width) * vector_scale).astype(np.float32)
    blocked = rng.random(n) < blocked_share
    k = min(k, n)
    items, values = QuantizedIndex.build(table).top_k(vector, k, blocked)
    expected_items, expected_values = _full_answer(table, vector, blocked, k)
    # The same ranking: equal scores, up to the last bits a product over fewer rows may round
    # differently, and the same items wherever the scores are not (nearly) tied.
    rounding = 1e-6 * (np.abs(table) @ np.abs(vector)).max(initial=0.0)
    np.testing.assert_allclose(values, expected_values, rtol=1e-6, atol=rounding)
    assert (items == -1).sum() == (expected_items == -1).sum()
    exact = table.astype(np.float64) @ vector.astype(np.float64)
    kept = items[items >= 0]
    assert not blocked[kept].any()
    np.testing.assert_allclose(
        exact[kept], exact[expected_items[expected_items >= 0]], rtol=1e-6, atol=rounding
    )
    assert (np.diff(values[items >= 0]) <= 0).all()


def test_ties_go_to_the_lower_index_and_a_short_list_is_padded() -> None:
    table = np.zeros((6_000, 4), dtype=np.float32)
    table[[5, 17, 4_000, 4_001], 0] = 1.0
    blocked = np.zeros(6_000, dtype=bool)
    blocked[17] = True
    index = QuantizedIndex.build(table)
    items, values = index.top_k(np.array([2.0, 0, 0, 0], dtype=np.float32), 2, blocked)
    assert items.tolist() == [5, 4_000]
    assert values.tolist() == [2.0, 2.0]
    blocked[:] = True
    blocked[[3, 9]] = False
    items, values = index.top_k(np.ones(4, dtype=np.float32), 4, blocked)
    assert items.tolist() == [3, 9, -1, -1]
    assert values[2:].tolist() == [-np.inf, -np.inf]


def test_tables_too_wide_for_exact_sums_are_refused() -> None:
    assert not worth_indexing(np.zeros((10_000, MAX_WIDTH + 1), dtype=np.float32))
    assert worth_indexing(np.zeros((10_000, MAX_WIDTH), dtype=np.float32))
    with pytest.raises(ValueError, match="columns"):
        QuantizedIndex.build(np.zeros((5, MAX_WIDTH + 1), dtype=np.float32))


@pytest.mark.parametrize("width", [64, 65])
def test_a_real_sized_catalogue_keeps_few_items_to_rescore(width: int) -> None:
    table = _table(0, 27_278, width, 1.0)
    vector = np.random.default_rng(1).standard_normal(width).astype(np.float32)
    blocked = np.zeros(len(table), dtype=bool)
    kept = QuantizedIndex.build(table).shortlist(vector, 10, blocked)
    assert 10 <= len(kept) < 200

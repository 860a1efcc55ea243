"""``item_item_block``'s direct gathers (dense, sorted CSR) against scipy's and numpy's own
fancy indexing, on random weights."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from movierec.models.base import item_item_block


@pytest.mark.parametrize("kind", ["dense", "csr", "csr_unsorted", "csc"])
def test_a_block_equals_the_rows_then_the_columns(kind: str) -> None:
    rng = np.random.default_rng(7)
    dense = sp.random(300, 300, density=0.05, random_state=7, dtype=np.float32).toarray()
    weights = {
        "dense": dense,
        "csr": sp.csr_array(dense),
        "csr_unsorted": _reversed_rows(sp.csr_array(dense)),
        "csc": sp.csc_array(dense),
    }[kind]
    sources = rng.choice(300, 40, replace=False).astype(np.int64)
    targets = np.concatenate([rng.choice(300, 9, replace=False), [sources[0]]]).astype(np.int64)
    block = item_item_block(weights, sources, targets)
    assert block.dtype == np.float32
    assert block.flags.owndata or block.base is not dense  # a new array: callers scale it in place
    np.testing.assert_array_equal(block, dense[sources][:, targets])
    assert (block != 0).any()
    np.testing.assert_array_equal(item_item_block(weights, sources[:3], None), dense[sources[:3]])


def _reversed_rows(csr: sp.csr_array) -> sp.csr_array:
    """The same matrix with each row's entries stored in descending column order."""
    indices, data = csr.indices.copy(), csr.data.copy()
    for start, stop in zip(csr.indptr[:-1], csr.indptr[1:], strict=True):
        indices[start:stop] = indices[start:stop][::-1]
        data[start:stop] = data[start:stop][::-1]
    unsorted = sp.csr_array((data, indices, csr.indptr.copy()), shape=csr.shape)
    assert not unsorted.has_sorted_indices
    return unsorted

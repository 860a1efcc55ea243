"""Fixtures shared by the model tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def quantized_always(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every catalogue, however small, ranked through the QuantizedIndex (models/quantized.py):
    the contract's checkerboard is far below the size where it is used."""
    monkeypatch.setattr("movierec.models.quantized.MIN_ITEMS", 0)

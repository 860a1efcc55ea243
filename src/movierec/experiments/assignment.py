"""Deterministic assignment of users (or anonymous sessions) to an experiment's arms.

An arm is a pure function of the experiment's salt and the unit's id: every worker and replica
computes the same arm without asking anyone, a user keeps their arm across requests and
restarts, and a new experiment (a new salt) reshuffles everyone independently of the last one.
``hashlib`` rather than :func:`hash`: Python salts ``hash`` of a string per process.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from typing import Literal

Arm = Literal["control", "treatment"]
CONTROL: Arm = "control"
TREATMENT: Arm = "treatment"
INTERLEAVED = "interleaved"  # the arm every unit of an interleaving experiment is in


def unit_of(user_id: int | None, session_id: str | None) -> str | None:
    """The unit a request is assigned by: its user, else its session; None: neither (such a
    request is left out of the experiment)."""
    if user_id is not None:
        return f"user:{user_id}"
    if session_id:
        return f"session:{session_id}"
    return None


def share(salt: str, unit: str) -> float:
    """A fixed point of [0, 1) for ``unit`` under ``salt``, uniform over units."""
    digest = hashlib.blake2b(f"{salt}\x00{unit}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0**64


def arm_of(salt: str, unit: str, treatment_share: float) -> Arm:
    """``treatment`` for a ``treatment_share`` of the units, ``control`` for the others."""
    return TREATMENT if share(salt, unit) < treatment_share else CONTROL


def draft_coins(salt: str, unit: str) -> Iterator[int]:
    """The coin flips (0 or 1) of a unit's team drafts: the same unit gets the same
    interleaving of the same two lists (a reload shows the same page), different units
    independent ones. Bits of a keyed hash, 256 a block: creating a seeded numpy generator
    per request cost more than the draft itself (measured)."""
    for block in itertools.count():
        digest = hashlib.blake2b(f"draft\x00{salt}\x00{unit}\x00{block}".encode()).digest()
        number = int.from_bytes(digest, "little")
        for bit in range(len(digest) * 8):
            yield (number >> bit) & 1

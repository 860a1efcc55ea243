"""Replays of held-out future ratings: would an experiment pick the right model?

Two models are fitted on the training part of a temporal split; each simulated user is shown
the lists the models make for a real user, and "rates" a shown movie when that user rated it
in the held-out future (a replay: no model of behaviour beyond the data). Each run draws its
users with replacement (so populations larger than the data set can be simulated) under its
own salt, so the assignment and the interleavings differ from run to run, then applies the
very assignment, interleaving and tests the served experiments use.

The win rate of the better model over many seeded runs is the test's power at that number of
users; the win rate of either of two identical models is its false-positive rate.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from movierec.experiments.assignment import arm_of, draft_coins
from movierec.experiments.interleaving import preferences, team_draft
from movierec.experiments.stats import DEFAULT_ALPHA, ab_verdict, interleaving_verdict
from movierec.models.base import Recommender

if TYPE_CHECKING:
    from movierec.data.split import Split

Design = Literal["ab", "interleaving"]
IntArray = npt.NDArray[np.int64]
BoolMatrix = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Replay:
    """Per real user: the control's and the treatment's ranked items (``-1`` pads) and the
    items they rated in the held-out future (a dense users x items mask)."""

    control: IntArray
    treatment: IntArray
    future: BoolMatrix

    def __post_init__(self) -> None:
        if not (len(self.control) == len(self.treatment) == len(self.future)):
            raise ValueError("one row per user in every part of a replay")

    def swapped(self) -> Replay:
        return Replay(self.treatment, self.control, self.future)


def replay_of(
    control: Recommender, treatment: Recommender, split: Split, depth: int = 10
) -> Replay:
    """The replay of two models fitted on ``split.train``: the users with held-out ratings."""
    test = split.test.matrix.tocsr()
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    return Replay(
        control.recommend(users, k=depth)[0].astype(np.int64),
        treatment.recommend(users, k=depth)[0].astype(np.int64),
        (test[users] > 0).toarray(),
    )


def winner(
    replay: Replay, design: Design, *, users: int, seed: int, k: int = 10,
    alpha: float = DEFAULT_ALPHA,
) -> str | None:  # fmt: skip
    """The winning arm (``control`` or ``treatment``) of one simulated experiment, or None."""
    rng = np.random.default_rng(seed)
    sampled = rng.integers(0, len(replay.future), size=users)
    salt = f"simulation-{seed}"
    if design == "ab":
        return _ab(replay, sampled, salt, k, alpha)
    return _interleaving(replay, sampled, salt, k, alpha)


def win_rates(
    replay: Replay, design: Design, *, users: int, runs: int, k: int = 10,
    alpha: float = DEFAULT_ALPHA, first_seed: int = 0,
) -> dict[str, float]:  # fmt: skip
    """The share of ``runs`` seeded experiments won by each arm, and by none."""
    counts = Counter(
        winner(replay, design, users=users, seed=seed, k=k, alpha=alpha) or "none"
        for seed in range(first_seed, first_seed + runs)
    )
    return {arm: counts[arm] / runs for arm in ("treatment", "control", "none")}


def users_needed(
    replay: Replay, design: Design, *, runs: int, power: float = 0.95,
    grid: tuple[int, ...] = (25, 50, 100, 200, 400, 800, 1600, 3200, 6400, 12800),
    k: int = 10,
) -> int | None:  # fmt: skip
    """The fewest users on ``grid`` at which the treatment wins at least ``power`` of ``runs``
    (None: not within the grid)."""
    for users in grid:
        if win_rates(replay, design, users=users, runs=runs, k=k)["treatment"] >= power:
            return users
    return None


def _hits(lists: IntArray, future: BoolMatrix, users: IntArray, k: int) -> IntArray:
    """Per sampled user, how many of the first ``k`` items of their list they rated later."""
    shown = lists[users, :k]
    rated = future[users[:, None], np.maximum(shown, 0)] & (shown >= 0)
    return rated.sum(axis=1).astype(np.int64)


def _ab(replay: Replay, users: IntArray, salt: str, k: int, alpha: float) -> str | None:
    # Each simulated user is a distinct unit (a real user drawn twice stands for two people).
    treated = np.array(
        [arm_of(salt, f"user:{slot}", 0.5) == "treatment" for slot in range(len(users))]
    )
    control = _hits(replay.control, replay.future, users[~treated], k) / k
    treatment = _hits(replay.treatment, replay.future, users[treated], k) / k
    return ab_verdict(control.astype(float), treatment.astype(float), alpha).winner


def _interleaving(replay: Replay, users: IntArray, salt: str, k: int, alpha: float) -> str | None:
    control_hits = np.zeros(len(users), dtype=np.int64)
    treatment_hits = np.zeros(len(users), dtype=np.int64)
    for slot, user in enumerate(users.tolist()):
        control = replay.control[user]
        treatment = replay.treatment[user]
        items, teams = team_draft(
            control[control >= 0].tolist(),
            treatment[treatment >= 0].tolist(),
            k,
            draft_coins(salt, f"user:{slot}"),
        )
        rated = replay.future[user, items] if items else np.zeros(0, dtype=bool)
        in_team = np.asarray(teams, dtype=np.int64) == 1
        treatment_hits[slot] = int((rated & in_team).sum())
        control_hits[slot] = int((rated & ~in_team).sum())
    control_wins, treatment_wins, _ = preferences(control_hits, treatment_hits)
    return interleaving_verdict(control_wins, treatment_wins, alpha).winner

"""Team-draft interleaving, assignment and the tests: properties that hold for any input."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from movierec.experiments.assignment import arm_of, draft_coins, share, unit_of
from movierec.experiments.interleaving import preferences, team_draft
from movierec.experiments.stats import ab_verdict, interleaving_verdict

rankings = st.lists(st.integers(0, 30), unique=True, max_size=15)


@given(rankings, rankings, st.integers(1, 20), st.integers(0, 2**32))
def test_team_draft_is_a_fair_draft(
    control: list[int], treatment: list[int], k: int, seed: int
) -> None:
    items, teams = team_draft(
        control, treatment, k, iter(np.random.default_rng(seed).integers(0, 2, 64).tolist())
    )
    assert len(items) == len(set(items)) == min(k, len(set(control) | set(treatment)))
    for team, ranking in ((0, control), (1, treatment)):
        picked = [item for item, t in zip(items, teams, strict=True) if t == team]
        # A team's picks keep its ranking's order, and each was its best movie still free.
        assert picked == [item for item in ranking if item in picked]
        for position, item in enumerate(items):
            if teams[position] == team:
                better = ranking[: ranking.index(item)]
                assert set(better) <= set(items[:position])
    # While both rankings have movies left, the teams' sizes never differ by more than one.
    if set(items) < set(control) and set(items) < set(treatment):
        assert abs(teams.count(0) - teams.count(1)) <= 1


def test_identical_rankings_interleave_to_themselves() -> None:
    ranking = list(range(10))
    items, teams = team_draft(ranking, ranking, 10, draft_coins("salt", "user:1"))
    assert items == ranking
    assert sorted(teams) == [0] * 5 + [1] * 5


@given(st.text(max_size=20), st.integers(0, 2**63 - 1))
def test_assignment_is_a_pure_function_of_salt_and_unit(salt: str, user: int) -> None:
    unit = unit_of(user, None)
    assert unit is not None
    assert 0.0 <= share(salt, unit) < 1.0
    assert arm_of(salt, unit, 0.5) == arm_of(salt, unit, 0.5)
    assert arm_of(salt, unit, 0.0) == "control"
    assert arm_of(salt, unit, 1.0) == "treatment"
    first, again = draft_coins(salt, unit), draft_coins(salt, unit)
    flips = [next(first) for _ in range(600)]  # past a block of 256
    assert flips == [next(again) for _ in range(600)]
    assert set(flips) == {0, 1}


def test_assignment_splits_users_evenly_and_anew_per_salt() -> None:
    first = np.array([arm_of("a", f"user:{u}", 0.3) == "treatment" for u in range(20_000)])
    second = np.array([arm_of("b", f"user:{u}", 0.3) == "treatment" for u in range(20_000)])
    assert abs(first.mean() - 0.3) < 0.015
    # Independent salts: the treated share of the first experiment's treated users is 30% too.
    assert abs(second[first].mean() - 0.3) < 0.03


def test_units() -> None:
    assert unit_of(7, "abc") == "user:7"
    assert unit_of(None, "abc") == "session:abc"
    assert unit_of(None, None) is None
    assert unit_of(None, "") is None


def test_verdicts() -> None:
    assert preferences(np.array([3, 0, 1]), np.array([1, 2, 1])) == (1, 1, 1)
    assert interleaving_verdict(10, 40).winner == "treatment"
    assert interleaving_verdict(40, 10).winner == "control"
    assert interleaving_verdict(20, 22).winner is None
    assert interleaving_verdict(0, 0).p_value is None
    low, high = np.zeros(50), np.full(50, 0.2)
    low[::5], high[::7] = 0.1, 0.3
    assert ab_verdict(low, high).winner == "treatment"
    assert ab_verdict(high, low).winner == "control"
    rng = np.random.default_rng(0)
    assert ab_verdict(rng.random(50), rng.random(50)).winner is None
    assert ab_verdict(np.zeros(5), np.zeros(5)).p_value is None  # no variance: no test
    assert ab_verdict(np.zeros(1), np.ones(5)).winner is None

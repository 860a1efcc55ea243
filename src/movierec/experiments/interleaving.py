"""Team-draft interleaving (Radlinski, Kurup and Joachims 2008).

Two rankings are merged into one list the way captains pick teams: in each round the team with
fewer picks (a coin decides a tie) adds its best movie not picked yet. Each movie shown is
credited to the team that picked it; the ranking whose team's movies get more later ratings
from a user wins that user. Every user sees one list, so the comparison is within user, which
removes the between-user variance an A/B test must average out (far fewer users needed: see
``benchmarks/README.md``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt

CONTROL_TEAM = 0
TREATMENT_TEAM = 1


def team_draft(
    control: Sequence[int], treatment: Sequence[int], k: int, coins: Iterator[int]
) -> tuple[list[int], list[int]]:
    """The interleaved list of at most ``k`` distinct items and each item's team.

    When one ranking runs out, the other goes on alone (its picks still credited to it).
    """
    lists = (list(control), list(treatment))
    positions = [0, 0]
    picks = [0, 0]
    items: list[int] = []
    teams: list[int] = []
    chosen: set[int] = set()
    while len(items) < k:
        team = _next_team(picks, coins)
        item = _next_item(lists[team], positions, team, chosen)
        if item is None:  # this ranking is exhausted: the other picks
            team = 1 - team
            item = _next_item(lists[team], positions, team, chosen)
            if item is None:
                break
        items.append(item)
        teams.append(team)
        chosen.add(item)
        picks[team] += 1
    return items, teams


def _next_team(picks: list[int], coins: Iterator[int]) -> int:
    if picks[0] != picks[1]:
        return 0 if picks[0] < picks[1] else 1
    return next(coins)


def _next_item(ranking: list[int], positions: list[int], team: int, chosen: set[int]) -> int | None:
    while positions[team] < len(ranking):
        item = ranking[positions[team]]
        positions[team] += 1
        if item not in chosen:
            return item
    return None


def preferences(
    control_hits: npt.NDArray[np.int64], treatment_hits: npt.NDArray[np.int64]
) -> tuple[int, int, int]:
    """Per-user credit to (control wins, treatment wins, ties): a user prefers the team whose
    movies they rated more of."""
    control_wins = int((control_hits > treatment_hits).sum())
    treatment_wins = int((treatment_hits > control_hits).sum())
    return control_wins, treatment_wins, len(control_hits) - control_wins - treatment_wins

"""One list for a group watching together.

Each member's own ranking (their usual recommendations, :data:`MEMBER_DEPTH` deep: folded in,
fresh or popular as for them alone) gives every candidate a utility per member, from its rank:
``1 - rank / MEMBER_DEPTH`` (0 for a movie outside their list: one they have seen, or one far
down). Ranks, not scores, so members are comparable whatever the model's scale. The group's
score is the members' mean (``average``) or their minimum (``least_misery``: nobody is left
miserable); each movie names the member it suits least and most.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from movierec.serving.service import Answer

Method = Literal["average", "least_misery"]
MEMBER_DEPTH = 100


@dataclass(frozen=True)
class GroupPick:
    movie_id: int
    score: float
    utilities: list[float]  # per member, in the request's order


@dataclass(frozen=True)
class GroupAnswer:
    answers: list[Answer]  # each member's own
    picks: list[GroupPick]


def recommend_group(
    members: list[int], k: int, method: Method, ranking: Callable[[int, int], Answer]
) -> GroupAnswer:
    """The group's top ``k``; ``ranking(user, depth)`` is a member's own answer."""
    answers = [ranking(member, MEMBER_DEPTH) for member in members]
    candidates = list(dict.fromkeys(m for answer in answers for m in answer.movie_ids))
    column = {movie: j for j, movie in enumerate(candidates)}
    utility = np.zeros((len(members), len(candidates)))
    for row, answer in enumerate(answers):
        for rank, movie in enumerate(answer.movie_ids):
            utility[row, column[movie]] = 1.0 - rank / MEMBER_DEPTH
    group = utility.mean(axis=0) if method == "average" else utility.min(axis=0)
    # Best group score first; among equals, the better mean, then the first member's order.
    order = np.lexsort((np.arange(len(candidates)), -utility.mean(axis=0), -group))[:k]
    picks = [
        GroupPick(candidates[j], float(group[j]), utility[:, j].tolist()) for j in order.tolist()
    ]
    return GroupAnswer(answers, picks)

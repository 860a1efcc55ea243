"""MMR re-ranking: the model's order at diversity 0, more diverse lists as it grows."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from movierec.evaluation.metrics import intra_list_diversity
from movierec.models.rerank import mmr

candidates = st.integers(1, 30).flatmap(
    lambda n: st.tuples(
        arrays(np.float64, n, elements=st.floats(-5, 5)),
        arrays(np.int8, (n, 4), elements=st.integers(0, 1)),
    )
)


@given(candidates, st.integers(1, 40), st.floats(0, 1))
def test_picks_are_distinct_candidates(
    case: tuple[np.ndarray, np.ndarray], k: int, diversity: float
) -> None:
    scores, features = case
    picked = mmr(scores, features, k, diversity)
    assert len(picked) == min(k, len(scores)) == len(set(picked.tolist()))
    assert scores[picked[0]] >= scores.max() - 1e-9  # nothing chosen yet: the most relevant


@given(candidates, st.integers(1, 40))
def test_no_diversity_keeps_the_scores_order(case: tuple[np.ndarray, np.ndarray], k: int) -> None:
    scores, features = case
    expected = np.argsort(-scores, kind="stable")[:k]
    assert mmr(scores, features, k, 0.0).tolist() == expected.tolist()


def test_diversity_trades_relevance_for_unlike_genres() -> None:
    # Ten comedies score highest, then ten dramas, then ten thrillers.
    features = np.repeat(np.eye(3), 10, axis=0)
    scores = np.linspace(1.0, 0.0, 30)
    plain = mmr(scores, features, 3, 0.0)
    diverse = mmr(scores, features, 3, 0.5)
    assert plain.tolist() == [0, 1, 2]
    assert sorted(diverse.tolist()) == [0, 10, 20]  # the best of each genre
    assert intra_list_diversity(diverse[None, :], features) == 1.0
    assert intra_list_diversity(plain[None, :], features) == 0.0

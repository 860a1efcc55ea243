"""The evaluation protocol: the right users, the right relevant items, every figure reported."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from movierec.data.interactions import Interactions
from movierec.data.split import Split, make_split
from movierec.evaluation.protocol import EvaluationConfig, evaluate, mean_reports, relevant_items
from movierec.models.base import Recommender
from movierec.models.mf import BiasedMF
from movierec.models.popularity import Popularity
from tests.models.contract import checkerboard


class KnowsTheAnswer(Recommender):
    """Scores the test set's items first (or last, when ``backwards``): pins the plumbing."""

    name: ClassVar[str] = "oracle"

    def __init__(self, answer: Interactions, backwards: bool = False) -> None:
        super().__init__()
        self.answer = answer.binarize().matrix.toarray().astype(np.float32)
        self.sign = -1.0 if backwards else 1.0

    def _fit(self, interactions: Interactions) -> None:
        pass

    def _score_users(self, users: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        return self.sign * self.answer[users]

    def _score_history(
        self, items: npt.NDArray[np.int64], ratings: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        return np.zeros(self.answer.shape[1], dtype=np.float32)

    def _state(self) -> dict[str, npt.NDArray[Any]]:
        return {}

    def _restore(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        pass


def _checkerboard_split() -> Split:
    data = checkerboard()
    [split] = make_split("leave_one_out", data)
    return split


def test_a_perfect_ranking_scores_one_and_a_reversed_one_zero() -> None:
    split = _checkerboard_split()
    config = EvaluationConfig(ks=(1, 5), relevance_threshold=None)
    perfect = evaluate(KnowsTheAnswer(split.test), split, config)
    assert perfect.metrics["ndcg@1"] == pytest.approx(1.0)
    assert perfect.metrics["precision@1"] == pytest.approx(1.0)
    assert perfect.metrics["mrr@5"] == pytest.approx(1.0)
    reversed_ = evaluate(KnowsTheAnswer(split.test, backwards=True), split, config)
    assert reversed_.metrics["hit_rate@1"] == pytest.approx(0.0)
    assert perfect.n_users_ranked == split.test.n_users


def test_only_ratings_at_the_threshold_are_relevant() -> None:
    frame = pd.DataFrame(
        {
            "user_id": [1, 1, 2, 2, 3],
            "item_id": [10, 11, 10, 12, 11],
            "rating": [4.0, 3.5, 5.0, 0.0, 2.0],
            "timestamp": [1, 2, 3, 4, 5],
        }
    )
    test = Interactions.from_frames(frame, rating_scale=(0.0, 5.0))
    users, relevant = relevant_items(test, EvaluationConfig(relevance_threshold=4.0))
    assert users.tolist() == [0, 1]  # user 3 has no rating >= 4: not ranked
    assert relevant.toarray().tolist() == [[1, 0, 0], [1, 0, 0]]
    every, relevant_all = relevant_items(test, EvaluationConfig(relevance_threshold=None))
    assert every.tolist() == [0, 1, 2]
    assert relevant_all.nnz == 5, "a stored 0 rating is still an interaction"


def test_report_has_ranking_beyond_accuracy_and_rating_figures() -> None:
    split = _checkerboard_split()
    config = EvaluationConfig(ks=(5,), relevance_threshold=None)
    report = evaluate(BiasedMF(n_factors=4, n_epochs=30), split, config)
    for key in ("ndcg@5", "precision@5", "recall@5", "map@5", "mrr@5", "hit_rate@5"):
        assert 0.0 <= report.metrics[key] <= 1.0
    for key in ("coverage@5", "novelty@5", "gini@5", "rmse", "mae"):
        assert key in report.metrics
    assert report.fit_seconds > 0
    assert report.params["n_factors"] == 4
    assert report.to_dict()["data"]["n_train_ratings"] == split.train.nnz


def test_held_out_users_are_folded_in_not_trained_on() -> None:
    data = checkerboard()
    [split] = make_split("held_out_users", data, n_test_users=10, fold_in_fraction=0.7)
    config = EvaluationConfig(ks=(5,), relevance_threshold=None)
    report = evaluate(Popularity(kind="count"), split, config)
    assert report.n_users_ranked == 10
    assert "rmse" not in report.metrics, "unseen users have no trained rating to compare"
    assert 0.0 <= report.metrics["ndcg@5"] <= 1.0


def test_max_users_samples_a_seeded_subset() -> None:
    split = _checkerboard_split()
    config = EvaluationConfig(ks=(5,), relevance_threshold=None, max_users=7, seed=3)
    first = evaluate(Popularity(), split, config)
    again = evaluate(Popularity(), split, config)
    assert first.n_users_ranked == 7
    assert first.metrics == again.metrics


def test_mean_reports_averages_folds() -> None:
    data = checkerboard()
    folds = make_split("kfold", data, k=3)
    reports = [evaluate(Popularity(), fold, EvaluationConfig(ks=(5,))) for fold in folds]
    mean = mean_reports(reports, name="kfold")
    assert mean.split == "kfold"
    assert mean.metrics["ndcg@5"] == pytest.approx(np.mean([r.metrics["ndcg@5"] for r in reports]))


def test_bad_configs_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        EvaluationConfig(ks=(0,))
    with pytest.raises(ValueError, match="max_users"):
        EvaluationConfig(max_users=0)

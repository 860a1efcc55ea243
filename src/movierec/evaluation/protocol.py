"""Evaluation protocols: fit a model on a split's train part and measure it on the test part.

Ranking is full ranking over the whole catalogue (no sampled negatives), with the user's
training items excluded. A test rating is relevant when it is at least ``relevance_threshold``
(None: every test rating is relevant, the implicit-feedback convention). Users with no relevant
test rating are not ranked. For a held-out-users split, each test user is folded in from their
``fold_in`` ratings (the model never trained on them) through ``recommend_for_history``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from movierec.data.interactions import Interactions
from movierec.data.split import Split
from movierec.evaluation import metrics
from movierec.models.base import Recommender

DEFAULT_KS = (5, 10, 20)
BEYOND_ACCURACY_K = 10


@dataclass(frozen=True)
class EvaluationConfig:
    """How a split is scored."""

    ks: tuple[int, ...] = DEFAULT_KS
    relevance_threshold: float | None = 4.0
    max_users: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.ks or min(self.ks) <= 0:
            raise ValueError(f"ks must be positive cut-offs, got {self.ks}")
        if self.max_users is not None and self.max_users <= 0:
            raise ValueError("max_users must be positive")


@dataclass
class Report:
    """Every figure of one evaluation, ready for a table, JSON or an MLflow run."""

    model: str
    params: dict[str, Any]
    split: str
    split_params: dict[str, Any]
    metrics: dict[str, float]
    fit_seconds: float
    eval_seconds: float
    n_users_ranked: int
    n_test_ratings: int
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return asdict(self)


def evaluate(
    model: Recommender,
    split: Split,
    config: EvaluationConfig | None = None,
    *,
    fit: bool = True,
) -> Report:
    """Fit ``model`` on ``split.train`` (unless ``fit`` is False) and score it on ``split.test``."""
    config = config or EvaluationConfig()
    fit_seconds = 0.0
    if fit:
        started = time.perf_counter()
        model.fit(split.train)
        fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    users, relevant = relevant_items(split.test, config)
    recommended = _rank(model, split, users, max(config.ks))
    scores = metrics.ranking_metrics(recommended, relevant, ks=config.ks) if len(users) else {}
    scores |= _beyond_accuracy(recommended, split.train)
    if model.predicts_ratings and split.fold_in is None:
        scores |= _rating_errors(model, split.test)
    return Report(
        model=model.name,
        params=model.config.model_dump(mode="json"),
        split=split.name,
        split_params=dict(split.params),
        metrics={key: float(value) for key, value in scores.items()},
        fit_seconds=fit_seconds,
        eval_seconds=time.perf_counter() - started,
        n_users_ranked=len(users),
        n_test_ratings=split.test.nnz,
        data={
            "snapshot_hash": split.train.snapshot_hash,
            "n_users": split.train.n_users,
            "n_items": split.train.n_items,
            "n_train_ratings": split.train.nnz,
        },
    )


def relevant_items(
    test: Interactions, config: EvaluationConfig
) -> tuple[npt.NDArray[np.int64], sp.csr_matrix]:
    """The users to rank and, row for row, their relevant test items (a 0/1 CSR)."""
    matrix = test.matrix
    keep = (
        np.ones(matrix.nnz, dtype=bool)
        if config.relevance_threshold is None
        else matrix.data >= config.relevance_threshold
    )
    entry_users = np.repeat(np.arange(test.n_users), np.diff(matrix.indptr))
    relevant = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.float32), (entry_users[keep], matrix.indices[keep])),
        shape=matrix.shape,
    )
    users = np.flatnonzero(np.diff(relevant.indptr) > 0).astype(np.int64)
    if config.max_users is not None and len(users) > config.max_users:
        rng = np.random.default_rng(config.seed)
        users = np.sort(rng.choice(users, size=config.max_users, replace=False))
    return users, relevant[users]


def _rank(
    model: Recommender, split: Split, users: npt.NDArray[np.int64], k: int
) -> npt.NDArray[np.int64]:
    if split.fold_in is None:
        items, _ = model.recommend(users, k=k)
        return items
    history = split.fold_in.matrix
    ranked = np.full((len(users), min(k, split.train.n_items)), -1, dtype=np.int64)
    for row, user in enumerate(users):  # fold-in is per user by nature: one history each
        start, end = history.indptr[user], history.indptr[user + 1]
        found, _ = model.recommend_for_history(
            history.indices[start:end], history.data[start:end], k=k
        )
        ranked[row, : len(found)] = found
    return ranked


def _beyond_accuracy(recommended: npt.NDArray[np.int64], train: Interactions) -> dict[str, float]:
    if recommended.size == 0:
        return {}
    top = recommended[:, :BEYOND_ACCURACY_K]
    k = top.shape[1]
    popularity = metrics.item_popularity(train.binarize().matrix)
    genres, _ = train.genre_matrix()
    figures = {
        f"coverage@{k}": metrics.catalog_coverage(top, train.n_items),
        f"novelty@{k}": metrics.novelty(top, popularity),
        f"gini@{k}": metrics.gini_index(top, train.n_items),
        **{
            f"{name}@{k}": value for name, value in metrics.popularity_bias(top, popularity).items()
        },
    }
    if genres.shape[1] and k > 1:
        figures[f"diversity@{k}"] = metrics.intra_list_diversity(top, genres)
    return figures


def _rating_errors(model: Recommender, test: Interactions) -> dict[str, float]:
    if test.nnz == 0:
        return {}
    users = np.repeat(np.arange(test.n_users), np.diff(test.matrix.indptr))
    predicted = model.predict(users, test.matrix.indices)
    return {
        "rmse": metrics.rmse(test.matrix.data, predicted),
        "mae": metrics.mae(test.matrix.data, predicted),
    }


def mean_reports(reports: Sequence[Report], name: str | None = None) -> Report:
    """One report whose metrics and timings are the means over folds (k-fold, u1..u5)."""
    if not reports:
        raise ValueError("no reports to average")
    first = reports[0]
    keys = sorted(set.intersection(*(set(r.metrics) for r in reports)))
    return Report(
        model=first.model,
        params=first.params,
        split=name or f"mean of {len(reports)} folds",
        split_params={"folds": [r.split for r in reports]},
        metrics={key: float(np.mean([r.metrics[key] for r in reports])) for key in keys},
        fit_seconds=float(np.mean([r.fit_seconds for r in reports])),
        eval_seconds=float(np.mean([r.eval_seconds for r in reports])),
        n_users_ranked=int(np.mean([r.n_users_ranked for r in reports])),
        n_test_ratings=int(np.mean([r.n_test_ratings for r in reports])),
        data=first.data,
    )

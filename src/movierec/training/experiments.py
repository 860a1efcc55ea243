"""Experiments: load a data set as Interactions, split it by a named protocol, evaluate models.

The ``evaluate``, ``compare`` and ``train`` commands call these functions, and so will the
pipeline: data comes from the store's snapshot (the default) or straight from a named MovieLens
archive, without touching the store.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from movierec.config import Settings
from movierec.data.interactions import Interactions
from movierec.data.snapshot import Snapshot, create_snapshot
from movierec.data.sources import get_variant, load_movielens, locate_archive, read_ml100k_folds
from movierec.data.split import Split, make_split
from movierec.data.store import RatingsStore
from movierec.errors import ConfigError
from movierec.evaluation.protocol import EvaluationConfig, Report, evaluate, mean_reports
from movierec.models import model_class
from movierec.models.base import Recommender

OFFICIAL_CV_FOLDS = ("u1", "u2", "u3", "u4", "u5")
LOWER_IS_BETTER = frozenset({"rmse", "mae"})  # metrics where a smaller value is better
DEFAULT_PROTOCOL = "user_temporal"

Engine = Literal["local", "spark"]
"""Where a model trains: in this process, or on Apache Spark (``als`` only)."""
SPARK_FAMILIES = frozenset({"als"})
SparkSource = Literal["driver", "snapshot", "jdbc"]
"""Where Spark's executors read the ratings: sent from the driver, the parquet snapshot, or
the PostgreSQL store over JDBC."""


def engine_model_class(name: str, engine: Engine = "local") -> type[Recommender]:
    """The class that trains family ``name`` on ``engine``; both save the family's artifact.

    Raises:
        ConfigError: An unknown family, or one the engine cannot train.
    """
    if engine == "local":
        return model_class(name)
    model_class(name)  # an unknown name lists the known ones first
    if name not in SPARK_FAMILIES:
        raise ConfigError(
            f"the spark engine trains {', '.join(sorted(SPARK_FAMILIES))}, not {name!r}"
        )
    # PySpark itself is imported only when a fit starts a session (an optional extra).
    from movierec.distributed.spark_als import SparkALS  # noqa: PLC0415

    return SparkALS


def create_model(name: str, engine: Engine = "local", **params: Any) -> Recommender:
    """A new, unfitted model of family ``name`` for ``engine``, configured by ``params``."""
    return engine_model_class(name, engine)(**params)


@dataclass(frozen=True)
class Experiment:
    """A data set split by a protocol: what every model of a comparison is scored on."""

    dataset: str
    protocol: str
    interactions: Interactions
    splits: list[Split]


def load_interactions(settings: Settings, dataset: str | None = None) -> Interactions:
    """The store's current data (via a content-hashed snapshot), or a named MovieLens set."""
    return _store_or_dataset(settings, dataset)[0]


def _store_or_dataset(
    settings: Settings, dataset: str | None
) -> tuple[Interactions, Snapshot | None]:
    """:func:`load_interactions` with the store's snapshot (None for a named data set)."""
    if dataset is None:
        with RatingsStore.from_settings(settings) as store:
            snapshot = create_snapshot(store, settings.snapshots_dir)
        return Interactions.from_snapshot(snapshot.path), snapshot
    data = load_movielens(dataset, settings, progress=False, base_url=settings.movielens_base_url)
    inter = Interactions.from_frames(data.ratings, data.movies, rating_scale=data.rating_scale)
    return inter, None


def prepare(
    settings: Settings,
    dataset: str | None = None,
    protocol: str = DEFAULT_PROTOCOL,
    **split_params: Any,
) -> Experiment:
    """Load ``dataset`` and split it by ``protocol`` (a split name, e.g. ``user_temporal``)."""
    inter = load_interactions(settings, dataset)
    if protocol == "ml100k_official":
        if dataset != "ml-100k":
            raise ConfigError("protocol ml100k_official needs --dataset ml-100k")
        archive = locate_archive(get_variant("ml-100k"), settings, progress=False)
        folds = read_ml100k_folds(archive)
        wanted = split_params.pop("folds", OFFICIAL_CV_FOLDS)
        split_params["folds"] = {name: folds[name] for name in wanted}
    splits = make_split(protocol, inter, **split_params)
    return Experiment(dataset or "store", protocol, inter, splits)


def evaluate_model(
    experiment: Experiment,
    model_name: str,
    params: dict[str, Any] | None = None,
    config: EvaluationConfig | None = None,
    engine: Engine = "local",
) -> Report:
    """Fit and score a fresh model on every split; folds are averaged into one report (its
    ``data["engine"]`` says where it trained)."""
    reports = [
        evaluate(create_model(model_name, engine, **(params or {})), split, config)
        for split in experiment.splits
    ]
    report = reports[0] if len(reports) == 1 else mean_reports(reports, experiment.protocol)
    report.data["dataset"] = experiment.dataset
    if engine != "local":  # the pipeline refits the winner where it was scored
        report.data["engine"] = engine
    return report


def leaderboard(
    experiment: Experiment,
    models: dict[str, dict[str, Any]],
    config: EvaluationConfig | None = None,
    rank_by: str = "ndcg@10",
) -> list[Report]:
    """Every model on the same splits, best first by ``rank_by`` (see :func:`ranked`)."""
    reports = [evaluate_model(experiment, name, params, config) for name, params in models.items()]
    return ranked(reports, rank_by)


def ranked(reports: list[Report], metric: str) -> list[Report]:
    """``reports`` best first by ``metric`` (lower first for errors); those without it last."""

    def key(report: Report) -> float:
        value = report.metrics.get(metric, math.nan)
        if not math.isfinite(value):
            return math.inf
        return value if metric in LOWER_IS_BETTER else -value

    return sorted(reports, key=key)


def train_model(
    settings: Settings,
    model_name: str,
    params: dict[str, Any] | None = None,
    dataset: str | None = None,
    output: Path | None = None,
    *,
    engine: Engine = "local",
    spark_source: SparkSource = "driver",
) -> tuple[Recommender, Path, float]:
    """Fit a model on all of the data and save it; returns the model, its folder, fit seconds.

    On Spark, ``spark_source`` says where the executors read the ratings (see
    :func:`movierec.distributed.spark_als.use_source`); the store's snapshot gives the id maps.
    """
    if engine == "spark" and spark_source != "driver" and dataset is not None:
        raise ConfigError(f"--spark-source {spark_source} reads the store: leave --dataset out")
    inter, snapshot = _store_or_dataset(settings, dataset)
    model = create_model(model_name, engine, **(params or {}))
    if engine == "spark":
        from movierec.distributed.spark_als import use_source  # noqa: PLC0415

        use_source(model, spark_source, snapshot, settings.store_url)
    started = time.perf_counter()
    model.fit(inter)
    seconds = time.perf_counter() - started
    folder = output or settings.models_dir / model_name
    model.save_for_serving(folder)
    return model, folder, seconds

"""MLflow tracking and registry: runs, the pyfunc wrapper, aliases and the promotion rule.

Every training run logs the model's config, every metric, timings, the data snapshot, the split
protocol, the code version and artifacts (the saved model as an MLflow pyfunc model, the report,
plots). The embedded default is a SQLite store with local artifacts under the data dir; any
tracking URI works by configuration.

The registry holds one model (``settings.registered_model``) with the aliases ``champion``,
``challenger`` and ``previous-champion``. A new version replaces the champion only when it beats
it on ``settings.primary_metric`` by more than ``settings.promotion_margin``, both scored on the
same split (see :func:`decide_promotion`). The read-compare-set sequence holds an exclusive lock
file under the data dir, so concurrent promotions on one machine (the embedded store, or any
store used from one host) are serialized; processes on other hosts sharing a remote tracking
server do not see that lock, so run promotion from one place (the scheduler) in that setup.

The trained model is saved to disk (with its report) before MLflow is touched: when the tracking
store cannot be reached, :class:`TrackingError` says so and :func:`log_saved_model` logs the
folder later.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pydantic
import scipy
from matplotlib.figure import Figure
from mlflow import MlflowClient
from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.meta_dataset import MetaDataset
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, DataType, Schema

from movierec import __version__
from movierec.config import Settings
from movierec.data.interactions import Interactions
from movierec.data.split import Split
from movierec.errors import MovierecError
from movierec.evaluation.protocol import EvaluationConfig, Report, evaluate
from movierec.locks import exclusive_lock
from movierec.models import model_class
from movierec.models.base import Recommender
from movierec.training.experiments import LOWER_IS_BETTER

# MLflow draws a progress bar for every artifact download (logging validates the model by
# loading it back): noise in CLI output and logs. An explicit setting still wins.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# With a tracking server, MLflow writes "View run ... at: URL" lines to stdout at each run's
# end: they would break `movierec pipeline run --json`, whose stdout is the JSON alone.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous-champion"
MODEL_ARTIFACT = "recommender"
REPORT_FILE = "report.json"
# A registered-model tag: the champions before the current one, oldest first (rollback pops it).
HISTORY_TAG = "movierec.champion_history"
MAX_PARAM_CHARS = 6000  # MLflow's limit on a parameter value
LONG_TAIL_USERS = 500  # users sampled for the long-tail plot: enough for a stable shape


class TrackingError(MovierecError):
    """The tracking store or registry cannot be reached, or refused an operation."""


# ---------------------------------------------------------------- metric names


def metric_key(name: str) -> str:
    """The MLflow key of a movierec metric: ``ndcg@10`` -> ``ndcg_at_10`` (MLflow rejects ``@``)."""
    return name.replace("@", "_at_")


def metric_name(key: str) -> str:
    """The movierec name of an MLflow metric key, the inverse of :func:`metric_key`."""
    return key.replace("_at_", "@")


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class TrackedRun:
    """A logged training run and, once registered, its model version."""

    run_id: str
    model_uri: str
    model_dir: Path
    model_version: int | None = None


@dataclass(frozen=True)
class PromotionDecision:
    """What the promotion rule decided for one version, and why (also logged to its run)."""

    version: int
    metric: str
    decision: str  # "champion", "challenger" or "rejected"
    reason: str
    candidate_score: float
    champion_version: int | None = None
    champion_score: float | None = None
    margin: float = 0.0

    @property
    def promoted(self) -> bool:
        return self.decision == CHAMPION


@dataclass(frozen=True)
class VersionInfo:
    """A registered version as ``list_versions`` and ``show_version`` describe it."""

    version: int
    aliases: list[str]
    run_id: str | None
    model: str | None
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    run_tags: dict[str, str] = field(default_factory=dict)

    @property
    def snapshot_hash(self) -> str | None:
        """The content hash of the data snapshot the version was trained on."""
        return self.run_tags.get("movierec.snapshot_hash")


# ---------------------------------------------------------------- the pyfunc model


class RecommenderPyfunc(PythonModel):
    """An MLflow pyfunc model around movierec's own save format (npz + json, never pickle).

    Logged as "models from code" (a script, no pickle); the fitted arrays travel as the
    ``recommender`` artifact folder and are read by ``Recommender.load`` in ``load_context``.
    """

    recommender: Recommender

    def load_context(self, context: Any) -> None:
        folder = Path(context.artifacts[MODEL_ARTIFACT])
        family = json.loads((folder / "config.json").read_text())["model"]
        self.recommender = model_class(family).load(folder)

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        """Recommendations per row of ``model_input`` (``user_id`` and optional ``k``).

        Returns one row per input row: ``user_id``, ``movie_ids``, ``scores`` and ``strategy``
        (``personalized``, or ``popular_fallback`` for a user the model never saw).
        """
        frame = pd.DataFrame(model_input)
        ks = frame["k"] if "k" in frame else pd.Series(10, index=frame.index)
        rows = [
            self._recommend_one(int(user), int(k) if pd.notna(k) else 10)
            for user, k in zip(frame["user_id"], ks, strict=True)
        ]
        return pd.DataFrame(rows, columns=["user_id", "movie_ids", "scores", "strategy"])

    def _recommend_one(self, user_id: int, k: int) -> tuple[int, list[int], list[float], str]:
        model = self.recommender
        index = model.user_index_of(user_id)
        if index is None:
            items, scores = model.popular_items(k)
            strategy = "popular_fallback"
        else:
            items, scores = model.recommend(index, k=k)
            strategy = "personalized"
        found = items >= 0  # -1 pads a list shorter than k
        assert model.item_ids is not None
        movie_ids = model.item_ids[items[found]].tolist()
        return user_id, movie_ids, scores[found].astype(float).tolist(), strategy


_MODEL_CODE = """from mlflow.models import set_model

from movierec.training.tracking import RecommenderPyfunc

set_model(RecommenderPyfunc())
"""


def _model_code(folder: Path) -> str:
    # "Models from code": MLflow stores this script, not a cloudpickle of the wrapper, so
    # nothing in the logged model is pickled.
    path = folder / "movierec_pyfunc.py"
    path.write_text(_MODEL_CODE)
    return str(path)


def _input_example(model: Recommender) -> pd.DataFrame:
    # A known user: MLflow runs the example through predict, which checks the logged model.
    assert model.user_ids is not None
    return pd.DataFrame({"user_id": [int(model.user_ids[0])], "k": [10]})


def _signature() -> ModelSignature:
    return ModelSignature(
        inputs=Schema(
            [ColSpec(DataType.long, "user_id"), ColSpec(DataType.long, "k", required=False)]
        )
    )


def _pip_requirements() -> list[str]:
    # Listed, not inferred: inference imports the model in a subprocess (seconds per run).
    return [
        f"movierec=={__version__}",
        f"mlflow=={mlflow.__version__}",
        f"numpy=={np.__version__}",
        f"scipy=={scipy.__version__}",
        f"pandas=={pd.__version__}",
        f"pydantic=={pydantic.__version__}",
    ]


# ---------------------------------------------------------------- connection


@contextmanager
def tracking_errors(settings: Settings, action: str, hint: str = "") -> Iterator[None]:
    """Turn MLflow and transport failures into one clear :class:`TrackingError`."""
    try:
        yield
    except TrackingError:
        raise
    except (MlflowException, OSError) as exc:  # requests errors are OSErrors
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrackingError(
            f"cannot {action} at tracking store {settings.tracking_uri}: {first_line[:300]}{hint}"
        ) from exc


def tracking_client(settings: Settings) -> MlflowClient:
    """A client of the configured tracking store and registry."""
    # The fluent API (start_run, log_model) reads the global URIs: set them on every entry.
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


def _embedded(settings: Settings) -> bool:
    return not settings.tracking_uri.startswith(("http://", "https://", "databricks"))


def experiment_id(settings: Settings) -> str:
    """The id of ``settings.mlflow_experiment``, created on first use."""
    return _experiment_id(tracking_client(settings), settings)


def _experiment_id(client: MlflowClient, settings: Settings) -> str:
    experiment = client.get_experiment_by_name(settings.mlflow_experiment)
    if experiment is not None:
        return str(experiment.experiment_id)
    location = None
    if _embedded(settings):  # a server decides where its artifacts go
        settings.mlflow_artifacts_dir.mkdir(parents=True, exist_ok=True)
        location = settings.mlflow_artifacts_dir.as_uri()
    return str(client.create_experiment(settings.mlflow_experiment, artifact_location=location))


@contextmanager
def data_dir_lock(settings: Settings, name: str) -> Iterator[None]:
    """An exclusive lock file in the data dir, held across processes until the block ends."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(settings.data_dir / name):
        yield


def _registry_lock(settings: Settings) -> contextlib.AbstractContextManager[None]:
    """Serialize read-compare-set on the aliases across processes sharing the data dir."""
    return data_dir_lock(settings, "mlflow-registry.lock")


# ---------------------------------------------------------------- logging runs


def track_training(
    settings: Settings,
    model: Recommender,
    report: Report,
    model_dir: Path | None = None,
    *,
    register_model: bool = True,
    tags: dict[str, str] | None = None,
) -> TrackedRun:
    """Save ``model`` and its ``report`` to disk, then log them as an MLflow run.

    The folder (default ``settings.models_dir / model.name``) is written first, so a tracking
    store that cannot be reached loses nothing: :func:`log_saved_model` logs it later.
    """
    folder = model_dir or settings.models_dir / model.name
    save_with_report(model, report, folder)
    return log_saved_model(settings, folder, register_model=register_model, tags=tags, loaded=model)


def save_with_report(model: Recommender, report: Report, folder: Path) -> None:
    """Write the model and its evaluation report: the folder :func:`log_saved_model` logs."""
    model.save_for_serving(folder)
    (folder / REPORT_FILE).write_text(json.dumps(report.to_dict(), indent=2, default=str))


def log_saved_model(
    settings: Settings,
    model_dir: Path,
    *,
    register_model: bool = True,
    tags: dict[str, str] | None = None,
    loaded: Recommender | None = None,
) -> TrackedRun:
    """Log a model folder written by :func:`track_training` (model + ``report.json``).

    ``tags`` go on the run. ``loaded`` is the folder's model when the caller holds it already
    (reading a large model back from disk costs a noticeable share of the logging time).
    """
    report = _read_report(model_dir)
    family = json.loads((model_dir / "config.json").read_text())["model"]
    model = loaded if loaded is not None else model_class(family).load(model_dir)
    hint = f"; the model is kept in {model_dir}: log it later with log_saved_model"
    with tracking_errors(settings, "log the training run", hint):
        client = tracking_client(settings)
        experiment_id = _experiment_id(client, settings)
        with (
            mlflow.start_run(experiment_id=experiment_id, run_name=family) as run,
            tempfile.TemporaryDirectory() as scratch,
        ):
            _log_run_contents(model, report, model_dir)
            mlflow.set_tags(tags or {})
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=_model_code(Path(scratch)),
                artifacts={MODEL_ARTIFACT: str(model_dir)},
                signature=_signature(),
                input_example=_input_example(model),
                pip_requirements=_pip_requirements(),
            )
        tracked = TrackedRun(run.info.run_id, info.model_uri, model_dir)
        if register_model:
            tracked = register(settings, tracked)
    return tracked


def _read_report(model_dir: Path) -> Report:
    try:
        return Report(**json.loads((model_dir / REPORT_FILE).read_text()))
    except (OSError, json.JSONDecodeError, TypeError) as exc:
        raise TrackingError(f"no readable {REPORT_FILE} in {model_dir}: {exc}") from exc


def _log_run_contents(model: Recommender, report: Report, model_dir: Path) -> None:
    mlflow.log_params(run_params(report))
    mlflow.log_metrics(run_metrics(report))
    mlflow.set_tags(_tags(report, model_dir))
    mlflow.log_input(SnapshotDataset(report), context="training", tags=_dataset_tags(report))
    mlflow.log_dict(report.to_dict(), REPORT_FILE)
    curve = metric_curve_figure(report.metrics)
    if curve is not None:
        mlflow.log_figure(curve, "plots/metric_at_k.png")
    mlflow.log_figure(long_tail_figure(model), "plots/long_tail.png")


def run_params(report: Report) -> dict[str, str]:
    """A report's model and split parameters as MLflow params (``model.*``, ``split.*``)."""
    values: dict[str, Any] = {"model": report.model, "split": report.split}
    values |= {f"model.{key}": value for key, value in report.params.items()}
    values |= {f"split.{key}": value for key, value in report.split_params.items()}
    return {key: _param_text(value) for key, value in values.items()}


def _param_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:MAX_PARAM_CHARS]


def run_metrics(report: Report) -> dict[str, float]:
    """A report's metrics (MLflow keys) with its timings and counts."""
    figures = {metric_key(name): value for name, value in report.metrics.items()}
    figures |= {
        "fit_seconds": report.fit_seconds,
        "eval_seconds": report.eval_seconds,
        "n_users_ranked": float(report.n_users_ranked),
        "n_test_ratings": float(report.n_test_ratings),
    }
    return figures


def _tags(report: Report, model_dir: Path) -> dict[str, str]:
    tags = {
        "movierec.version": __version__,
        "movierec.model": report.model,
        "movierec.model_dir": str(model_dir),
        "movierec.snapshot_hash": str(report.data.get("snapshot_hash")),
        "movierec.dataset": str(report.data.get("dataset", "unknown")),
    }
    commit = git_commit()
    if commit is not None:
        tags["mlflow.source.git.commit"] = commit
    return tags


def git_commit() -> str | None:
    """The git commit of the source tree movierec runs from (``+dirty`` if modified), or None."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            check=False,
            capture_output=True,
            text=True,
            timeout=5,
        )
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            check=False,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):  # no git, or an installed package
        return None
    return head.stdout.strip() + ("+dirty" if status.stdout.strip() else "")


class SnapshotDataset(MetaDataset):
    """The training data as an MLflow dataset input: its content hash and row counts."""

    def __init__(self, report: Report) -> None:
        counts = ("n_users", "n_items", "n_train_ratings")
        self._profile = {key: report.data[key] for key in counts if key in report.data}
        self._profile["n_test_ratings"] = report.n_test_ratings
        dataset = str(report.data.get("dataset", "ratings"))
        snapshot = str(report.data.get("snapshot_hash") or "unhashed")
        # MLflow's digest column holds 36 characters; the full hash is in the input's tags.
        super().__init__(CodeDatasetSource(tags={"dataset": dataset}), dataset, snapshot[:32])

    @property
    def profile(self) -> dict[str, Any]:
        return self._profile

    def to_dict(self) -> dict[str, str]:
        return super().to_dict() | {"profile": json.dumps(self.profile)}


def _dataset_tags(report: Report) -> dict[str, str]:
    tags = {"snapshot_hash": str(report.data.get("snapshot_hash"))}
    tags["split"] = report.split
    return tags


# ---------------------------------------------------------------- plots


def metric_curve_figure(metrics: dict[str, float]) -> Figure | None:
    """Ranking metrics against the cut-off K, one line per metric; None without two Ks."""
    curves: dict[str, list[tuple[int, float]]] = {}
    for name, value in metrics.items():
        base, _, cutoff = name.partition("@")
        if cutoff.isdigit():
            curves.setdefault(base, []).append((int(cutoff), value))
    curves = {base: sorted(points) for base, points in curves.items() if len(points) > 1}
    if not curves:
        return None
    figure = Figure(figsize=(6, 4))
    axes = figure.subplots()
    for base, points in sorted(curves.items()):
        axes.plot([k for k, _ in points], [v for _, v in points], marker="o", label=base)
    axes.set(xlabel="K", ylabel="value", title="Metrics at K")
    axes.legend(fontsize="small")
    return figure


def long_tail_figure(model: Recommender, k: int = 10) -> Figure:
    """Training ratings per movie (most popular first) against how often the model recommends
    each: a model that only follows the head of the curve ignores the long tail."""
    seen = model.user_items
    assert seen is not None
    counts = np.bincount(seen.indices, minlength=model.n_items)
    order = np.argsort(-counts, kind="stable")
    users = np.linspace(0, model.n_users - 1, min(model.n_users, LONG_TAIL_USERS)).astype(np.int64)
    items, _ = model.recommend(np.unique(users), k=k)
    recommended = np.bincount(items[items >= 0], minlength=model.n_items)
    rank = np.arange(1, model.n_items + 1)
    figure = Figure(figsize=(6, 4))
    axes = figure.subplots()
    axes.plot(rank, counts[order], label="training ratings")
    axes.plot(rank, recommended[order], label=f"times in a top-{k}", alpha=0.8)
    axes.set(xlabel="movie popularity rank", ylabel="count", yscale="symlog")
    axes.set_title("Popularity and the long tail")
    axes.legend(fontsize="small")
    return figure


# ---------------------------------------------------------------- registry


def register(settings: Settings, run: TrackedRun) -> TrackedRun:
    """Register the run's model as a new version of ``settings.registered_model``."""
    with tracking_errors(settings, "register the model"):
        tracking_client(settings)
        version = mlflow.register_model(run.model_uri, settings.registered_model)
    return TrackedRun(run.run_id, run.model_uri, run.model_dir, int(version.version))


def _alias_version(client: MlflowClient, name: str, alias: str) -> int | None:
    try:
        return int(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            return None
        raise


def model_uri(settings: Settings, version: int | str) -> str:
    """The registry URI of a version number or an alias (``models:/movierec@champion``)."""
    name = settings.registered_model
    return f"models:/{name}/{version}" if isinstance(version, int) else f"models:/{name}@{version}"


def load_version_model(settings: Settings, version: int | str) -> Recommender:
    """The recommender of a registered version (a number or an alias such as ``champion``)."""
    uri = model_uri(settings, version)
    with tracking_errors(settings, f"load {uri}"):
        tracking_client(settings)
        wrapper = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    recommender: Recommender = wrapper.recommender
    return recommender


def score_on_split(
    model: Recommender,
    split: Split,
    metric: str,
    config: EvaluationConfig | None = None,
) -> float:
    """``model``'s ``metric`` on ``split``, NaN where the metric is missing.

    A model fitted on exactly ``split.train`` is evaluated as it is; any other model is
    refitted (same family and parameters) on ``split.train`` first. Refitting is the robust
    default: a champion trained on an older snapshot has another index space, or saw ratings
    that are now test ratings, so only a refit on the same training data compares fairly.
    """
    candidate = model if trained_on(model, split.train) else model_class(model.name)(model.config)
    report = evaluate(candidate, split, config, fit=candidate is not model)
    return float(report.metrics.get(metric, math.nan))


def trained_on(model: Recommender, train: Interactions) -> bool:
    """Whether ``model`` was fitted on exactly these training ratings (ids and matrix)."""
    if model.user_ids is None or model.item_ids is None or model.user_items is None:
        return False
    same_ids = np.array_equal(model.user_ids, train.user_ids) and np.array_equal(
        model.item_ids, train.item_ids
    )
    if not same_ids or model.user_items.shape != train.matrix.shape:
        return False
    return (model.user_items != train.matrix).nnz == 0


def decide_promotion(
    settings: Settings,
    version: int,
    split: Split,
    eval_config: EvaluationConfig | None = None,
    *,
    candidate_score: float | None = None,
) -> PromotionDecision:
    """Apply the promotion rule to ``version`` and move the aliases accordingly.

    Both the candidate and the current champion are scored on ``split`` (see
    :func:`score_on_split`); a caller that has just scored the candidate's family and
    parameters on ``split.train`` passes that ``candidate_score`` instead of a second refit
    (the pipeline). The candidate becomes champion when there is none yet, or when it
    beats the champion by more than ``settings.promotion_margin``; otherwise it becomes
    challenger. A candidate whose evaluation fails or lacks the metric is rejected and never
    promoted. The decision is logged to the candidate's run and version.
    """
    metric = settings.primary_metric
    with _registry_lock(settings), tracking_errors(settings, "decide a promotion"):
        client = tracking_client(settings)
        champion = _alias_version(client, settings.registered_model, CHAMPION)
        if candidate_score is None:
            candidate_score = _safe_score(settings, version, split, metric, eval_config)
        champion_score = None
        if champion is not None and champion != version and math.isfinite(candidate_score):
            champion_score = _safe_score(settings, champion, split, metric, eval_config)
        decision = _rule(settings, version, candidate_score, champion, champion_score)
        _apply(client, settings, decision)
        _log_decision(client, settings, decision)
    return decision


def _safe_score(
    settings: Settings,
    version: int,
    split: Split,
    metric: str,
    config: EvaluationConfig | None,
) -> float:
    # A model that cannot be loaded or evaluated scores NaN, which the rule never promotes
    # (the store itself was reached just before: reading the champion alias).
    try:
        return score_on_split(load_version_model(settings, version), split, metric, config)
    except (MovierecError, ValueError, KeyError):
        return math.nan


def _rule(
    settings: Settings,
    version: int,
    score: float,
    champion: int | None,
    champion_score: float | None,
) -> PromotionDecision:
    metric, margin = settings.primary_metric, settings.promotion_margin
    decision, reason = _verdict(
        metric,
        margin=margin,
        version=version,
        score=score,
        champion=champion,
        champion_score=champion_score,
    )
    return PromotionDecision(
        version=version,
        metric=metric,
        decision=decision,
        reason=reason,
        candidate_score=score,
        champion_version=champion,
        champion_score=champion_score,
        margin=margin,
    )


def _verdict(
    metric: str,
    *,
    margin: float,
    version: int,
    score: float,
    champion: int | None,
    champion_score: float | None,
) -> tuple[str, str]:
    if not math.isfinite(score):
        return "rejected", f"no valid {metric}: the evaluation failed"
    if champion is None:
        return CHAMPION, "no champion yet"
    if champion == version:
        return CHAMPION, "already the champion"
    if champion_score is None or not math.isfinite(champion_score):
        return CHAMPION, f"champion v{champion} has no valid {metric} on this split"
    gain = champion_score - score if metric in LOWER_IS_BETTER else score - champion_score
    if gain > margin:
        return CHAMPION, f"beats champion v{champion} by {gain:.6g} > margin {margin:g}"
    return CHALLENGER, f"does not beat champion v{champion} by more than {margin:g} ({gain:.6g})"


def _apply(client: MlflowClient, settings: Settings, decision: PromotionDecision) -> None:
    if decision.decision == CHAMPION:
        _set_champion(client, settings.registered_model, decision.version)
    elif decision.decision == CHALLENGER:
        client.set_registered_model_alias(
            settings.registered_model, CHALLENGER, str(decision.version)
        )


def _log_decision(client: MlflowClient, settings: Settings, decision: PromotionDecision) -> None:
    name = settings.registered_model
    run_id = client.get_model_version(name, str(decision.version)).run_id
    tags = {
        "promotion.decision": decision.decision,
        "promotion.reason": decision.reason,
        "promotion.metric": decision.metric,
        "promotion.champion_version": str(decision.champion_version),
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, str(decision.version), key, value)
        if run_id:
            client.set_tag(run_id, key, value)
    if not run_id:
        return
    figures = {
        "promotion_candidate_score": decision.candidate_score,
        "promotion_champion_score": decision.champion_score,
        "promotion_margin": decision.margin,
    }
    for key, figure in figures.items():
        if figure is not None and math.isfinite(figure):
            client.log_metric(run_id, key, figure)


def _history(client: MlflowClient, name: str) -> list[int]:
    text = client.get_registered_model(name).tags.get(HISTORY_TAG, "[]")
    return [int(v) for v in json.loads(text)]


def _set_champion(client: MlflowClient, name: str, version: int) -> None:
    current = _alias_version(client, name, CHAMPION)
    if current == version:
        return
    if current is not None:
        history = [*_history(client, name), current]
        client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
        client.set_registered_model_alias(name, PREVIOUS_CHAMPION, str(current))
    client.set_registered_model_alias(name, CHAMPION, str(version))
    if _alias_version(client, name, CHALLENGER) == version:
        client.delete_registered_model_alias(name, CHALLENGER)


def promote(settings: Settings, version: int) -> None:
    """Make ``version`` the champion by hand (the old one stays available for rollback)."""
    with _registry_lock(settings), tracking_errors(settings, f"promote version {version}"):
        client = tracking_client(settings)
        client.get_model_version(settings.registered_model, str(version))  # exists?
        _set_champion(client, settings.registered_model, version)
        client.set_model_version_tag(
            settings.registered_model, str(version), "promotion.decision", "manual"
        )


def rollback(settings: Settings) -> int:
    """Give the champion alias back to the previous champion; returns that version."""
    name = settings.registered_model
    with _registry_lock(settings), tracking_errors(settings, "roll back the champion"):
        client = tracking_client(settings)
        history = _history(client, name)
        if not history:
            raise TrackingError(f"{name} has no previous champion to roll back to")
        restored = history.pop()
        current = _alias_version(client, name, CHAMPION)
        if current is not None:
            client.set_model_version_tag(name, str(current), "movierec.rolled_back", "true")
        client.set_registered_model_alias(name, CHAMPION, str(restored))
        client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
        if history:
            client.set_registered_model_alias(name, PREVIOUS_CHAMPION, str(history[-1]))
        else:
            client.delete_registered_model_alias(name, PREVIOUS_CHAMPION)
    return restored


# ---------------------------------------------------------------- inspection


def list_versions(settings: Settings) -> list[VersionInfo]:
    """Every version of the registered model, newest first, with its aliases and metrics."""
    name = settings.registered_model
    with tracking_errors(settings, "list model versions"):
        client = tracking_client(settings)
        found = client.search_model_versions(f"name = '{name}'")
        # Search results leave the aliases out: read each version itself.
        versions = [client.get_model_version(name, v.version) for v in found]
        return sorted(
            (_describe(client, v) for v in versions), key=lambda v: v.version, reverse=True
        )


def version_by_alias(settings: Settings, alias: str) -> VersionInfo | None:
    """The version that holds ``alias`` (e.g. ``champion``), or None."""
    name = settings.registered_model
    with tracking_errors(settings, f"read the {alias} alias"):
        client = tracking_client(settings)
        version = _alias_version(client, name, alias)
        if version is None:
            return None
        return _describe(client, client.get_model_version(name, str(version)))


def find_version(settings: Settings, tag: str, value: str) -> VersionInfo | None:
    """The newest version whose tag ``tag`` equals ``value``, or None: one registry query,
    whatever the number of versions (only the match's run is read)."""
    name = settings.registered_model
    with tracking_errors(settings, f"find the version tagged {tag}"):
        client = tracking_client(settings)
        found = client.search_model_versions(f"name = '{name}' and tags.`{tag}` = '{value}'")
        if not found:
            return None
        newest = max(found, key=lambda v: int(v.version))
        return _describe(client, client.get_model_version(name, newest.version))


def tag_version(settings: Settings, version: int, tags: dict[str, str]) -> None:
    """Set tags on a registered version."""
    name = settings.registered_model
    with tracking_errors(settings, f"tag version {version}"):
        client = tracking_client(settings)
        for key, value in tags.items():
            client.set_model_version_tag(name, str(version), key, value)


def show_version(settings: Settings, version: int) -> VersionInfo:
    """One version with its run's metrics, parameters and tags."""
    with tracking_errors(settings, f"show version {version}"):
        client = tracking_client(settings)
        return _describe(client, client.get_model_version(settings.registered_model, str(version)))


def _describe(client: MlflowClient, version: Any) -> VersionInfo:
    metrics: dict[str, float] = {}
    params: dict[str, str] = {}
    run_tags: dict[str, str] = {}
    if version.run_id:
        data = client.get_run(version.run_id).data
        metrics = {metric_name(key): value for key, value in data.metrics.items()}
        params = dict(data.params)
        run_tags = dict(data.tags)
    return VersionInfo(
        version=int(version.version),
        aliases=sorted(version.aliases),
        run_id=version.run_id,
        model=params.get("model"),
        status=str(version.status),
        metrics=metrics,
        params=params,
        tags=dict(version.tags),
        run_tags=run_tags,
    )

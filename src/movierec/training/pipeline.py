"""The training pipeline: ingest, snapshot, split, fit, evaluate, log, register, promote.

One function, :func:`run_pipeline`, driven by a :class:`PipelineConfig` (``params.yaml``). The
``movierec pipeline run`` command, the DVC stages, the scheduler and the API's training jobs all
call it, so there is one way to produce a champion.

Idempotent: a run is identified by a fingerprint of the data snapshot's content hash, the
config and the promotion settings. When a registered version already carries that fingerprint,
nothing is trained, logged or registered again. The fingerprint is written only once the
promotion decision is made, so a run that died half-way is simply redone.

Only the pipeline's winner (best on the primary metric) is refitted on all the data and
registered; every configured model is evaluated on the same split and logged as a nested run, so
the leaderboard is in MLflow too. Two pipelines on one machine take turns (a lock file): the
second then finds the first's fingerprint and does nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import mlflow
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from movierec import __version__
from movierec.config import Settings
from movierec.data.ingest import ingest_movielens
from movierec.data.interactions import Interactions
from movierec.data.snapshot import Snapshot, create_snapshot
from movierec.data.split import make_split
from movierec.data.store import RatingsStore
from movierec.errors import ConfigError, first_line
from movierec.evaluation.protocol import EvaluationConfig, Report
from movierec.models import model_class
from movierec.training import tracking
from movierec.training.experiments import (
    Engine,
    Experiment,
    create_model,
    engine_model_class,
    evaluate_model,
    ranked,
)

FINGERPRINT_TAG = "movierec.pipeline_fingerprint"
FAILURE_TAG = "movierec.failure"


class ModelSpec(BaseModel):
    """One model the pipeline trains: a family name, its parameters and where it trains
    (``engine: spark`` fits ``als`` on Apache Spark, with Spark's parameters: see
    :class:`~movierec.distributed.spark_als.SparkALSConfig`)."""

    model_config = ConfigDict(extra="forbid")

    model: str
    engine: Engine = "local"
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("model")
    @classmethod
    def _known_family(cls, name: str) -> str:
        model_class(name)  # raises ConfigError naming the known families
        return name

    @model_validator(mode="after")
    def _valid_params(self) -> Self:
        # Checked here, so a typo fails when the config is read, not after an hour of training.
        self.resolved()
        return self

    def resolved(self) -> dict[str, Any]:
        """The family and its complete config: the given parameters and every default."""
        config = engine_model_class(self.model, self.engine).config_class(**self.params)
        resolved = {"model": self.model, "config": config.model_dump(mode="json")}
        if self.engine != "local":  # so local runs keep the fingerprints they had
            resolved["engine"] = self.engine
        return resolved


class EvaluationSpec(BaseModel):
    """How the pipeline scores models (see :class:`EvaluationConfig`)."""

    model_config = ConfigDict(extra="forbid")

    ks: list[int] = Field(default_factory=lambda: [5, 10, 20], min_length=1)
    relevance_threshold: float | None = 4.0

    def config(self) -> EvaluationConfig:
        return EvaluationConfig(ks=tuple(self.ks), relevance_threshold=self.relevance_threshold)


class PipelineConfig(BaseModel):
    """What ``params.yaml`` holds: the data set, the protocol and the models to train.

    Attributes:
        dataset: The MovieLens variant to ingest first; None trains on the store as it is
            (ratings loaded by ``ingest csv``, or posted to the API).
        protocol: The split protocol models are compared on (one split: its first fold).
        split: Parameters of that protocol (e.g. ``test_fraction``).
        evaluation: Cut-offs and relevance threshold.
        models: The models to train; the best on the primary metric is registered.
        registry: Register the winner and apply the promotion rule (else only log runs).
        track: Log to MLflow at all; without it the winner is only saved to disk.
    """

    model_config = ConfigDict(extra="forbid")

    dataset: str | None = None
    protocol: str = "user_temporal"
    split: dict[str, Any] = Field(default_factory=dict)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    models: list[ModelSpec] = Field(min_length=1)
    registry: bool = True
    track: bool = True

    @classmethod
    def from_yaml(cls, path: Path) -> PipelineConfig:
        """Read and validate a ``params.yaml``; every problem is one clear ConfigError."""
        try:
            raw = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read pipeline config {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"pipeline config {path} is not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"pipeline config {path} must be a mapping of settings")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigError(f"pipeline config {path}: {problems}") from exc

    def fingerprint(self, snapshot_hash: str, settings: Settings) -> str:
        """What identifies a run: the data, this config, the promotion rule and the code."""
        identity = {
            "snapshot": snapshot_hash,
            "config": self.model_dump(mode="json", exclude={"models"}),
            # Every parameter with its default: a new default is a new model, so a new run.
            "models": [spec.resolved() for spec in self.models],
            "metric": settings.primary_metric,
            "margin": settings.promotion_margin,
            "registered_model": settings.registered_model,
            "movierec": __version__,
        }
        text = json.dumps(identity, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class PipelineResult:
    """What one pipeline run did; ``skipped`` says it found its fingerprint already registered."""

    fingerprint: str
    snapshot_hash: str
    skipped: bool
    leaderboard: list[Report] = field(default_factory=list)
    winner: str | None = None
    model_dir: Path | None = None
    version: int | None = None
    decision: tracking.PromotionDecision | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (the leaderboard as metrics per model)."""
        return {
            "fingerprint": self.fingerprint,
            "snapshot_hash": self.snapshot_hash,
            "skipped": self.skipped,
            "winner": self.winner,
            "model_dir": str(self.model_dir) if self.model_dir else None,
            "version": self.version,
            "decision": None if self.decision is None else vars(self.decision),
            "leaderboard": [
                {"model": r.model, "params": r.params, "metrics": r.metrics}
                for r in self.leaderboard
            ],
            "stage_seconds": self.stage_seconds,
        }


Progress = Callable[[str], None]


def run_pipeline(
    settings: Settings,
    config: PipelineConfig,
    *,
    ingest: bool = True,
    progress: Progress | None = None,
) -> PipelineResult:
    """Run every stage; see the module docstring. ``ingest=False`` skips the ingest stage."""
    say = progress or (lambda _message: None)
    timer = _StageTimer()
    # Two pipelines on one machine take turns; the second then finds the first's fingerprint.
    with tracking.data_dir_lock(settings, ".pipeline.lock"):
        if ingest and config.dataset is not None:
            with timer("ingest"):
                outcome = ingest_movielens(settings, config.dataset, progress=False)
            say(f"ingest: {outcome.store.skipped_reason or f'{outcome.store.rows} ratings'}")
        with timer("snapshot"):
            snapshot = _snapshot(settings)
        fingerprint = config.fingerprint(snapshot.content_hash, settings)
        say(f"snapshot {snapshot.content_hash[:12]}, run fingerprint {fingerprint[:12]}")
        done = _already_done(settings, config, fingerprint)
        if done is not None:
            say(f"unchanged: version {done} was already trained on this data with these params")
            return PipelineResult(fingerprint, snapshot.content_hash, True, version=done)
        result = PipelineResult(fingerprint, snapshot.content_hash, False)
        with timer("split"):
            experiment = _experiment(config, snapshot)
        stages = _TrainingStages(settings, config, experiment, result, timer, say)
        stages.train_and_evaluate()
        stages.publish()
    result.stage_seconds = timer.seconds
    return result


def _snapshot(settings: Settings) -> Snapshot:
    with RatingsStore.from_settings(settings) as store:
        return create_snapshot(store, settings.snapshots_dir)


def _already_done(settings: Settings, config: PipelineConfig, fingerprint: str) -> int | None:
    if not (config.track and config.registry):
        return None
    found = tracking.find_version(settings, FINGERPRINT_TAG, fingerprint)
    return None if found is None else found.version


def _experiment(config: PipelineConfig, snapshot: Snapshot) -> Experiment:
    inter = Interactions.from_snapshot(snapshot.path)
    splits = make_split(config.protocol, inter, **config.split)
    # Promotion compares on one split; a multi-fold protocol contributes its first fold.
    return Experiment(config.dataset or "store", config.protocol, inter, splits[:1])


@dataclass
class _TrainingStages:
    """The stages after the split: they share the run's settings, data, result and timer."""

    settings: Settings
    config: PipelineConfig
    experiment: Experiment
    result: PipelineResult
    timer: _StageTimer
    say: Progress

    def train_and_evaluate(self) -> None:
        """Every configured model on the same split, best first; each a child run."""
        metric, result = self.settings.primary_metric, self.result
        eval_config = self.config.evaluation.config()
        with self._parent_run():
            for spec in self.config.models:
                with self.timer("evaluate"):
                    report = evaluate_model(
                        self.experiment, spec.model, spec.params, eval_config, spec.engine
                    )
                report.data["snapshot_hash"] = result.snapshot_hash
                self.say(f"{spec.model}: {metric} {report.metrics.get(metric, math.nan):.4f}")
                result.leaderboard.append(report)
                if self.config.track:
                    with self.timer("track"):
                        _log_evaluation(report)
        result.leaderboard = ranked(result.leaderboard, metric)
        if not math.isfinite(result.leaderboard[0].metrics.get(metric, math.nan)):
            raise ConfigError(f"no configured model produced {metric}: nothing can be promoted")
        result.winner = result.leaderboard[0].model

    @contextmanager
    def _parent_run(self) -> Iterator[None]:
        """One MLflow run for the whole pipeline; each model's evaluation is a child run."""
        if not self.config.track:
            yield
            return
        with self.timer("track"), tracking.tracking_errors(self.settings, "start the pipeline"):
            experiment_id = tracking.experiment_id(self.settings)
            run = mlflow.start_run(experiment_id=experiment_id, run_name="pipeline")
            mlflow.set_tags(
                {FINGERPRINT_TAG: self.result.fingerprint, "movierec.stage": "pipeline"}
            )
            mlflow.log_params(
                {"protocol": self.config.protocol, "dataset": str(self.config.dataset)}
            )
        with run:  # an exception ends the run as FAILED
            try:
                yield
            except Exception as exc:
                # Say why in the run: a failed Spark job's cause is otherwise only in a log.
                mlflow.set_tag(FAILURE_TAG, first_line(exc))
                raise

    def publish(self) -> None:
        """Refit the winner on all the data, save it, log and register it, apply the rule."""
        result, best = self.result, self.result.leaderboard[0]
        folder = self.settings.models_dir / "pipeline" / result.fingerprint[:16]
        with self.timer("fit_final"):
            engine = best.data.get("engine", "local")  # where the winner was scored
            model = create_model(best.model, engine, **best.params)
            model.fit(self.experiment.interactions)
        result.model_dir = folder
        with self.timer("save"):
            tracking.save_with_report(model, best, folder)
        if not self.config.track:
            self.say(f"saved {best.model} to {folder} (tracking off)")
            return
        with self.timer("log"):
            run = tracking.log_saved_model(
                self.settings,
                folder,
                register_model=self.config.registry,
                tags={FINGERPRINT_TAG: result.fingerprint},
                loaded=model,
            )
        result.version = run.model_version
        if run.model_version is not None:
            self._promote(run.model_version)

    def _promote(self, version: int) -> None:
        with self.timer("promote"):
            # The winner's family and parameters were just scored on this split's train part
            # (fits are seeded): reuse that score, refit only the champion.
            best = self.result.leaderboard[0]
            decision = tracking.decide_promotion(
                self.settings,
                version,
                self.experiment.splits[0],
                self.config.evaluation.config(),
                candidate_score=best.metrics[self.settings.primary_metric],
            )
            # Written last: a run that dies before this point is redone, never skipped.
            tracking.tag_version(self.settings, version, {FINGERPRINT_TAG: self.result.fingerprint})
        self.result.decision = decision
        self.say(f"version {version}: {decision.decision} ({decision.reason})")


def _log_evaluation(report: Report) -> None:
    parent = mlflow.active_run()
    assert parent is not None  # called inside the pipeline's parent run
    # A nested run does not inherit its parent's experiment: name it.
    with mlflow.start_run(
        experiment_id=parent.info.experiment_id, run_name=f"evaluate {report.model}", nested=True
    ):
        mlflow.log_params(tracking.run_params(report))
        mlflow.log_metrics(tracking.run_metrics(report))


class _StageTimer:
    """Wall seconds per named stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - started

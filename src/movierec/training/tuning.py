"""Hyper-parameter tuning: an Optuna study per model family, each trial an MLflow child run.

:func:`tune` searches a family's space (:data:`SEARCH_SPACES`) with a seeded TPE sampler, or
walks an explicit grid (the Surprise user's ``n_factors`` x ``n_epochs`` x ``lr_all`` x
``reg_all``) with Optuna's grid sampler. The data protocol keeps the test ratings out of the
search:

* the experiment's first split gives a train part and a held-out test part;
* the same protocol splits that train part again (:func:`validation_splits`); trials only ever
  fit and score on those validation splits;
* the best parameters are refitted on the whole train part and scored on the test part once, at
  the end: the test part never steers the search.

Families that train in epochs (SGD matrix factorization, ALS, BPR) are pruned by Optuna's median
rule: a trial first fits its configuration for a few epochs only (the rungs of
:data:`EPOCH_BUDGETS`, the same for every trial, so rung scores compare), reports the validation
score and stops when it is worse than the median of the completed trials at that rung. The fits
are seeded and, with one training thread, deterministic, so a fit of ``r`` epochs follows the
full fit's trajectory for its first ``r`` epochs (checked for svd, svdpp, als and bpr): the rung's
score is the trial's own, paid for by one short refit per rung instead of a training hook in
every model.

The study lives in an Optuna storage (default ``sqlite:///<data_dir>/optuna.db``) under a name
derived from model, data set, protocol and metric, so running :func:`tune` again with the same
arguments adds ``trials`` more trials to it. A study remembers what it tunes (model, data,
protocol, metric, evaluation, fixed parameters, mode) and refuses to be resumed with other
settings, whose scores would not compare.

Faults: a trial whose fit or evaluation raises (a model error, a bad value, a divergence to NaN,
memory) is recorded as failed, in the study and in its MLflow run, and the study goes on. A
tracking store that cannot be reached stops :func:`tune` with
:class:`~movierec.training.tracking.TrackingError` before any trial runs.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import optuna
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from movierec.config import Settings
from movierec.data.interactions import Interactions
from movierec.data.split import Split, make_split
from movierec.errors import ConfigError, MovierecError
from movierec.evaluation.protocol import EvaluationConfig, Report, evaluate, relevant_items
from movierec.models import create_model, model_class
from movierec.models.base import Recommender
from movierec.training.experiments import DEFAULT_PROTOCOL, LOWER_IS_BETTER, prepare
from movierec.training.tracking import (
    _experiment_id,
    git_commit,
    metric_key,
    tracking_client,
    tracking_errors,
)

# ---------------------------------------------------------------- search spaces

SEARCH_SPACES: dict[str, dict[str, BaseDistribution]] = {
    "svd": {
        "n_factors": IntDistribution(8, 256, log=True),
        "n_epochs": IntDistribution(10, 100),
        "lr": FloatDistribution(1e-3, 5e-2, log=True),
        "reg": FloatDistribution(1e-3, 1.0, log=True),
    },
    "svdpp": {
        "n_factors": IntDistribution(8, 128, log=True),
        "n_epochs": IntDistribution(10, 60),
        "lr": FloatDistribution(1e-3, 5e-2, log=True),
        "reg": FloatDistribution(1e-3, 1.0, log=True),
        "reg_implicit": FloatDistribution(1e-2, 10.0, log=True),
    },
    "als": {
        "factors": IntDistribution(16, 256, log=True),
        "regularization": FloatDistribution(0.1, 100.0, log=True),
        "alpha": FloatDistribution(0.05, 20.0, log=True),
        "iterations": IntDistribution(5, 30),
        "confidence": CategoricalDistribution(("binary", "rating")),
    },
    "bpr": {
        "factors": IntDistribution(16, 256, log=True),
        "learning_rate": FloatDistribution(1e-3, 0.1, log=True),
        "regularization": FloatDistribution(1e-5, 0.1, log=True),
        "iterations": IntDistribution(20, 200),
    },
    "item_knn": {
        "neighbors": IntDistribution(10, 1000, log=True),
        "shrink": FloatDistribution(0.0, 500.0),
        "similarity": CategoricalDistribution(("cosine", "pearson")),
    },
    "knn_baseline": {
        "k": IntDistribution(5, 100, log=True),
        "shrink": FloatDistribution(0.0, 500.0),
    },
    "ease": {"regularization": FloatDistribution(10.0, 5000.0, log=True)},
    "rp3beta": {
        "alpha": FloatDistribution(0.1, 1.5),
        "beta": FloatDistribution(0.0, 1.0),
        "neighbors": IntDistribution(20, 1000, log=True),
    },
    "baseline": {
        "reg_u": FloatDistribution(0.1, 30.0, log=True),
        "reg_i": FloatDistribution(0.1, 30.0, log=True),
    },
}
"""Family -> config field -> the distribution TPE draws it from (ranges around the defaults)."""


@dataclass(frozen=True)
class EpochBudget:
    """How a family that trains in epochs is pruned.

    Attributes:
        param: The config field counting epochs (or iterations).
        rungs: Epoch budgets, the same for every trial, at which a trial reports its validation
            score and may be pruned (only the rungs below its own epoch count).
    """

    param: str
    rungs: tuple[int, ...]


EPOCH_BUDGETS: dict[str, EpochBudget] = {
    "svd": EpochBudget("n_epochs", (10, 30)),
    "svdpp": EpochBudget("n_epochs", (5, 15)),
    "als": EpochBudget("iterations", (3,)),  # ALS is nearly settled after a few sweeps
    "bpr": EpochBudget("iterations", (20, 60)),
}

# Surprise's GridSearchCV names: ``lr_all``/``reg_all`` set every learning rate/penalty there;
# here one ``lr`` and one ``reg`` do (reg_bias follows reg; svdpp's reg_implicit stays its own).
SURPRISE_ALIASES: dict[str, dict[str, str]] = {
    "svd": {"lr_all": "lr", "reg_all": "reg"},
    "svdpp": {"lr_all": "lr", "reg_all": "reg"},
}

# The names evaluation.metrics.ranking_metrics reports at every cut-off (a test checks them).
RANKING_METRICS = ("precision", "recall", "recall_capped", "ndcg", "map", "mrr", "hit_rate")

PRUNER_STARTUP_TRIALS = 5
"""Completed trials before the median rule prunes anything (a median of fewer is noise)."""
IDENTITY_ATTR = "movierec.identity"
"""The study user attribute recording what the study tunes (checked on every resume)."""

# Errors a trial's fit or evaluation may raise that condemn that trial, not the study.
TRIAL_ERRORS: tuple[type[BaseException], ...] = (
    MovierecError,
    ValueError,
    ArithmeticError,
    MemoryError,
)


Direction = Literal["maximize", "minimize"]


class TuningError(MovierecError):
    """The study cannot be opened or yielded nothing to report (every trial failed)."""


class _TrialFailedError(Exception):
    """A trial's fit or evaluation failed; Optuna records the trial as failed and goes on."""


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class TuningResult:
    """What a :func:`tune` call found.

    Attributes:
        study_name: The Optuna study (resume it by calling :func:`tune` again).
        storage: The study storage URL (password hidden).
        model: The model family.
        metric: The validation metric tuned.
        direction: ``maximize``, or ``minimize`` for ``rmse`` and ``mae``.
        best_params: The best trial's parameters with the fixed ones: a complete model config.
        best_value: The best trial's validation score.
        best_trial: The best trial's number.
        test_value: The best parameters' ``metric`` on the held-out test part (the one final
            evaluation), NaN if the evaluation does not report it.
        test_report: That final evaluation in full.
        n_trials_run: Trials run by this call.
        n_complete: Completed trials in the whole study (every call so far).
        n_pruned: Pruned trials in the whole study.
        n_failed: Failed trials in the whole study.
        parent_run_id: This call's MLflow run; each trial is a child run of it.
    """

    study_name: str
    storage: str
    model: str
    metric: str
    direction: Direction
    best_params: dict[str, Any]
    best_value: float
    best_trial: int
    test_value: float
    test_report: Report
    n_trials_run: int
    n_complete: int
    n_pruned: int
    n_failed: int
    parent_run_id: str


# ---------------------------------------------------------------- public helpers


def tunable_models() -> list[str]:
    """The families with a search space (any family can be grid-searched)."""
    return sorted(SEARCH_SPACES)


def parse_grid(pairs: Sequence[str]) -> dict[str, list[Any]]:
    """``["n_factors=50,100", "lr_all=0.005,0.01"]`` -> ``{"n_factors": [50, 100], ...}``.

    Each value is read as a JSON scalar where it is one (``50``, ``0.005``, ``1e-3``, ``true``,
    ``null``) and kept as text otherwise (``cosine``).

    Raises:
        ConfigError: A pair without ``=``, an empty name or value, a parameter given twice, or a
            repeated value.
    """
    grid: dict[str, list[Any]] = {}
    for pair in pairs:
        name, sep, text = (part.strip() for part in pair.partition("="))
        if not sep or not name or not text:
            raise ConfigError(f"grid entry {pair!r} is not NAME=VALUE[,VALUE...]")
        if name in grid:
            raise ConfigError(f"grid parameter {name!r} given twice: list its values once")
        tokens = [token.strip() for token in text.split(",")]
        if "" in tokens:
            raise ConfigError(f"grid entry {pair!r} has an empty value")
        values = [_grid_value(token) for token in tokens]
        # Equal values (1 and 1.0) are one grid point; True is not 1 here.
        if len({(isinstance(v, bool), v) for v in values}) < len(values):
            raise ConfigError(f"grid entry {pair!r} repeats a value")
        grid[name] = values
    return grid


def _grid_value(token: str) -> Any:
    try:
        value = json.loads(token)
    except json.JSONDecodeError:
        return token
    # A list or object is no grid point: keep its text.
    return value if value is None or isinstance(value, str | int | float | bool) else token


def validation_splits(
    train: Interactions, protocol: str, split_params: Mapping[str, Any] | None = None
) -> list[Split]:
    """The validation splits the trials score on, carved from an outer split's ``train`` only.

    The same protocol with the same parameters splits the training part again. The official
    ml-100k folds are fixed files over the whole data set, so a fold's base is validated on a
    random 80/20 split of itself instead (as the models' defaults were chosen).

    Raises:
        ConfigError: A validation split with nothing to score (e.g. a ``temporal`` cutoff fixed
            in time leaves no training rating after it).
    """
    if protocol == "ml100k_official":
        splits = make_split("random", train)
    else:
        splits = make_split(protocol, train, **dict(split_params or {}))
    for split in splits:
        if split.test.nnz == 0:
            raise ConfigError(
                f"the validation split carved from the training part by {protocol} "
                f"({split.params}) holds no ratings: choose split parameters relative to the "
                "data (e.g. test_fraction rather than a fixed cutoff)"
            )
    return splits


# ---------------------------------------------------------------- the plan


@dataclass(frozen=True)
class _Data:
    """Where trials and the final evaluation get their ratings."""

    dataset: str | None  # None: the ratings store
    protocol: str
    split_params: dict[str, Any]
    config: EvaluationConfig

    @property
    def label(self) -> str:
        return self.dataset or "store"


@dataclass(frozen=True)
class _Plan:
    """Checked arguments: what a study searches, on which data, by which metric."""

    family: str
    metric: str
    direction: Direction
    data: _Data
    fixed: dict[str, Any]
    space: dict[str, BaseDistribution]
    grid: dict[str, list[Any]] | None
    budget: EpochBudget | None  # None: no pruning

    @property
    def mode(self) -> str:
        return "tpe" if self.grid is None else "grid"

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        return {name: _suggest(trial, name, dist) for name, dist in self.space.items()}

    def describe_space(self) -> str:
        return json.dumps({name: _describe(dist) for name, dist in self.space.items()})

    def default_study_name(self) -> str:
        mode = "-grid" if self.grid is not None else ""
        return f"{self.family}-{self.data.label}-{self.data.protocol}-{self.metric}{mode}"

    def identity(self) -> dict[str, Any]:
        """What the study's trials were scored under: a resume must match it (JSON form)."""
        data = self.data
        return json.loads(
            json.dumps(
                {
                    "model": self.family,
                    "dataset": data.label,
                    "protocol": data.protocol,
                    "split_params": data.split_params,
                    "metric": self.metric,
                    "evaluation": asdict(data.config),
                    "fixed_params": self.fixed,
                    "mode": self.mode,
                },
                default=str,
            )
        )


def _suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    raise TypeError(f"no suggest method for {type(dist).__name__}")


def _describe(dist: BaseDistribution) -> str:
    if isinstance(dist, IntDistribution | FloatDistribution):
        kind = "int" if isinstance(dist, IntDistribution) else "float"
        return f"{kind} [{dist.low}, {dist.high}]{' log' if dist.log else ''}"
    if isinstance(dist, CategoricalDistribution):
        return f"one of {list(dist.choices)}"
    return repr(dist)


def _plan(
    model: str,
    *,
    metric: str,
    data: _Data,
    grid: Mapping[str, Sequence[Any]] | None,
    fixed_params: Mapping[str, Any] | None,
) -> _Plan:
    cls = model_class(model)  # an unknown name lists the known ones
    direction = _direction(metric, cls, data.protocol, data.config)
    fixed = dict(fixed_params or {})
    _check_values(cls, fixed, {}, what="fixed parameter")
    if grid is not None:
        points = _resolve_grid(cls, grid, fixed)
        space: dict[str, BaseDistribution] = {
            name: CategoricalDistribution(values) for name, values in points.items()
        }
        # No pruning: a grid search is asked for every point's full score.
        return _Plan(model, metric, direction, data, fixed, space, points, None)
    if model not in SEARCH_SPACES:
        raise ConfigError(
            f"{model} has no search space, so it cannot be tuned; tunable models: "
            f"{', '.join(tunable_models())} (or give {model} an explicit grid)"
        )
    space = {name: d for name, d in SEARCH_SPACES[model].items() if name not in fixed}
    return _Plan(model, metric, direction, data, fixed, space, None, EPOCH_BUDGETS.get(model))


def _direction(
    metric: str, cls: type[Recommender], protocol: str, config: EvaluationConfig
) -> Direction:
    if metric in LOWER_IS_BETTER:
        if not cls.predicts_ratings:
            raise ConfigError(
                f"cannot tune {cls.name} by {metric}: it ranks items but does not predict "
                "ratings; tune it by a ranking metric such as ndcg@10"
            )
        if protocol == "held_out_users":
            raise ConfigError(
                f"held_out_users reports no {metric}: held-out users are scored by folding in "
                "their history and ranking, so tune by a ranking metric such as ndcg@10"
            )
        return "minimize"
    name, _, cutoff = metric.partition("@")
    if name in RANKING_METRICS and cutoff.isdigit() and int(cutoff) in config.ks:
        return "maximize"
    targets = [f"{n}@{k}" for n in RANKING_METRICS for k in config.ks]
    raise ConfigError(
        f"cannot tune by {metric!r}: the evaluation ({'/'.join(map(str, config.ks))} cut-offs) "
        f"reports {', '.join(targets)}, and rmse and mae for rating models"
    )


def _resolve_grid(
    cls: type[Recommender], grid: Mapping[str, Sequence[Any]], fixed: Mapping[str, Any]
) -> dict[str, list[Any]]:
    aliases = SURPRISE_ALIASES.get(cls.name, {})
    points: dict[str, list[Any]] = {}
    given_as: dict[str, str] = {}
    for key, values in grid.items():
        name = aliases.get(key, key)
        if name in points:
            raise ConfigError(f"grid gives {name!r} twice: as {given_as[name]!r} and as {key!r}")
        given_as[name] = key
        if name in fixed:
            raise ConfigError(f"{name!r} is both fixed and in the grid: give it one way")
        if not values:
            raise ConfigError(f"grid parameter {key!r} has no values")
        points[name] = list(values)
    _check_values(cls, fixed, points, what="grid parameter")
    return points


def _check_values(
    cls: type[Recommender],
    fixed: Mapping[str, Any],
    points: Mapping[str, Sequence[Any]],
    *,
    what: str,
) -> None:
    """Every name a config field, every value valid for it (before any work is done)."""
    fields = set(cls.config_class.model_fields)
    for name in [*fixed, *points]:
        if name not in fields:
            aliases = ", ".join(sorted(SURPRISE_ALIASES.get(cls.name, {})))
            also = f" (and Surprise's {aliases})" if aliases and what == "grid parameter" else ""
            raise ConfigError(
                f"unknown {what} {name!r} for {cls.name}; it takes {', '.join(sorted(fields))}"
                f"{also}"
            )
    try:
        cls.config_class(**fixed)
        for name, values in points.items():
            for value in values:
                cls.config_class(**{**fixed, name: value})
    except ValidationError as exc:
        error = exc.errors()[0]
        raise ConfigError(
            f"invalid {cls.name} {what}s: {'.'.join(map(str, error['loc']))}="
            f"{error.get('input')!r}: {error['msg']}"
        ) from None


# ---------------------------------------------------------------- tuning


def tune(
    settings: Settings,
    model: str,
    *,
    trials: int | None = None,
    metric: str = "ndcg@10",
    timeout: float | None = None,
    dataset: str | None = None,
    protocol: str = DEFAULT_PROTOCOL,
    split_params: Mapping[str, Any] | None = None,
    eval_config: EvaluationConfig | None = None,
    grid: Mapping[str, Sequence[Any]] | None = None,
    study_name: str | None = None,
    storage: str | None = None,
    seed: int = 0,
    fixed_params: Mapping[str, Any] | None = None,
) -> TuningResult:
    """Tune ``model``'s hyper-parameters on validation splits; score the best once on test.

    Args:
        settings: Where the data, the tracking store and the default study storage are.
        model: The family (``svd``, ``als``, ...; see :func:`tunable_models`).
        trials: How many more trials to run in the study (None: until ``timeout``; in grid
            mode, the grid points not yet visited).
        metric: The validation metric to optimize; ``rmse``/``mae`` are minimized.
        timeout: Start no new trial after this many seconds.
        dataset: A MovieLens name, or None for the ratings store's current data.
        protocol: The split protocol (see :func:`~movierec.data.split.make_split`).
        split_params: The protocol's parameters, for the test split and the validation splits.
        eval_config: How splits are scored (cut-offs, relevance threshold).
        grid: ``{param: [values]}``: search exactly this grid instead of the family's space.
        study_name: The study to create or resume (default: from model, data, protocol and
            metric, plus ``-grid`` in grid mode).
        storage: An Optuna storage URL (default ``sqlite:///<data_dir>/optuna.db``).
        seed: Seed of the sampler (offset by the trials already run, so a resumed study does
            not redraw the points it already tried).
        fixed_params: Config values every trial uses (excluded from the search).

    Raises:
        ConfigError: An unknown model, a family without a search space (and no grid), a metric
            the evaluation does not report for this model, an unknown or invalid fixed or grid
            parameter, a study resumed with other settings. All before any trial.
        TrackingError: The tracking store cannot be reached (before any trial) or fails later.
        TuningError: The study storage cannot be opened, or no trial completed.
    """
    data = _Data(dataset, protocol, dict(split_params or {}), eval_config or EvaluationConfig())
    plan = _plan(model, metric=metric, data=data, grid=grid, fixed_params=fixed_params)
    _check_budget(trials, timeout, grid_mode=plan.grid is not None)
    with tracking_errors(settings, "start the tuning run", "; no trial was run"):
        client = tracking_client(settings)
        experiment_id = _experiment_id(client, settings)
    url = storage or _default_storage(settings)
    study = _open_study(url, study_name or plan.default_study_name(), plan, seed)
    experiment = prepare(settings, dataset, protocol, **data.split_params)
    outer = experiment.splits[0]  # other folds' test ratings are in this one's train part
    inner = validation_splits(outer.train, protocol, data.split_params)
    _check_relevant(inner, plan)
    run_params = _parent_params(plan, trials=trials, timeout=timeout, seed=seed, storage=url)
    run_params |= _sizes("validation", inner[0]) | _sizes("test", outer)
    tracker = _Tracker.start(
        settings,
        client,
        experiment_id,
        plan=plan,
        study_name=study.study_name,
        tags=_parent_tags(plan, experiment.dataset, url),
        params=run_params,
    )
    with tracker.parent_status():
        n_before = len(study.trials)
        study.optimize(
            _Objective(plan, inner, tracker),
            n_trials=_n_trials(study, trials, plan),
            timeout=timeout,
            catch=(_TrialFailedError,),
        )
        result = _final(
            study,
            plan,
            outer,
            storage=url,
            parent_id=tracker.parent_id,
            n_trials_run=len(study.trials) - n_before,
        )
        tracker.log_result(result)
    return result


def _check_budget(trials: int | None, timeout: float | None, *, grid_mode: bool) -> None:
    if trials is not None and trials < 0:
        raise ConfigError(f"trials must be 0 or more, got {trials}")
    if timeout is not None and timeout <= 0:
        raise ConfigError(f"timeout must be a positive number of seconds, got {timeout}")
    if trials is None and timeout is None and not grid_mode:
        raise ConfigError("give a number of trials or a timeout (a search has no natural end)")


def _default_storage(settings: Settings) -> str:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{settings.data_dir / 'optuna.db'}"


def _redacted(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not a database URL: nothing to hide
        return url


def _open_study(url: str, name: str, plan: _Plan, seed: int) -> optuna.Study:
    """Create or load the study and check it tunes what these arguments tune."""
    try:
        study = optuna.create_study(
            storage=url,
            study_name=name,
            direction=plan.direction,
            load_if_exists=True,
        )
    except (SQLAlchemyError, ValueError, ImportError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TuningError(f"cannot open study storage {_redacted(url)}: {first[:300]}") from exc
    _check_identity(study, plan.identity())
    # A sampler seeded alike on every call would redraw the points an earlier call tried.
    offset = seed + len(study.trials)
    study.sampler = (
        optuna.samplers.GridSampler(plan.grid, seed=offset)
        if plan.grid is not None
        else optuna.samplers.TPESampler(seed=offset)
    )
    study.pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS)
        if plan.budget is not None
        else optuna.pruners.NopPruner()
    )
    return study


def _check_identity(study: optuna.Study, wanted: dict[str, Any]) -> None:
    recorded = study.user_attrs.get(IDENTITY_ATTR)
    if recorded is None and not study.trials:
        study.set_user_attr(IDENTITY_ATTR, wanted)
        return
    if recorded == wanted:
        return
    recorded = recorded or {}
    differences = ", ".join(
        f"{key} {recorded.get(key)!r} there, {wanted.get(key)!r} here"
        for key in sorted(set(recorded) | set(wanted))
        if recorded.get(key) != wanted.get(key)
    )
    raise ConfigError(
        f"study {study.study_name!r} tunes something else ({differences}): resume it with its "
        "own settings, or name another study"
    )


def _check_relevant(splits: Sequence[Split], plan: _Plan) -> None:
    if plan.metric in LOWER_IS_BETTER:
        return
    config = plan.data.config
    for split in splits:
        users, _ = relevant_items(split.test, config)
        if len(users) == 0:
            raise ConfigError(
                f"validation split {split.name} has no rating at or above the relevance "
                f"threshold {config.relevance_threshold}: {plan.metric} cannot be measured on it"
            )


def _n_trials(study: optuna.Study, trials: int | None, plan: _Plan) -> int | None:
    sampler = study.sampler
    if plan.grid is None or not isinstance(sampler, optuna.samplers.GridSampler):
        return trials
    if sampler.is_exhausted(study):
        return 0  # else the sampler would re-run a visited point once before stopping
    # The sampler stops the study once every point is visited, so the grid size is a bound.
    size = math.prod(len(values) for values in plan.grid.values())
    return size if trials is None else min(trials, size)


def _counts(study: optuna.Study) -> dict[TrialState, int]:
    states = [trial.state for trial in study.get_trials(deepcopy=False)]
    return {state: states.count(state) for state in TrialState}


def _final(
    study: optuna.Study,
    plan: _Plan,
    outer: Split,
    *,
    storage: str,
    parent_id: str,
    n_trials_run: int,
) -> TuningResult:
    """Refit the best parameters on the whole train part and score them on test, once."""
    counts = _counts(study)
    if counts[TrialState.COMPLETE] == 0:
        raise TuningError(
            f"no trial of study {study.study_name!r} completed ({counts[TrialState.FAIL]} "
            f"failed, {counts[TrialState.PRUNED]} pruned): see the failed trials' "
            f"movierec.error tags under MLflow run {parent_id}"
        )
    best = study.best_trial
    best_params = {**plan.fixed, **best.params}
    report = evaluate(create_model(plan.family, **best_params), outer, plan.data.config)
    report.data["dataset"] = plan.data.label
    return TuningResult(
        study_name=study.study_name,
        storage=_redacted(storage),
        model=plan.family,
        metric=plan.metric,
        direction=plan.direction,
        best_params=best_params,
        best_value=float(best.value if best.value is not None else math.nan),
        best_trial=best.number,
        test_value=float(report.metrics.get(plan.metric, math.nan)),
        test_report=report,
        n_trials_run=n_trials_run,
        n_complete=counts[TrialState.COMPLETE],
        n_pruned=counts[TrialState.PRUNED],
        n_failed=counts[TrialState.FAIL],
        parent_run_id=parent_id,
    )


# ---------------------------------------------------------------- trials


@dataclass
class _Objective:
    """One trial: draw parameters, score them on the validation splits, log the child run."""

    plan: _Plan
    splits: list[Split]
    tracker: _Tracker

    def __call__(self, trial: optuna.Trial) -> float:
        params = {**self.plan.fixed, **self.plan.suggest(trial)}
        run_id = self.tracker.start_trial(trial.number, params)
        trial.set_user_attr("mlflow_run_id", run_id)
        try:
            value = self._score(trial, params, run_id)
        except optuna.TrialPruned:
            self.tracker.end_trial(run_id, TrialState.PRUNED)
            raise
        except TRIAL_ERRORS as exc:
            reason = f"{type(exc).__name__}: {_first_line(exc)}"
            self.tracker.end_trial(run_id, TrialState.FAIL, reason=reason)
            raise _TrialFailedError(reason) from exc
        except BaseException as exc:  # Ctrl-C or the tracking store: the study stops here
            with suppress(MovierecError):  # a store that just failed may refuse this too
                self.tracker.end_trial(run_id, TrialState.FAIL, reason=_first_line(exc))
            raise
        self.tracker.end_trial(run_id, TrialState.COMPLETE)
        return value

    def _score(self, trial: optuna.Trial, params: dict[str, Any], run_id: str) -> float:
        budget = self.plan.budget
        if budget is not None:
            for rung in (r for r in budget.rungs if r < params[budget.param]):
                value = self._validate({**params, budget.param: rung})
                self.tracker.log_step(run_id, value, rung)
                trial.report(value, rung)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"{self.plan.metric} {value:.6g} after {rung} epochs")
        value = self._validate(params)
        self.tracker.log_step(run_id, value, params[budget.param] if budget is not None else 0)
        return value

    def _validate(self, params: dict[str, Any]) -> float:
        """The mean of the metric over the validation splits, each fit fresh on its train."""
        scores = [
            evaluate(
                create_model(self.plan.family, **params), split, self.plan.data.config
            ).metrics.get(self.plan.metric, math.nan)
            for split in self.splits
        ]
        value = float(np.mean(scores))
        if not math.isfinite(value):
            raise ValueError(f"validation {self.plan.metric} is {value} (did the fit diverge?)")
        return value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


# ---------------------------------------------------------------- MLflow


@dataclass
class _Tracker:
    """The parent run of one :func:`tune` call and its trials' child runs."""

    settings: Settings
    client: MlflowClient
    experiment_id: str
    parent_id: str
    study_name: str
    metric: str

    @property
    def val_key(self) -> str:
        """The MLflow key of the validation score (``val_ndcg_at_10``)."""
        return f"val_{metric_key(self.metric)}"

    @classmethod
    def start(
        cls,
        settings: Settings,
        client: MlflowClient,
        experiment_id: str,
        *,
        plan: _Plan,
        study_name: str,
        tags: dict[str, str],
        params: dict[str, Any],
    ) -> _Tracker:
        """Open the parent run, tagged with the study and holding the tuning's parameters."""
        with tracking_errors(settings, "start the tuning run", "; no trial was run"):
            run = client.create_run(
                experiment_id,
                run_name=f"tune-{plan.family}",
                tags={**tags, "movierec.study": study_name, "movierec.tuning": "study"},
            )
            client.log_batch(run.info.run_id, params=_params(params))
        return cls(settings, client, experiment_id, run.info.run_id, study_name, plan.metric)

    @contextmanager
    def parent_status(self) -> Iterator[None]:
        """End the parent run FINISHED, or FAILED (KILLED on Ctrl-C) when tuning raises."""
        try:
            yield
        except BaseException as exc:
            status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
            # The original error matters more than a store too broken to take the status.
            with suppress(MlflowException, OSError):
                self.client.set_tag(self.parent_id, "movierec.error", _first_line(exc))
                self.client.set_terminated(self.parent_id, status)
            raise
        with tracking_errors(self.settings, "end the tuning run"):
            self.client.set_terminated(self.parent_id, "FINISHED")

    def start_trial(self, number: int, params: dict[str, Any]) -> str:
        with tracking_errors(self.settings, f"log trial {number}"):
            run = self.client.create_run(
                self.experiment_id,
                run_name=f"trial-{number}",
                tags={
                    MLFLOW_PARENT_RUN_ID: self.parent_id,
                    "movierec.study": self.study_name,
                    "movierec.tuning": "trial",
                    "optuna.trial": str(number),
                },
            )
            run_id: str = run.info.run_id
            self.client.log_batch(
                run_id, params=_params({f"model.{k}": v for k, v in params.items()})
            )
        return run_id

    def log_step(self, run_id: str, value: float, step: int) -> None:
        with tracking_errors(self.settings, "log a trial's score"):
            self.client.log_metric(run_id, self.val_key, value, step=step)

    def end_trial(self, run_id: str, state: TrialState, *, reason: str | None = None) -> None:
        status = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED"}.get(state, "FAILED")
        tags = [RunTag("optuna.state", state.name)]
        if reason is not None:
            tags.append(RunTag("movierec.error", reason))
        with tracking_errors(self.settings, "end a trial's run"):
            self.client.log_batch(run_id, tags=tags)
            self.client.set_terminated(run_id, status)

    def log_result(self, result: TuningResult) -> None:
        metrics = {
            f"best_{self.val_key}": result.best_value,
            "n_trials_complete": float(result.n_complete),
            "n_trials_pruned": float(result.n_pruned),
            "n_trials_failed": float(result.n_failed),
            "n_trials_run": float(result.n_trials_run),
        }
        metrics |= {
            f"test_{metric_key(name)}": value for name, value in result.test_report.metrics.items()
        }
        now = int(time.time() * 1000)
        best = {f"best.{key}": value for key, value in result.best_params.items()}
        with tracking_errors(self.settings, "log the tuning result"):
            self.client.log_batch(
                self.parent_id,
                metrics=[Metric(key, value, now, 0) for key, value in metrics.items()],
                params=_params(best),
                tags=[RunTag("movierec.best_trial", str(result.best_trial))],
            )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _params(values: Mapping[str, Any]) -> list[Param]:
    return [Param(key, _text(value)) for key, value in values.items()]


def _parent_tags(plan: _Plan, dataset: str, storage: str) -> dict[str, str]:
    tags = {
        "movierec.model": plan.family,
        "movierec.dataset": dataset,
        "movierec.metric": plan.metric,
        "movierec.study_storage": _redacted(storage),
    }
    commit = git_commit()
    if commit is not None:
        tags["mlflow.source.git.commit"] = commit
    return tags


def _parent_params(
    plan: _Plan, *, trials: int | None, timeout: float | None, seed: int, storage: str
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "model": plan.family,
        "split": plan.data.protocol,
        "tuning.metric": plan.metric,
        "tuning.direction": plan.direction,
        "tuning.sampler": plan.mode,
        "tuning.pruning": plan.budget is not None,
        "tuning.space": plan.describe_space(),
        "tuning.trials": trials,
        "tuning.timeout": timeout,
        "tuning.seed": seed,
        "tuning.storage": _redacted(storage),
    }
    values |= {f"split.{key}": value for key, value in plan.data.split_params.items()}
    values |= {f"fixed.{key}": value for key, value in plan.fixed.items()}
    return values


def _sizes(prefix: str, split: Split) -> dict[str, int]:
    """How many ratings a split's parts hold: the record that trials never saw the test part."""
    return {
        f"{prefix}.n_train_ratings": split.train.nnz,
        f"{prefix}.n_test_ratings": split.test.nnz,
    }

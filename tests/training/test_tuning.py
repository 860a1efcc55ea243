"""Tuning against real Optuna studies, a real MLflow SQLite store and a real ratings store.

The data is a small synthetic MovieLens-like set ingested into a SQLite ratings store, so
``tune`` goes the production way: store -> snapshot -> split -> validation splits -> trials.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from mlflow import MlflowClient
from mlflow.entities import Run
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from typer.testing import CliRunner

from movierec.cli import app
from movierec.config import Settings
from movierec.data.interactions import Interactions
from movierec.data.split import make_split
from movierec.data.store import RatingsStore
from movierec.data.synth import generate
from movierec.errors import ConfigError
from movierec.evaluation.protocol import EvaluationConfig, evaluate
from movierec.models import create_model, model_class
from movierec.training.experiments import prepare
from movierec.training.tracking import TrackingError
from movierec.training.tuning import (
    EPOCH_BUDGETS,
    RANKING_METRICS,
    SEARCH_SPACES,
    TuningError,
    TuningResult,
    parse_grid,
    tunable_models,
    tune,
    validation_splits,
)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A data dir whose ratings store holds 150 users x 200 movies (6,000 ratings)."""
    data_dir = tmp_path_factory.mktemp("tuning")
    settings = Settings(_env_file=None, data_dir=data_dir, mlflow_tracking_uri=None)
    with RatingsStore.from_settings(settings) as store:
        store.ingest(generate(150, 200, 6_000, seed=3))
    return settings


def _client(settings: Settings) -> MlflowClient:
    return MlflowClient(settings.tracking_uri)


def _children(settings: Settings, parent_id: str) -> list[Run]:
    client = _client(settings)
    experiment = client.get_experiment_by_name(settings.mlflow_experiment)
    assert experiment is not None
    return client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'"
    )


def _study(settings: Settings, result: TuningResult) -> optuna.Study:
    return optuna.load_study(study_name=result.study_name, storage=_storage(settings))


def _storage(settings: Settings) -> str:
    return f"sqlite:///{settings.data_dir / 'optuna.db'}"


def _in_space(family: str, params: dict[str, Any]) -> bool:
    for name, dist in SEARCH_SPACES[family].items():
        value = params[name]
        if isinstance(dist, IntDistribution | FloatDistribution):
            if not dist.low <= value <= dist.high:
                return False
        elif isinstance(dist, CategoricalDistribution) and value not in dist.choices:
            return False
    return True


# ---------------------------------------------------------------- the spaces as data


def test_every_space_names_real_config_fields_with_valid_bounds() -> None:
    wanted = {"svd", "svdpp", "als", "bpr", "item_knn", "knn_baseline", "ease", "rp3beta"}
    assert wanted <= set(tunable_models())
    for family, space in SEARCH_SPACES.items():
        config_class = model_class(family).config_class
        for name, dist in space.items():
            assert name in config_class.model_fields, (family, name)
            if isinstance(dist, IntDistribution | FloatDistribution):
                values: tuple[Any, ...] = (dist.low, dist.high)
            else:
                assert isinstance(dist, CategoricalDistribution)
                values = dist.choices
            for value in values:
                config_class(**{name: value})  # raises when a bound is out of the field's range
    for family, budget in EPOCH_BUDGETS.items():
        epochs = SEARCH_SPACES[family][budget.param]
        assert isinstance(epochs, IntDistribution)
        assert budget.rungs == tuple(sorted(budget.rungs))
        assert budget.rungs[0] > 0, family
        assert budget.rungs[-1] < epochs.high, family


def test_ranking_targets_are_what_the_evaluation_reports() -> None:
    [split] = make_split("random", _small_interactions(), seed=0)
    config = EvaluationConfig(ks=(5, 10))
    report = evaluate(create_model("popularity"), split, config)
    assert {f"{name}@{k}" for name in RANKING_METRICS for k in config.ks} <= set(report.metrics)


def _small_interactions() -> Interactions:
    data = generate(60, 80, 1_500, seed=1)
    return Interactions.from_frames(data.ratings, data.movies, rating_scale=data.rating_scale)


# ---------------------------------------------------------------- grids from the command line


def test_parse_grid_reads_json_scalars_and_keeps_words() -> None:
    grid = parse_grid(["n_factors=50,100", "lr_all = 0.005, 1e-2", "similarity=cosine,pearson"])
    assert grid == {
        "n_factors": [50, 100],
        "lr_all": [0.005, 0.01],
        "similarity": ["cosine", "pearson"],
    }
    assert isinstance(grid["n_factors"][0], int)
    assert parse_grid(["normalize=true,false", "reg_bias=null,0.1"]) == {
        "normalize": [True, False],
        "reg_bias": [None, 0.1],
    }


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["n_factors"], "NAME=VALUE"),
        (["=1,2"], "NAME=VALUE"),
        (["n_factors="], "NAME=VALUE"),
        (["n_factors=1,,2"], "empty value"),
        (["n_factors=1", "n_factors=2"], "given twice"),
        (["n_factors=1,1.0"], "repeats"),
    ],
)
def test_parse_grid_rejects_malformed_entries(pairs: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_grid(pairs)


# ---------------------------------------------------------------- clear errors before any work


@pytest.mark.parametrize(
    ("model", "kwargs", "message"),
    [
        ("nope", {"trials": 1}, "unknown model 'nope'; known models: .*svd"),
        ("popularity", {"trials": 1}, "popularity has no search space.*tunable models: als, "),
        ("svd", {"grid": {"n_factor": [5]}}, "unknown grid parameter 'n_factor' for svd"),
        ("svd", {"grid": {"n_factors": [5, 0]}}, r"n_factors=0: Input should be greater than 0"),
        ("svd", {"grid": {"lr": [0.1]}, "fixed_params": {"lr": 0.1}}, "both fixed and in"),
        ("svd", {"grid": {"lr_all": [0.1], "lr": [0.2]}}, "'lr' twice: as 'lr_all' and as 'lr'"),
        ("als", {"trials": 1, "fixed_params": {"lr": 0.1}}, "unknown fixed parameter 'lr'"),
        ("als", {"trials": 1, "metric": "rmse"}, "als by rmse: it ranks items but does not"),
        ("svd", {"trials": 1, "metric": "rmse", "protocol": "held_out_users"}, "no rmse"),
        ("svd", {"trials": 1, "metric": "coverage@10"}, "cannot tune by 'coverage@10'"),
        ("svd", {"trials": 1, "metric": "ndcg@7"}, r"cannot tune by 'ndcg@7'.*ndcg@10"),
        ("svd", {}, "give a number of trials or a timeout"),
        ("svd", {"trials": -1}, "trials must be 0 or more"),
    ],
)
def test_bad_arguments_are_clear_errors_before_any_work(
    tmp_path: Path, model: str, kwargs: dict[str, Any], message: str
) -> None:
    empty = Settings(_env_file=None, data_dir=tmp_path / "data", mlflow_tracking_uri=None)
    with pytest.raises(ConfigError, match=message):
        tune(empty, model, **kwargs)
    assert not (tmp_path / "data").exists(), "nothing is created before the arguments check"


def test_unreachable_tracking_store_fails_before_any_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    offline = Settings(_env_file=None, data_dir=tmp_path, mlflow_tracking_uri="http://127.0.0.1:1")
    with pytest.raises(TrackingError, match=r"start the tuning run at .*127\.0\.0\.1:1.*no trial"):
        tune(offline, "ease", trials=2)
    assert not (tmp_path / "optuna.db").exists(), "no study was opened"


def test_unopenable_study_storage_is_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'missing-folder' / 'optuna.db'}"
    with pytest.raises(TuningError, match=r"cannot open study storage sqlite:///.*missing-folder"):
        tune(settings, "ease", trials=1, storage=storage)


# ---------------------------------------------------------------- a study, tracked and resumed


@pytest.fixture(scope="module")
def als_study(settings: Settings) -> TuningResult:
    return tune(settings, "als", trials=6, seed=1, fixed_params={"num_threads": 1})


def test_study_runs_its_trials_and_finds_params_in_the_space(
    settings: Settings, als_study: TuningResult
) -> None:
    result = als_study
    assert result.study_name == "als-store-user_temporal-ndcg@10"
    assert result.storage == _storage(settings)
    assert result.direction == "maximize"
    assert result.n_trials_run == 6
    assert result.n_complete + result.n_pruned == 6
    assert result.n_failed == 0
    assert _in_space("als", result.best_params)
    assert result.best_params["num_threads"] == 1
    study = _study(settings, result)
    assert result.best_value == pytest.approx(study.best_value)
    assert result.best_params == {"num_threads": 1, **study.best_params}
    assert 0 < result.best_value <= 1
    assert math.isfinite(result.test_value)
    assert result.test_value == result.test_report.metrics["ndcg@10"]


def test_every_trial_is_a_child_run_of_the_tuning_run(
    settings: Settings, als_study: TuningResult
) -> None:
    result = als_study
    client = _client(settings)
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["movierec.study"] == result.study_name
    assert parent.data.params["tuning.sampler"] == "tpe"
    assert parent.data.metrics["best_val_ndcg_at_10"] == pytest.approx(result.best_value)
    assert parent.data.metrics["test_ndcg_at_10"] == pytest.approx(result.test_value)
    best_regularization = json.dumps(result.best_params["regularization"])
    assert parent.data.params["best.regularization"] == best_regularization
    children = _children(settings, result.parent_run_id)
    assert len(children) == 6
    study = _study(settings, result)
    by_run = {t.user_attrs["mlflow_run_id"]: t for t in study.trials}
    for child in children:
        trial = by_run[child.info.run_id]
        assert child.data.tags["movierec.study"] == result.study_name
        assert child.data.tags["optuna.state"] == trial.state.name
        assert child.data.params["model.num_threads"] == "1"
        for name, value in trial.params.items():
            assert child.data.params[f"model.{name}"] == (
                value if isinstance(value, str) else json.dumps(value)
            )
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert child.info.status == "FINISHED"
            assert child.data.metrics["val_ndcg_at_10"] == pytest.approx(trial.value)
        else:
            assert child.info.status == "KILLED"


def test_resume_adds_trials_to_the_same_study(settings: Settings, als_study: TuningResult) -> None:
    again = tune(settings, "als", trials=3, seed=1, fixed_params={"num_threads": 1})
    assert again.study_name == als_study.study_name
    assert again.n_trials_run == 3
    assert again.n_complete + again.n_pruned + again.n_failed == 9
    assert again.parent_run_id != als_study.parent_run_id
    trials = _study(settings, again).trials
    first = {tuple(sorted(t.params.items())) for t in trials[:6]}
    assert not first & {tuple(sorted(t.params.items())) for t in trials[6:]}, (
        "a resumed study must not redraw the points it already tried"
    )
    assert again.best_value == max(t.value for t in trials if t.value is not None), (
        "the best of the whole study, not of this call's trials only"
    )
    with pytest.raises(ConfigError, match=r"tunes something else \(fixed_params"):
        tune(settings, "als", trials=1, study_name=again.study_name, fixed_params={"factors": 8})


# ---------------------------------------------------------------- the test part stays out


def test_trials_score_on_validation_carved_from_the_train_part(
    settings: Settings, als_study: TuningResult
) -> None:
    experiment = prepare(settings, None, "user_temporal")
    outer = experiment.splits[0]
    [inner] = validation_splits(outer.train, "user_temporal")
    # Structural: the validation parts partition the outer train part, and so hold no test entry.
    assert (inner.train.matrix + inner.test.matrix != outer.train.matrix).nnz == 0
    assert 0 < inner.test.nnz < outer.train.nnz
    assert inner.train.matrix.multiply(outer.test.matrix).nnz == 0
    assert inner.test.matrix.multiply(outer.test.matrix).nnz == 0
    # Behavioural: the best trial's score is its params' score on that validation split...
    model = create_model("als", **als_study.best_params)
    assert evaluate(model, inner).metrics["ndcg@10"] == pytest.approx(als_study.best_value)
    # ...and the final score is theirs on the held-out test part, fitted on the outer train.
    final = evaluate(create_model("als", **als_study.best_params), outer).metrics["ndcg@10"]
    assert final == pytest.approx(als_study.test_value)
    params = _client(settings).get_run(als_study.parent_run_id).data.params
    assert params["validation.n_train_ratings"] == str(inner.train.nnz)
    assert params["validation.n_test_ratings"] == str(inner.test.nnz)
    assert params["test.n_test_ratings"] == str(outer.test.nnz)


def test_a_fixed_cutoff_leaving_no_validation_is_refused(settings: Settings) -> None:
    experiment = prepare(settings, None, "temporal", test_fraction=0.2)
    cutoff = experiment.splits[0].params["cutoff"]
    with pytest.raises(ConfigError, match=r"validation split .* holds no ratings"):
        validation_splits(experiment.splits[0].train, "temporal", {"cutoff": cutoff})


# ---------------------------------------------------------------- grid search


def test_grid_mode_visits_exactly_the_grid_once(settings: Settings) -> None:
    grid = {"n_factors": [4, 16], "lr_all": [0.005, 0.02], "reg_all": [0.05]}
    result = tune(settings, "svd", metric="rmse", grid=grid, fixed_params={"n_epochs": 8})
    assert result.study_name == "svd-store-user_temporal-rmse-grid"
    assert result.direction == "minimize"
    assert result.n_trials_run == 4
    visited = [t.params for t in _study(settings, result).trials]
    expected = [
        {"n_factors": f, "lr": lr, "reg": reg}
        for f, lr, reg in itertools.product([4, 16], [0.005, 0.02], [0.05])
    ]
    assert sorted(visited, key=str) == sorted(expected, key=str)
    assert result.best_params["n_epochs"] == 8
    assert 0.5 < result.best_value < 1.5  # an RMSE on a 0.5-5 star scale
    assert result.test_value == result.test_report.metrics["rmse"]
    assert {c.data.tags["optuna.state"] for c in _children(settings, result.parent_run_id)} == {
        "COMPLETE"
    }

    again = tune(settings, "svd", metric="rmse", grid=grid, fixed_params={"n_epochs": 8})
    assert again.n_trials_run == 0, "an exhausted grid runs nothing more"
    assert again.best_params == result.best_params


# ---------------------------------------------------------------- faults


def test_a_failing_trial_is_recorded_and_the_study_goes_on(settings: Settings) -> None:
    # max_items=1 is a valid config whose fit refuses this catalogue: those trials fail.
    grid = {"regularization": [50.0, 500.0], "max_items": [1, 30_000]}
    result = tune(settings, "ease", grid=grid, study_name="ease-faults")
    assert (result.n_complete, result.n_failed) == (2, 2)
    assert result.best_params["max_items"] == 30_000
    study = _study(settings, result)
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert {t.params["max_items"] for t in failed} == {1}
    runs = {c.info.run_id: c for c in _children(settings, result.parent_run_id)}
    for trial in failed:
        run = runs[trial.user_attrs["mlflow_run_id"]]
        assert run.info.status == "FAILED"
        assert run.data.tags["optuna.state"] == "FAIL"
        assert run.data.tags["movierec.error"].startswith("ModelError: ease needs a dense")
        assert "val_ndcg_at_10" not in run.data.metrics

    with pytest.raises(TuningError, match=r"no trial of study 'ease-all-fail' completed \(1 fail"):
        tune(settings, "ease", grid={"max_items": [1]}, study_name="ease-all-fail")
    experiment = _client(settings).get_experiment_by_name(settings.mlflow_experiment)
    assert experiment is not None
    [parent] = _client(settings).search_runs(
        [experiment.experiment_id],
        filter_string="tags.`movierec.study` = 'ease-all-fail' and tags.`movierec.tuning` = "
        "'study'",
    )
    assert parent.info.status == "FAILED"
    assert parent.data.tags["movierec.error"].startswith("no trial of study 'ease-all-fail'")


# ---------------------------------------------------------------- pruning


def test_an_epoch_family_prunes_poor_trials_at_an_early_rung(settings: Settings) -> None:
    result = tune(settings, "svd", trials=10, seed=0, study_name="svd-pruning")
    assert result.n_pruned >= 1
    assert result.n_complete + result.n_pruned == 10
    rungs = EPOCH_BUDGETS["svd"].rungs
    study = _study(settings, result)
    for trial in study.trials:
        epochs = trial.params["n_epochs"]
        reported = sorted(trial.intermediate_values)
        if trial.state == optuna.trial.TrialState.PRUNED:
            # Pruned at a rung below its own epochs, never having trained them all.
            assert reported
            assert set(reported) <= {r for r in rungs if r < epochs}
        else:
            assert reported == [r for r in rungs if r < epochs]
    pruned_runs = [
        c for c in _children(settings, result.parent_run_id) if c.info.status == "KILLED"
    ]
    assert len(pruned_runs) == result.n_pruned
    assert all(run.data.tags["optuna.state"] == "PRUNED" for run in pruned_runs)
    history = _client(settings).get_metric_history(pruned_runs[0].info.run_id, "val_ndcg_at_10")
    assert history
    assert {m.step for m in history} <= set(rungs)
    assert np.isfinite([m.value for m in history]).all()


def test_tune_command_runs_a_grid_and_resumes(
    tmp_path: Path, datasets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOVIEREC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MOVIEREC_DATASETS_DIR", str(datasets_dir))
    monkeypatch.delenv("MOVIEREC_MLFLOW_TRACKING_URI", raising=False)
    args = ["tune", "--model", "item_knn", "--dataset", "ml-100k", "--grid", "neighbors=20,50"]
    runner = CliRunner()
    first = runner.invoke(app, [*args, "--json"])
    assert first.exit_code == 0, first.output
    found = json.loads(first.stdout)
    assert found["n_trials_run"] == 2
    assert found["best_params"]["neighbors"] in {20, 50}
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "ran 0 trials" in again.output
    bad = runner.invoke(app, ["tune", "--model", "popularity", "--trials", "2"])
    assert bad.exit_code == 1
    assert "error:" in bad.output

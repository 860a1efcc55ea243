"""The pipeline end to end on ml-100k: real store, real MLflow registry, real CLI processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from movierec.cli import app
from movierec.config import Settings
from movierec.data.store import RatingsStore
from movierec.errors import ConfigError
from movierec.serving.registry import latest_leaderboard, list_versions
from movierec.training import tracking
from movierec.training.pipeline import (
    FINGERPRINT_TAG,
    ModelSpec,
    PipelineConfig,
    PipelineResult,
    run_pipeline,
)
from movierec.training.tracking import TrackingError

SMALL = PipelineConfig(
    dataset="ml-100k",
    models=[ModelSpec(model="popularity"), ModelSpec(model="item_knn", params={"neighbors": 50})],
)


def _settings(data_dir: Path, datasets_dir: Path, tracking_uri: str | None = None) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=data_dir,
        datasets_dir=datasets_dir,
        mlflow_tracking_uri=tracking_uri,
    )


def _run_count(settings: Settings) -> int:
    client = MlflowClient(settings.tracking_uri)
    experiment = client.get_experiment_by_name(settings.mlflow_experiment)
    assert experiment is not None
    return len(client.search_runs([experiment.experiment_id]))


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, datasets_dir: Path) -> Settings:
    return _settings(tmp_path_factory.mktemp("pipeline"), datasets_dir)


@pytest.fixture(scope="module")
def first_run(settings: Settings) -> PipelineResult:
    return run_pipeline(settings, SMALL)


def test_first_run_registers_the_best_model_as_champion(
    settings: Settings, first_run: PipelineResult
) -> None:
    assert not first_run.skipped
    scores = [r.metrics["ndcg@10"] for r in first_run.leaderboard]
    assert scores == sorted(scores, reverse=True)
    assert first_run.winner == first_run.leaderboard[0].model == "item_knn"
    assert first_run.version == 1
    assert first_run.decision is not None
    assert first_run.decision.promoted
    assert first_run.decision.candidate_score == pytest.approx(scores[0])
    [info] = tracking.list_versions(settings)
    assert info.aliases == ["champion"]
    assert info.tags[FINGERPRINT_TAG] == first_run.fingerprint
    assert (first_run.model_dir / "config.json").exists()
    assert {"ingest", "snapshot", "split", "evaluate", "fit_final", "log", "promote"} <= set(
        first_run.stage_seconds
    )


def test_every_model_is_a_child_run_of_the_pipeline_run(
    settings: Settings, first_run: PipelineResult
) -> None:
    client = MlflowClient(settings.tracking_uri)
    experiment = client.get_experiment_by_name(settings.mlflow_experiment)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    [parent] = [r for r in runs if r.data.tags.get("movierec.stage") == "pipeline"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.params["model"] for r in children) == ["item_knn", "popularity"]
    assert all("ndcg_at_10" in r.data.metrics for r in children)


def test_the_api_reads_the_latest_runs_leaderboard(
    settings: Settings, first_run: PipelineResult
) -> None:
    board = latest_leaderboard(settings)
    assert board.run_id is not None
    by_model = {e.model: e.metrics["ndcg@10"] for e in board.entries}
    assert by_model == {r.model: pytest.approx(r.metrics["ndcg@10"]) for r in first_run.leaderboard}
    [version] = list_versions(settings)
    assert (version.version, version.aliases, version.model) == (1, ["champion"], "item_knn")


def test_rerun_on_unchanged_data_and_params_changes_nothing(
    settings: Settings, first_run: PipelineResult
) -> None:
    runs_before = _run_count(settings)
    again = run_pipeline(settings, SMALL)
    assert again.skipped
    assert again.version == first_run.version
    assert again.fingerprint == first_run.fingerprint
    assert _run_count(settings) == runs_before
    assert [v.version for v in tracking.list_versions(settings)] == [1]


def test_new_ratings_make_a_new_version_judged_against_the_champion(
    settings: Settings,
    first_run: PipelineResult,
) -> None:
    with RatingsStore.from_settings(settings) as store:
        store.append(user_id=100_001, item_id=50, rating=5.0)
        store.append(user_id=100_001, item_id=172, rating=4.0)
    result = run_pipeline(settings, SMALL)
    assert not result.skipped
    assert result.snapshot_hash != first_run.snapshot_hash
    assert result.version == 2
    assert result.decision is not None
    assert result.decision.champion_version == 1
    assert result.decision.champion_score is not None  # the champion was re-scored on this split
    champion = [v for v in tracking.list_versions(settings) if "champion" in v.aliases]
    assert len(champion) == 1
    expected = 2 if result.decision.promoted else 1
    assert champion[0].version == expected


def test_without_tracking_the_winner_is_saved_and_mlflow_untouched(
    tmp_path: Path, datasets_dir: Path
) -> None:
    settings = _settings(tmp_path, datasets_dir)
    config = SMALL.model_copy(update={"track": False, "models": [ModelSpec(model="popularity")]})
    result = run_pipeline(settings, config)
    assert result.version is None
    assert result.model_dir is not None
    assert (result.model_dir / "report.json").exists()
    assert not (tmp_path / "mlflow.db").exists()


def test_unreachable_tracking_store_fails_before_training(
    tmp_path: Path, datasets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    settings = _settings(tmp_path, datasets_dir, tracking_uri="http://127.0.0.1:9")
    with pytest.raises(TrackingError, match=r"127\.0\.0\.1:9"):
        run_pipeline(settings, SMALL)
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: [{model: nope}]", "unknown model"),
        ("models: []", "models"),
        ("dataset: ml-100k\nmodels: [{model: als}]\nseed: 3", "seed"),
        ("models: [{model: als, params: {factors: 8}, extra: 1}]", "extra"),
        ("models: [{model: als, params: {factorz: 8}}]", "factorz"),
        ("models: [{model: als, params: {factors: -1}}]", "factors"),
        ("- just\n- a list", "mapping"),
        ("models: [unclosed", "not valid YAML"),
    ],
)
def test_bad_configs_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        PipelineConfig.from_yaml(path)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        PipelineConfig.from_yaml(tmp_path / "nope.yaml")


def test_project_params_yaml_is_valid() -> None:
    config = PipelineConfig.from_yaml(Path(__file__).parents[2] / "params.yaml")
    assert config.dataset == "ml-latest-small"
    assert len(config.models) >= 3


@pytest.mark.slow
def test_two_pipelines_at_once_leave_one_version_and_one_champion(
    tmp_path: Path, datasets_dir: Path
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(SMALL.model_dump(mode="json")))
    env = {
        **os.environ,
        "MOVIEREC_DATA_DIR": str(tmp_path / "data"),
        "MOVIEREC_DATASETS_DIR": str(datasets_dir),
    }
    env.pop("MOVIEREC_MLFLOW_TRACKING_URI", None)
    command = [sys.executable, "-m", "movierec.cli", "pipeline", "run", "-c", str(params), "--json"]
    runs = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err.decode()[-2000:] for _, err in outputs]
    settings = _settings(tmp_path / "data", datasets_dir)
    versions = tracking.list_versions(settings)
    assert [v.version for v in versions] == [1]
    assert versions[0].aliases == ["champion"]
    assert sorted(json.loads(out)["skipped"] for out, _ in outputs) == [False, True]


def test_models_commands_list_show_promote_and_roll_back(
    settings: Settings,
    first_run: PipelineResult,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MOVIEREC_DATA_DIR", str(settings.data_dir))
    monkeypatch.delenv("MOVIEREC_MLFLOW_TRACKING_URI", raising=False)
    if len(tracking.list_versions(settings)) < 2:  # a second version to promote by hand
        run_pipeline(settings, SMALL.model_copy(update={"models": [ModelSpec(model="popularity")]}))
    runner = CliRunner()
    listed = runner.invoke(app, ["models", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    versions = json.loads(listed.output)
    assert [v["version"] for v in versions] == sorted(
        (v["version"] for v in versions), reverse=True
    )
    shown = runner.invoke(app, ["models", "show", "1", "--json"])
    assert json.loads(shown.output)["model"] == "item_knn"
    champion = next(v["version"] for v in versions if "champion" in v["aliases"])
    other = next(v["version"] for v in versions if "champion" not in v["aliases"])
    assert runner.invoke(app, ["models", "promote", str(other)]).exit_code == 0
    assert "champion" in tracking.show_version(settings, other).aliases
    rolled = runner.invoke(app, ["models", "rollback"])
    assert rolled.exit_code == 0, rolled.output
    assert f"version {champion}" in rolled.output
    assert "champion" in tracking.show_version(settings, champion).aliases
    missing = runner.invoke(app, ["models", "show", "99"])
    assert missing.exit_code == 1
    assert "error:" in missing.output


def test_fingerprint_sees_every_parameter_default_included(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)
    implicit_default = PipelineConfig(models=[ModelSpec(model="als")])
    default = ModelSpec(model="als").resolved()["config"]["factors"]
    explicit_default = PipelineConfig(models=[ModelSpec(model="als", params={"factors": default})])
    other = PipelineConfig(models=[ModelSpec(model="als", params={"factors": default + 1})])
    same = implicit_default.fingerprint("abc", settings)
    assert explicit_default.fingerprint("abc", settings) == same
    assert other.fingerprint("abc", settings) != same
    assert implicit_default.fingerprint("abd", settings) != same

"""MLflow tracking and the registry against a real SQLite store in ``tmp_path`` (no mocks)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from movierec.config import Settings
from movierec.data.split import Split, make_split
from movierec.evaluation.protocol import EvaluationConfig, Report, evaluate
from movierec.models import create_model
from movierec.training import tracking
from movierec.training.tracking import TrackedRun, TrackingError
from tests.models.contract import checkerboard

EVAL = EvaluationConfig(ks=(5, 10, 20))


@pytest.fixture(scope="module")
def split() -> Split:
    [part] = make_split("random", checkerboard(), test_fraction=0.2, seed=0)
    return part


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir = tmp_path_factory.mktemp("movierec")
    return Settings(_env_file=None, data_dir=data_dir, mlflow_tracking_uri=None)


def _train(settings: Settings, split: Split, name: str, folder: str) -> tuple[TrackedRun, Report]:
    model = create_model(name)
    report = evaluate(model, split, EVAL)
    report.data["dataset"] = "checkerboard"
    return tracking.track_training(settings, model, report, settings.models_dir / folder), report


@pytest.fixture(scope="module")
def first(settings: Settings, split: Split) -> tuple[TrackedRun, Report]:
    return _train(settings, split, "popularity", "pop-1")


def test_metric_names_round_trip() -> None:
    assert tracking.metric_key("ndcg@10") == "ndcg_at_10"
    assert tracking.metric_name("ndcg_at_10") == "ndcg@10"
    assert tracking.metric_name(tracking.metric_key("coverage@10")) == "coverage@10"


def test_default_store_is_sqlite_under_the_data_dir(settings: Settings) -> None:
    assert settings.tracking_uri == f"sqlite:///{settings.data_dir / 'mlflow.db'}"
    assert settings.mlflow_artifacts_dir == settings.data_dir / "mlartifacts"


def test_run_logs_params_metrics_dataset_and_artifacts(
    settings: Settings, first: tuple[TrackedRun, Report]
) -> None:
    run, report = first
    assert run.model_version == 1
    client = MlflowClient(settings.tracking_uri)
    logged = client.get_run(run.run_id)
    assert logged.data.params["model"] == "popularity"
    assert logged.data.params["split"] == "random"
    assert logged.data.params["split.test_fraction"] == "0.2"
    assert all(f"model.{key}" in logged.data.params for key in report.params)
    assert logged.data.metrics["ndcg_at_10"] == pytest.approx(report.metrics["ndcg@10"])
    assert {"fit_seconds", "eval_seconds"} <= set(logged.data.metrics)
    assert logged.data.tags["movierec.snapshot_hash"] == str(report.data["snapshot_hash"])
    assert "mlflow.source.git.commit" in logged.data.tags
    [dataset_input] = logged.inputs.dataset_inputs
    profile = json.loads(dataset_input.dataset.profile)
    assert profile["n_train_ratings"] == report.data["n_train_ratings"]
    assert profile["n_test_ratings"] == report.n_test_ratings
    artifacts = {a.path for a in client.list_artifacts(run.run_id)}
    assert {"report.json", "plots"} <= artifacts
    plots = {a.path for a in client.list_artifacts(run.run_id, "plots")}
    assert plots == {"plots/metric_at_k.png", "plots/long_tail.png"}
    local = settings.mlflow_artifacts_dir
    assert any(local.rglob("arrays.npz")), "model artifacts live under the data dir"
    assert not any(local.rglob("*.pkl")), "the logged model is code + npz/json, no pickle"
    assert (run.model_dir / "report.json").exists()


def test_promotion_rule_rollback_and_margin(
    settings: Settings, split: Split, first: tuple[TrackedRun, Report]
) -> None:
    name = settings.registered_model
    client = MlflowClient(settings.tracking_uri)
    decision = tracking.decide_promotion(settings, 1, split, EVAL)
    assert decision.promoted
    assert decision.reason == "no champion yet"

    better, _ = _train(settings, split, "item_knn", "knn-1")
    decision = tracking.decide_promotion(settings, better.model_version or 0, split, EVAL)
    assert decision.promoted, decision
    assert decision.champion_version == 1
    assert decision.candidate_score > (decision.champion_score or math.inf)
    assert int(client.get_model_version_by_alias(name, "champion").version) == 2
    assert int(client.get_model_version_by_alias(name, "previous-champion").version) == 1

    worse, _ = _train(settings, split, "popularity", "pop-2")
    decision = tracking.decide_promotion(settings, worse.model_version or 0, split, EVAL)
    assert decision.decision == "challenger"
    assert int(client.get_model_version_by_alias(name, "champion").version) == 2
    assert int(client.get_model_version_by_alias(name, "challenger").version) == 3
    logged = client.get_run(worse.run_id).data
    assert logged.tags["promotion.decision"] == "challenger"
    assert logged.metrics["promotion_candidate_score"] == pytest.approx(decision.candidate_score)
    assert logged.metrics["promotion_champion_score"] == pytest.approx(decision.champion_score)

    assert tracking.rollback(settings) == 1
    assert int(client.get_model_version_by_alias(name, "champion").version) == 1
    with pytest.raises(TrackingError, match="no previous champion"):
        tracking.rollback(settings)

    strict = settings.model_copy(update={"promotion_margin": 1.0})
    decision = tracking.decide_promotion(strict, 2, split, EVAL)
    assert decision.decision == "challenger"
    assert decision.margin == 1.0
    assert decision.candidate_score > (decision.champion_score or math.inf)
    assert int(client.get_model_version_by_alias(name, "champion").version) == 1

    versions = tracking.list_versions(settings)
    assert [v.version for v in versions] == [3, 2, 1]
    assert "champion" in tracking.show_version(settings, 1).aliases
    assert tracking.show_version(settings, 2).metrics["ndcg@10"] > 0

    for version in (1, 3):  # a dotted key, as the pipeline's fingerprint tag
        tracking.tag_version(settings, version, {"movierec.test": "same"})
    found = tracking.find_version(settings, "movierec.test", "same")
    assert found is not None
    assert found.version == 3, "the newest of the matches"
    assert found.metrics == tracking.show_version(settings, 3).metrics
    assert tracking.find_version(settings, "movierec.test", "other") is None


def test_failed_evaluation_is_never_promoted(
    settings: Settings, split: Split, first: tuple[TrackedRun, Report]
) -> None:
    broken = settings.model_copy(update={"primary_metric": "no_such_metric@10"})
    client = MlflowClient(settings.tracking_uri)
    before = client.get_registered_model(settings.registered_model).aliases
    decision = tracking.decide_promotion(broken, 1, split, EVAL)
    assert decision.decision == "rejected"
    assert not decision.promoted
    assert client.get_registered_model(settings.registered_model).aliases == before


_LOAD_CHAMPION = """
import json, sys
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model("models:/movierec@champion")
out = model.predict(pd.DataFrame({"user_id": [100, 987654], "k": [3, 3]}))
print(json.dumps(out.to_dict(orient="records")))
"""


def test_champion_loads_in_a_fresh_process(
    settings: Settings, split: Split, first: tuple[TrackedRun, Report]
) -> None:
    promote_first = tracking.decide_promotion(settings, 1, split, EVAL)
    assert promote_first.decision == "champion"
    env = {**os.environ, "MLFLOW_TRACKING_URI": settings.tracking_uri}
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_CHAMPION],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    known, unknown = json.loads(done.stdout.strip().splitlines()[-1])
    assert known["strategy"] == "personalized"
    assert len(known["movie_ids"]) == 3
    assert all(1_000 <= movie < 1_020 for movie in known["movie_ids"])
    assert unknown["strategy"] == "popular_fallback"
    assert len(unknown["movie_ids"]) == len(unknown["scores"]) == 3


def test_unreachable_store_fails_fast_and_keeps_the_model(
    settings: Settings, split: Split, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    offline = Settings(_env_file=None, data_dir=tmp_path, mlflow_tracking_uri="http://127.0.0.1:1")
    model = create_model("popularity")
    report = evaluate(model, split, EVAL)
    folder = tmp_path / "models" / "kept"
    started = time.perf_counter()
    with pytest.raises(TrackingError, match=r"127\.0\.0\.1:1.*log_saved_model"):
        tracking.track_training(offline, model, report, folder)
    assert time.perf_counter() - started < 15
    assert {"config.json", "arrays.npz", "report.json"} <= {p.name for p in folder.iterdir()}

    later = tracking.log_saved_model(settings, folder, register_model=False)
    assert later.model_version is None
    assert mlflow.get_run(later.run_id).data.params["model"] == "popularity"


def test_concurrent_promotions_are_serialized(
    settings: Settings, first: tuple[TrackedRun, Report]
) -> None:
    name = settings.registered_model
    client = MlflowClient(settings.tracking_uri)
    tracking.promote(settings, 1)
    old = int(client.get_model_version_by_alias(name, "champion").version)
    a, b = (tracking.register(settings, first[0]).model_version or 0 for _ in range(2))
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda version: tracking.promote(settings, version), [a, b]))
    winner = int(client.get_model_version_by_alias(name, "champion").version)
    runner_up = int(client.get_model_version_by_alias(name, "previous-champion").version)
    assert {winner, runner_up} == {a, b}
    history = json.loads(client.get_registered_model(name).tags[tracking.HISTORY_TAG])
    assert history[-2:] == [old, runner_up], "each promotion saw the one before it"

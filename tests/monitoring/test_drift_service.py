"""Drift end to end: a real pipeline's champion on ml-latest-small, its real snapshot, ratings
appended to the real SQLite store; the API routes, ``/metrics``, the CLI and the scheduler."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from movierec.cli import app
from movierec.config import Settings
from movierec.data.store import RatingsStore
from movierec.monitoring.drift import FEATURES, check_drift
from movierec.monitoring.drift_monitor import DriftMonitor
from movierec.serving.app import create_app
from movierec.training import tracking
from movierec.training.pipeline import ModelSpec, PipelineConfig, run_pipeline
from movierec.training.scheduler import champion_snapshot, retrain_on_drift
from tests.serving.conftest import ml_model_dir, ml_settings, ml_small, settings_for

__all__ = ["ml_model_dir", "ml_settings", "ml_small"]  # fixtures shared with the serving tests

PIPELINE = PipelineConfig(dataset="ml-latest-small", models=[ModelSpec(model="popularity")])
FUTURE = 1_893_456_000  # 2030-01-01: after every MovieLens rating
NEW_USERS, PER_USER = 40, 30  # 1,200 ratings: large enough for the distance tests


@pytest.fixture(scope="module")
def trained(datasets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = settings_for(tmp_path_factory.mktemp("drift"), datasets_dir=datasets_dir)
    run_pipeline(settings, PIPELINE)
    return settings


@pytest.fixture(scope="module")
def drifted(trained: Settings) -> Settings:
    """The store with a burst of new users giving half a star to the catalogue's last movies."""
    with RatingsStore.from_settings(trained) as store:
        tail = store.movies_frame()["item_id"].to_numpy()[-PER_USER:]
        n = NEW_USERS * PER_USER
        store.append_many(
            pd.DataFrame(
                {
                    "user_id": 900_000 + np.arange(n) // PER_USER,
                    "item_id": np.tile(tail, NEW_USERS),
                    "rating": np.full(n, 0.5),
                    "timestamp": FUTURE + 60 * np.arange(n),
                }
            )
        )
    return trained


def champion_hash(settings: Settings) -> str:
    snapshot = champion_snapshot(settings)
    assert not isinstance(snapshot, str), snapshot
    return snapshot.content_hash


@pytest.fixture
def cli_env(trained: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOVIEREC_DATA_DIR", str(trained.data_dir))
    monkeypatch.setenv("MOVIEREC_DATABASE_URL", "")
    monkeypatch.setenv("MOVIEREC_MLFLOW_TRACKING_URI", "")
    monkeypatch.setenv("MOVIEREC_DATASETS_DIR", str(trained.datasets_dir))


# ---------------------------------------------------------------- before any new rating


def test_no_new_rating_is_nothing_to_compare_and_no_retraining(trained: Settings) -> None:
    with RatingsStore.from_settings(trained) as store:
        report = check_drift(trained, store, champion_hash(trained))
    assert report.status == "nothing_to_compare"
    assert report.reference_ratings == 100_836
    champion = tracking.version_by_alias(trained, tracking.CHAMPION)
    outcome = retrain_on_drift(trained, PIPELINE)
    assert not outcome.retrained
    assert "nothing to compare" in outcome.reason
    assert outcome.drift is not None
    assert outcome.drift.status == "nothing_to_compare"
    assert tracking.version_by_alias(trained, tracking.CHAMPION) == champion


def test_the_cli_says_nothing_to_compare(trained: Settings, cli_env: None) -> None:
    result = CliRunner().invoke(app, ["monitor", "drift"])
    assert result.exit_code == 0, result.output
    assert "nothing to compare" in result.stdout


# ---------------------------------------------------------------- after the burst


def test_the_api_reports_the_drift(drifted: Settings) -> None:
    with TestClient(create_app(drifted)) as client:
        answer = client.get("/monitoring/drift")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["status"], body["verdict"], body["drift_detected"]) == (
            "compared", "drift", True
        )  # fmt: skip
        assert body["current_ratings"] == NEW_USERS * PER_USER
        assert body["window"] == {"start": body["window"]["start"], "end": None}
        features = {f["feature"]: f for f in body["features"]}
        assert set(features) == set(FEATURES) - {"user_activity"}
        assert body["skipped"][0]["feature"] == "user_activity"
        assert features["new_users"]["value"] == 1.0
        assert features["new_movies"]["value"] == 0.0
        assert features["rating"]["drifted"]
        assert features["item_popularity"]["details"]["current_top1_share"] == 0.0
        assert set(body["drifted_features"]) >= {"rating", "new_users", "item_popularity"}

        half = client.get("/monitoring/drift", params={"start": FUTURE, "end": FUTURE + 6_000})
        assert half.json()["current_ratings"] == 100
        assert half.json()["features"][0]["statistic"] == "chi_squared_p_value"


def test_bad_windows_are_clear_answers(drifted: Settings) -> None:
    with TestClient(create_app(drifted)) as client:
        empty = client.get("/monitoring/drift", params={"start": FUTURE - 86_400, "end": FUTURE})
        assert empty.status_code == 200
        assert empty.json()["status"] == "nothing_to_compare"
        assert "nothing to compare" in empty.json()["message"]
        backwards = client.get("/monitoring/drift", params={"start": 10, "end": 5})
        assert backwards.status_code == 422
        assert "must come after its start" in backwards.json()["detail"]
        assert client.get("/monitoring/drift", params={"start": -1}).status_code == 422
        started = time.perf_counter()
        everything = client.get("/monitoring/drift", params={"start": 0, "end": 2**62})
        assert time.perf_counter() - started < 30
        body = everything.json()
        assert body["current_ratings"] == 100_836 + NEW_USERS * PER_USER
        assert all(math.isfinite(f["value"]) for f in body["features"])


def test_the_html_report(drifted: Settings) -> None:
    with TestClient(create_app(drifted)) as client:
        page = client.get("/monitoring/drift/report")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "<!DOCTYPE html>" in page.text[:200]
        assert "new_user" in page.text
        empty = client.get("/monitoring/drift/report", params={"start": 1, "end": 2})
        assert "nothing to compare" in empty.text


def test_no_model_is_503(tmp_path: Path) -> None:
    with TestClient(create_app(settings_for(tmp_path))) as client:
        for route in ("/monitoring/drift", "/monitoring/drift/report"):
            answer = client.get(route)
            assert answer.status_code == 503
            assert "no model is loaded" in answer.json()["detail"]


def test_metrics_report_drift_after_a_background_check(drifted: Settings) -> None:
    with TestClient(create_app(drifted)) as client:
        deadline = time.monotonic() + 60
        text = client.get("/metrics").text  # the first scrape starts the check
        while "movierec_drift_detected" not in text and time.monotonic() < deadline:
            time.sleep(0.2)
            text = client.get("/metrics").text
    assert "movierec_drift_detected 1.0" in text
    assert 'movierec_drift_feature_drifted{feature="new_users"} 1.0' in text
    assert f"movierec_drift_current_ratings {float(NEW_USERS * PER_USER)}" in text


def test_workers_share_one_result(drifted: Settings) -> None:
    snapshot_hash = champion_hash(drifted)
    with RatingsStore.from_settings(drifted) as store:
        first = DriftMonitor(drifted, store, lambda: snapshot_hash)
        second = DriftMonitor(drifted, store, lambda: snapshot_hash)
        computed = first.refresh(snapshot_hash)
        adopted = second.refresh(snapshot_hash)
        assert computed is not None
        assert adopted is not None
        assert adopted.checked_at == computed.checked_at  # read from the file, not recomputed
        metrics = {m.name: m for m in second.collect()}
        assert list(DriftMonitor(drifted, store, lambda: None).collect()) == []
        assert DriftMonitor(drifted, store, lambda: "0" * 64).refresh("0" * 64) is None
    assert set(metrics) == {
        "movierec_drift_detected",
        "movierec_drift_share",
        "movierec_drift_current_ratings",
        "movierec_drift_checked_timestamp_seconds",
        "movierec_drift_feature_value",
        "movierec_drift_feature_threshold",
        "movierec_drift_feature_drifted",
    }
    [detected] = metrics["movierec_drift_detected"].samples
    assert detected.value == 1.0
    thresholds = {s.labels["feature"]: s.value
                  for s in metrics["movierec_drift_feature_threshold"].samples}  # fmt: skip
    # 1,200 ratings take distances; their 20 hours a Kolmogorov-Smirnov p-value.
    assert thresholds == {
        "rating": 0.1, "item_popularity": 0.1, "genre_mix": 0.1, "new_users": 0.1,
        "new_movies": 0.1, "ratings_per_hour": 0.05,
    }  # fmt: skip
    assert metrics["movierec_drift_checked_timestamp_seconds"].samples[0].value == pytest.approx(
        computed.checked_at
    )


def test_the_cli_json_html_and_table(drifted: Settings, cli_env: None, tmp_path: Path) -> None:
    page = tmp_path / "drift.html"
    result = CliRunner().invoke(app, ["monitor", "drift", "--json", "--html", str(page)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["verdict"] == "drift"
    assert report["current_ratings"] == NEW_USERS * PER_USER
    assert "<!DOCTYPE html>" in page.read_text()[:200]

    table = CliRunner().invoke(app, ["monitor", "drift", "--since", "2030-01-01"])
    assert table.exit_code == 0, table.output
    for text in ("Data drift", "new_users", "Jensen-Shannon distance", "user_activity: no rating"):
        assert text in table.stdout
    window = CliRunner().invoke(app, ["monitor", "drift", "--days", "2", "--end", "2030-01-01"])
    assert "nothing to compare" in window.stdout


def test_the_cli_refuses_bad_options(drifted: Settings, cli_env: None, tmp_path: Path) -> None:
    both = CliRunner().invoke(app, ["monitor", "drift", "--start", "2030-01-01", "--days", "3"])
    assert both.exit_code == 2
    assert "give --start or --days, not both" in both.output
    assert CliRunner().invoke(app, ["monitor", "drift", "--start", "yesterday"]).exit_code == 2
    unwritable = tmp_path / "missing" / "drift.html"
    result = CliRunner().invoke(app, ["monitor", "drift", "--html", str(unwritable)])
    assert result.exit_code == 1
    assert "cannot write the HTML report" in result.output
    assert "Traceback" not in result.output


def test_schedule_on_drift_retrains(drifted: Settings, cli_env: None) -> None:
    config = drifted.data_dir / "params.yaml"
    config.write_text(yaml.safe_dump(PIPELINE.model_dump(mode="json")))
    result = CliRunner().invoke(app, ["schedule", "--once", "--on-drift", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "data drift in" in result.output
    assert "new_users" in result.output


def test_a_model_without_its_training_data_is_a_conflict(ml_settings: Settings) -> None:
    # A saved model outside the registry records no snapshot: nothing to compare with.
    with TestClient(create_app(ml_settings)) as client:
        for route in ("/monitoring/drift", "/monitoring/drift/report"):
            answer = client.get(route)
            assert answer.status_code == 409
            assert "does not record its training snapshot" in answer.json()["detail"]

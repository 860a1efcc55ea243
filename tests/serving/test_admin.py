"""Admin routes: the API key, the registry champion and hot reload, background jobs."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from movierec.config import Settings
from movierec.data.sources import LoadedData
from movierec.data.store import RatingsStore
from movierec.serving.app import create_app
from movierec.serving.jobs import CLI_COMMANDS, INTERRUPTED, Job, JobCommands, JobRunner
from tests.serving.conftest import (
    API_KEY,
    Registry,
    quick_commands,
    settings_for,
    wait_for_top_n,
)

ADMIN_ROUTES = [
    ("POST", "/admin/reload", None),
    ("POST", "/training", {}),
    ("POST", "/tuning", {"model": "als", "trials": 1}),
    ("GET", "/training/status", None),
    ("GET", "/training/abc", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
def test_admin_routes_need_the_key(
    client: TestClient, method: str, path: str, body: dict[str, object] | None
) -> None:
    missing = client.request(method, path, json=body)
    assert missing.status_code == 401
    assert missing.json() == {
        "detail": "this route needs the admin API key in the X-API-Key header"
    }
    wrong = client.request(method, path, json=body, headers={"X-API-Key": API_KEY + "x"})
    assert wrong.status_code == 403
    assert wrong.json() == {"detail": "invalid API key"}


def test_without_a_configured_key_admin_routes_are_closed(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, api_key=None)
    with TestClient(create_app(settings)) as client:
        refused = client.post("/admin/reload", headers={"X-API-Key": ""})
        assert refused.status_code == 403
        assert "no API key is configured" in refused.json()["detail"]
        assert client.get("/ready").status_code == 503
        not_ready = client.get("/ready").json()["detail"]  # and why: what the load found
        assert not_ready.startswith("not ready: no model is loaded (no model to serve: ")
        assert "run `movierec train`" in not_ready
        no_model = client.get("/users/1/recommendations")
        assert no_model.status_code == 503
        assert "no model is loaded" in no_model.json()["detail"]


def _served_registry(registry: Registry, synth_data: LoadedData, tmp_path: Path) -> Settings:
    """Settings of a data dir with its own copy of the registry and the synthetic ratings."""
    shutil.copy(registry.data_dir / "mlflow.db", tmp_path / "mlflow.db")
    settings = settings_for(tmp_path)
    with RatingsStore(settings.store_url) as store:
        store.ingest(synth_data)
    return settings


def test_champion_is_served_and_hot_reloaded(
    registry: Registry, synth_data: LoadedData, tmp_path: Path
) -> None:
    settings = _served_registry(registry, synth_data, tmp_path)
    admin = {"X-API-Key": API_KEY}
    with TestClient(create_app(settings)) as client:
        current = client.get("/models/current").json()
        assert (current["source"], current["version"], current["name"]) == ("registry", 1, "als")
        assert current["run_id"]
        assert "ndcg@10" in current["metrics"]
        assert current["n_users"] == 300
        before = client.get("/users/1/recommendations").json()
        assert before["model"] == {"name": "als", "version": 1, "source": "registry"}

        same = client.post("/admin/reload", headers=admin).json()
        assert same["changed"] is False
        uri = settings.tracking_uri
        MlflowClient(tracking_uri=uri, registry_uri=uri).set_registered_model_alias(
            settings.registered_model, "champion", "2"
        )
        swapped = client.post("/admin/reload", headers=admin).json()
        assert swapped["changed"] is True
        assert swapped["previous"]["version"] == 1
        assert swapped["current"]["version"] == 2
        after = client.get("/users/1/recommendations").json()
        assert after["model"]["version"] == 2
        assert after["items"] != before["items"], "another seed, other factors"
        client.get("/monitoring/stats")  # the monitor adds what was served (a scrape does not)
        metrics = client.get("/metrics").text
        assert 'movierec_model_info{name="als",source="registry",version="2"} 1.0' in metrics
        assert 'movierec_model_info{name="als",source="registry",version="1"}' not in metrics
        # What version 1 served stays counted under its own label.
        assert 'movierec_served_lists_total{model="als",strategy="personalized",version="1"}' in (
            metrics
        )


def test_registry_versions_with_aliases_and_metrics(
    registry: Registry, synth_data: LoadedData, tmp_path: Path
) -> None:
    settings = _served_registry(registry, synth_data, tmp_path)
    with TestClient(create_app(settings)) as client:
        answer = client.get("/models").json()
        board = client.get("/models/leaderboard").json()
    assert answer["registered_model"] == "movierec"
    assert [v["version"] for v in answer["versions"]] == [2, 1]
    assert [v["aliases"] for v in answer["versions"]] == [[], ["champion"]]
    assert {v["model"] for v in answer["versions"]} == {"als"}
    assert all("ndcg@10" in v["metrics"] for v in answer["versions"])
    # Versions logged outside a pipeline: no pipeline run, an empty leaderboard.
    assert board == {"run_id": None, "started_at": None, "entries": []}


def test_without_a_registry_the_registry_routes_are_empty(client: TestClient) -> None:
    assert client.get("/models").json()["versions"] == []
    assert client.get("/models/leaderboard").json()["entries"] == []


def test_a_registry_version_is_downloaded_once_and_mapped_by_every_worker(
    registry: Registry, synth_data: LoadedData, tmp_path: Path
) -> None:
    settings = _served_registry(registry, synth_data, tmp_path)
    with TestClient(create_app(settings)) as first, TestClient(create_app(settings)) as second:
        models = [c.app.state.service.state.view.model for c in (first, second)]  # type: ignore[attr-defined]
        [folder] = settings.served_models_dir.iterdir()
        assert folder.name.startswith(f"{settings.registered_model}-v1-")
        for model in models:
            assert not model.item_factors.flags.writeable, "mapped from the file, not read"
            assert not model.user_items.indices.flags.writeable
        for client in (first, second):  # both answer from their lists, not one scored alone
            wait_for_top_n(client)
        assert first.get("/users/1/recommendations").json() == (
            second.get("/users/1/recommendations").json()
        )
        downloaded = (folder / "config.json").stat().st_mtime_ns
        assert first.post("/admin/reload", headers={"X-API-Key": API_KEY}).status_code == 200
        assert (folder / "config.json").stat().st_mtime_ns == downloaded, "not downloaded again"
    assert not [p for p in settings.served_models_dir.iterdir() if p.name.startswith(".")]


def test_a_registry_that_fails_keeps_the_served_model(
    registry: Registry, synth_data: LoadedData, tmp_path: Path
) -> None:
    settings = _served_registry(registry, synth_data, tmp_path)
    with TestClient(create_app(settings)) as client:
        (tmp_path / "mlflow.db").write_bytes(b"not a database")
        failed = client.post("/admin/reload", headers={"X-API-Key": API_KEY})
        assert failed.status_code == 503
        assert "cannot load the champion" in failed.json()["detail"]
        assert client.get("/models/current").json()["version"] == 1


def _wait_for(client: TestClient, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/training/{job_id}", headers={"X-API-Key": API_KEY}).json()
        if job["status"] in {"succeeded", "failed"}:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def test_a_job_runs_in_the_background(client: TestClient) -> None:
    admin = {"X-API-Key": API_KEY}
    started = client.post("/training", headers=admin, json={})
    assert started.status_code == 202
    job = started.json()
    assert job["command"][-2:] == ["data", "stats"]
    finished = _wait_for(client, job["job_id"])
    assert finished["status"] == "succeeded", finished["log_tail"]
    assert finished["exit_code"] == 0
    assert any("610" in line for line in finished["log_tail"]), "the child saw the server's store"
    status = client.get("/training/status", headers=admin).json()
    assert status["running"] is None
    assert status["last"]["job_id"] == job["job_id"]
    assert client.get("/training/nope", headers=admin).status_code == 404
    assert "movierec_jobs_total" in client.get("/metrics").text


def test_one_job_at_a_time(ml_settings: Settings) -> None:
    admin = {"X-API-Key": API_KEY}
    with TestClient(create_app(ml_settings, job_commands=quick_commands(seconds=3))) as client:
        first = client.post("/tuning", headers=admin, json={"model": "als", "trials": 2})
        assert first.status_code == 202
        second = client.post("/training", headers=admin)
        assert second.status_code == 409
        assert "one job at a time" in second.json()["detail"]
        unknown = client.post("/tuning", headers=admin, json={"model": "nope", "trials": 2})
        assert unknown.status_code == 422
        assert _wait_for(client, first.json()["job_id"])["status"] == "succeeded"
        again = client.post("/training", headers=admin)
        assert again.status_code == 202
        # Finished here: a job left running would refuse the next test's (one data dir).
        assert _wait_for(client, again.json()["job_id"])["status"] == "succeeded"


def test_the_workers_of_a_server_share_their_jobs(ml_settings: Settings) -> None:
    """Two apps on one data dir, as two workers of a server (or a server and its restart)."""
    admin = {"X-API-Key": API_KEY}
    quick = quick_commands(seconds=2)
    with (
        TestClient(create_app(ml_settings, job_commands=quick)) as first,
        TestClient(create_app(ml_settings, job_commands=quick)) as second,
    ):
        job = first.post("/training", headers=admin).json()
        seen = second.get(f"/training/{job['job_id']}", headers=admin).json()
        assert seen["status"] in {"queued", "running"}
        status = second.get("/training/status", headers=admin).json()
        assert status["running"]["job_id"] == job["job_id"]
        assert second.post("/tuning", headers=admin, json={"model": "als"}).status_code == 409
        assert _wait_for(second, job["job_id"])["status"] == "succeeded"
    with TestClient(create_app(ml_settings, job_commands=quick)) as restarted:
        assert _wait_for(restarted, job["job_id"])["exit_code"] == 0


def test_a_job_whose_server_stopped_reads_as_interrupted(tmp_path: Path) -> None:
    runner = JobRunner({}, tmp_path)
    orphan = Job(job_id="0" * 32, kind="training", command=["x"], status="running")
    runner._write(orphan)  # as left by a server killed mid-job: nobody holds its lock
    found = runner.get(orphan.job_id)
    assert found is not None
    assert found.status == "failed"
    assert found.log_tail[-1] == INTERRUPTED
    assert runner.running() is None, "an interrupted job blocks nothing"
    assert runner.get("../../etc/passwd") is None


def test_a_failing_job_is_reported(ml_settings: Settings) -> None:
    failing = JobCommands(
        training=lambda _: [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"],
        tuning=CLI_COMMANDS.tuning,
    )
    with TestClient(create_app(ml_settings, job_commands=failing)) as client:
        job = client.post("/training", headers={"X-API-Key": API_KEY}).json()
        finished = _wait_for(client, job["job_id"])
        assert finished["status"] == "failed"
        assert finished["exit_code"] == 3
        assert finished["log_tail"] == ["boom"]


def test_the_real_commands(ml_settings: Settings) -> None:
    assert CLI_COMMANDS.training(None)[1:] == ["-m", "movierec.cli", "pipeline", "run"]
    assert CLI_COMMANDS.training("p.yaml")[-2:] == ["--config", "p.yaml"]
    assert CLI_COMMANDS.tuning("als", 5)[3:] == ["tune", "--model", "als", "--trials", "5"]


@pytest.mark.slow
def test_training_runs_the_real_pipeline(
    ml_small: LoadedData, ml_model_dir: Path, datasets_dir: Path, tmp_path: Path
) -> None:
    """``movierec pipeline run`` trains, registers and promotes; the server then serves it."""
    from tests.serving.conftest import ml_settings_in

    settings = ml_settings_in(tmp_path, ml_small, ml_model_dir, datasets_dir=datasets_dir)
    with TestClient(create_app(settings)) as client:
        assert client.get("/models/current").json()["source"] == "local"
        job = client.post("/training", headers={"X-API-Key": API_KEY}).json()
        finished = _wait_for(client, job["job_id"], timeout=300)
        assert finished["status"] == "succeeded", finished["log_tail"]
        current = client.get("/models/current").json()
        assert current["source"] == "registry"
        assert current["version"] == 1

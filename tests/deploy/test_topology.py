"""The production topology, run natively: every service of the Compose file as a real process.

* the ratings store: a PostgreSQL database;
* MLflow: ``mlflow server`` in its own process, its backend store another PostgreSQL database
  (a plain ``postgresql://`` URL, as a deployment writes it), its artifacts in S3 and served
  through it (``--serve-artifacts``: neither the pipeline nor the API holds S3 keys);
* S3: moto's standalone server stands in for MinIO, reached through the settings a MinIO
  deployment uses (``MLFLOW_S3_ENDPOINT_URL``, the AWS keys, a bucket created first);
* the pipeline (``movierec pipeline run``) registers a champion through that server, and the
  API (``movierec serve``) loads it through that server in a fresh process.

Then the failures a deployment meets: the registry stopped (a reload keeps the served model),
unreachable at start or its artifact store unreachable (the API comes up not ready and its log
says why).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import PG_ADMIN_URL, temporary_database
from tests.servers import START_SECONDS, _stop, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

BUCKET = "movierec-models"
API_KEY = "topology-test-admin-key-0123456789"
# What a MinIO deployment gives the MLflow server; moto accepts any keys.
S3_SETTINGS = {
    "AWS_ACCESS_KEY_ID": "movierec",
    "AWS_SECRET_ACCESS_KEY": "movierec-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# MLflow's client retries a failed request 7 times with exponential back-off (minutes); the
# failures below are meant to be told at once.
FAIL_FAST = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}
# A small pipeline: ml-100k, two fast models.
PIPELINE = {
    "dataset": "ml-100k",
    "models": [{"model": "popularity"}, {"model": "item_knn", "params": {"neighbors": 50}}],
}
BIN = Path(sys.executable).parent


@dataclass
class Server:
    """A service process and its address; ``stop`` and ``start`` it again on the same port.

    Its output goes to a file, not a pipe: a chatty server would fill a pipe nobody reads and
    hang on its next log line.
    """

    url: str
    command: list[str]
    env: dict[str, str]
    ready_path: str
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + START_SECONDS
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"{self.command[:4]} did not start: {self.output()[-3000:]}")
            time.sleep(0.2)

    def _answers(self) -> bool:
        try:
            return httpx.get(self.url + self.ready_path, timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            _stop(self.process)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def running(server: Server) -> Iterator[Server]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


def s3_server(logs: Path) -> Server:
    port = free_port()
    command = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    return Server(
        f"http://127.0.0.1:{port}", command, dict(os.environ), "/moto-api/", logs / "s3.log"
    )


def mlflow_server(backend_url: str, s3_url: str, logs: Path) -> Server:
    """``mlflow server`` storing metadata in ``backend_url`` and artifacts in the bucket."""
    port = free_port()
    command = [
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--backend-store-uri", backend_url,
        "--serve-artifacts", "--artifacts-destination", f"s3://{BUCKET}/mlartifacts",
    ]  # fmt: skip
    env = {**os.environ, **S3_SETTINGS, "MLFLOW_S3_ENDPOINT_URL": s3_url}
    return Server(f"http://127.0.0.1:{port}", command, env, "/health", logs / f"mlflow-{port}.log")


def create_bucket(s3_url: str) -> None:
    import boto3

    boto3.client("s3", endpoint_url=s3_url, **_boto_keys()).create_bucket(Bucket=BUCKET)


def bucket_keys(s3_url: str) -> list[str]:
    import boto3

    client = boto3.client("s3", endpoint_url=s3_url, **_boto_keys())
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _boto_keys() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_SETTINGS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_SETTINGS["AWS_SECRET_ACCESS_KEY"],
        "region_name": S3_SETTINGS["AWS_DEFAULT_REGION"],
    }


def movierec_env(data_dir: Path, store_url: str, tracking_uri: str) -> dict[str, str]:
    """A movierec process's environment: no S3 keys (artifacts go through the MLflow server)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOVIEREC_", "AWS_"))}
    return (
        env
        | FAIL_FAST
        | {
            "MOVIEREC_DATA_DIR": str(data_dir),
            "MOVIEREC_DATABASE_URL": store_url,
            "MOVIEREC_MLFLOW_TRACKING_URI": tracking_uri,
            "MOVIEREC_API_KEY": API_KEY,
            "MOVIEREC_DATASETS_DIR": os.environ.get("MOVIEREC_DATASETS_DIR", ""),
        }
    )


def api_server(data_dir: Path, store_url: str, tracking_uri: str) -> Server:
    """``movierec serve`` with a data folder of its own: nothing to fall back on but the
    registry (the pipeline's saved model lies in another folder)."""
    port = free_port()
    command = [str(BIN / "movierec"), "serve", "--port", str(port), "--workers", "1"]
    data_dir.mkdir(parents=True)
    return Server(
        f"http://127.0.0.1:{port}", command, movierec_env(data_dir, store_url, tracking_uri),
        "/ready", data_dir / "api.log",
    )  # fmt: skip


@dataclass(frozen=True)
class Topology:
    store_url: str
    backend_url: str
    logs: Path
    s3: Server
    mlflow: Server
    champion: dict[str, object]


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory, datasets_dir: Path) -> Iterator[Topology]:
    """The services up, and a champion registered by the pipeline through the MLflow server."""
    logs = tmp_path_factory.mktemp("logs")
    with (
        temporary_database(PG_ADMIN_URL, "topology_store") as store_url,
        temporary_database(PG_ADMIN_URL, "topology_mlflow") as mlflow_url,
        running(s3_server(logs)) as s3,
    ):
        create_bucket(s3.url)
        # The form a deployment writes; SQLAlchemy 2.1 reads it as psycopg 3.
        backend_url = mlflow_url.replace("postgresql+psycopg://", "postgresql://")
        with running(mlflow_server(backend_url, s3.url, logs)) as mlflow:
            folder = tmp_path_factory.mktemp("pipeline")
            params = folder / "params.yaml"
            params.write_text(yaml.safe_dump(PIPELINE))
            env = movierec_env(folder / "data", store_url, mlflow.url)
            env["MOVIEREC_DATASETS_DIR"] = str(datasets_dir)
            run = subprocess.run(
                [str(BIN / "movierec"), "pipeline", "run", "-c", str(params), "--json"],
                env=env, capture_output=True, text=True, timeout=600, check=False,
            )  # fmt: skip
            assert run.returncode == 0, run.stderr[-3000:] + mlflow.output()[-3000:]
            yield Topology(store_url, backend_url, logs, s3, mlflow, json.loads(run.stdout))


def test_champion_goes_through_the_server_to_s3_and_a_fresh_api(
    topology: Topology, tmp_path: Path
) -> None:
    assert topology.champion["version"] == 1
    keys = bucket_keys(topology.s3.url)
    # The logged model's files are in the bucket, the project's own format among them.
    assert any(key.endswith("/MLmodel") for key in keys), keys[:20]
    assert any(key.endswith("/config.json") for key in keys), keys[:20]
    with running(api_server(tmp_path / "api", topology.store_url, topology.mlflow.url)) as api:
        ready = httpx.get(f"{api.url}/ready").json()
        assert (ready["model_source"], ready["model_version"]) == ("registry", 1)
        answer = httpx.get(f"{api.url}/users/1/recommendations", params={"k": 5})
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["items"]) == 5
    # The download went through the MLflow server: the API's folder holds the version.
    assert any((tmp_path / "api").rglob("config.json"))


def test_a_reload_with_the_registry_down_keeps_the_served_model(
    topology: Topology, tmp_path: Path
) -> None:
    with running(api_server(tmp_path / "api", topology.store_url, topology.mlflow.url)) as api:
        before = httpx.get(f"{api.url}/users/1/recommendations", params={"k": 5}).json()
        topology.mlflow.stop()
        try:
            reload = httpx.post(
                f"{api.url}/admin/reload", headers={"X-API-Key": API_KEY}, timeout=120
            )
            assert reload.status_code == 503, reload.text
            assert topology.mlflow.url.removeprefix("http://") in reload.text
            assert httpx.get(f"{api.url}/ready").json()["model_version"] == 1
            after = httpx.get(f"{api.url}/users/1/recommendations", params={"k": 5})
            assert after.status_code == 200
            assert after.json()["items"] == before["items"]
        finally:
            topology.mlflow.start()  # the same port, store and bucket: the registry is back
        reload = httpx.post(f"{api.url}/admin/reload", headers={"X-API-Key": API_KEY}, timeout=120)
        assert reload.status_code == 200, reload.text
        assert reload.json()["current"]["version"] == 1


def test_a_start_with_the_registry_down_says_why_it_is_not_ready(
    topology: Topology, tmp_path: Path
) -> None:
    """The API started against a tracking server address nothing answers on."""
    dead_registry = f"http://127.0.0.1:{free_port()}"
    output = _not_ready_output(api_server(tmp_path / "api", topology.store_url, dead_registry))
    assert f"cannot load the champion from the registry at {dead_registry}" in output
    assert "no model to serve" in output


def test_a_start_with_the_artifact_store_down_says_why_it_is_not_ready(
    topology: Topology, tmp_path: Path
) -> None:
    """A second MLflow server on the same metadata whose S3 endpoint answers nothing."""
    dead_s3 = f"http://127.0.0.1:{free_port()}"
    with running(mlflow_server(topology.backend_url, dead_s3, topology.logs)) as cut_off:
        output = _not_ready_output(api_server(tmp_path / "api", topology.store_url, cut_off.url))
    # The registry answered; the artifact download through it is what failed.
    assert f"cannot load the champion from the registry at {cut_off.url}" in output
    assert "mlflow-artifacts/artifacts failed" in output
    assert "no model to serve" in output


def _not_ready_output(api: Server) -> str:
    """Start ``api``, which must come up alive but not ready (503); its log once stopped."""
    api.ready_path = "/health"
    with running(api):
        deadline = time.monotonic() + 120
        while (ready := httpx.get(f"{api.url}/ready")).status_code != 503:
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.5)
        assert "no model is loaded" in ready.text
    return api.output()

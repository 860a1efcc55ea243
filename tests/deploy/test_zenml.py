"""The ZenML pipeline in deploy/zenml, run by ZenML itself in its own environment on ml-100k.

ZenML pins pydantic, click, alembic and OpenTelemetry below what mlflow 3 brings here, so
``make test`` installs it in ``.venv-zenml``. This test gives ZenML a fresh global config and
local SQLite store in a temporary folder (default stack, local orchestrator, no server, no
analytics), runs the pipeline there, whose steps run this environment's ``movierec`` CLI, then
reads back what ZenML recorded and what movierec's MLflow registry holds.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from movierec.config import Settings
from movierec.training import tracking
from movierec.training.pipeline import FINGERPRINT_TAG

ROOT = Path(__file__).parents[2]
PIPELINE = ROOT / "deploy" / "zenml" / "pipeline.py"
ZENML_PYTHON = Path(os.environ.get("MOVIEREC_ZENML_PYTHON", ROOT / ".venv-zenml/bin/python"))
# The steps call movierec's CLI of the environment running this test.
MOVIEREC_CLI = Path(sys.executable).parent / "movierec"
STEPS = ["ingest", "snapshot", "train"]

pytestmark = pytest.mark.slow  # about a minute: a real ZenML run of real training

# What ZenML's own store says about a run, read by a fresh process (so it was persisted).
READ_RUN = """
import json, sys
from zenml.client import Client
run = Client().get_pipeline_run(sys.argv[1])
print(json.dumps({
    "pipeline": run.pipeline.name,
    "status": str(run.status),
    "parameters": run.config.parameters,
    "steps": {
        name: {
            "status": str(step.status),
            "started": step.start_time.isoformat(),
            "ended": step.end_time.isoformat(),
            "outputs": {key: [a.load() for a in found] for key, found in step.outputs.items()},
            "metadata": dict(step.run_metadata),
        }
        for name, step in run.steps.items()
    },
}, default=str))
"""

# Two fast models: enough for a leaderboard and a winner in seconds.
PARAMS = {
    "dataset": "ml-100k",
    "protocol": "user_temporal",
    "split": {"test_fraction": 0.2, "min_ratings": 5},
    "evaluation": {"ks": [10]},
    "models": [{"model": "popularity"}, {"model": "ease"}],
}


def _last_json_line(text: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(text.strip().splitlines()[-1])
    return found


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not ZENML_PYTHON.exists():
        reason = (
            f"no ZenML interpreter at {ZENML_PYTHON}: `make test` creates .venv-zenml "
            "(ZenML cannot share the project's environment with mlflow 3)"
        )
        if os.environ.get("CI") == "true":  # make test always builds it: a skip would hide it
            pytest.fail(reason)
        pytest.skip(reason)
    return tmp_path_factory.mktemp("zenml")


@pytest.fixture(scope="module")
def env(workdir: Path, datasets_dir: Path) -> dict[str, str]:
    # Nothing of the caller's ZenML, MLflow or movierec configuration leaks into the run.
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("MOVIEREC_", "ZENML_", "MLFLOW_"))
    }
    return {
        **clean,
        "ZENML_CONFIG_PATH": str(workdir / "zenml"),
        "ZENML_ANALYTICS_OPT_IN": "false",
        "MOVIEREC_DATA_DIR": str(workdir / "data"),
        "MOVIEREC_DATASETS_DIR": str(datasets_dir),
        "MOVIEREC_CLI": str(MOVIEREC_CLI),
    }


@pytest.fixture(scope="module")
def run(workdir: Path, env: dict[str, str]) -> dict[str, Any]:
    """One pipeline run by ZenML, and what ZenML's store recorded of it."""
    params = workdir / "params.yaml"
    params.write_text(yaml.safe_dump(PARAMS))
    done = subprocess.run(
        [str(ZENML_PYTHON), str(PIPELINE), "--config", str(params)],
        cwd=workdir,  # no .env of the checkout is read by the steps' movierec
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    launched = _last_json_line(done.stdout)
    # A file, not `-c`: ZenML resolves its sources (materializers) from the main module's folder.
    reader = workdir / "read_run.py"
    reader.write_text(READ_RUN)
    read = subprocess.run(
        [str(ZENML_PYTHON), str(reader), launched["run_id"]],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert read.returncode == 0, read.stderr[-3000:]
    return {"launched": launched, "params": str(params), **_last_json_line(read.stdout)}


def test_zenml_recorded_the_run_and_every_step_as_completed(run: dict[str, Any]) -> None:
    assert run["launched"]["status"] == "completed"
    assert run["pipeline"] == "movierec_training"
    assert run["status"] == "completed"
    assert run["parameters"] == {"config": run["params"]}
    steps = run["steps"]
    assert set(steps) == set(STEPS)
    assert all(steps[name]["status"] == "completed" for name in STEPS)
    # Each step starts once the one it depends on has ended.
    for before, after in itertools.pairwise(STEPS):
        assert steps[before]["ended"] <= steps[after]["started"], (before, after)


def test_the_steps_artifacts_are_movierecs_answers(run: dict[str, Any]) -> None:
    steps = run["steps"]
    (ingested,) = steps["ingest"]["outputs"]["ingest_report"]
    assert ingested["store"]["rows"] == 100_000
    (manifest,) = steps["snapshot"]["outputs"]["snapshot"]
    assert manifest["n_ratings"] == 100_000
    (result,) = steps["train"]["outputs"]["pipeline_result"]
    assert result["snapshot_hash"] == manifest["content_hash"]
    assert not result["skipped"]
    assert {row["model"] for row in result["leaderboard"]} == {"popularity", "ease"}
    assert result["decision"]["decision"] == "champion"  # the first version of a fresh registry
    metadata = steps["train"]["metadata"]
    assert (metadata["winner"], metadata["version"]) == (result["winner"], result["version"])


def test_the_champion_is_registered_in_mlflow(
    run: dict[str, Any], workdir: Path, datasets_dir: Path
) -> None:
    settings = Settings(_env_file=None, data_dir=workdir / "data", datasets_dir=datasets_dir)
    champion = tracking.version_by_alias(settings, "champion")
    assert champion is not None
    (result,) = run["steps"]["train"]["outputs"]["pipeline_result"]
    assert champion.version == result["version"]
    assert champion.model == result["winner"]
    assert champion.tags[FINGERPRINT_TAG] == result["fingerprint"]

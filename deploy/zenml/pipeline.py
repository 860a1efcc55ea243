"""ZenML pipeline: movierec's training pipeline, for deployments that orchestrate with ZenML.

The same stages as ``movierec pipeline run`` and ``dvc.yaml``, each a ZenML step that runs
movierec's own CLI command, so there is still one implementation of every stage:

    ingest    movierec ingest movielens <dataset of the params file>
    snapshot  movierec snapshot            (the store to content-hashed parquet)
    train     movierec pipeline run --skip-ingest
              (split, fit and evaluate every model, log to MLflow, register the winner, promote
              it only if it beats the champion; idempotent on unchanged data and params)

Each step's JSON answer is a ZenML artifact (the ingest report, the snapshot manifest, the
leaderboard with the registered version and its promotion decision), and the headline figures are
step metadata, so ZenML's dashboard shows what every run did; MLflow stays movierec's tracking and
registry store, as everywhere else.

Why a subprocess and not ``run_pipeline()``: ZenML pins pydantic, click, alembic, docker and
OpenTelemetry below the versions mlflow 3 brings into movierec's environment, so ZenML runs from
its own environment (``make zenml`` builds ``.venv-zenml``) and calls movierec's. Why split, fit,
evaluate, log and register are one step: ``run_pipeline`` holds the data dir's lock and the run's
fingerprint across them (the promotion decision needs the split the models were scored on);
cutting them into steps would mean re-implementing that glue here.

Run it with ZenML's interpreter, the ``MOVIEREC_*`` environment of the API (database URL, MLflow
tracking URI, data dir) and, when movierec's CLI is not on ``PATH``, ``MOVIEREC_CLI``::

    MOVIEREC_CLI=.venv/bin/movierec .venv-zenml/bin/python deploy/zenml/pipeline.py \
        --config params.yaml

The local orchestrator runs the steps in this process, so they inherit that environment; a
remote orchestrator's step image needs movierec installed and the same variables.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import yaml
from zenml import log_metadata, pipeline, step

# Long enough for a full-size retraining; a hung store or tracking server still ends the step.
STAGE_TIMEOUT_S = 6 * 3600


def _movierec_cli() -> str:
    configured = os.environ.get("MOVIEREC_CLI")
    found = configured or shutil.which("movierec")
    if not found:
        raise RuntimeError(
            "movierec's CLI is not on PATH: set MOVIEREC_CLI to the `movierec` executable of "
            "movierec's environment (e.g. .venv/bin/movierec)"
        )
    return found


def _movierec(*args: str) -> Any:
    """Run one movierec command with ``--json`` and return its answer."""
    command = [_movierec_cli(), *args, "--json"]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=STAGE_TIMEOUT_S, check=False
    )
    if done.stderr:
        # movierec's progress and MLflow's messages: kept in the ZenML step's logs.
        print(done.stderr.rstrip(), file=sys.stderr)
    if done.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(command)}` failed (exit {done.returncode}): {done.stderr[-2000:]}"
        )
    return json.loads(done.stdout)


@step
def ingest(config: str) -> Annotated[dict[str, Any], "ingest_report"]:
    """Load the params file's MovieLens data set into the ratings store (a no-op when loaded)."""
    dataset = (yaml.safe_load(Path(config).read_text()) or {}).get("dataset")
    if dataset is None:
        # As `movierec pipeline run`: no data set means training on the store as it is.
        return {"source": None, "skipped_reason": f"{config} names no dataset: the store as is"}
    report: dict[str, Any] = _movierec("ingest", "movielens", str(dataset))
    log_metadata(metadata={"dataset": str(dataset), "rows": report["store"]["rows"]})
    return report


@step
def snapshot(ingest_report: dict[str, Any]) -> Annotated[dict[str, Any], "snapshot"]:
    """Export the store to parquet named by its content hash: what this run trains on."""
    del ingest_report  # an input only to order the steps: the snapshot follows the ingest
    manifest: dict[str, Any] = _movierec("snapshot")
    log_metadata(
        metadata={
            "content_hash": manifest["content_hash"],
            "n_ratings": manifest["n_ratings"],
            "n_users": manifest["n_users"],
            "n_items": manifest["n_items"],
        }
    )
    return manifest


@step
def train(config: str, snapshot: dict[str, Any]) -> Annotated[dict[str, Any], "pipeline_result"]:
    """Split, fit and evaluate every model, log to MLflow, register and promote the winner."""
    result: dict[str, Any] = _movierec("pipeline", "run", "--config", config, "--skip-ingest")
    # The pipeline snapshots the store again (the same hash unless ratings arrived meanwhile,
    # then it trains on the newer data): both are recorded.
    metadata: dict[str, Any] = {
        "fingerprint": result["fingerprint"],
        "snapshot_hash": result["snapshot_hash"],
        "snapshot_step_hash": snapshot["content_hash"],
        "skipped": result["skipped"],
    }
    if result["winner"] is not None:
        metadata["winner"] = result["winner"]
    if result["version"] is not None:
        metadata["version"] = result["version"]
    if result["decision"] is not None:
        metadata["decision"] = result["decision"]["decision"]
        metadata[result["decision"]["metric"]] = result["decision"]["candidate_score"]
    log_metadata(metadata=metadata)
    return result


# Never cached: the store changes outside ZenML (ratings posted to the API), and movierec's
# pipeline is idempotent itself (an unchanged fingerprint trains nothing).
@pipeline(enable_cache=False)
def movierec_training(config: str) -> None:
    """ingest -> snapshot -> train (split, fit, evaluate, log, register, promote)."""
    report = ingest(config)
    manifest = snapshot(report)
    train(config, manifest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--config", default="params.yaml", help="the pipeline's params.yaml")
    args = parser.parse_args(argv)
    # Absolute: it is recorded as the run's parameter, and read by the steps' processes.
    config = str(Path(args.config).resolve())
    run = movierec_training(config=config)
    if run is None:  # ZenML returns no run for a schedule: the orchestrator starts them later
        print(json.dumps({"run_id": None, "status": "scheduled"}))
        return 0
    # Last line, machine-readable: what ran (ZenML's own store holds the details).
    print(json.dumps({"run_id": str(run.id), "run_name": run.name, "status": str(run.status)}))
    return 0 if str(run.status) == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())

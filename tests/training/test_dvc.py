"""The project's dvc.yaml run by DVC itself on ml-100k: repro, no-op re-run, dag, new params."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]
BIN = Path(sys.executable).parent
SMALL_PARAMS = {
    "dataset": "ml-100k",
    "protocol": "user_temporal",
    "split": {},
    "evaluation": {"ks": [10]},
    "models": [{"model": "popularity"}, {"model": "item_knn"}],
}

pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path: Path, datasets_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if not (BIN / "dvc").exists():
        pytest.fail(f"dvc is not installed in {BIN}: it is a dev dependency")
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(SMALL_PARAMS))
    monkeypatch.setenv("MOVIEREC_DATASETS_DIR", str(datasets_dir))
    _dvc(tmp_path, "init", "--no-scm", "-q")
    return tmp_path


def _dvc(folder: Path, *args: str) -> str:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    for key in ("MOVIEREC_DATA_DIR", "MOVIEREC_MLFLOW_TRACKING_URI", "MOVIEREC_DATABASE_URL"):
        env.pop(key, None)  # the stages use the project folder's own data/
    done = subprocess.run(
        [str(BIN / "dvc"), *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def _metrics(folder: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((folder / "data/pipeline/metrics.json").read_text())
    return loaded


def test_dvc_repro_reproduces_the_pipeline_and_skips_when_nothing_changed(project: Path) -> None:
    _dvc(project, "repro")
    first = _metrics(project)
    assert first["version"] == 1
    assert set(first) == {"version", "popularity", "item_knn"}
    assert (project / "data/mlflow.db").exists()

    again = _dvc(project, "repro")
    assert "Stage 'train' didn't change, skipping" in again
    assert _metrics(project) == first

    dag = _dvc(project, "dag")
    assert "data" in dag
    assert "train" in dag


def test_a_params_change_retrains_and_registers_a_new_version(project: Path) -> None:
    _dvc(project, "repro")
    params = {**SMALL_PARAMS, "models": [{"model": "popularity", "params": {"kind": "count"}}]}
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    output = _dvc(project, "repro")
    assert "Running stage 'train'" in output
    metrics = _metrics(project)
    assert metrics["version"] == 2
    assert set(metrics) == {"version", "popularity"}

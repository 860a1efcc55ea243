"""The Airflow DAG in deploy/airflow, loaded by Airflow itself in its own environment.

Airflow pins a dependency tree of its own that does not sit beside mlflow 3 in one environment,
so ``make test`` installs it in ``.venv-airflow`` and this test asks that interpreter to parse the
DAG folder (a real ``DagBag``); the DAG's shell commands are then checked against this project's
CLI.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from movierec.cli import app

ROOT = Path(__file__).parents[2]
DAG_FOLDER = ROOT / "deploy" / "airflow"
AIRFLOW_PYTHON = Path(os.environ.get("MOVIEREC_AIRFLOW_PYTHON", ROOT / ".venv-airflow/bin/python"))

LOAD_DAGS = """
import json, sys
from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
dags = {
    dag_id: {
        "tasks": {t.task_id: {"command": getattr(t, "bash_command", None),
                              "upstream": sorted(t.upstream_task_ids)} for t in dag.tasks},
        "max_active_runs": dag.max_active_runs,
        "catchup": dag.catchup,
    }
    for dag_id, dag in bag.dags.items()
}
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": dags}))
"""


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    if not AIRFLOW_PYTHON.exists():
        pytest.skip(
            f"no Airflow interpreter at {AIRFLOW_PYTHON}: `make test` creates .venv-airflow "
            "(Airflow cannot share the project's environment with mlflow 3)"
        )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path_factory.mktemp("airflow"))}
    done = subprocess.run(
        [str(AIRFLOW_PYTHON), "-c", LOAD_DAGS, str(DAG_FOLDER)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, dict] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_dag_folder_imports_without_errors(loaded: dict[str, dict]) -> None:
    assert loaded["errors"] == {}
    assert set(loaded["dags"]) == {"movierec_retrain"}


def test_health_check_runs_before_retraining_one_run_at_a_time(loaded: dict[str, dict]) -> None:
    dag = loaded["dags"]["movierec_retrain"]
    assert dag["tasks"]["retrain_if_new_ratings"]["upstream"] == ["health_check"]
    assert dag["tasks"]["health_check"]["upstream"] == []
    assert dag["max_active_runs"] == 1
    assert dag["catchup"] is False


def test_every_command_of_the_dag_is_a_real_cli_command(loaded: dict[str, dict]) -> None:
    runner = CliRunner()
    for task in loaded["dags"]["movierec_retrain"]["tasks"].values():
        for part in task["command"].split("&&"):
            words = shlex.split(part.split(">")[0])
            assert words[0] == "movierec", part
            options_at = next((i for i, w in enumerate(words) if w.startswith("-")), len(words))
            subcommand = words[1:options_at]
            checked = runner.invoke(app, [*subcommand, "--help"])
            assert checked.exit_code == 0, f"{part}: {checked.output}"
            flags = [w.split("=")[0] for w in words if w.startswith("--")]
            for flag in flags:
                assert flag in checked.output, f"{part}: no option {flag}"

"""The pipeline and the train command on the Spark engine: a real local[2] Spark, a real store
and MLflow registry. A Spark job that fails is recorded and promotes nothing; one that succeeds
registers an ALS champion that loads without Spark, fold-in included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from pydantic import ValidationError
from typer.testing import CliRunner

from movierec.cli import app
from movierec.config import Settings
from movierec.data.store import RatingsStore
from movierec.data.synth import generate
from movierec.errors import ConfigError
from movierec.models.als import ALS
from movierec.training import tracking
from movierec.training.pipeline import FAILURE_TAG, ModelSpec, PipelineConfig, run_pipeline

MASTER = "local[2]"
FAST = {"master": MASTER, "blocks": 2, "iterations": 5, "factors": 8}


def _settings(data_dir: Path) -> Settings:
    settings = Settings(_env_file=None, data_dir=data_dir, mlflow_tracking_uri=None)
    with RatingsStore.from_settings(settings) as store:
        store.ingest(generate(120, 80, 4_000, seed=11))
    return settings


def _spark_config(**params: object) -> PipelineConfig:
    return PipelineConfig(models=[ModelSpec(model="als", engine="spark", params=params)])


def test_a_spec_names_its_engine_and_only_als_trains_on_spark() -> None:
    spec = ModelSpec.model_validate({"model": "als", "engine": "spark", "params": FAST})
    assert spec.resolved()["engine"] == "spark"
    assert spec.resolved()["config"]["reg_param"] > 0  # Spark's parameters, every default
    assert "engine" not in ModelSpec(model="als").resolved()  # local fingerprints unchanged
    with pytest.raises(ConfigError, match="spark engine trains als"):
        ModelSpec(model="item_knn", engine="spark")
    with pytest.raises(ValidationError, match="regularization"):  # implicit's, not Spark's
        ModelSpec(model="als", engine="spark", params={"regularization": 20})


def test_a_failed_spark_job_is_recorded_and_promotes_nothing(tmp_path: Path) -> None:
    pytest.importorskip("pyspark", reason="the spark extra is not installed (make spark)")
    settings = _settings(tmp_path)
    with pytest.raises(Exception, match="nonsense://nowhere"):
        run_pipeline(settings, _spark_config(master="nonsense://nowhere"))
    client = MlflowClient(settings.tracking_uri)
    experiment = client.get_experiment_by_name(settings.mlflow_experiment)
    assert experiment is not None
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FAILED"
    assert "nonsense://nowhere" in run.data.tags[FAILURE_TAG]
    assert tracking.list_versions(settings) == []


@pytest.fixture(scope="module")
def spark() -> Iterator[None]:
    """One SparkSession for the tests below (after the failure test, which needs none)."""
    pytest.importorskip("pyspark", reason="the spark extra is not installed (make spark)")
    from movierec.distributed.spark_als import SparkALSConfig, spark_session

    with spark_session(SparkALSConfig(master=MASTER)):
        yield


@pytest.mark.usefixtures("spark")
def test_a_spark_winner_becomes_a_champion_that_loads_without_spark(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    result = run_pipeline(settings, _spark_config(**FAST))
    assert result.decision is not None
    assert result.decision.promoted
    assert result.leaderboard[0].data["engine"] == "spark"
    champion = tracking.load_version_model(settings, tracking.CHAMPION)
    assert type(champion) is ALS
    items, _ = champion.recommend(np.arange(5), k=10)
    assert (items >= 0).all()
    folded, _ = champion.recommend_for_history([0, 1, 2], [5.0, 4.0, 4.5], k=5)
    assert len(set(folded.tolist())) == 5
    assert champion.similar_items(0, k=5)[0].shape == (5,)


@pytest.mark.usefixtures("spark")
def test_train_command_on_spark_reads_the_snapshot(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    env = {"MOVIEREC_DATA_DIR": str(settings.data_dir)}
    out = tmp_path / "model"
    args = ["train", "--engine", "spark", "--master", MASTER, "--spark-source", "snapshot"]
    args += ["--param", "blocks=2", "--param", "iterations=3", "--output", str(out), "--json"]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["params"]["master"] == MASTER
    assert json.loads((out / "config.json").read_text())["model"] == "als"
    assert ALS.load(out).n_users == 120


def test_without_pyspark_the_spark_engine_says_how_to_install_it(tmp_path: Path) -> None:
    """A real environment without PySpark: this venv's packages but pyspark, linked."""
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    bare = tmp_path / "site-packages"
    bare.mkdir()
    for entry in site.iterdir():
        if not entry.name.startswith(("pyspark", "py4j")):
            (bare / entry.name).symlink_to(entry)
    code = (
        f"import site, sys; site.addsitedir({str(bare)!r}); "
        "from movierec.cli import app; sys.argv = ['movierec', *sys.argv[1:]]; app()"
    )
    env = {**os.environ, "MOVIEREC_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-S", "-c", code, "train", "--engine", "spark"],
        capture_output=True,
        check=False,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1
    assert "pip install 'movierec[spark]'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1

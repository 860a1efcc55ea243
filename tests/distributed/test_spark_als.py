"""Spark MLlib's ALS on a real local[2] SparkSession: the model contract, the artifact it saves,
and the executors reading the ratings from the parquet snapshot and from PostgreSQL over JDBC.

One SparkSession serves the whole module (starting one costs seconds); every fit reuses it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyspark", reason="the spark extra is not installed (make spark)")

from movierec.config import Settings
from movierec.data.interactions import Interactions
from movierec.data.snapshot import Snapshot, create_snapshot
from movierec.data.sources import LoadedData
from movierec.data.store import RatingsStore
from movierec.data.synth import generate
from movierec.distributed.spark_als import (
    JDBC_DRIVER_JAR,
    SparkALS,
    SparkALSConfig,
    SparkJobError,
    spark_session,
    use_source,
)
from movierec.models.als import ALS
from tests.conftest import PG_ADMIN_URL, temporary_database
from tests.models.contract import RecommenderContract

MASTER = "local[2]"
# Few blocks and iterations: the data are tiny, and Spark's cost here is per task.
FAST = {"master": MASTER, "blocks": 2, "iterations": 5}


@pytest.fixture(scope="module", autouse=True)
def spark() -> Iterator[None]:
    """The module's one SparkSession; SparkALS fits on it since it runs on the same master."""
    with spark_session(SparkALSConfig(master=MASTER)):
        yield


class TestSparkALSContract(RecommenderContract):
    """Spark's ALS honours every model's contract (fold-in and similar movies included), through
    the ALS artifact it saves."""

    def make_model(self) -> SparkALS:
        return SparkALS(factors=4, reg_param=0.05, alpha=5.0, **FAST)


def test_another_master_in_the_same_process_is_a_clear_error(small: Interactions) -> None:
    """One SparkContext per process: Spark would silently train on the running one."""
    with pytest.raises(SparkJobError, match=r"already runs Spark on 'local\[2\]'"):
        SparkALS(master="local[1]").fit(small)


def _small() -> Interactions:
    data = generate(80, 60, 2_000, seed=5)
    return Interactions.from_frames(data.ratings, data.movies, rating_scale=data.rating_scale)


@pytest.fixture(scope="module")
def small() -> Interactions:
    return _small()


@pytest.fixture(scope="module")
def fitted(small: Interactions) -> SparkALS:
    return SparkALS(factors=8, **FAST).fit(small)


def test_the_saved_artifact_is_movierecs_als(fitted: SparkALS, tmp_path: Path) -> None:
    folder = fitted.save_for_serving(tmp_path / "model")
    meta = json.loads((folder / "config.json").read_text())
    assert meta["model"] == "als"
    loaded = ALS.load(folder)
    assert loaded.user_factors is not None
    assert loaded.item_factors is not None
    assert loaded.user_factors.dtype == loaded.item_factors.dtype == np.float32
    assert loaded.user_factors.shape == (fitted.n_users, 8)
    np.testing.assert_array_equal(loaded.item_ids, fitted.item_ids)
    # Fold-in solves ALS's constant-penalty step: Spark's per-rating penalty at a median user.
    counts = np.diff(fitted.user_items.indptr) if fitted.user_items is not None else []
    assert loaded.config.regularization == pytest.approx(0.1 * float(np.median(counts)))
    users = np.arange(fitted.n_users)
    np.testing.assert_array_equal(loaded.recommend(users, k=5)[0], fitted.recommend(users, k=5)[0])


def test_a_known_users_factors_are_close_to_a_fold_in_of_their_history(
    fitted: SparkALS, small: Interactions
) -> None:
    """Fold-in answers like the trained user for a typical history (Spark's exact step, the
    export's penalty matched at the median history length)."""
    user = int(np.argsort(np.diff(small.matrix.indptr))[small.n_users // 2])
    row = small.matrix[user]
    trained = fitted.recommend(user, k=10)[0]
    folded = fitted.recommend_for_history(row.indices, row.data, k=10)[0]
    assert len(set(trained) & set(folded)) >= 7


def test_the_executors_read_the_parquet_snapshot(
    tmp_path: Path, fitted: SparkALS, small: Interactions
) -> None:
    """The same ratings read by Spark from the snapshot give the same model as sent from the
    driver (same seed, same blocks)."""
    snapshot = _snapshot_of(generate(80, 60, 2_000, seed=5), tmp_path)
    inter = Interactions.from_snapshot(snapshot.path)
    model = SparkALS(factors=8, **FAST)
    use_source(model, "snapshot", snapshot, "sqlite://")
    model.fit(inter)
    users = np.arange(inter.n_users)
    np.testing.assert_array_equal(model.recommend(users, k=5)[0], fitted.recommend(users, k=5)[0])


def _snapshot_of(data: LoadedData, folder: Path, url: str | None = None) -> Snapshot:
    settings = Settings(_env_file=None, data_dir=folder, database_url=url)
    with RatingsStore.from_settings(settings) as store:
        store.ingest(data)
        return create_snapshot(store, settings.snapshots_dir)


@pytest.mark.postgres
@pytest.mark.skipif(not Path(JDBC_DRIVER_JAR).exists(), reason="no JDBC driver (make spark)")
def test_the_executors_read_postgresql_over_jdbc(tmp_path: Path, fitted: SparkALS) -> None:
    """The store in PostgreSQL, read by the executors over JDBC (Debian's driver jar)."""
    with temporary_database(PG_ADMIN_URL, "spark") as url:
        snapshot = _snapshot_of(generate(80, 60, 2_000, seed=5), tmp_path, url)
        model = SparkALS(factors=8, **FAST)
        use_source(model, "jdbc", snapshot, url)
        model.fit(Interactions.from_snapshot(snapshot.path))
    users = np.arange(model.n_users)
    np.testing.assert_array_equal(model.recommend(users, k=5)[0], fitted.recommend(users, k=5)[0])

"""Fixtures of the API tests: a real store, a real fitted model, the real app over HTTP.

* ``ml_settings``: ml-latest-small in a SQLite store, an ALS model saved in the models folder
  (no registry: the app serves the saved folder).
* ``registry``: an MLflow registry under a temporary folder with two ALS versions fitted on a
  small synthetic data set, version 1 the champion.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from movierec.config import Settings
from movierec.data.interactions import Interactions
from movierec.data.sources import LoadedData, load_movielens
from movierec.data.split import make_split
from movierec.data.store import RatingsStore
from movierec.data.synth import generate
from movierec.evaluation.protocol import EvaluationConfig, evaluate
from movierec.models import create_model
from movierec.models.base import Recommender
from movierec.serving.app import create_app
from movierec.serving.jobs import JobCommands

API_KEY = "test-key-0123456789abcdef"
SMALL_ALS = {"factors": 16, "iterations": 6}


def settings_for(data_dir: Path, **overrides: object) -> Settings:
    """Settings isolated from the machine's environment and ``.env``."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": None,
        "mlflow_tracking_uri": None,
        "api_key": API_KEY,
        "environment": "development",
        "max_k": 50,
        "max_batch": 100,
        "max_body_bytes": 20_000,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type,call-arg]


def quick_commands(seconds: float = 0.0) -> JobCommands:
    """Job commands that exist today and finish fast: ``movierec data stats`` after a pause."""
    import sys

    def command(*_: object) -> list[str]:
        pause = [sys.executable, "-c", f"import time; time.sleep({seconds})"]
        stats = [sys.executable, "-m", "movierec.cli", "data", "stats"]
        return stats if seconds == 0 else pause

    return JobCommands(training=command, tuning=command)


def fit_als(data: LoadedData, seed: int = 0) -> Recommender:
    inter = Interactions.from_frames(data.ratings, data.movies, rating_scale=data.rating_scale)
    return create_model("als", seed=seed, **SMALL_ALS).fit(inter)


@pytest.fixture(scope="session")
def ml_small(datasets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> LoadedData:
    settings = settings_for(tmp_path_factory.mktemp("ml-cache"), datasets_dir=datasets_dir)
    return load_movielens("ml-latest-small", settings, progress=False)


@pytest.fixture(scope="session")
def ml_model_dir(ml_small: LoadedData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ALS model fitted on all of ml-latest-small, saved once for the session."""
    model = fit_als(ml_small)
    folder = tmp_path_factory.mktemp("ml-model") / "als"
    model.save(folder)
    return folder


def ml_settings_in(
    data_dir: Path, ml_small: LoadedData, model_dir: Path, **overrides: object
) -> Settings:
    """A data dir holding ml-latest-small in its SQLite store and the saved ALS model."""
    import shutil

    settings = settings_for(data_dir, **overrides)
    with RatingsStore(settings.store_url) as store:
        store.ingest(ml_small)
    shutil.copytree(model_dir, settings.models_dir / "als")
    return settings


@pytest.fixture(scope="module")
def ml_settings(
    ml_small: LoadedData, ml_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    return ml_settings_in(tmp_path_factory.mktemp("served"), ml_small, ml_model_dir)


@pytest.fixture(scope="module")
def client(ml_settings: Settings) -> Iterator[TestClient]:
    """The real app (lifespan run: store opened, model loaded, top-N lists computed) behind a
    test client: with the lists complete, two requests for a user get the same answer (a list
    scored in one batch and a list scored alone may differ in the last bits of a score)."""
    with TestClient(create_app(ml_settings, job_commands=quick_commands())) as test_client:
        wait_for_top_n(test_client)
        yield test_client


def wait_for_top_n(client: TestClient, timeout: float = 60.0) -> None:
    """Until every known user's top-N list is computed, as ``/ready`` says."""
    deadline = time.monotonic() + timeout
    while client.get("/ready").json()["top_n_ready"] < 1.0:
        assert time.monotonic() < deadline, "the top-N lists were not computed in time"
        time.sleep(0.05)


@pytest.fixture
def admin() -> dict[str, str]:
    return {"X-API-Key": API_KEY}


# ---------------------------------------------------------------- registry


@dataclass(frozen=True)
class Registry:
    """An MLflow registry with two versions of a model fitted on ``data``."""

    data_dir: Path
    data: LoadedData

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.data_dir / 'mlflow.db'}"


SYNTH = {"n_users": 300, "n_items": 200, "n_ratings": 9_000}


@pytest.fixture(scope="session")
def synth_data() -> LoadedData:
    return generate(**SYNTH, seed=3)


@pytest.fixture(scope="session")
def registry(synth_data: LoadedData, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """Versions 1 and 2 (different seeds) registered; version 1 is the champion."""
    from movierec.training import tracking

    data_dir = tmp_path_factory.mktemp("registry")
    settings = settings_for(data_dir)
    inter = Interactions.from_frames(
        synth_data.ratings, synth_data.movies, rating_scale=synth_data.rating_scale
    )
    [split] = make_split("random", inter, test_fraction=0.1, seed=0)
    for seed in (1, 2):
        model = create_model("als", seed=seed, **SMALL_ALS)
        report = evaluate(model, split, EvaluationConfig(ks=(10,)))
        model.fit(inter)  # serve a model of all the data, as the pipeline does
        tracking.track_training(settings, model, report, settings.models_dir / f"als-{seed}")
    tracking.promote(settings, 1)
    return Registry(data_dir, synth_data)

"""A real Prometheus (Debian's) with the project's prometheus.yml and rule files scrapes a real
``movierec serve`` (one worker, then two: multiprocess mode) that serves the champion of a real
pipeline run on ml-latest-small. The test makes traffic of every kind (known, unknown and
anonymous users, similar movies, empty and short lists, errors, ratings on shown movies, a
failed and a succeeded training job through the API, a drift check), then reads the figures back
through PromQL: the recommendation counts match what was served, every recording rule has a
value, the training-failure alert fires, and every query of every panel of every Grafana
dashboard returns data."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from movierec.config import Settings
from movierec.training.pipeline import ModelSpec, PipelineConfig, run_pipeline
from tests.deploy.prometheus_tools import (
    panel_queries,
    prometheus_server,
    query,
    recording_rules,
    scrape_config,
    tool,
)
from tests.servers import api_server
from tests.serving.conftest import API_KEY, settings_for

pytestmark = [pytest.mark.slow, pytest.mark.network]

# A rating predictor (it has an RMSE, the Training dashboard shows it) that folds new users in.
PIPELINE = PipelineConfig(
    dataset="ml-latest-small",
    models=[ModelSpec(model="svd", params={"n_factors": 16, "n_epochs": 10})],
)
ADMIN = {"X-API-Key": API_KEY}
KNOWN_USERS = range(1, 41)
UNKNOWN_USER = 10_000_000
WAIT_SECONDS = 150  # the online figures are computed in the background; a job takes a while


@dataclass
class Traffic:
    """What the test asked the API for, to compare with what Prometheus reads."""

    strategies: Counter[str]
    ratings: int = 0

    def __add__(self, other: Traffic) -> Traffic:
        return Traffic(self.strategies + other.strategies, self.ratings + other.ratings)


@pytest.fixture(scope="module")
def settings(datasets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    tool("prometheus")  # skip before the pipeline runs when there is no Prometheus
    settings = settings_for(tmp_path_factory.mktemp("live-api"), datasets_dir=datasets_dir)
    run_pipeline(settings, PIPELINE)
    return settings


@pytest.fixture(scope="module")
def pipeline_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's pipeline as a config file, for a training job through the API."""
    path = tmp_path_factory.mktemp("live-config") / "params.yaml"
    path.write_text(yaml.safe_dump(PIPELINE.model_dump(mode="json")))
    return path


@pytest.fixture(params=[1, 2], ids=["one-worker", "two-workers"])
def monitored(
    request: pytest.FixtureRequest, settings: Settings, tmp_path: Path
) -> Iterator[tuple[str, str, str]]:
    """(API address, Prometheus address, scrape job name) of a server and the Prometheus
    scraping it every second."""
    workers: int = request.param
    job = "movierec-api" if workers == 1 else "movierec-api-workers"
    with api_server(settings, workers=workers) as api:
        config = scrape_config({job: api.removeprefix("http://")})
        with prometheus_server(config, tmp_path) as prometheus:
            yield api, prometheus, job


def test_prometheus_reads_the_served_figures_back(
    monitored: tuple[str, str, str], pipeline_file: Path
) -> None:
    api, prometheus, job = monitored
    selector = f'job="{job}"'
    with httpx.Client(base_url=api, timeout=60) as client:
        failed = start_job(client, "/does/not/exist.yaml")
        traffic = make_traffic(client)
        assert finish(client, failed) == "failed"
        assert finish(client, start_job(client, str(pipeline_file))) == "succeeded"
        check_drift(client)
        traffic += make_traffic(client)

    served = wait_for(
        prometheus,
        f"sum by (strategy) (movierec_recommendations_total{{{selector}}})",
        lambda result: by_label(result, "strategy") == dict(traffic.strategies),
    )
    assert by_label(served, "strategy") == dict(traffic.strategies)
    ingested = query(prometheus, f"sum(movierec_ratings_ingested_total{{{selector}}})")
    assert value(ingested[0]) == traffic.ratings

    # The online figures are computed in the background, not at once: wait until scraped.
    wait_for(prometheus, f"movierec_online_hit_rate{{{selector}}}", bool)
    wait_for(
        prometheus,
        f'ALERTS{{alertname="MovierecTrainingJobFailed", alertstate="firing", {selector}}}',
        bool,
    )
    assert query(prometheus, f'ALERTS{{alertname="MovierecApiDown", {selector}}}') == []

    # A rate needs two scrapes of a counter that moved in between: on a loaded machine the
    # first scrape may come after all the traffic above, so some more once the series exist.
    with httpx.Client(base_url=api, timeout=60) as client:
        make_traffic(client)
    empty_rules = [rule["record"] for rule in recording_rules()
                   if not finite(wait_for(prometheus, f"{rule['record']}{{{selector}}}",
                                          finite))]  # fmt: skip
    assert empty_rules == [], "recording rules without a value"

    empty_panels = [
        f"{q.dashboard} / {q.panel}: {q.concrete(job)}"
        for q in panel_queries()
        if not finite(query(prometheus, q.concrete(job)))
    ]
    assert empty_panels == [], "panel queries without data:\n" + "\n".join(empty_panels)


# ---------------------------------------------------------------- traffic


def make_traffic(client: httpx.Client) -> Traffic:
    """Requests of every kind; returns the lists served by strategy and the ratings stored."""
    strategies: Counter[str] = Counter()

    def recommend(path: str, **params: Any) -> dict[str, Any]:
        answer = client.get(path, params=params)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        strategies[body["strategy"]] += 1
        return body

    shown = {user: recommend(f"/users/{user}/recommendations", k=10) for user in KNOWN_USERS}
    recommend(f"/users/{UNKNOWN_USER}/recommendations", k=10)
    # Lists a filter empties (no movie of 1800) or shortens (few of 1915).
    recommend("/users/1/recommendations", k=10, year_min=1800, year_max=1800)
    recommend("/users/1/recommendations", k=50, year_min=1915, year_max=1915)
    anonymous = client.post("/recommend/anonymous", json={"liked": [1, 260, 1196], "k": 10})
    assert anonymous.status_code == 200, anonymous.text
    strategies[anonymous.json()["strategy"]] += 1
    for movie in (1, 260):
        assert client.get(f"/movies/{movie}/similar", params={"k": 10}).status_code == 200
        strategies["similar"] += 1
    assert client.get("/movies/999999999").status_code == 404
    assert client.get("/users/1/recommendations", params={"k": 0}).status_code == 422

    # Half the known users rate the first movie they were shown: online feedback.
    ratings = [
        {"user_id": user, "movie_id": body["items"][0]["movie_id"], "rating": 5.0 - user % 2}
        for user, body in shown.items()
        if user % 2 == 0 and body["items"]
    ]
    # And a crowd of new raters: enough new ratings for drift to be judged (50 at least).
    ratings += [
        {"user_id": 900_000 + n % 12, "movie_id": movie, "rating": 1.0}
        for n, movie in enumerate([1, 2, 3, 6, 10, 16, 19, 21, 25, 32] * 6)
    ]
    stored = client.post("/ratings", json={"ratings": ratings})
    assert stored.status_code == 201, stored.text
    return Traffic(strategies, len(ratings))


def start_job(client: httpx.Client, config: str) -> str:
    answer = client.post("/training", json={"config": config}, headers=ADMIN)
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["job_id"]
    return job_id


def finish(client: httpx.Client, job_id: str) -> str:
    """The job's final status, once it has one."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        job = client.get(f"/training/{job_id}", headers=ADMIN).json()
        if job["status"] in {"succeeded", "failed"}:
            status: str = job["status"]
            return status
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish in {WAIT_SECONDS} s")


def check_drift(client: httpx.Client) -> None:
    """Ask for the drift verdict (the API computes it; /metrics reports the latest)."""
    answer = client.get("/monitoring/drift")
    assert answer.status_code == 200, answer.text


# ---------------------------------------------------------------- PromQL results


def wait_for(
    prometheus: str, promql: str, done: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    """``promql``'s result once ``done`` says it is complete (scrapes and rule evaluations
    come every second), or the last one after the wait."""
    deadline = time.monotonic() + WAIT_SECONDS
    result = query(prometheus, promql)
    while not done(result) and time.monotonic() < deadline:
        time.sleep(1)
        result = query(prometheus, promql)
    return result


def value(sample: dict[str, Any]) -> float:
    return float(sample["value"][1])


def by_label(result: list[dict[str, Any]], label: str) -> dict[str, int]:
    return {sample["metric"][label]: round(value(sample)) for sample in result}


def finite(result: list[dict[str, Any]]) -> bool:
    """Whether ``result`` has a sample with a number (NaN: a ratio of nothing)."""
    return any(math.isfinite(value(sample)) for sample in result)

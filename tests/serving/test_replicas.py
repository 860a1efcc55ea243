"""API replicas on several hosts, as real processes: two ``serve`` replicas with data dirs of
their own over one PostgreSQL store and one MLflow registry, behind a real nginx running the
deployment's config (:mod:`tests.replicas`); the replicas' channel is PostgreSQL's LISTEN/NOTIFY,
then a Redis server of the test's own.

What users of several replicas rely on: a rating posted through nginx is used by every replica's
next answer within a second; a promotion reaches every replica without a failed request; a
replica killed under load costs the clients nothing (nginx retries the other), and when it comes
back it knows what was rated meanwhile; a channel that goes down leaves the replicas serving and
saying so (``/ready``, ``/metrics``), and they catch up when it returns.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from movierec.config import Settings
from movierec.data.sources import LoadedData
from movierec.data.store import RatingsStore
from movierec.serving.replicas.postgres import APPLICATION_NAME
from tests.conftest import PG_ADMIN_URL, temporary_database
from tests.replicas import nginx, redis_server
from tests.servers import api_server_process, free_port
from tests.serving.conftest import API_KEY, Registry, settings_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PROPAGATION_S = 1.0  # the bound: another replica's next answer uses a rating within it


@dataclass
class Cluster:
    """Two replicas (and nginx, when asked) until ``stack`` closes."""

    stack: ExitStack
    settings: list[Settings]
    ports: list[int]
    workers: list[int]
    processes: list[Any] = field(default_factory=list)
    nginx_url: str = ""

    def url(self, replica: int) -> str:
        return f"http://127.0.0.1:{self.ports[replica]}"

    def start(self, replica: int) -> None:
        _, process = self.stack.enter_context(
            api_server_process(
                self.settings[replica], self.workers[replica], port=self.ports[replica]
            )
        )
        if replica < len(self.processes):
            self.processes[replica] = process
        else:
            self.processes.append(process)


@pytest.fixture(scope="module")
def store_url(synth_data: LoadedData) -> Iterator[str]:
    """A PostgreSQL database of this module's own, holding the registry's data set."""
    with temporary_database(PG_ADMIN_URL, "replicas") as url:
        with RatingsStore(url) as store:
            store.ingest(synth_data)
        yield url


@pytest.fixture(scope="module")
def registry_copy(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's registry, copied: the promotion test changes its champion."""
    folder = tmp_path_factory.mktemp("replica-registry")
    shutil.copy(registry.data_dir / "mlflow.db", folder / "mlflow.db")
    return folder


def cluster(
    tmp: Path,
    store_url: str,
    registry: Path,
    stack: ExitStack,
    workers: tuple[int, int] = (1, 1),
    **overrides: Any,
) -> Cluster:
    settings = [
        settings_for(
            tmp / f"replica-{n}",
            database_url=store_url,
            mlflow_tracking_uri=f"sqlite:///{registry / 'mlflow.db'}",
            **overrides,
        )
        for n in range(2)
    ]
    found = Cluster(stack, settings, [free_port(), free_port()], list(workers))
    for replica in range(2):
        found.start(replica)
    return found


@pytest.fixture(scope="class")
def pg_cluster(
    store_url: str, registry_copy: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("pg-replicas")
    with ExitStack() as stack:
        # Replica 0 with two workers: its local feed and the channel together, its own
        # messages skipped on the channel.
        found = cluster(
            tmp, store_url, registry_copy, stack, workers=(2, 1), replica_feed="postgres",
            champion_poll_interval=0.5,
        )  # fmt: skip
        upstreams = [f"127.0.0.1:{port}" for port in found.ports]
        found.nginx_url = stack.enter_context(nginx(upstreams, free_port(), tmp / "nginx"))
        yield found


@pytest.fixture(scope="module")
def users(synth_data: LoadedData) -> list[int]:
    """Users the model knows, one per test (a rating makes a user fresh for good)."""
    return sorted({int(u) for u in synth_data.ratings["user_id"].unique()})


# ---------------------------------------------------------------- helpers


def recommend(url: str, user: int) -> tuple[str, list[int]]:
    """The strategy and movies of ``user``'s recommendations from ``url``."""
    answer = httpx.get(f"{url}/users/{user}/recommendations", params={"k": 10}, timeout=10)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return body["strategy"], [item["movie_id"] for item in body["items"]]


def post_rating(url: str, user: int, movie: int) -> None:
    answer = httpx.post(
        f"{url}/ratings", json={"user_id": user, "movie_id": movie, "rating": 5.0}, timeout=10
    )
    assert answer.status_code == 201, answer.text


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> float:
    """Seconds until ``check`` holds (asked every 10 ms); fails after ``seconds``."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, f"{what} not within {seconds} s"
        time.sleep(0.01)
    return time.monotonic() - started


def uses_rating(url: str, user: int, movie: int) -> Callable[[], bool]:
    """Whether ``url`` folds the user's new rating in (and so no longer recommends it)."""

    def check() -> bool:
        strategy, movies = recommend(url, user)
        return strategy == "folded_in" and movie not in movies

    return check


def ready(url: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/ready", timeout=10)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def metric(url: str, name: str, **labels: str) -> float:
    """The value of one series of ``url``'s ``/metrics`` (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        series, _, value = line.rpartition(" ")
        if series.startswith(name + "{") and all(p in series for p in wanted.split(",")):
            return float(value)
    return 0.0


class Load:
    """Threads asking nginx for recommendations of random users until stopped."""

    def __init__(self, url: str, users: list[int], threads: int = 4) -> None:
        self.url, self.users = url, users
        self.answers = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(threads)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _run(self, seed: int) -> None:
        pick = random.Random(seed)
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self._stop.is_set():
                user = pick.choice(self.users)
                try:
                    status = client.get(f"/users/{user}/recommendations?k=10").status_code
                    failure = None if status == 200 else f"status {status}"
                except httpx.HTTPError as exc:
                    failure = repr(exc)
                with self._lock:
                    self.answers += 1
                    if failure is not None:
                        self.failures.append(failure)


# ---------------------------------------------------------------- PostgreSQL LISTEN/NOTIFY


class TestPostgresReplicas:
    def test_a_rating_through_nginx_is_used_by_both_replicas_within_a_second(
        self, pg_cluster: Cluster, users: list[int]
    ) -> None:
        user = users[0]
        strategy, movies = recommend(pg_cluster.url(1), user)
        assert strategy == "personalized"
        post_rating(pg_cluster.nginx_url, user, movies[0])
        for replica in (0, 1):
            wait_for(uses_rating(pg_cluster.url(replica), user, movies[0]), PROPAGATION_S,
                     f"replica {replica} using the rating")  # fmt: skip
        assert ready(pg_cluster.url(0))["replica_feed"]["connected"] is True
        received = metric(pg_cluster.url(1), "movierec_replica_feed_messages_total",
                          direction="received", kind="ratings")  # fmt: skip
        sent = metric(pg_cluster.url(0), "movierec_replica_feed_messages_total",
                      direction="sent", kind="ratings")  # fmt: skip
        assert received + sent >= 1  # whichever replica nginx chose sent it, the other heard

    def test_a_promotion_reaches_both_replicas_without_a_failed_request(
        self, pg_cluster: Cluster, registry_copy: Path, users: list[int]
    ) -> None:
        from movierec.training import tracking

        assert {ready(pg_cluster.url(r))["model_version"] for r in (0, 1)} == {1}
        with Load(pg_cluster.nginx_url, users) as load:
            time.sleep(0.5)
            tracking.promote(settings_for(registry_copy), 2)  # outside the API, as a CLI would
            for replica in (0, 1):
                wait_for(lambda r=replica: ready(pg_cluster.url(r))["model_version"] == 2,  # type: ignore[misc]
                         30, f"replica {replica} serving version 2")  # fmt: skip
            time.sleep(0.5)
        assert load.answers > 20
        assert load.failures == []

    def test_a_replica_killed_under_load_costs_no_request_and_catches_up_on_restart(
        self, pg_cluster: Cluster, users: list[int]
    ) -> None:
        with Load(pg_cluster.nginx_url, users) as load:
            time.sleep(1.0)
            os.killpg(pg_cluster.processes[1].pid, signal.SIGKILL)
            before = load.answers
            time.sleep(2.0)
        assert load.answers - before > 20  # the other replica kept answering
        assert load.failures == []
        user = users[1]
        movies = recommend(pg_cluster.url(0), user)[1]
        post_rating(pg_cluster.nginx_url, user, movies[0])  # only replica 0 is up to take it
        pg_cluster.start(1)
        assert uses_rating(pg_cluster.url(1), user, movies[0])()  # its first answer knows

    def test_a_lost_database_connection_is_reported_and_caught_up(
        self, pg_cluster: Cluster, store_url: str, users: list[int]
    ) -> None:
        user = users[2]
        strategy, movies = recommend(pg_cluster.url(1), user)
        assert strategy == "personalized"
        database = sa.make_url(store_url).database
        with _connections_refused(database):
            for replica in (0, 1):
                url = pg_cluster.url(replica)
                wait_for(lambda u=url: not ready(u)["replica_feed"]["connected"], 10,  # type: ignore[misc]
                         "the lost channel reported")  # fmt: skip
                assert metric(url, "movierec_replica_feed_connected", feed="postgres") == 0
            post_rating(pg_cluster.url(0), user, movies[0])  # the store's pool still answers
            time.sleep(0.5)
            assert recommend(pg_cluster.url(1), user)[0] == "personalized"  # not heard yet
        wait_for(uses_rating(pg_cluster.url(1), user, movies[0]), 10, "the catch-up")
        assert ready(pg_cluster.url(1))["replica_feed"]["connected"] is True
        assert metric(pg_cluster.url(1), "movierec_replica_feed_failures_total",
                      feed="postgres", operation="listen") >= 1  # fmt: skip


class _connections_refused:  # noqa: N801 (a context manager used as a phrase)
    """The database refuses new connections and the replicas' channels are cut (the store's
    pooled connections stay): the channel is down, the store is up."""

    def __init__(self, database: str | None) -> None:
        self.database = database
        self.admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")

    def _run(self, sql: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(sa.text(sql), {"db": self.database, "app": APPLICATION_NAME})

    def __enter__(self) -> None:
        self._run(f'ALTER DATABASE "{self.database}" ALLOW_CONNECTIONS false')
        self._run(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = :db AND application_name = :app"
        )

    def __exit__(self, *exc: object) -> None:
        self._run(f'ALTER DATABASE "{self.database}" ALLOW_CONNECTIONS true')
        self.admin.dispose()


# ---------------------------------------------------------------- Redis pub/sub


@pytest.fixture(scope="class")
def redis_cluster(
    store_url: str, registry_copy: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Cluster, int]]:
    tmp = tmp_path_factory.mktemp("redis-replicas")
    port = free_port()
    with ExitStack() as stack:
        stack.enter_context(redis_server(port, tmp / "redis"))
        yield cluster(
            tmp, store_url, registry_copy, stack, replica_feed="redis",
            redis_url=f"redis://127.0.0.1:{port}/0",
        ), port  # fmt: skip


class TestRedisReplicas:
    def test_ratings_cross_replicas_and_survive_a_redis_outage(
        self, redis_cluster: tuple[Cluster, int], users: list[int], tmp_path: Path
    ) -> None:
        replicas, port = redis_cluster
        first, second = users[3], users[4]
        movies = recommend(replicas.url(0), first)[1]
        post_rating(replicas.url(0), first, movies[0])
        wait_for(uses_rating(replicas.url(1), first, movies[0]), PROPAGATION_S, "the rating")

        _stop_redis(port)  # the fixture's server; a new one takes its port below
        for replica in (0, 1):
            url = replicas.url(replica)
            wait_for(lambda u=url: not ready(u)["replica_feed"]["connected"], 15,  # type: ignore[misc]
                     "Redis down reported")  # fmt: skip
            assert metric(url, "movierec_replica_feed_connected", feed="redis") == 0
        movies = recommend(replicas.url(0), second)[1]
        post_rating(replicas.url(0), second, movies[0])  # stored: PostgreSQL is up
        assert recommend(replicas.url(1), second)[0] == "personalized"  # serving, not heard yet

        # Back for the rest of the class: the cluster's stack stops it.
        replicas.stack.enter_context(redis_server(port, tmp_path / "redis"))
        wait_for(uses_rating(replicas.url(1), second, movies[0]), 10, "the catch-up")
        assert ready(replicas.url(1))["replica_feed"]["connected"] is True

    def test_a_reload_through_the_api_reaches_the_other_replica(
        self, redis_cluster: tuple[Cluster, int], registry_copy: Path
    ) -> None:
        """Without polling (this cluster's interval is 0), a promotion waits for a reload, and
        ``POST /admin/reload`` to one replica reloads the other too."""
        from movierec.training import tracking

        replicas, _ = redis_cluster
        current = ready(replicas.url(0))["model_version"]
        other = 3 - current  # the registry holds versions 1 and 2
        tracking.promote(settings_for(registry_copy), other)
        time.sleep(1.5)
        assert ready(replicas.url(1))["model_version"] == current  # nothing polls
        answer = httpx.post(f"{replicas.url(0)}/admin/reload", headers={"X-API-Key": API_KEY},
                            timeout=60)  # fmt: skip
        assert answer.status_code == 200, answer.text
        wait_for(lambda: ready(replicas.url(1))["model_version"] == other, 30, "the reload")


def _stop_redis(port: int) -> None:
    """Stop the Redis server on ``port`` as an operator would (``SHUTDOWN NOSAVE``)."""
    import subprocess

    subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], check=False,
                   capture_output=True)  # fmt: skip

"""Group commit of live ratings on real servers (SQLite and PostgreSQL): an acknowledged rating
survives a ``kill -9`` of the whole server, errors stay per request within a group, and reads
and writes mixed under load all succeed."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from movierec.config import Settings
from movierec.data.sources import LoadedData
from movierec.data.store import RatingsStore
from movierec.errors import StoreError
from movierec.serving.writer import RatingWriter
from tests.conftest import PG_ADMIN_URL, new_connections_refused, temporary_database
from tests.servers import api_server, api_server_process
from tests.serving.conftest import ml_settings_in

CLIENTS = 16
FIRST_USER = 700_000


@pytest.fixture
def settings(store_url: str, ml_small: LoadedData, ml_model_dir: Path, tmp_path: Path) -> Settings:
    """ml-latest-small in the store (SQLite or PostgreSQL) and an ALS model to serve."""
    return ml_settings_in(tmp_path / "data", ml_small, ml_model_dir, database_url=store_url)


def _movies(data: LoadedData, n: int) -> list[int]:
    return [int(m) for m in data.movies["item_id"].to_numpy()[:n]]


def _post_until_refused(url: str, user: int, movies: list[int], acked: list[tuple]) -> None:
    """Post one rating per request until the server stops answering; keep what was acked."""
    with httpx.Client(base_url=url, timeout=10) as client:
        for i, movie in enumerate(movies):
            rating = 0.5 + (i % 10) / 2
            try:
                answer = client.post(
                    "/ratings", json={"user_id": user, "movie_id": movie, "rating": rating}
                )
            except httpx.TransportError:
                return
            if answer.status_code != 201:  # a thread's assert would not fail the test
                acked.append((user, movie, f"refused: {answer.status_code} {answer.text}"))
                return
            acked.append((user, movie, rating))


def test_acknowledged_ratings_survive_a_kill_of_the_whole_server(
    settings: Settings, ml_small: LoadedData
) -> None:
    movies = _movies(ml_small, 2_000)
    acked: list[tuple] = []
    with api_server_process(settings, workers=2) as (url, process):
        clients = [
            threading.Thread(target=_post_until_refused, args=(url, FIRST_USER + c, movies, acked))
            for c in range(CLIENTS)
        ]
        for thread in clients:
            thread.start()
        time.sleep(2.0)
        os.killpg(process.pid, signal.SIGKILL)  # the supervisor and its workers, mid-stream
        for thread in clients:
            thread.join(timeout=30)
        process.wait()
    assert len(acked) > 100, "the clients had time to post"
    refused = [rating for *_, rating in acked if isinstance(rating, str)]
    assert not refused, f"{len(refused)} post(s) refused before the kill: {refused[:3]}"
    with RatingsStore(settings.store_url) as store:
        stored = store.ratings_frame().set_index(["user_id", "item_id"])["rating"]
    wanted = pd.DataFrame(acked, columns=["user_id", "item_id", "rating"])
    found = stored.reindex(pd.MultiIndex.from_frame(wanted[["user_id", "item_id"]]))
    assert not found.isna().any(), f"{int(found.isna().sum())} acknowledged rating(s) lost"
    np.testing.assert_allclose(found.to_numpy(), wanted["rating"].to_numpy())
    with api_server(settings) as url:  # and the restarted server serves them
        profile = httpx.get(f"{url}/users/{FIRST_USER}", timeout=10).json()
        assert profile["n_ratings"] >= sum(1 for a in acked if a[0] == FIRST_USER)


def test_a_bad_request_in_a_concurrent_burst_fails_alone_and_reads_never_fail(
    settings: Settings, ml_small: LoadedData
) -> None:
    movies = _movies(ml_small, 50)
    bodies = [
        {"user_id": FIRST_USER + i, "movie_id": m, "rating": 4.0} for i, m in enumerate(movies)
    ]
    bodies[10] = {"user_id": FIRST_USER + 10, "movie_id": 999_999_999, "rating": 4.0}
    bodies[20] = {"user_id": FIRST_USER + 20, "movie_id": movies[20], "rating": 9.0}
    with api_server(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        start = threading.Barrier(len(bodies))

        def post(body: dict) -> int:
            start.wait()
            return client.post("/ratings", json=body).status_code

        with ThreadPoolExecutor(len(bodies)) as pool:
            codes = list(pool.map(post, bodies))
        assert codes[10] == 404
        assert codes[20] == 422
        assert {c for i, c in enumerate(codes) if i not in (10, 20)} == {201}
        _mixed_load(client, movies)
    with RatingsStore(settings.store_url) as store:
        stored = store.ratings_frame()
    posted = stored[stored["user_id"].between(FIRST_USER, FIRST_USER + len(bodies))]
    assert sorted(posted["user_id"]) == [
        b["user_id"] for i, b in enumerate(bodies) if i not in (10, 20)
    ]


def _mixed_load(client: httpx.Client, movies: list[int], seconds: float = 2.0) -> None:
    """Readers and writers together for ``seconds``: every request succeeds."""
    deadline = time.monotonic() + seconds

    def read(user: int) -> set[int]:
        codes = set()
        while time.monotonic() < deadline:
            codes.add(client.get(f"/users/{user}/recommendations").status_code)
            codes.add(client.get(f"/users/{user}").status_code)
        return codes

    def write(user: int) -> set[int]:
        codes, i = set(), 0
        while time.monotonic() < deadline:
            body = {"user_id": user, "movie_id": movies[i % len(movies)], "rating": 3.5}
            codes.add(client.post("/ratings", json=body).status_code)
            i += 1
        return codes

    with ThreadPoolExecutor(16) as pool:
        reads = [pool.submit(read, user) for user in range(1, 9)]
        writes = [pool.submit(write, FIRST_USER + 100 + u) for u in range(8)]
        assert set().union(*(f.result() for f in reads)) == {200}
        assert set().union(*(f.result() for f in writes)) == {201}


@contextmanager
def _writes_blocked(url: str) -> Iterator[None]:
    """Another connection holds the ratings table's write lock until the block ends."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif engine.dialect.name == "mysql":  # a session lock, not a transaction's
                conn.exec_driver_sql("LOCK TABLES ratings WRITE")
            else:
                conn.exec_driver_sql("BEGIN")
                conn.exec_driver_sql("LOCK TABLE ratings IN EXCLUSIVE MODE")
            yield
            conn.exec_driver_sql("ROLLBACK")
            if engine.dialect.name == "mysql":
                conn.exec_driver_sql("UNLOCK TABLES")
    finally:
        engine.dispose()


def test_a_failed_group_is_retried_request_by_request(
    store_url: str, synth_data: LoadedData
) -> None:
    with RatingsStore(store_url) as store:
        store.ingest(synth_data)
        movie = int(synth_data.movies["item_id"].iloc[0])
        committed: list[list[int]] = []
        writer = RatingWriter(store, committed.append)

        def frame(user: int, item: int) -> pd.DataFrame:
            return pd.DataFrame(
                {"user_id": [user], "item_id": [item], "rating": [4.0], "timestamp": [1]}
            )

        with _writes_blocked(store_url):
            first = writer.submit(frame(1_000_001, movie))  # taken alone, waits on the lock
            time.sleep(0.3)
            queued = [writer.submit(frame(1_000_002 + i, movie)) for i in range(5)]
            bad = writer.submit(frame(1_000_010, 999_999_999))  # no such movie in the store
        assert first.result(timeout=30) == 1
        assert [f.result(timeout=30) for f in queued] == [1] * 5
        with pytest.raises(StoreError, match="999999999"):
            bad.result(timeout=30)
        writer.close()
        users = set(store.ratings_frame()["user_id"].tolist())
    assert {1_000_001 + i for i in range(6)} <= users
    assert 1_000_010 not in users
    assert sorted(u for group in committed for u in group) == [1_000_001 + i for i in range(6)]


@pytest.mark.postgres
def test_the_writer_connects_at_start_and_writes_while_new_connections_are_refused(
    synth_data: LoadedData,
) -> None:
    """A worker that had not yet posted failed its first post while PostgreSQL refused new
    connections (its reads' pooled connection still answered)."""
    with temporary_database(PG_ADMIN_URL, "writer") as url, RatingsStore(url) as store:
        store.ingest(synth_data)
        movie = int(synth_data.movies["item_id"].iloc[0])
        writer = RatingWriter(store, lambda _: None)
        rating = pd.DataFrame(
            {"user_id": [1_000_001], "item_id": [movie], "rating": [4.0], "timestamp": [1]}
        )
        with new_connections_refused(url):
            assert writer.submit(rating).result(timeout=30) == 1
        writer.close()


def test_two_writers_posting_the_same_ratings_count_each_change_once(
    store_url: str, synth_data: LoadedData
) -> None:
    """Two workers' writers (two stores, two connections) post the same ratings at once: each
    is stored once and counted once, however their groups interleave (on MySQL the stored
    pairs are read with a locking read; a deadlock between the two is retried)."""
    movies = _movies(synth_data, 60)
    with RatingsStore(store_url) as first, RatingsStore(store_url) as second:
        first.ingest(synth_data)
        writers = [RatingWriter(store, lambda _: None) for store in (first, second)]
        futures = []
        for movie in movies:
            rating = pd.DataFrame(
                {"user_id": [2_000_001], "item_id": [movie], "rating": [3.5], "timestamp": [7]}
            )
            futures += [writer.submit(rating) for writer in writers]
        counts = [future.result(timeout=60) for future in futures]
        for writer in writers:
            writer.close()
        stored = first.ratings_frame()
    assert sum(counts) == len(movies)
    assert sorted(stored.loc[stored["user_id"] == 2_000_001, "item_id"]) == sorted(movies)

"""The API as users run it: ``serve`` starts uvicorn (uvloop, httptools) in its own process, on
a free loopback port, and is called over real HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from movierec.config import Settings
from movierec.serving.app import one_start_at_a_time
from movierec.serving.jobs import settings_environment
from movierec.serving.workers import START_LOCK_ENV
from tests.servers import api_server
from tests.serving.conftest import API_KEY

pytestmark = pytest.mark.network


@pytest.mark.parametrize("workers", [1, 2])
def test_served_over_http(ml_settings: Settings, workers: int) -> None:
    with api_server(ml_settings, workers) as url, httpx.Client(base_url=url, timeout=10) as http:
        answers = [
            http.get(f"/users/{user}/recommendations", params={"k": 5}) for user in (1, 2, 3)
        ]
        assert all(a.status_code == 200 for a in answers)
        assert {a.json()["strategy"] for a in answers} == {"personalized"}
        assert len(answers[0].json()["items"]) == 5
        bad = http.post(
            "/recommend", content=b"{oops", headers={"content-type": "application/json"}
        )
        assert bad.status_code == 422
        assert bad.json()["detail"].startswith("malformed JSON body")
        too_big = http.post(
            "/ratings", content=b" " * (ml_settings.max_body_bytes + 1),
            headers={"content-type": "application/json"},
        )  # fmt: skip
        assert too_big.status_code == 413
        reload = http.post("/admin/reload", headers={"X-API-Key": API_KEY})
        assert reload.status_code == 200
        assert 'route="/users/{user_id}/recommendations"' in http.get("/metrics").text


def test_metrics_add_up_across_workers(ml_settings: Settings) -> None:
    """With 2 workers /metrics counts every worker's requests, whichever one answers it."""
    requests = 40
    with api_server(ml_settings, workers=2) as url:
        _wait_for_workers(url, 2)  # they load their model one at a time

        def one(user: int) -> int:
            # A new connection per request, several at once: both workers get to answer.
            return httpx.get(f"{url}/users/{user}/recommendations", timeout=10).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(one, [1 + i % 5 for i in range(requests)]))
        assert statuses == [200] * requests
        text = httpx.get(f"{url}/metrics", timeout=10).text
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    route = "/users/{user_id}/recommendations"
    served = [
        s.value
        for s in samples
        if s.name == "movierec_http_requests_total" and s.labels.get("route") == route
    ]
    assert sum(served) == requests
    latency = [
        s.value
        for s in samples
        if s.name == "movierec_http_request_duration_seconds_count"
        and s.labels.get("route") == route
    ]
    assert latency == [requests]
    personalized = [
        s.value
        for s in samples
        if s.name == "movierec_recommendations_total" and s.labels == {"strategy": "personalized"}
    ]
    assert personalized == [requests]
    assert len(_serving_workers(text)) == 2


def _serving_workers(metrics: str) -> set[str]:
    """The workers that report a served model (each does once it has loaded one)."""
    samples = [s for family in text_string_to_metric_families(metrics) for s in family.samples]
    return {s.labels["pid"] for s in samples if s.name == "movierec_model_info" and s.value == 1}


def _wait_for_workers(url: str, workers: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while len(_serving_workers(httpx.get(f"{url}/metrics", timeout=10).text)) < workers:
        assert time.monotonic() < deadline, f"{workers} workers were not all serving in time"
        time.sleep(0.2)


def test_each_worker_listens_on_a_socket_of_its_own(ml_settings: Settings) -> None:
    """32 connections opened at once are spread over both workers (SO_REUSEPORT), where one
    socket shared by the workers often gave all or nearly all of them to one worker."""
    with api_server(ml_settings, workers=2) as url:
        _wait_for_workers(url, 2)
        port = int(url.rsplit(":", 1)[1])
        supervisor = _supervisor(port)
        workers = _listening_workers(supervisor, port, 2)
        assert not _listens(supervisor, port)
        assert _socket_inodes(workers[0]).isdisjoint(_socket_inodes(workers[1]))
        connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(32)]
        try:
            for conn in connections:  # an answer on each: every connection is accepted
                conn.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
            for conn in connections:
                assert conn.recv(4096).startswith(b"HTTP/1.1 200")
            held = [_connections(w, port, psutil.CONN_ESTABLISHED) for w in workers]
        finally:
            for conn in connections:
                conn.close()
    assert sum(held) == 32
    assert min(held) >= 4, held  # by a fair coin per connection: fails about once in 400,000


def test_a_worker_that_dies_is_replaced_with_a_socket_of_its_own(ml_settings: Settings) -> None:
    """Killed outright, a worker is started again by the supervisor; meanwhile the other one
    answers every request, and the new one listens on a new socket of its own."""
    with api_server(ml_settings, workers=2) as url:
        _wait_for_workers(url, 2)
        port = int(url.rsplit(":", 1)[1])
        supervisor = _supervisor(port)
        first, second = _listening_workers(supervisor, port, 2)
        first.kill()
        first.wait(timeout=10)
        for _ in range(20):  # a new connection each: only the other worker listens now
            assert httpx.get(f"{url}/users/1/recommendations", timeout=10).status_code == 200
        workers = _listening_workers(supervisor, port, 2)
        replacement = next(w for w in workers if w.pid != second.pid)
        assert replacement.pid != first.pid
        assert _socket_inodes(replacement).isdisjoint(_socket_inodes(second))
        assert httpx.get(f"{url}/ready", timeout=10).status_code == 200


def _supervisor(port: int) -> psutil.Process:
    """The process ``serve`` became for several workers on ``port``."""
    for process in psutil.process_iter(["cmdline"]):
        command = process.info["cmdline"] or []
        if "movierec.serving.workers" in command and str(port) in command:
            return process
    raise AssertionError(f"no worker supervisor for port {port}")


def _workers(supervisor: psutil.Process, port: int) -> list[psutil.Process]:
    """The supervisor's children that listen on ``port`` (not its resource tracker)."""
    return [child for child in supervisor.children() if _listens(child, port)]


def _listening_workers(
    supervisor: psutil.Process, port: int, count: int, timeout: float = 120.0
) -> list[psutil.Process]:
    """The supervisor's ``count`` workers once all listen: a worker reports its model during
    its start-up and listens only after it (a test that looked right away once found one)."""
    deadline = time.monotonic() + timeout
    while len(workers := _workers(supervisor, port)) != count:
        assert time.monotonic() < deadline, f"{count} workers were not all listening in time"
        time.sleep(0.2)
    return workers


def _listens(process: psutil.Process, port: int) -> bool:
    return _connections(process, port, psutil.CONN_LISTEN) > 0


def _connections(process: psutil.Process, port: int, status: str) -> int:
    """How many of ``process``'s TCP sockets on local ``port`` are in ``status``."""
    return sum(c.status == status and c.laddr.port == port for c in process.net_connections("tcp"))


def _socket_inodes(process: psutil.Process) -> set[str]:
    """The sockets ``process`` holds open (one socket shared by two processes is in both)."""
    links = (os.readlink(fd) for fd in Path(f"/proc/{process.pid}/fd").iterdir())
    return {link for link in links if link.startswith("socket:")}


@pytest.mark.parametrize("reuse_port", [False, True], ids=["another program", "another server"])
def test_a_port_in_use_is_a_clear_error(ml_settings: Settings, reuse_port: bool) -> None:
    """Whether the port's holder listens as another movierec server does or not."""
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, int(reuse_port))
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "movierec.serving.workers", "127.0.0.1", str(port), "2"],
            env=settings_environment(ml_settings, include_secrets=True),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Address already in use" in done.stderr


def test_ratings_posted_to_one_worker_are_used_by_every_worker(ml_settings: Settings) -> None:
    """A new user's ratings reach the other worker before its next answer (the shared feed)."""
    user, liked = 900_002, [1, 260, 1196, 1210]
    with api_server(ml_settings, workers=2) as url:
        ratings = [{"user_id": user, "movie_id": m, "rating": 5.0} for m in liked]
        assert httpx.post(f"{url}/ratings", json={"ratings": ratings}).status_code == 201

        def one(_: int) -> dict:  # type: ignore[type-arg]
            # A new connection each time, several at once: both workers answer some.
            answer = httpx.get(f"{url}/users/{user}/recommendations", timeout=10)
            assert answer.status_code == 200
            return answer.json()  # type: ignore[no-any-return]

        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(one, range(24)))
    assert {a["strategy"] for a in answers} == {"folded_in"}
    for answer in answers:
        assert not {item["movie_id"] for item in answer["items"]} & set(liked)


def test_workers_start_one_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker waits for the start lock that another worker holds, then takes it."""
    monkeypatch.setenv(START_LOCK_ENV, str(tmp_path / "start.lock"))
    order: list[str] = []
    with one_start_at_a_time():
        waiting = threading.Thread(target=_start_after, args=(order,))
        waiting.start()
        time.sleep(0.3)
        order.append("first done")
    waiting.join(timeout=10)
    assert order == ["first done", "second started"]


def _start_after(order: list[str]) -> None:
    with one_start_at_a_time():
        order.append("second started")

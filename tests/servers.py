"""Real servers for tests: the API (``serve``, uvicorn in its own process) and the UI
(``movierec ui``, Streamlit in its own process), each on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from movierec.config import Settings
from movierec.serving.jobs import settings_environment

START_SECONDS = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def api_server(settings: Settings, workers: int = 1) -> Iterator[str]:
    """``serve`` for ``settings`` until the block ends; yields its address once it is ready."""
    with api_server_process(settings, workers) as (url, _):
        yield url


@contextmanager
def api_server_process(
    settings: Settings, workers: int = 1, port: int | None = None
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """:func:`api_server`, with its process: the leader of its own process group (a test may
    ``os.killpg`` the whole server, workers included); on ``port`` when given (a restart behind
    a load balancer), else a free one."""
    port = port or free_port()
    code = (
        "from movierec.config import Settings; from movierec.serving.app import serve; "
        f"serve(Settings(_env_file=None), '127.0.0.1', {port}, {workers})"
    )
    env = settings_environment(settings, include_secrets=True)
    with _process([sys.executable, "-c", code], env) as process:
        url = f"http://127.0.0.1:{port}"
        _wait_until_ready(process, f"{url}/ready")
        yield url, process


@contextmanager
def ui_server(api_url: str) -> Iterator[str]:
    """``movierec ui`` talking to ``api_url``; yields its address once Streamlit answers."""
    port = free_port()
    command = [sys.executable, "-m", "movierec.cli", "ui", "--port", str(port)]
    env = {**os.environ, "MOVIEREC_API_URL": api_url}
    with _process(command, env) as process:
        url = f"http://127.0.0.1:{port}"
        _wait_until_ready(process, f"{url}/_stcore/health")
        yield url


@contextmanager
def _process(command: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, its workers with it
    )
    try:
        yield process
    finally:
        if process.poll() is None:  # not killed by the test already
            _stop(process)


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_until_ready(process: subprocess.Popen[str], url: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {process.stdout.read()}")  # type: ignore[union-attr]
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer 200 in {START_SECONDS} s")

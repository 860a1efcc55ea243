"""``movierec up``: the API and the UI as one command, both stopped together."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from movierec.config import Settings
from movierec.serving.jobs import settings_environment
from tests.servers import free_port

pytestmark = pytest.mark.network


def _up(settings: Settings) -> tuple[subprocess.Popen[str], str, str]:
    api_port, ui_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "movierec.cli", "up", "--port", str(api_port),
         "--ui-port", str(ui_port)],
        env=settings_environment(settings, include_secrets=True),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    api, ui = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{ui_port}"
    deadline = time.monotonic() + 120
    for url in (f"{api}/ready", f"{ui}/_stcore/health"):
        while True:
            assert process.poll() is None, process.stdout.read()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, f"{url} did not answer"
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
    return process, api, ui


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=1)
    except httpx.TransportError:
        return False
    return True


def test_ctrl_c_stops_the_api_and_the_ui(ui_settings: Settings) -> None:
    process, api, ui = _up(ui_settings)
    children = psutil.Process(process.pid).children()
    assert len(children) == 2
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    assert f"API: {api}" in output
    assert f"UI:  {ui}" in output
    assert not any(child.is_running() for child in children)
    assert not _answers(f"{api}/health")
    assert not _answers(f"{ui}/_stcore/health")


def test_when_one_server_dies_the_other_is_stopped(ui_settings: Settings) -> None:
    process, _, ui = _up(ui_settings)
    api_child, ui_child = psutil.Process(process.pid).children()
    api_child.kill()
    process.wait(timeout=60)
    assert process.returncode == 1
    assert not ui_child.is_running()
    assert not _answers(f"{ui}/_stcore/health")


def test_one_port_for_both_is_refused(ui_settings: Settings) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "movierec.cli", "up", "--port", "8123", "--ui-port", "8123"],
        env=settings_environment(ui_settings), capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "two different ports" in done.stderr

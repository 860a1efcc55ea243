"""The images' and Compose's health checks, run as Docker runs them (the same argv) against real
servers on loopback: the API's liveness answers without a model while its readiness (Compose's
check, which gates nginx) does not, the UI's answers, and each fails once its server is gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.deploy.deploy_tools import DOCKER_DIR, resolved
from tests.deploy.test_dockerfiles import final_stage
from tests.servers import _process, free_port, ui_server

pytestmark = pytest.mark.network


def image_check(dockerfile: Path) -> list[str]:
    """The argv of the image's HEALTHCHECK (exec form)."""
    (args,) = [args for op, args in final_stage(dockerfile) if op == "HEALTHCHECK"]
    argv: list[str] = json.loads(args.split(" CMD ", 1)[1])
    return argv


def healthy(argv: list[str], port: int, image_port: int) -> bool:
    """Whether the check passes for a server on ``port`` (the image's port swapped for it)."""
    command = [arg.replace(f":{image_port}/", f":{port}/") for arg in argv]
    if command[0] == "python":  # the image's interpreter: this one
        command[0] = sys.executable
    return subprocess.run(command, capture_output=True, timeout=30, check=False).returncode == 0


def test_api_liveness_passes_without_a_model_readiness_does_not(tmp_path: Path) -> None:
    liveness = image_check(DOCKER_DIR / "app.Dockerfile")
    readiness = resolved()["services"]["api"]["healthcheck"]["test"][1:]  # after "CMD"
    port = free_port()
    env = {**os.environ, "MOVIEREC_DATA_DIR": str(tmp_path), "MOVIEREC_DATABASE_URL": ""}
    command = [sys.executable, "-m", "movierec.cli", "serve", "--port", str(port), "--workers", "1"]
    with _process(command, env):
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        assert healthy(liveness, port, 8000)
        assert not healthy(readiness, port, 8000)  # no champion yet: nginx must not start
    assert not healthy(liveness, port, 8000)


def test_ui_health_check_passes_while_streamlit_runs() -> None:
    check = image_check(DOCKER_DIR / "ui.Dockerfile")
    with ui_server("http://127.0.0.1:9") as url:
        port = int(url.rsplit(":", 1)[1])
        assert healthy(check, port, 8501)
    assert not healthy(check, port, 8501)

"""Starting the UI, and the API with the UI as one command (``make run``).

``movierec ui`` runs Streamlit on ``app.py``; ``movierec up`` runs ``movierec serve`` and
``movierec ui`` as two child processes, prints both addresses, and stops both cleanly on
Ctrl-C (or when either exits: a half-running system is worse than a clear stop).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from movierec.client import API_URL_ENV

APP = Path(__file__).parent / "app.py"
STOP_SECONDS = 15


def streamlit_command(host: str, port: int) -> list[str]:
    """The command line that serves the UI on ``host:port``."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        # Nothing leaves the machine: no usage statistics, no update checks.
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",
    ]  # fmt: skip


def run_ui(host: str, port: int, api_url: str | None) -> None:
    """Replace this process by Streamlit serving the UI (it never returns)."""
    if api_url:
        os.environ[API_URL_ENV] = api_url
    command = streamlit_command(host, port)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)


def run_stack(api_host: str, api_port: int, ui_host: str, ui_port: int, workers: int) -> int:
    """Serve the API and the UI until Ctrl-C or until one of them exits; the exit status."""
    cli = [sys.executable, "-m", "movierec.cli"]
    api_url = f"http://{_reachable(api_host)}:{api_port}"
    env = {**os.environ, API_URL_ENV: api_url}
    api = subprocess.Popen(
        [*cli, "serve", "--host", api_host, "--port", str(api_port), "--workers", str(workers)],
        env=env,
    )
    ui = subprocess.Popen(streamlit_command(ui_host, ui_port), env=env)
    print(
        f"\n  API: {api_url}  (docs: {api_url}/docs)\n"
        f"  UI:  http://{_reachable(ui_host)}:{ui_port}\n\n  Ctrl-C stops both.\n",
        flush=True,
    )
    stopping = False

    def stop(_signal: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping and api.poll() is None and ui.poll() is None:
            time.sleep(0.2)
    finally:
        _stop_all([api, ui])
    failed = [p.returncode for p in (api, ui) if p.returncode not in (0, -signal.SIGTERM, None)]
    return 0 if stopping or not failed else 1


def _stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_SECONDS
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _reachable(host: str) -> str:
    """An address a browser on this machine can open for a server bound to ``host``."""
    return "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host

"""Real nginx and Redis processes for the API replica tests and benchmark.

nginx runs the deployment's own config (``deploy/nginx/nginx.conf``: its retries, timeouts and
keepalive), with this machine's addresses in place of Docker's DNS: Debian's nginx 1.22 lacks
the upstream ``resolve`` the deployment uses, and the replicas listen on loopback ports.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

DEPLOY_NGINX = Path(__file__).resolve().parent.parent / "deploy" / "nginx" / "nginx.conf"
START_SECONDS = 15


def local_nginx_config(upstreams: list[str], port: int, prefix: Path) -> str:
    """The deployment's nginx config, serving ``127.0.0.1:port`` from ``upstreams``
    (``host:port`` each) in the foreground, with its files under ``prefix``."""
    text = DEPLOY_NGINX.read_text()
    # Each replica with the deployment's own failure settings (max_fails, fail_timeout).
    servers = "".join(f"        server {u} \\1;\n" for u in upstreams)
    replaced = [
        (r"pid [^;]+;", f"pid {prefix}/nginx.pid;\nerror_log {prefix}/error.log warn;"),
        (r"\n\s*resolver [^;]+;", ""),
        (r"\n\s*zone movierec_api [^;]+;", ""),
        (r"        server api:8000 resolve ([^;]+);\n", servers),
        (r"listen 8080;", f"listen 127.0.0.1:{port};"),
    ]
    for pattern, replacement in replaced:
        text, count = re.subn(pattern, replacement, text)
        if count != 1:
            raise AssertionError(f"{DEPLOY_NGINX} changed: no single match for {pattern!r}")
    temp_paths = "".join(
        f"    {kind}_temp_path {prefix}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return "daemon off;\n" + text.replace("http {\n", "http {\n" + temp_paths, 1)


@contextmanager
def nginx(upstreams: list[str], port: int, prefix: Path) -> Iterator[str]:
    """nginx in front of ``upstreams`` until the block ends; yields its address."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    prefix.mkdir(parents=True, exist_ok=True)
    config = prefix / "nginx.conf"
    config.write_text(local_nginx_config(upstreams, port, prefix))
    command = [binary, "-p", str(prefix), "-c", str(config), "-e", str(prefix / "error.log")]
    with _running(command) as process:
        url = f"http://127.0.0.1:{port}"
        _wait(process, f"{url}/nginx-health", (prefix / "error.log").read_text)
        yield url


@contextmanager
def redis_server(port: int, folder: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A Redis server of its own on ``127.0.0.1:port`` (nothing saved), until the block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", str(folder)]  # fmt: skip
    with _running(command) as process:
        deadline = time.monotonic() + START_SECONDS
        while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True,
                             check=False).stdout.strip() != b"PONG":  # fmt: skip
            assert process.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, f"redis did not start in {START_SECONDS} s"
            time.sleep(0.05)
        yield process


@contextmanager
def _running(command: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait(process: subprocess.Popen[bytes], url: str, log: Callable[[], str]) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"nginx exited: {log()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} did not answer in {START_SECONDS} s")

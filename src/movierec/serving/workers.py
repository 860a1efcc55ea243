"""Several uvicorn workers: ``python -m movierec.serving.workers HOST PORT WORKERS [--access-log]``.

:func:`movierec.serving.app.serve` replaces its process with this module (``exec``) instead of
starting the workers itself. A worker is a *spawned* process, and spawning re-imports the
parent's main module before anything else: under ``movierec serve`` that is the CLI, which
imports every command's libraries (MLflow, matplotlib: 3.4 s and ~300 MB per worker, measured).
On a loaded machine that import outlasted uvicorn's 5 s health check and the worker was killed
and started again. This module imports nothing but uvicorn, so the supervisor and each worker's
start-up stay light; the settings travel as ``MOVIEREC_*`` environment variables.

The workers' Prometheus metrics, their shared feed of fresh ratings and reloads, and the lock
under which they load their model one at a time meet in a temporary folder made here for this
server and removed when it stops (see :mod:`movierec.serving.observability`,
:mod:`movierec.serving.feed` and :func:`movierec.serving.app.one_start_at_a_time`).

On Linux each worker listens on a socket of its own, bound with ``SO_REUSEPORT``, and the
kernel spreads new connections over the workers by a hash of their addresses. Uvicorn binds one
socket that all workers accept from, and whichever worker wakes first takes what is queued: 32
connections opened at once went 32/0, 30/2 or 27/5 to two workers in most runs (counted with
``ss``), the busy worker's queue set the latency tail (p99 22 ms against 10-12 ms when evenly
split), and the other core idled. Their own sockets split them 11/21 to 16/16 (measured).
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import tempfile
from typing import Any, cast

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

logger = logging.getLogger("uvicorn.error")

APP_FACTORY = "movierec.serving.app:create_app_from_environment"
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client reads this name
FEED_ENV = "MOVIEREC_SERVING_FEED"  # the shared feed file (movierec.serving.feed)
START_LOCK_ENV = "MOVIEREC_SERVING_START_LOCK"  # workers load their model one at a time


def uvicorn_options(host: str, port: int, *, access_log: bool) -> dict[str, Any]:
    """How movierec runs uvicorn, with one worker or several."""
    return {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": "httptools",
        "access_log": access_log,
        "timeout_graceful_shutdown": 30,
        # No "server: uvicorn" on every answer: it tells a scanner what to probe, and uvicorn
        # checks each header it sends (two regular expressions a header, every request).
        "server_header": False,
    }


def run_workers(host: str, port: int, workers: int, *, access_log: bool) -> None:
    """Serve the app of the environment's settings with ``workers`` processes until stopped."""
    # A fresh folder per start: files left by an earlier server would add to the counts, and
    # an old feed would replay events (see movierec.serving.feed).
    with tempfile.TemporaryDirectory(prefix="movierec-server-") as shared:
        metrics_dir = os.path.join(shared, "metrics")
        os.mkdir(metrics_dir)
        os.environ[MULTIPROCESS_DIR] = metrics_dir
        os.environ[FEED_ENV] = os.path.join(shared, "feed.jsonl")
        os.environ[START_LOCK_ENV] = os.path.join(shared, "start.lock")
        config = uvicorn.Config(
            APP_FACTORY,
            factory=True,
            workers=workers,
            **uvicorn_options(host, port, access_log=access_log),
        )
        # Its own signal handlers stop the workers on SIGINT and SIGTERM.
        Multiprocess(config, sockets=[listener(config)]).run()


def listener(config: uvicorn.Config) -> socket.socket:
    """What each worker listens on: on Linux a socket of its own (see the module), else (or
    for port 0, which would give each worker a port of its own) the one socket uvicorn binds
    for all of them."""
    if not sys.platform.startswith("linux") or config.port == 0:
        return config.bind_socket()
    # SO_REUSEPORT would also let this server share a port that another one of this user's
    # servers holds the same way: binding without it first fails then, as uvicorn's bind does
    # (SO_REUSEADDR, as uvicorn sets it, lets a restart bind over closed connections).
    with socket.socket(_family(config.host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((config.host, config.port))
        except OSError as exc:
            logger.error("cannot listen on %s:%d: %s", config.host, config.port, exc)
            sys.exit(STARTUP_FAILURE)
    # uvicorn passes its sockets to each worker by pickling them: this one unpickles there as
    # a new socket of that worker's own.
    return cast(socket.socket, _OwnSocket(config.host, config.port))


class _OwnSocket:
    """Pickled into a worker, a socket of that worker's own on ``host:port``."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def __reduce__(self) -> tuple[Any, tuple[str, int]]:
        return own_socket, (self.host, self.port)


def own_socket(host: str, port: int) -> socket.socket:
    """A socket on ``host:port`` bound with ``SO_REUSEPORT``, in the worker unpickling it."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:  # the supervisor stops on this exit status instead of retrying
        logger.error("worker cannot listen on %s:%d: %s", host, port, exc)
        sys.exit(STARTUP_FAILURE)
    return sock


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run movierec's API with several workers.")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("workers", type=int)
    parser.add_argument("--access-log", action="store_true")
    args = parser.parse_args(argv)
    run_workers(args.host, args.port, args.workers, access_log=args.access_log)


if __name__ == "__main__":
    main()

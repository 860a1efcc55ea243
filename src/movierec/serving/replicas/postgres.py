"""The replicas' channel on their shared PostgreSQL store: LISTEN/NOTIFY.

Two dedicated connections per worker, outside the store's pool: one LISTENs (a pooled connection
would lose its LISTEN when returned), one sends, so a send never waits behind the listener's
wait. TCP keepalives make a silently dropped connection fail within about 20 s instead of
hanging until the kernel's two hours.
"""

from __future__ import annotations

import psycopg
import sqlalchemy as sa

from movierec.data.store import redact_url
from movierec.serving.replicas.transport import CHANNEL, ChannelError, first_line

APPLICATION_NAME = "movierec-replica-feed"  # how pg_stat_activity names these connections
CONNECT_TIMEOUT_S = 3


class PostgresListener:
    def __init__(self, conn: psycopg.Connection) -> None:
        self._conn = conn

    def receive(self, timeout: float) -> list[str]:
        try:
            # stop_after=1: back with the first notification, not at the end of the timeout.
            return [n.payload for n in self._conn.notifies(timeout=timeout, stop_after=1)]
        except psycopg.Error as exc:
            raise ChannelError(f"lost the PostgreSQL channel: {first_line(exc)}") from exc

    def close(self) -> None:
        self._conn.close()


class PostgresTransport:
    """NOTIFY and LISTEN on the database of the SQLAlchemy ``url`` (the ratings store)."""

    name = "postgres"

    def __init__(self, url: str) -> None:
        # libpq's own URI form: SQLAlchemy's "+psycopg" driver suffix is no part of it.
        self._conninfo = (
            sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        self._where = redact_url(url)
        self._sender: psycopg.Connection | None = None

    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(
                self._conninfo,
                autocommit=True,
                application_name=APPLICATION_NAME,
                connect_timeout=CONNECT_TIMEOUT_S,
                keepalives=1,
                keepalives_idle=10,
                keepalives_interval=3,
                keepalives_count=3,
            )
        except psycopg.Error as exc:
            raise ChannelError(f"cannot reach {self._where}: {first_line(exc)}") from exc

    def listen(self) -> PostgresListener:
        conn = self._connect()
        try:
            conn.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as exc:
            conn.close()
            raise ChannelError(f"cannot LISTEN on {self._where}: {first_line(exc)}") from exc
        return PostgresListener(conn)

    def publish(self, payloads: list[str]) -> None:
        if self._sender is None or self._sender.closed:
            self._sender = self._connect()
        try:
            # One transaction: the listeners get them all at its commit.
            with self._sender.transaction(), self._sender.cursor() as cursor:
                cursor.executemany("SELECT pg_notify(%s, %s)", [(CHANNEL, p) for p in payloads])
        except psycopg.Error as exc:
            self._sender.close()
            raise ChannelError(f"cannot NOTIFY on {self._where}: {first_line(exc)}") from exc

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()

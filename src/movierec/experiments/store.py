"""Experiments and their exposures, kept in the ratings store.

Why the ratings store: it is the one database every worker of a server and every replica
already shares (a SQLite file on one host, PostgreSQL across hosts), and the outcomes are
joined with the ratings it holds. Workers learn of a new or stopped experiment by reading the
``experiments`` table (:class:`~movierec.experiments.runner.ExperimentRunner` polls it), and
assign users by the experiment's salt (:mod:`~movierec.experiments.assignment`), so they agree
without talking to each other. At most one experiment runs at a time, enforced by the database
itself: a running experiment holds the unique ``running_slot`` (1), stopped ones NULL, which a
unique constraint allows any number of, in SQLite and PostgreSQL alike; two admins starting
experiments at once on two replicas get one experiment and one 409.

Exposures (the lists an experiment showed, each movie with its arm or team) are written in
columnar batches like the impression log (:mod:`movierec.monitoring.impressions`), whose
ratings query they reuse.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from movierec.data.store import RatingsStore
from movierec.errors import MovierecError, StoreError
from movierec.monitoring.impressions import ImpressionStore, ShownLists

Design = Literal["ab", "interleaving"]
Status = Literal["running", "stopped", "promoted"]
ARM_CODES = ("control", "treatment")  # the code of each arm or team in the exposures
RUNNING = 1

metadata = sa.MetaData()
_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_ARRAY = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")  # BLOB: 64 kB

experiments_table = sa.Table(
    "experiments",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("design", sa.Text, nullable=False),
    sa.Column("control_version", sa.Integer, nullable=False),
    sa.Column("treatment_version", sa.Integer, nullable=False),
    sa.Column("treatment_share", sa.Float, nullable=False),
    sa.Column("salt", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("running_slot", sa.Integer, unique=True),  # RUNNING while running, else NULL
    sa.Column("planned_users", sa.Integer, nullable=False),
    sa.Column("alpha", sa.Float, nullable=False),
    sa.Column("horizon_days", sa.Float, nullable=False),
    sa.Column("positive_rating", sa.Float, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("stopped_at", sa.BigInteger),
)

# A row per write of a worker: its lists as little-endian arrays (see the impression log).
exposures_table = sa.Table(
    "experiment_exposures",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("experiment_id", _ID, nullable=False, index=True),
    sa.Column("lists", sa.Integer, nullable=False),
    sa.Column("codes", _ARRAY, nullable=False),  # uint8: the arm or team of each list
    sa.Column("user_ids", _ARRAY, nullable=False),  # int64
    sa.Column("shown_at", _ARRAY, nullable=False),  # int64 epoch seconds
    sa.Column("lengths", _ARRAY, nullable=False),  # int32
    sa.Column("movie_ids", _ARRAY, nullable=False),  # int64
)


class TablesOfItsOwn(RatingsStore):
    """A store with tables beyond the ratings store's schema, created at its opening."""

    def create_tables(self, tables: sa.MetaData) -> None:
        """Create ``tables`` if absent. The workers of a server start at once: two may both
        find a table missing and one's CREATE then fails, so a failure is retried once, when
        the table is found (SQLite's write lock serializes this; PostgreSQL does not)."""
        for attempt in range(2):
            try:
                with self._write() as conn:
                    tables.create_all(conn)
                return
            except StoreError:
                if attempt:
                    raise


class ExperimentConflictError(MovierecError):
    """Another experiment runs, or this one is not in the state the action needs (409)."""


@dataclass(frozen=True)
class ExperimentSpec:
    """What an admin asks for."""

    name: str
    design: Design
    control_version: int
    treatment_version: int
    treatment_share: float
    planned_users: int
    alpha: float
    horizon_days: float
    positive_rating: float


@dataclass(frozen=True)
class Experiment(ExperimentSpec):
    id: int
    salt: str
    status: Status
    created_at: int
    stopped_at: int | None


class ExperimentStore(TablesOfItsOwn):
    """The ``experiments`` table (definitions, written with the store's full durability)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.create_tables(metadata)

    def create(self, spec: ExperimentSpec) -> Experiment:
        """Start ``spec`` now; :class:`ExperimentConflictError` while another one runs."""
        values = {
            **spec.__dict__,
            "salt": secrets.token_hex(8),
            "status": "running",
            "running_slot": RUNNING,
            "created_at": int(time.time()),
        }
        try:
            with self._write() as conn:
                insert = experiments_table.insert().values(values)
                new_id = conn.execute(insert).inserted_primary_key
        except StoreError as exc:
            if not isinstance(exc.__cause__, sa.exc.IntegrityError):
                raise
            raise ExperimentConflictError(_running_message(self.running())) from None
        assert new_id is not None
        found = self.get(int(new_id[0]))
        assert found is not None
        return found

    def get(self, experiment_id: int) -> Experiment | None:
        query = experiments_table.select().where(experiments_table.c.id == experiment_id)
        with self._read() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _experiment(row)

    def all(self) -> list[Experiment]:
        """Every experiment, newest first."""
        query = experiments_table.select().order_by(experiments_table.c.id.desc())
        with self._read() as conn:
            return [_experiment(row) for row in conn.execute(query).mappings()]

    def running(self) -> Experiment | None:
        query = experiments_table.select().where(experiments_table.c.running_slot == RUNNING)
        with self._read() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _experiment(row)

    def finish(self, experiment_id: int, status: Status, *, from_status: Status) -> Experiment:
        """Move a ``from_status`` experiment to ``status`` (stopped or promoted)."""
        table = experiments_table.c
        values: dict[str, Any] = {"status": status, "running_slot": None}
        if from_status == "running":
            values["stopped_at"] = int(time.time())
        update = (
            experiments_table.update()
            .where(table.id == experiment_id, table.status == from_status)
            .values(values)
        )
        with self._write() as conn:
            changed = conn.execute(update).rowcount
        found = self.get(experiment_id)
        if found is None:
            raise KeyError(experiment_id)
        if not changed:
            raise ExperimentConflictError(
                f"experiment {experiment_id} is {found.status}, not {from_status}"
            )
        return found


class ExposureStore(ImpressionStore, TablesOfItsOwn):
    """Exposures: written like impressions (no fsync per commit), read with the ratings."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.create_tables(metadata)

    def add_exposures(self, rows: list[dict[str, object]]) -> None:
        with self._write() as conn:
            conn.execute(exposures_table.insert(), rows)

    def exposures(self, experiment_id: int) -> ShownLists:
        """Every list the experiment showed, a sub-list per arm or team (codes: ARM_CODES)."""
        table = exposures_table.c
        query = (
            sa.select(table.codes, table.user_ids, table.shown_at, table.lengths, table.movie_ids)
            .where(table.experiment_id == experiment_id)
            .order_by(table.id)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        parts = [
            [np.frombuffer(bytes(value), dtype).astype(np.int64) for value, dtype in
             zip(row, ("u1", "<i8", "<i8", "<i4", "<i8"), strict=True)]
            for row in rows
        ]  # fmt: skip
        columns = [
            np.concatenate([part[i] for part in parts]) if parts else np.zeros(0, np.int64)
            for i in range(5)
        ]
        return ShownLists([(arm, arm) for arm in ARM_CODES], *columns)


def _experiment(row: Any) -> Experiment:
    values = dict(row)
    values.pop("running_slot")
    return Experiment(**values)


def _running_message(running: Experiment | None) -> str:
    if running is None:
        return "another experiment was started at the same time: stop it first"
    return f"experiment {running.id} ({running.name!r}) is running: stop it first"

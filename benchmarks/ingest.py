"""Ingest benchmark: synthetic MovieLens-20M-shaped ratings into SQLite, PostgreSQL and MariaDB.

Measures, in one run and each stage in a fresh process (so every peak RSS is that stage's own):

* ``synth``: generating the ratings (:func:`movierec.data.synth.generate`);
* ``ingest``: :meth:`RatingsStore.ingest` into PostgreSQL (COPY), MySQL/MariaDB (LOAD DATA
  LOCAL INFILE) and SQLite;
* ``to_sql``: the common way, ``pandas.DataFrame.to_sql``, on a sample of ``--baseline-rows``
  rows into a fresh table of the same databases (``method="multi"`` and the default method),
  extrapolated per row to the full size: the baseline the store is compared with;
* ``snapshot``: the store exported to a parquet snapshot, then
  :meth:`Interactions.from_snapshot` (the CSR matrix models consume).

Targets (the issue's, for 20M ratings; scaled linearly for other sizes): PostgreSQL ingest at
most 60 s and at least 20x the faster ``to_sql`` baseline, snapshot + Interactions at most 30 s,
every stage under 4 GB peak RSS.

Run ``python benchmarks/ingest.py --help``; it makes (and drops) its own PostgreSQL and MySQL
databases and keeps everything else in a temporary folder. See ``benchmarks/README.md`` for the
latest numbers.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from common import ML20M, cpu_model, rss_bytes, write_json_report
from movierec.data.sources import LoadedData, ParseReport

GB = 1 << 30
PEAK_TARGET_BYTES = 4 * GB
PG_TARGET_S = 60.0  # for 20M ratings
PG_TARGET_RATIO = 20.0
SNAPSHOT_TARGET_S = 30.0  # for 20M ratings
SYNTH_TARGET_S = 60.0  # for 20M ratings
COLUMNS = ("user_id", "item_id", "rating", "timestamp")


@dataclass(frozen=True)
class Params:
    """What one benchmark run does; passed to every stage process."""

    ratings: int
    users: int
    items: int
    seed: int
    workdir: str
    baseline_rows: int
    baseline_chunksize: int

    @property
    def scale(self) -> float:
        """This run's size relative to ML-20M's, to scale the time targets."""
        return self.ratings / ML20M[0]


@dataclass
class Stage:
    """One measured stage: what a stage process reports, plus the verdict added afterwards."""

    stage: str
    backend: str
    rows: int
    seconds: float
    peak_rss: int
    start_rss: int
    full_seconds: float = 0.0  # the time for all ``--ratings`` rows (extrapolated for baselines)
    ratio: float | None = None
    target: str = ""
    passed: bool | None = None
    details: dict[str, float] = field(default_factory=dict)

    @property
    def rows_per_s(self) -> float:
        """Throughput of the measured rows."""
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


# --- measuring (inside the stage processes) ---------------------------------------------------


@contextmanager
def _measure(stage: str, backend: str, rows: int, out: list[Stage]) -> Iterator[dict[str, float]]:
    """Time the body; the yielded dict collects sub-timings for the report."""
    gc.collect()
    start_rss = rss_bytes("VmRSS")
    details: dict[str, float] = {}
    began = time.perf_counter()
    yield details
    seconds = time.perf_counter() - began
    out.append(Stage(stage, backend, rows, seconds, rss_bytes("VmHWM"), start_rss, details=details))


# --- stage bodies (each runs in a fresh spawned process) ---------------------------------------


def _data_dir(params: Params) -> Path:
    return Path(params.workdir) / "data"


def stage_synth(params: Params) -> Stage:
    """Generate the ratings, then save them for the other stages (the save is not timed)."""
    from movierec.data.synth import generate

    out: list[Stage] = []
    with _measure("synth", "numpy", params.ratings, out):
        data = generate(params.users, params.items, params.ratings, seed=params.seed)
    folder = _data_dir(params)
    folder.mkdir(parents=True, exist_ok=True)
    for column in COLUMNS:
        np.save(folder / f"{column}.npy", data.ratings[column].to_numpy())
    # A private hand-off between stages of this run: pickle keeps the genre lists as lists.
    data.movies.to_pickle(folder / "movies.pkl")
    (folder / "meta.json").write_text(json.dumps({"name": data.name, "checksum": data.checksum}))
    return out[0]


def _load(params: Params) -> LoadedData:
    """The synth stage's data set, read back whole into memory (as an ingest would hold it)."""
    folder = _data_dir(params)
    ratings = pd.DataFrame({c: np.load(folder / f"{c}.npy") for c in COLUMNS}, copy=False)
    meta = json.loads((folder / "meta.json").read_text())
    return LoadedData(
        name=meta["name"],
        ratings=ratings,
        movies=pd.read_pickle(folder / "movies.pkl"),
        users=None,
        rating_scale=(0.5, 5.0),
        checksum=meta["checksum"],
        report=ParseReport(rows_read=len(ratings), rows_accepted=len(ratings)),
    )


def stage_ingest(params: Params, url: str, backend: str) -> Stage:
    """Load the whole data set into an empty store through :meth:`RatingsStore.ingest`."""
    from movierec.data.store import RatingsStore

    data = _load(params)
    out: list[Stage] = []
    store = RatingsStore(url)
    try:
        with _measure("ingest", backend, len(data.ratings), out):
            result = store.ingest(data)
    finally:
        store.close()
    if result.inserted != len(data.ratings):
        raise RuntimeError(f"the store inserted {result.inserted:,} of {len(data.ratings):,} rows")
    return out[0]


def stage_to_sql(params: Params, url: str, backend: str, method: str | None) -> Stage:
    """The baseline: ``DataFrame.to_sql`` of the first ``baseline_rows`` rows into a new table."""
    sample = _load(params).ratings.iloc[: params.baseline_rows].copy()
    # SQLite accepts at most 32766 bound parameters per statement, psycopg 65535.
    chunksize = params.baseline_chunksize if method == "multi" else None
    table = f"baseline_{method or 'default'}_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(url)
    out: list[Stage] = []
    try:
        with _measure(f"to_sql {method or 'default'}", backend, len(sample), out):
            sample.to_sql(table, engine, index=False, method=method, chunksize=chunksize)
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE {engine.dialect.identifier_preparer.quote(table)}"))
    finally:
        engine.dispose()
    return out[0]


def stage_snapshot(params: Params, url: str, backend: str) -> Stage:
    """Export the store to a parquet snapshot, then build :class:`Interactions` from it."""
    from movierec.data.interactions import Interactions
    from movierec.data.snapshot import create_snapshot
    from movierec.data.store import RatingsStore

    out: list[Stage] = []
    store = RatingsStore(url)
    try:
        with _measure("snapshot+interactions", backend, params.ratings, out) as details:
            began = time.perf_counter()
            snapshot = create_snapshot(store, Path(params.workdir) / f"snapshots-{backend}")
            details["snapshot_s"] = time.perf_counter() - began
            interactions = Interactions.from_snapshot(snapshot.path)
            details["interactions_s"] = time.perf_counter() - began - details["snapshot_s"]
    finally:
        store.close()
    out[0].rows = interactions.nnz
    return out[0]


def _in_fresh_process(body: Callable[..., Stage], *args: Any) -> Stage:
    """Run ``body(*args)`` in a new spawned interpreter, so its peak RSS is its own."""
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(body, *args).result()


# --- databases ---------------------------------------------------------------------------------


@contextmanager
def temporary_database(admin_url: str) -> Iterator[str]:
    """A new PostgreSQL or MySQL database with a random name, dropped on exit."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"movierec_bench_{uuid.uuid4().hex[:12]}"
    quoted = admin.dialect.identifier_preparer.quote(name)
    postgres = admin.dialect.name == "postgresql"
    with admin.connect() as conn:
        options = "" if postgres else " CHARACTER SET utf8mb4"
        conn.execute(sa.text(f"CREATE DATABASE {quoted}{options}"))
    try:
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            force = " WITH (FORCE)" if postgres else ""
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted}{force}"))
        admin.dispose()


def _server_version(url: str) -> str:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            query = (
                "SHOW server_version" if engine.dialect.name == "postgresql" else "SELECT version()"
            )
            return str(conn.execute(sa.text(query)).scalar())
    finally:
        engine.dispose()


# --- the run -----------------------------------------------------------------------------------


def run(args: argparse.Namespace, workdir: str) -> list[Stage]:
    """Every stage, in order; the PostgreSQL and MySQL stages inside temporary databases."""
    params = Params(
        ratings=args.ratings,
        users=args.users,
        items=args.items,
        seed=args.seed,
        workdir=workdir,
        baseline_rows=min(args.baseline_rows, args.ratings),
        baseline_chunksize=args.baseline_chunksize,
    )
    stages = [_announce(_in_fresh_process(stage_synth, params))]
    if not args.skip_sqlite:
        sqlite_url = f"sqlite:///{Path(workdir) / 'movierec.db'}"
        stages += _backend_stages(params, sqlite_url, "sqlite", args.skip_store)
    if not args.skip_postgres:
        with temporary_database(args.pg_url) as pg_url:
            stages += _backend_stages(params, pg_url, "postgresql", args.skip_store)
    if not args.skip_mysql:
        with temporary_database(args.mysql_url) as mysql_url:
            stages += _backend_stages(params, mysql_url, "mysql", args.skip_store)
    _judge(stages, params)
    return stages


def _backend_stages(params: Params, url: str, backend: str, skip_store: bool) -> list[Stage]:
    stages = [
        _announce(_in_fresh_process(stage_to_sql, params, url, backend, method))
        for method in ("multi", None)
    ]
    if not skip_store:
        stages.append(_announce(_in_fresh_process(stage_ingest, params, url, backend)))
        stages.append(_announce(_in_fresh_process(stage_snapshot, params, url, backend)))
    return stages


def _announce(stage: Stage) -> Stage:
    print(
        f"  {stage.stage:<22} {stage.backend:<10} {stage.rows:>12,} rows {stage.seconds:9.2f} s",
        file=sys.stderr,
        flush=True,
    )
    return stage


def _judge(stages: list[Stage], params: Params) -> None:
    """Fill in full-size times, ratios against the faster baseline, targets and verdicts."""
    for stage in stages:
        stage.full_seconds = params.ratings / stage.rows_per_s
    best_baseline: dict[str, float] = {}
    for stage in stages:
        if stage.stage.startswith("to_sql"):
            best = best_baseline.get(stage.backend, 0.0)
            best_baseline[stage.backend] = max(best, stage.rows_per_s)
    for stage in stages:
        memory_ok = stage.peak_rss <= PEAK_TARGET_BYTES
        if stage.stage == "ingest" and stage.backend in best_baseline:
            stage.ratio = stage.rows_per_s / best_baseline[stage.backend]
        if stage.stage == "synth":
            _target(stage, memory_ok, SYNTH_TARGET_S * params.scale, None)
        elif stage.stage == "ingest" and stage.backend == "postgresql":
            _target(stage, memory_ok, PG_TARGET_S * params.scale, PG_TARGET_RATIO)
        elif stage.stage.startswith("snapshot"):
            _target(stage, memory_ok, SNAPSHOT_TARGET_S * params.scale, None)
        else:
            stage.target = "< 4 GB"
            stage.passed = memory_ok


def _target(stage: Stage, memory_ok: bool, max_seconds: float, min_ratio: float | None) -> None:
    parts = [f"<= {max_seconds:.3g} s"]
    passed = memory_ok and stage.seconds <= max_seconds
    if min_ratio is not None:
        parts.append(f">= {min_ratio:.0f}x")
        passed = passed and stage.ratio is not None and stage.ratio >= min_ratio
    stage.target = ", ".join([*parts, "< 4 GB"])
    stage.passed = passed


def render(stages: list[Stage], params: argparse.Namespace) -> str:
    """The results as a Markdown table (pastes straight into the README)."""
    head = (
        "| stage | backend | rows | seconds | rows/s | s for all rows | peak RSS | vs to_sql |"
        " target | result |"
    )
    lines = [head, "|" + "---|" * 10]
    for s in stages:
        extrapolated = "" if s.rows == params.ratings else " (extrapolated)"
        lines.append(
            f"| {s.stage} | {s.backend} | {s.rows:,} | {s.seconds:.2f} | {s.rows_per_s:,.0f} |"
            f" {s.full_seconds:,.1f}{extrapolated} | {s.peak_rss / GB:.2f} GB |"
            f" {f'{s.ratio:.1f}x' if s.ratio is not None else ''} | {s.target} |"
            f" {'PASS' if s.passed else 'FAIL'} |"
        )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import pyarrow
    import scipy

    with open("/proc/meminfo", encoding="ascii") as meminfo:
        total_kb = int(meminfo.readline().split()[1])
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(total_kb / (1 << 20), 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "pyarrow": pyarrow.__version__,
        "scipy": scipy.__version__,
        "sqlalchemy": sa.__version__,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ratings", type=int, default=ML20M[0])
    parser.add_argument("--users", type=int, default=138_493)
    parser.add_argument("--items", type=int, default=27_278)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "MOVIEREC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
        help="an existing database on the server; the benchmark creates and drops its own",
    )
    parser.add_argument(
        "--mysql-url",
        default=os.environ.get(
            "MOVIEREC_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/mysql"
        ),
        help="a MySQL/MariaDB database on the server; the benchmark creates and drops its own",
    )
    parser.add_argument("--baseline-rows", type=int, default=200_000)
    parser.add_argument(
        "--baseline-chunksize", type=int, default=2_000, help="rows per to_sql multi INSERT"
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-mysql", action="store_true")
    parser.add_argument(
        "--skip-store", action="store_true", help="only synth and the to_sql baselines"
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--workdir", type=Path, help="temporary files here (default: system tmp)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table; exit 1 when a target is missed."""
    args = parse_args(argv)
    print(
        f"ingest benchmark: {args.ratings:,} ratings, {args.users:,} users, {args.items:,} items",
        file=sys.stderr,
    )
    # Other work on the machine skews every figure: the load average is printed with them.
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="movierec-bench-") as workdir:
        stages = run(args, workdir)
    info = machine() | {"load_avg_1min": [load_before, os.getloadavg()[0]]}
    if not args.skip_postgres:
        info["postgresql"] = _server_version(args.pg_url)
    if not args.skip_mysql:
        info["mysql"] = _server_version(args.mysql_url)
    print(render(stages, args))
    print(
        f"\n{info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB;"
        f" 1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    if args.json:
        stages_out = [asdict(s) | {"rows_per_s": s.rows_per_s} for s in stages]
        write_json_report(args.json, args, info, stages=stages_out)
    return 0 if all(s.passed for s in stages) else 1


if __name__ == "__main__":
    sys.exit(main())

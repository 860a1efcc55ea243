"""Serving benchmark: the HTTP API under load from wrk, against ``movierec serve`` on loopback.

A model trained on synthetic ratings with MovieLens-20M's shape (ALS, 64 factors, 15 iterations)
is served as users run it (``movierec serve --port P --workers W``: uvicorn, uvloop, httptools)
and loaded by `wrk <https://github.com/wg/wrk>`_ (a Lua script picks a random user, movie or
history for every request) on three routes, each at concurrency 1 and 32:

* ``user``: ``GET /users/{id}/recommendations?k=10`` for random users of the model;
* ``anonymous``: ``POST /recommend/anonymous`` with 10 random (movie, rating) pairs, folded in;
* ``similar``: ``GET /movies/{id}/similar?k=10`` for random movies of the model;
* ``health`` (a reference, not judged): ``GET /health``, what the stack (uvicorn, FastAPI, the
  middleware) costs without any work of movierec's.

Reported per run: requests/s, p50 and p99 latency (wrk's own histogram), errors (socket errors
plus non-2xx answers), the server's RSS (the sum over its process tree, the highest of the
samples taken every 0.2 s during the run) and the share of CPU time the hypervisor stole from
this virtual machine during the run (``/proc/stat``: tails grow with it) and how wrk's
connections were split between the server's processes (a worker keeps the connections it
accepted: an uneven split queues more requests on one worker); per server start,
the seconds from the process start to ``/ready`` answering 200 and to every worker having
finished its start-up.

The serving monitor (served quality and the impression log, on by default) is then measured by
its cost: the ``user`` route at concurrency 32 against two servers running side by side, one
with it on and one with it off, in short runs alternated (``--monitor-rounds`` of
``--monitor-seconds``), reported as the median round's share of throughput it takes (target
< 5%), the server CPU per request on and off, and the impressions logged at that rate.

In the same run, the naive way many tutorials serve a rating model (predict every movie one at a
time in a Python loop, drop the seen ones, sort) is timed on a few users of the same model and
compared with ``Recommender.recommend`` in process and with the server's p50 at concurrency 1.

Targets (the issue's, on a 2-core machine): at concurrency 32 at least 1,000 requests/s and p99
under 20 ms on every route; zero errors; RSS under 2 GB; ready within 10 s of the start.

Needs ``wrk`` (Debian/Ubuntu: ``sudo apt-get install wrk``). The prepared data (the synthetic
store and the trained model, ~3 minutes) is kept in ``--work-dir`` and reused by later runs.
Run ``python benchmarks/serving.py --help``; see ``benchmarks/README.md`` for the latest numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from common import add_size_arguments, cpu_model, resolve_sizes, write_json_report

GB = 1 << 30
K = 10
ROUTES = ("user", "anonymous", "similar")
REFERENCE = "health"  # GET /health: the framework's own ceiling, not judged
TARGET_RPS = 1_000.0
CHAMPION_TARGET_RPS = 3_000.0  # what `make run` serves must do more (issue 14)
HEAVY_USER = "heavy user"  # the user with the most ratings, alone: each answer under 2 ms
HEAVY_TARGET_P50_MS = 2.0
TARGET_P99_MS = 20.0
TARGET_RSS_BYTES = 2 * GB
TARGET_READY_S = 10.0
TARGET_CONCURRENCY = 32
MONITOR_MAX_COST = 0.05  # the share of throughput the serving monitor may take
READY_TIMEOUT_S = 120.0
QUIET_CPU = 0.1  # a server using less of a core than this, unloaded, has its background done
RSS_SAMPLE_S = 0.2
STARTUP_LINE = "Application startup complete."  # uvicorn logs it once per worker
WRK_MISSING = (
    "wrk is not installed: this benchmark loads the server with it.\n"
    "  Debian/Ubuntu: sudo apt-get install wrk\n"
    "  macOS:         brew install wrk\n"
    "  from source:   https://github.com/wg/wrk"
)

# The load script. ``init`` gets ``-- SEED IDS_FILE ROUTE HISTORY`` from the command line; every
# request draws its own random id (or history), and ``done`` prints wrk's exact figures as JSON.
WRK_LUA = r"""
local ids, route, history = {}, "user", 10

function init(args)
  math.randomseed(tonumber(args[1]))
  for line in io.lines(args[2]) do ids[#ids + 1] = tonumber(line) end
  route, history = args[3], tonumber(args[4])
end

local function pick() return ids[math.random(#ids)] end

function request()
  if route == "user" then
    return wrk.format("GET", "/users/" .. pick() .. "/recommendations?k=10")
  elseif route == "similar" then
    return wrk.format("GET", "/movies/" .. pick() .. "/similar?k=10")
  elseif route == "health" then
    return wrk.format("GET", "/health")
  end
  local parts = {}
  for i = 1, history do
    parts[i] = '{"movie_id":' .. pick() .. ',"rating":' .. (math.random(1, 10) / 2) .. '}'
  end
  local body = '{"ratings":[' .. table.concat(parts, ",") .. '],"k":10}'
  return wrk.format("POST", "/recommend/anonymous",
                    {["Content-Type"] = "application/json"}, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.timeout, e.status))
end
"""


@dataclass
class LoadRun:
    """One wrk run: a route at a concurrency against one server."""

    workers: int
    route: str
    concurrency: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    non_2xx: int
    rss_bytes: int
    load_1min: float
    steal_pct: float | None  # CPU time the hypervisor took from this VM during the run
    split: list[int]  # wrk's connections held by each server process, most first
    passed: bool | None = None
    target: str = ""


@dataclass
class ServerStart:
    """How long one server start took."""

    workers: int
    ready_s: float  # the first /ready that answered 200
    all_workers_s: float  # the last worker's "Application startup complete."
    idle_rss_bytes: int
    passed: bool | None = None


@dataclass
class Naive:
    """The tutorial way versus ``recommend``, on the same users of the same model."""

    users: int
    naive_ms: float
    recommend_ms: float
    same_top_k: bool
    in_process_speedup: float
    served_p50_ms: float | None = None
    served_speedup: float | None = None


@dataclass
class Results:
    target_rps: float = TARGET_RPS
    starts: list[ServerStart] = field(default_factory=list)
    runs: list[LoadRun] = field(default_factory=list)
    naive: Naive | None = None
    monitor: MonitorCost | None = None


@dataclass
class MonitorCost:
    """Throughput of the user route with the serving monitor on and off, rounds alternated."""

    workers: int
    on_rps: list[float]
    off_rps: list[float]
    impressions_logged: int  # lists the "on" servers wrote to the store's impression log
    on_cpu_us: list[float] = field(default_factory=list)  # server CPU per request
    off_cpu_us: list[float] = field(default_factory=list)
    control: bool = False  # an A/A run: "on" is a second server with the monitor off

    @property
    def cpu_cost(self) -> float:
        """The same for the server's CPU time per request (steadier on a shared machine)."""
        ratios = [on / off for on, off in zip(self.on_cpu_us, self.off_cpu_us, strict=True)]
        return statistics.median(ratios) - 1.0

    @property
    def cost(self) -> float:
        """The share of throughput the monitor costs: the median over the rounds of each
        round's on/off ratio (a slow spell of the VM, which can take a fifth of one run's
        throughput, moves a round or two, not the median)."""
        ratios = [on / off for on, off in zip(self.on_rps, self.off_rps, strict=True)]
        return 1.0 - statistics.median(ratios)


# --- preparing the data -------------------------------------------------------------------------


def _environment(
    data_dir: Path, *, monitor: bool = True, impressions: float = 1.0
) -> dict[str, str]:
    """This process's environment pointed at the benchmark's data dir and nothing else.

    Every ``MOVIEREC_*`` variable of the caller (a database URL, a registry) is dropped, so the
    server serves the benchmark's SQLite store and saved model only; ``monitor`` turns the
    serving monitor (served quality and impressions) on, as by default, or off, and
    ``impressions`` is the share of users whose impressions it logs.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOVIEREC_")}
    env["MOVIEREC_DATA_DIR"] = str(data_dir)
    env["MOVIEREC_SERVING_MONITOR"] = "true" if monitor else "false"
    env["MOVIEREC_IMPRESSIONS_SAMPLE_RATE"] = str(impressions)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


def _cli() -> str:
    """The ``movierec`` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("movierec")
    found = str(script) if script.exists() else shutil.which("movierec")
    if found is None:
        sys.exit("the movierec command is not installed: pip install -e . first")
    return found


def prepare(args: argparse.Namespace, data_dir: Path) -> None:
    """Synthesize the store and train the served model, unless a previous run already did."""
    recipe = {
        "ratings": args.ratings,
        "users": args.users,
        "items": args.items,
        "seed": args.seed,
        "factors": args.factors,
        "iterations": args.iterations,
    }
    marker = data_dir / "benchmark-prepared.json"
    if marker.exists() and json.loads(marker.read_text()) == recipe:
        print(f"reusing the prepared data in {data_dir}", file=sys.stderr)
        return
    env = _environment(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    steps = [
        ["data", "synth", "--replace", "--ratings", str(args.ratings), "--users",
         str(args.users), "--items", str(args.items), "--seed", str(args.seed)],
        ["train", "--model", "als", "--param", f"factors={args.factors}", "--param",
         f"iterations={args.iterations}", "--param", "num_threads=2"],
    ]  # fmt: skip
    for step in steps:
        print(f"prepare: movierec {' '.join(step)}", file=sys.stderr, flush=True)
        began = time.perf_counter()
        subprocess.run([_cli(), *step], env=env, check=True, stdout=subprocess.DEVNULL)
        print(f"  {time.perf_counter() - began:.1f} s", file=sys.stderr, flush=True)
    marker.write_text(json.dumps(recipe))


def prepare_champion(args: argparse.Namespace, data_dir: Path) -> None:
    """What `make run` serves: the pipeline's champion (params.yaml, ml-latest-small), trained
    and registered once in ``data_dir``."""
    marker = data_dir / "benchmark-prepared.json"
    if marker.exists():
        print(f"reusing the champion in {data_dir}", file=sys.stderr)
        return
    env = _environment(data_dir) | {"MOVIEREC_DATASETS_DIR": str(args.datasets_dir)}
    data_dir.mkdir(parents=True, exist_ok=True)
    config = Path(__file__).resolve().parents[1] / "params.yaml"
    print("prepare: movierec pipeline run --config params.yaml", file=sys.stderr, flush=True)
    command = [_cli(), "pipeline", "run", "--config", str(config)]
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    marker.write_text(json.dumps({"champion": str(config)}))


def model_folder(data_dir: Path) -> Path:
    return data_dir / "models" / "als"


def _model_ids(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The users and movies the served model knows: the saved ALS's, or the store's (the
    pipeline's champion learned every rating in it)."""
    folder = model_folder(data_dir)
    if (folder / "arrays.npz").exists():
        with np.load(folder / "arrays.npz", allow_pickle=False) as arrays:
            return arrays["user_ids"], arrays["item_ids"]
    with sqlite3.connect(data_dir / "movierec.db") as db:
        users = [row[0] for row in db.execute("SELECT DISTINCT user_id FROM ratings")]
        items = [row[0] for row in db.execute("SELECT DISTINCT item_id FROM ratings")]
    return np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)


def write_id_files(data_dir: Path, folder: Path) -> dict[str, Path]:
    """The external user and movie ids of the model, one a line, for the Lua script, and the
    known user with the most ratings in the store alone."""
    users, items = _model_ids(data_dir)
    paths = {
        "users": folder / "users.txt",
        "items": folder / "items.txt",
        "heavy": folder / "heavy.txt",
    }
    np.savetxt(paths["users"], users, fmt="%d")
    np.savetxt(paths["items"], items, fmt="%d")
    with sqlite3.connect(data_dir / "movierec.db") as db:
        counts = dict(db.execute("SELECT user_id, count(*) FROM ratings GROUP BY user_id"))
    heaviest = max(users.tolist(), key=lambda user: counts.get(user, 0))
    paths["heavy"].write_text(f"{heaviest}\n")
    return paths


# --- the server ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _process_tree(root: int) -> list[int]:
    """``root`` and every descendant, from /proc (uvicorn's workers are its children)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(parents.get(pid, []))
    return tree


def tree_rss(root: int) -> int:
    """The sum of ``VmRSS`` over the process tree of ``root`` (shared pages counted in each)."""
    total = 0
    for pid in _process_tree(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue  # it exited meanwhile
    return total


def tree_cpu_seconds(root: int) -> float:
    """User plus system CPU time of ``root``'s process tree so far (all their threads)."""
    ticks = 0
    for pid in _process_tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it exited meanwhile
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def connections_per_process(root: int, port: int) -> list[int]:
    """Established connections to ``port`` that each process of ``root``'s tree holds, most
    first: how the kernel split wrk's connections between the workers."""
    established = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()  # sl local remote state ... inode
                if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    established.add(f"socket:[{fields[9]}]")
    counts = []
    for pid in _process_tree(root):
        with contextlib.suppress(OSError):
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
            held = sum(link in established for link in links)
            if held:
                counts.append(held)
    return sorted(counts, reverse=True)


class Server:
    """``movierec serve`` in a subprocess, as a user starts it; a context manager."""

    def __init__(
        self,
        data_dir: Path,
        workers: int,
        *,
        monitor: bool = True,
        impressions: float = 1.0,
        database_url: str | None = None,
    ) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        command = [_cli(), "serve", "--port", str(self.port), "--workers", str(workers)]
        env = _environment(data_dir, monitor=monitor, impressions=impressions)
        if database_url is not None:  # the store, where not the data dir's SQLite file
            env["MOVIEREC_DATABASE_URL"] = database_url
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._startups: list[float] = []
        self.log: list[str] = []
        threading.Thread(target=self._read_log, daemon=True).start()

    def _read_log(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line.rstrip())
            if STARTUP_LINE in line:
                self._startups.append(time.perf_counter() - self.started)

    def wait_ready(self) -> ServerStart:
        """Poll ``/ready`` until 200, then wait for every worker's start-up line."""
        deadline = self.started + READY_TIMEOUT_S
        ready_s = None
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the server exited:\n" + "\n".join(self.log[-30:]))
            if ready_s is None and _get_status(f"{self.url}/ready") == 200:
                ready_s = time.perf_counter() - self.started
            if ready_s is not None and len(self._startups) >= self.workers:
                return ServerStart(
                    self.workers, ready_s, max(self._startups), tree_rss(self.process.pid)
                )
            time.sleep(0.02)
        raise RuntimeError(f"the server was not ready in {READY_TIMEOUT_S:.0f} s")

    def wait_quiet(self) -> float:
        """Wait until the server idles (below :data:`QUIET_CPU` of a core over half a second):
        ready, it still computes its top-N lists and similar-movies tables in the background
        (~5 s of CPU for the champion), and a measurement that overlaps them reads up to half
        the throughput. Returns the seconds waited."""
        started = time.perf_counter()
        before = tree_cpu_seconds(self.process.pid)
        while time.perf_counter() - started < READY_TIMEOUT_S:
            time.sleep(0.5)
            now = tree_cpu_seconds(self.process.pid)
            if now - before < QUIET_CPU * 0.5:
                return time.perf_counter() - started
            before = now
        raise RuntimeError(f"the server was still busy {READY_TIMEOUT_S:.0f} s after it was ready")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)  # Ctrl-C: uvicorn's graceful shutdown
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def _get_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            status: int = answer.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


# --- the load -----------------------------------------------------------------------------------


def require_wrk() -> str:
    """The wrk executable; exits with install instructions when there is none."""
    found = shutil.which("wrk")
    if found is None:
        sys.exit(WRK_MISSING)
    return found


def run_wrk(
    server: Server,
    script: Path,
    ids: Path,
    route: str,
    *,
    concurrency: int,
    seconds: float,
    args: argparse.Namespace,
) -> LoadRun:
    """One wrk run (one load thread: the server needs the cores) with the RSS sampled."""
    command = [
        require_wrk(), "-t", "1", "-c", str(concurrency), "-d", f"{seconds:g}s", "--timeout",
        "5s", "--latency", "-s", str(script), server.url, "--",
        str(args.seed + concurrency), str(ids), route, str(args.history),
    ]  # fmt: skip
    load = os.getloadavg()[0]
    times_before = cpu_times()
    peak_rss = 0
    split: list[int] = []
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as wrk:
        while wrk.poll() is None:
            peak_rss = max(peak_rss, tree_rss(server.process.pid))
            if sum(split) < concurrency:  # until every connection is seen
                split = connections_per_process(server.process.pid, server.port)
            time.sleep(RSS_SAMPLE_S)
        output = wrk.stdout.read() if wrk.stdout else ""
    steal = steal_share(times_before, cpu_times())
    lines = [line for line in output.splitlines() if line.startswith("WRK_RESULT ")]
    if wrk.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({wrk.returncode}):\n{output}")
    result = json.loads(lines[-1].removeprefix("WRK_RESULT "))
    duration = result["duration_us"] / 1e6
    socket_errors = sum(result[key] for key in ("connect", "read", "write", "timeout"))
    return LoadRun(
        workers=server.workers,
        route=route,
        concurrency=concurrency,
        requests=result["requests"],
        seconds=duration,
        rps=result["requests"] / duration,
        p50_ms=result["p50_us"] / 1e3,
        p99_ms=result["p99_us"] / 1e3,
        max_ms=result["max_us"] / 1e3,
        errors=socket_errors + result["status"],
        non_2xx=result["status"],
        rss_bytes=peak_rss,
        load_1min=load,
        steal_pct=steal,
        split=split,
    )


def cpu_times() -> list[int] | None:
    """The machine's CPU time counters (``/proc/stat``), None where there are none."""
    try:
        with open("/proc/stat") as stat:
            return [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None


def steal_share(before: list[int] | None, after: list[int] | None) -> float | None:
    """The percentage of CPU time stolen by the hypervisor between two readings: a virtual
    machine's neighbours take it, and latency tails grow with it."""
    if before is None or after is None or len(before) < 8:
        return None
    deltas = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(deltas[:8])  # user nice system idle iowait irq softirq steal (guest: in user)
    return 100.0 * deltas[7] / total if total > 0 else None


def _split(counts: list[int]) -> str:
    return "/".join(map(str, counts)) or "n/a"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def check_answers(server: Server, ids: dict[str, Path]) -> None:
    """One request per route before the load: each must answer 200 with k items."""
    user = int(ids["users"].read_text().split()[0])
    movies = [int(m) for m in ids["items"].read_text().split()[:3]]
    body = json.dumps({"ratings": [{"movie_id": m, "rating": 4.0} for m in movies], "k": K})
    requests = [
        urllib.request.Request(f"{server.url}/users/{user}/recommendations?k={K}"),
        urllib.request.Request(
            f"{server.url}/recommend/anonymous",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
        ),
        urllib.request.Request(f"{server.url}/movies/{movies[0]}/similar?k={K}"),
    ]
    for request in requests:
        with urllib.request.urlopen(request, timeout=10) as answer:
            items = json.loads(answer.read())["items"]
        if len(items) != K:
            raise RuntimeError(f"{request.full_url} answered {len(items)} items, not {K}")


def measure_server(
    args: argparse.Namespace, data_dir: Path, folder: Path, workers: int, results: Results
) -> None:
    """Start a server with ``workers`` workers, then every route at every concurrency."""
    ids = write_id_files(data_dir, folder)
    script = folder / "load.lua"
    script.write_text(WRK_LUA)
    with Server(data_dir, workers) as server:
        start = server.wait_ready()
        results.starts.append(start)
        print(
            f"workers={workers}: ready in {start.ready_s:.2f} s, every worker in"
            f" {start.all_workers_s:.2f} s, {start.idle_rss_bytes / GB:.2f} GB",
            file=sys.stderr,
            flush=True,
        )
        server.wait_quiet()
        check_answers(server, ids)
        for route in (*ROUTES, REFERENCE):
            id_file = ids["items"] if route in ("anonymous", "similar") else ids["users"]
            target = (server, script, id_file, route)
            run_wrk(*target, concurrency=TARGET_CONCURRENCY, seconds=args.warmup, args=args)
            for concurrency in args.concurrency:
                run = run_wrk(*target, concurrency=concurrency, seconds=args.duration, args=args)
                results.runs.append(run)
                _print_run(run)
        # The user with the most ratings, alone (one connection): each answer's own time.
        heavy = run_wrk(server, script, ids["heavy"], "user", concurrency=1,
                        seconds=args.duration, args=args)  # fmt: skip
        results.runs.append(replace(heavy, route=HEAVY_USER))
        _print_run(results.runs[-1])


def _print_run(run: LoadRun) -> None:
    print(
        f"  {run.route:<10} c={run.concurrency:<3} {run.rps:8,.0f} req/s  p50"
        f" {run.p50_ms:6.2f} ms  p99 {run.p99_ms:6.2f} ms  errors {run.errors}"
        f"  RSS {run.rss_bytes / GB:.2f} GB  load {run.load_1min:.1f}"
        f"  steal {_percent(run.steal_pct)}  split {_split(run.split)}",
        file=sys.stderr,
        flush=True,
    )


def measure_monitor_cost(
    args: argparse.Namespace, data_dir: Path, folder: Path, results: Results
) -> None:
    """The user route at the target concurrency against two servers started side by side, the
    monitor on in one and off in the other, in short alternating runs (``--monitor-rounds``
    of ``--monitor-seconds``, the order swapped each round): this virtual machine's speed
    drifts by a fifth within a minute, and runs seconds apart see the same drift."""
    ids = write_id_files(data_dir, folder)
    script = folder / "load.lua"
    script.write_text(WRK_LUA)
    workers = args.workers[-1]
    cost = MonitorCost(workers, [], [], 0, control=args.monitor_control)
    before = _newest_impressions(data_dir)
    with (
        Server(
            data_dir, workers, monitor=not args.monitor_control, impressions=args.impressions
        ) as on,
        Server(data_dir, workers, monitor=False) as off,
    ):
        for server in (on, off):
            server.wait_ready()
            server.wait_quiet()
        for server in (on, off):
            run_wrk(server, script, ids["users"], "user", concurrency=TARGET_CONCURRENCY,
                    seconds=args.warmup, args=args)  # fmt: skip
        for round_number in range(args.monitor_rounds):
            order = (on, off) if round_number % 2 == 0 else (off, on)
            for server in order:
                _monitor_run(server, script, ids["users"], args, monitor=server is on, cost=cost)
    cost.impressions_logged = _lists_logged_after(data_dir, before)
    results.monitor = cost


def _monitor_run(
    server: Server, script: Path, ids: Path, args: argparse.Namespace, *, monitor: bool,
    cost: MonitorCost,
) -> None:  # fmt: skip
    cpu_before = tree_cpu_seconds(server.process.pid)
    run = run_wrk(server, script, ids, "user", concurrency=TARGET_CONCURRENCY,
                  seconds=args.monitor_seconds, args=args)  # fmt: skip
    per_request = (
        1e6 * (tree_cpu_seconds(server.process.pid) - cpu_before) / (run.rps * args.monitor_seconds)
    )
    (cost.on_rps if monitor else cost.off_rps).append(run.rps)
    (cost.on_cpu_us if monitor else cost.off_cpu_us).append(per_request)
    print(f"  monitor {'on ' if monitor else 'off'} user c={TARGET_CONCURRENCY}"
          f" {run.rps:8,.0f} req/s  p99 {run.p99_ms:6.2f} ms  server CPU"
          f" {per_request:.0f} µs/request", file=sys.stderr, flush=True)  # fmt: skip


def _newest_impressions(data_dir: Path) -> int:
    """The id of the newest batch of impressions in the store (0: none)."""
    with sqlite3.connect(data_dir / "movierec.db") as db:
        try:
            return int(db.execute("SELECT coalesce(max(id), 0) FROM impressions").fetchone()[0])
        except sqlite3.OperationalError:  # a store made before impressions existed
            return 0


def _lists_logged_after(data_dir: Path, batch_id: int) -> int:
    """Lists in the batches newer than ``batch_id`` (the retention deletes only older ones)."""
    with sqlite3.connect(data_dir / "movierec.db") as db:
        query = "SELECT coalesce(sum(lists), 0) FROM impressions WHERE id > ?"
        return int(db.execute(query, (batch_id,)).fetchone()[0])


# --- the naive baseline -------------------------------------------------------------------------


def naive_top_k(
    user_vector: np.ndarray, item_factors: np.ndarray, seen: set[int], k: int
) -> list[int]:
    """The tutorial way: predict each movie's score one at a time, skip the seen, sort all."""
    predictions = []
    for item in range(len(item_factors)):
        if item in seen:
            continue
        predictions.append((float(np.dot(user_vector, item_factors[item])), item))
    predictions.sort(reverse=True)
    return [item for _, item in predictions[:k]]


def measure_naive(args: argparse.Namespace, data_dir: Path) -> Naive:
    """Time the naive loop and ``recommend`` on the same random users, in this process."""
    from movierec.serving.loading import load_model_folder

    model: Any = load_model_folder(model_folder(data_dir))
    model.warm_up()  # as the server does at load: indexes built, kernels compiled
    rng = np.random.default_rng(args.seed)
    users = rng.integers(0, model.n_users, size=args.naive_users).tolist()
    naive_s, fast_s, same = 0.0, 0.0, True
    for user in users:
        began = time.perf_counter()
        start, stop = model.user_items.indptr[user], model.user_items.indptr[user + 1]
        seen = set(model.user_items.indices[start:stop].tolist())
        slow = naive_top_k(model.user_factors[user], model.item_factors, seen, K)
        naive_s += time.perf_counter() - began
        began = time.perf_counter()
        fast, _ = model.recommend(user, k=K)
        fast_s += time.perf_counter() - began
        # Float32 sums in a different order can swap near-ties: compare as sets.
        same = same and len(set(slow) & set(fast.tolist())) >= K - 1
    naive_ms, recommend_ms = 1e3 * naive_s / len(users), 1e3 * fast_s / len(users)
    return Naive(len(users), naive_ms, recommend_ms, same, naive_ms / recommend_ms)


# --- verdicts and the report --------------------------------------------------------------------


def judge(results: Results) -> None:
    """Set each run's and start's target and verdict; the naive speed-up vs the served p50."""
    for run in results.runs:
        if run.route == REFERENCE:
            run.target = "reference"
            continue
        ok = run.errors == 0 and run.rss_bytes < TARGET_RSS_BYTES
        run.target = "0 errors, RSS < 2 GB"
        rps = results.target_rps
        if run.concurrency == TARGET_CONCURRENCY:
            run.target = f">= {rps:,.0f} req/s, p99 < {TARGET_P99_MS:g} ms, " + run.target
            ok = ok and run.rps >= rps and run.p99_ms < TARGET_P99_MS
        if run.route == HEAVY_USER:
            run.target = f"p50 < {HEAVY_TARGET_P50_MS:g} ms, " + run.target
            ok = ok and run.p50_ms < HEAVY_TARGET_P50_MS
        run.passed = ok
    for start in results.starts:
        start.passed = start.all_workers_s <= TARGET_READY_S
    naive = results.naive
    serial = [r for r in results.runs if r.route == "user" and r.concurrency == 1]
    if naive is not None and serial:
        naive.served_p50_ms = min(r.p50_ms for r in serial)
        naive.served_speedup = naive.naive_ms / naive.served_p50_ms


def render(results: Results) -> str:
    """The results as Markdown (pastes straight into the README)."""
    lines = [
        "| workers | route | concurrency | req/s | p50 ms | p99 ms | max ms | errors |"
        " server RSS | load | steal | split | target | result |",
        "|" + "---|" * 14,
    ]
    for r in results.runs:
        lines.append(
            f"| {r.workers} | {r.route} | {r.concurrency} | {r.rps:,.0f} | {r.p50_ms:.2f} |"
            f" {r.p99_ms:.2f} | {r.max_ms:.1f} | {r.errors} | {r.rss_bytes / GB:.2f} GB |"
            f" {r.load_1min:.1f} | {_percent(r.steal_pct)} | {_split(r.split)} | {r.target} |"
            f" {_verdict(r.passed)} |"
        )
    lines += ["", "| workers | ready (first /ready 200) | every worker started | idle RSS |"
              " target | result |", "|" + "---|" * 6]  # fmt: skip
    for s in results.starts:
        lines.append(
            f"| {s.workers} | {s.ready_s:.2f} s | {s.all_workers_s:.2f} s |"
            f" {s.idle_rss_bytes / GB:.2f} GB | <= {TARGET_READY_S:g} s |"
            f" {_verdict(s.passed)} |"
        )
    cost = results.monitor
    if cost is not None:
        lines += [
            "",
            f"Serving monitor{' A/A control (off in both servers)' if cost.control else ''}"
            f" ({cost.workers} workers, user route, c={TARGET_CONCURRENCY},"
            f" {len(cost.on_rps)} rounds alternated, the median round's ratio): on"
            f" {_rates(cost.on_rps)} req/s, off {_rates(cost.off_rps)} req/s; it costs"
            f" {cost.cost:.1%} of throughput (target < {MONITOR_MAX_COST:.0%}:"
            f" {_verdict(cost.cost < MONITOR_MAX_COST)}), with"
            f" {cost.impressions_logged:,} impressions logged. The server's CPU time per"
            f" request: on {_rates(cost.on_cpu_us)} µs, off {_rates(cost.off_cpu_us)} µs,"
            f" {cost.cpu_cost:+.1%} with the monitor (median round).",
        ]
    naive = results.naive
    if naive is not None:
        lines += [
            "",
            f"Naive (a Python loop predicting each of the movies, then a sort), {naive.users}"
            f" users: {naive.naive_ms:.1f} ms per user; `recommend`: {naive.recommend_ms:.3f}"
            f" ms ({naive.in_process_speedup:,.0f}x faster in process); same top-{K}:"
            f" {'yes' if naive.same_top_k else 'NO'}.",
        ]
        if naive.served_speedup is not None:
            lines.append(
                f"The served p50 at concurrency 1 ({naive.served_p50_ms:.2f} ms, HTTP and JSON"
                f" included) is {naive.served_speedup:,.0f}x faster than the naive loop's"
                " compute alone."
            )
    return "\n".join(lines)


def _served_data(args: argparse.Namespace) -> str:
    if args.champion:
        return "the pipeline's champion of params.yaml on ml-latest-small"
    return f"ALS on {args.ratings:,} ratings, {args.users:,} users, {args.items:,} movies"


def _rates(values: list[float]) -> str:
    return " / ".join(f"{value:,.0f}" for value in values)


def _verdict(passed: bool | None) -> str:
    return "reference" if passed is None else "PASS" if passed else "FAIL"


def _commit() -> str:
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return described.stdout.strip()


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    wrk = subprocess.run([require_wrk(), "--version"], capture_output=True, text=True, check=False)
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "wrk": (wrk.stdout or wrk.stderr).splitlines()[0],
        "commit": _commit(),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; ``--small`` replaces the default sizes (explicit sizes still win)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_size_arguments(parser)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument(
        "--workers", default="2", help="uvicorn worker counts to measure, comma-separated"
    )
    parser.add_argument("--concurrency", default="1,32", help="wrk connections, comma-separated")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per route")
    parser.add_argument("--history", type=int, default=10, help="ratings per anonymous request")
    parser.add_argument("--naive-users", type=int, default=5)
    parser.add_argument(
        "--monitor-only", action="store_true",
        help="only the serving monitor's on/off rounds (no route table, no naive baseline)",
    )  # fmt: skip
    parser.add_argument(
        "--monitor-rounds", type=int, default=60,
        help="on/off rounds measuring the serving monitor's cost (0: skip)",
    )  # fmt: skip
    parser.add_argument(
        "--monitor-seconds", type=float, default=2.0, help="seconds of each on or off run"
    )
    parser.add_argument(
        "--monitor-control", action="store_true",
        help="an A/A run: the monitor off in both servers (the method's own noise and bias)",
    )  # fmt: skip
    parser.add_argument(
        "--impressions", type=float, default=1.0,
        help="the monitored server's impressions sample rate (the default logs every user)",
    )  # fmt: skip
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "movierec-serving-bench",
        help="the prepared data (kept between runs)",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument(
        "--champion", action="store_true",
        help="serve what `make run` serves (params.yaml's champion on ml-latest-small)",
    )  # fmt: skip
    parser.add_argument(
        "--datasets-dir", type=Path,
        default=Path(os.environ.get("MOVIEREC_DATASETS_DIR", "../shared/datasets")),
        help="where the MovieLens archives are (--champion)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    resolve_sizes(args)
    args.workers = [int(w) for w in args.workers.split(",")]
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    if args.small and args.work_dir == parser.get_default("work_dir"):
        args.work_dir = args.work_dir.with_name(args.work_dir.name + "-small")
    return args


def main(argv: list[str] | None = None) -> int:
    """Prepare, load every server configuration, time the naive way; exit 1 on a missed target."""
    args = parse_args(argv)
    require_wrk()
    if args.champion:
        data_dir = args.work_dir / "champion"
        prepare_champion(args, data_dir)
    else:
        data_dir = args.work_dir / "data"
        prepare(args, data_dir)
    results = Results(target_rps=CHAMPION_TARGET_RPS if args.champion else TARGET_RPS)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="movierec-wrk-") as scratch:
        for workers in [] if args.monitor_only else args.workers:
            measure_server(args, data_dir, Path(scratch), workers, results)
        if args.monitor_rounds:
            measure_monitor_cost(args, data_dir, Path(scratch), results)
    # The naive loop scores the 20M ALS's factors: no such model under --champion.
    results.naive = None if args.monitor_only or args.champion else measure_naive(args, data_dir)
    load_after = os.getloadavg()[0]
    judge(results)
    info = machine() | {"load_avg_1min": [load_before, load_after]}
    print(render(results))
    print(
        f"\n{datetime.now(UTC):%Y-%m-%d}, commit {info['commit']}; {info['cpu']},"
        f" {info['cores']} cores; {info['wrk']}; {_served_data(args)}; 1-min load average"
        f" {load_before:.1f} before,"
        f" {load_after:.1f} after"
    )
    if args.json:
        write_json_report(
            args.json,
            args,
            info,
            starts=[asdict(s) for s in results.starts],
            runs=[asdict(r) for r in results.runs],
            naive=asdict(results.naive) if results.naive else None,
            monitor=asdict(results.monitor)
            | {"cost": results.monitor.cost, "cpu_cost": results.monitor.cpu_cost}
            if results.monitor
            else None,
        )
    verdicts = [r.passed for r in results.runs if r.route != REFERENCE]
    verdicts += [s.passed for s in results.starts]
    if results.monitor is not None:
        verdicts.append(results.monitor.cost < MONITOR_MAX_COST)
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())

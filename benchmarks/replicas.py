"""API replicas benchmark: nginx in front of one and two ``movierec serve`` replicas, and what
the replicas' channel costs and how fast it carries a rating.

On ``make run``'s data (ml-latest-small in a PostgreSQL database of its own at ``--pg``, dropped
afterwards) and a quick ALS model, each replica with a data dir of its own (as on two hosts) and
``--workers`` workers (default 1: two replicas then share this machine's cores):

* throughput and latency of ``GET /users/{id}/recommendations`` at concurrency 32 (wrk, random
  users): one replica directly (the baseline), nginx over one replica, nginx over two; nginx
  runs the deployment's config (``deploy/nginx/nginx.conf``, through :mod:`tests.replicas`);
* the propagation delay of a rating across replicas, per channel (PostgreSQL LISTEN/NOTIFY,
  Redis pub/sub at ``--redis``): a rating posted to replica A, then replica B asked for that
  user's recommendations until they fold it in, from A's answer to B's first such answer
  (``--samples`` users, p50 and p99);
* the cost of the channel per rating: ``POST /ratings`` (new users) at concurrency 32 on replica
  A with the channel off, on PostgreSQL and on Redis (B listening), in ``--rounds`` alternated
  rounds (medians): ratings/s, p99, and the CPU time A (sending) and B (receiving) spend per
  rating; and one message published in a loop (a group commit sends one message for all the
  users of its ratings).

Needs wrk and nginx. Run: ``.venv/bin/python benchmarks/replicas.py [--seconds 10]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from feedback import WRK_LUA, _id_files, backend, drop, finish, prepare, wrk
from serving import _cli, _free_port, _get_status, tree_cpu_seconds

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.replicas: nginx
from tests.replicas import nginx

FEEDS = ("postgres", "redis")
START_S = 180  # a replica's start on a loaded 2-core machine


@contextmanager
def replica(
    env: dict[str, str], data_dir: Path, workers: int, **settings: str
) -> Iterator[tuple[str, int]]:
    """``movierec serve`` on a data dir of its own (the saved model copied in) until the block
    ends; yields its address and process id once ready."""
    if not (data_dir / "models").exists():
        shutil.copytree(Path(env["MOVIEREC_DATA_DIR"]) / "models", data_dir / "models")
    port = _free_port()
    own = {**env, "MOVIEREC_DATA_DIR": str(data_dir)}
    own.update({f"MOVIEREC_{key.upper()}": value for key, value in settings.items()})
    command = [_cli(), "serve", "--port", str(port), "--workers", str(workers)]
    server = subprocess.Popen(
        command, env=own, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_S
    try:
        while _get_status(f"{url}/ready") != 200:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the replica at {url} is not ready in {START_S} s")
            time.sleep(0.1)
        yield url, server.pid
    finally:
        server.terminate()
        server.wait(timeout=30)


def throughput(
    env: dict[str, str], folder: Path, files: list[Path], seconds: float, workers: int
) -> dict[str, dict]:
    """Reads at concurrency 32: one replica directly, nginx over one, nginx over two."""
    out = {}
    with ExitStack() as stack:
        urls = [
            stack.enter_context(replica(env, folder / f"r{n}", workers, replica_feed="postgres"))[0]
            for n in range(2)
        ]
        out["direct_1"] = finish(wrk(urls[0], files, "read", 32, seconds, pause=0))
        for count in (1, 2):
            upstreams = [u.removeprefix("http://") for u in urls[:count]]
            with nginx(upstreams, _free_port(), folder / f"nginx-{count}") as url:
                out[f"nginx_{count}"] = finish(wrk(url, files, "read", 32, seconds, pause=0))
    return out


def propagation(one: str, two: str, users: list[int], movie_ids: list[int]) -> dict[str, float]:
    """Seconds from a rating's answer on ``one`` to ``two`` folding it in, per user."""
    delays = []
    with httpx.Client(base_url=one) as post, httpx.Client(base_url=two) as read:
        for user, movie in zip(users, movie_ids, strict=False):
            rating = {"user_id": user, "movie_id": movie, "rating": 5.0}
            assert post.post("/ratings", json=rating).status_code == 201
            answered = time.perf_counter()
            while read.get(f"/users/{user}/recommendations?k=10").json()["strategy"] != (
                "folded_in"
            ):
                if time.perf_counter() - answered > 10:
                    raise RuntimeError(f"user {user}'s rating never reached the other replica")
            delays.append(time.perf_counter() - answered)
    delays.sort()
    return {
        "samples": len(delays),
        "p50_ms": 1e3 * statistics.median(delays),
        "p99_ms": 1e3 * delays[min(len(delays) - 1, int(0.99 * len(delays)))],
        "max_ms": 1e3 * delays[-1],
    }


def publish_cost(env: dict[str, str], redis_url: str, count: int = 2_000) -> dict[str, float]:
    """Microseconds per message published in a loop, one user each, per channel."""
    from movierec.serving.replicas.messages import encode
    from movierec.serving.replicas.postgres import PostgresTransport
    from movierec.serving.replicas.redis_pubsub import RedisTransport

    out = {}
    for name, transport in (
        ("postgres", PostgresTransport(env["MOVIEREC_DATABASE_URL"])),
        ("redis", RedisTransport(redis_url)),
    ):
        payloads = [encode("bench", "ratings", [user]) for user in range(count)]
        transport.publish(payloads[0])  # connected before the clock starts
        started = time.perf_counter()
        for payload in payloads:
            transport.publish(payload)
        out[f"{name}_us_per_message"] = 1e6 * (time.perf_counter() - started) / count
        transport.close()
    return out


@dataclass
class Pair:
    """Replica A (posted to) and B (listening), by address and process id."""

    one: str
    two: str
    pids: tuple[int, int]


def cost_round(pair: Pair, files: list[Path], seconds: float) -> dict[str, float]:
    """Posts at concurrency 32 on A: throughput, p99, and A's and B's CPU per rating."""
    before = [tree_cpu_seconds(pid) for pid in pair.pids]
    result = finish(wrk(pair.one, files, "rate", 32, seconds, pause=0))
    spent = [tree_cpu_seconds(pid) - b for pid, b in zip(pair.pids, before, strict=True)]
    ratings = result["rps"] * seconds
    return {"rps": result["rps"], "p99_ms": result["p99_ms"], "errors": result["errors"],
            "a_cpu_us": 1e6 * spent[0] / ratings, "b_cpu_us": 1e6 * spent[1] / ratings}  # fmt: skip


def channels(
    env: dict[str, str], folder: Path, files: list[Path], args: argparse.Namespace
) -> dict[str, dict]:
    """Per channel (and none): posts on A with B listening, in alternated rounds (this VM's
    neighbours move one run's figures by more than the channel costs), then the propagation
    delay from A to B."""
    users = [int(u) for u in files[1].read_text().split()]
    movies = [int(m) for m in files[2].read_text().split()]
    feeds = ("none", *FEEDS)
    out: dict[str, dict] = {}
    with ExitStack() as stack:
        pairs = {}
        for feed in feeds:
            started = [
                stack.enter_context(replica(env, folder / f"{feed}-{n}", args.workers,
                                            replica_feed=feed, redis_url=args.redis))
                for n in range(2)
            ]  # fmt: skip
            pairs[feed] = Pair(started[0][0], started[1][0], (started[0][1], started[1][1]))
        rounds: dict[str, list[dict[str, float]]] = {feed: [] for feed in feeds}
        for number in range(args.rounds):
            for feed in feeds[number % 3 :] + feeds[: number % 3]:
                rounds[feed].append(cost_round(pairs[feed], files, args.seconds))
        for feed in feeds:
            out[feed] = {key: statistics.median(r[key] for r in rounds[feed])
                         for key in rounds[feed][0]}  # fmt: skip
            out[feed]["errors"] = sum(r["errors"] for r in rounds[feed])
        for feed in FEEDS:
            # Fresh users each channel: a user folded in before stays so.
            picked = users[FEEDS.index(feed) * args.samples :][: args.samples]
            out[feed]["propagation"] = propagation(
                pairs[feed].one, pairs[feed].two, picked, movies[: len(picked)]
            )
            print(feed, json.dumps(out[feed]), flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds of posts")
    parser.add_argument("--workers", type=int, default=1, help="workers per replica")
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--datasets-dir", default="/work/shared/datasets")
    args = parser.parse_args(argv)
    # A stopped run still drops its database and stops its servers (the finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = [folder / "load.lua", folder / "users.txt", folder / "movies.txt"]
        files[0].write_text(WRK_LUA)
        env, database = backend("postgresql", args.pg, folder)
        env["MOVIEREC_DATASETS_DIR"] = args.datasets_dir
        try:
            prepare(env)
            _id_files(env, files)
            results: dict[str, dict] = {"publish": publish_cost(env, args.redis)}
            print("publish", json.dumps(results["publish"]), flush=True)
            results["throughput"] = throughput(env, folder, files, args.seconds, args.workers)
            print("throughput", json.dumps(results["throughput"]), flush=True)
            results["channels"] = channels(env, folder, files, args)
        finally:
            assert database is not None
            drop(args.pg, database)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Model benchmark: ALS and biased MF fits, full-ranking evaluation and recommend latency.

On synthetic ratings with MovieLens-20M's shape, each stage in a fresh spawned process (so every
peak RSS is that stage's own):

* ``data``: :func:`movierec.data.synth.generate` plus :meth:`Interactions.from_frames`; the
  canonical frames are saved to parquet (untimed) for the other stages;
* ``als fit``: movierec's :class:`ALS`, and as the same-run reference ``implicit``'s own
  ``AlternatingLeastSquares`` on the same rating matrix with the same settings;
* ``svd fit``: movierec's :class:`BiasedMF` (``"svd"``); its references, on ml-100k, are the
  same model and ``surprise.SVD`` (when installed), compared by ratings x epochs per second;
* ``recommend all`` and ``evaluate``: every user ranked over the whole catalogue (k=10, seen
  items excluded) by an ALS fitted on a per-user temporal holdout's train part;
* ``recommend 1``: one user at a time from a freshly loaded saved ALS (mean, p50, p99), and
  batches of 1,000 users.

Targets (the issue's, for 20M ratings on 2 cores; time targets of the fits and the evaluation
scale linearly with ``--ratings``): ALS fit <= 90 s, biased MF fit <= 120 s, evaluation of
every user <= 60 s, ``recommend`` for one user <= 2 ms on average, every stage <= 8 GB peak RSS.

Run ``python benchmarks/models.py --help`` (``--small`` for a quick look); see
``benchmarks/README.md`` for the latest numbers.
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
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common import ML20M, add_size_arguments, cpu_model, resolve_sizes, rss_bytes, write_json_report

GB = 1 << 30
PEAK_TARGET_BYTES = 8 * GB
ALS_TARGET_S = 90.0  # the time targets are for 20M ratings
MF_TARGET_S = 120.0
EVAL_TARGET_S = 60.0
LATENCY_TARGET_MS = 2.0
K = 10
DEFAULT_DATASETS = Path("/work/shared/datasets")


@dataclass(frozen=True)
class Params:
    """What one benchmark run does; passed to every stage process."""

    ratings: int
    users: int
    items: int
    seed: int
    workdir: str
    threads: int
    factors: int
    als_iterations: int
    mf_epochs: int
    latency_users: int
    batch_users: int
    datasets_dir: str

    @property
    def scale(self) -> float:
        """This run's size relative to ML-20M's, to scale the time targets."""
        return self.ratings / ML20M[0]

    @property
    def data_dir(self) -> Path:
        """Where the data stage leaves the canonical frames."""
        return Path(self.workdir) / "data"

    @property
    def als_path(self) -> Path:
        """Where the ALS stage saves its model for the latency stage."""
        return Path(self.workdir) / "als-model"


@dataclass
class Stage:
    """One measured figure: what a stage process reports, plus the verdict added afterwards."""

    stage: str
    what: str
    ratings: int
    seconds: float
    peak_rss: int
    load_1min: float
    throughput: float = 0.0
    unit: str = ""
    reference: bool = False
    versus: str = ""
    target: str = ""
    passed: bool | None = None
    details: dict[str, float] = field(default_factory=dict)


# --- measuring (inside the stage processes) ---------------------------------------------------


@contextmanager
def _measure(stage: str, what: str, ratings: int, out: list[Stage]) -> Iterator[dict[str, float]]:
    """Time the body; the yielded dict collects sub-timings and counts for the report."""
    gc.collect()
    load = os.getloadavg()[0]
    details: dict[str, float] = {}
    began = time.perf_counter()
    yield details
    seconds = time.perf_counter() - began
    out.append(Stage(stage, what, ratings, seconds, rss_bytes("VmHWM"), load, details=details))
    _rate(out[-1], ratings, "ratings/s")


def _rate(stage: Stage, amount: float, unit: str) -> None:
    """Set the stage's throughput: ``amount`` of ``unit`` per second."""
    stage.throughput = amount / stage.seconds if stage.seconds > 0 else float("inf")
    stage.unit = unit


@contextmanager
def _stopwatch(details: dict[str, float], key: str) -> Iterator[None]:
    """Add the body's duration to ``details[key]`` (seconds)."""
    began = time.perf_counter()
    yield
    details[key] = time.perf_counter() - began


def _load_interactions(params: Params) -> Any:
    """The data stage's frames, read back from parquet into :class:`Interactions`."""
    from movierec.data.interactions import Interactions

    folder = params.data_dir
    scale = json.loads((folder / "meta.json").read_text())["rating_scale"]
    return Interactions.from_frames(
        pd.read_parquet(folder / "ratings.parquet"),
        pd.read_parquet(folder / "movies.parquet"),
        rating_scale=(scale[0], scale[1]),
    )


# --- stage bodies (each runs in a fresh spawned process) ---------------------------------------


def stage_data(params: Params) -> list[Stage]:
    """Generate the ratings and build the CSR matrix; save the frames (untimed) for later."""
    from movierec.data.interactions import Interactions
    from movierec.data.synth import generate

    out: list[Stage] = []
    with _measure("data", "synth + Interactions", params.ratings, out) as details:
        with _stopwatch(details, "synth_s"):
            data = generate(params.users, params.items, params.ratings, seed=params.seed)
        with _stopwatch(details, "interactions_s"):
            Interactions.from_frames(data.ratings, data.movies, rating_scale=data.rating_scale)
    folder = params.data_dir
    folder.mkdir(parents=True, exist_ok=True)
    data.ratings.to_parquet(folder / "ratings.parquet", index=False)
    data.movies.to_parquet(folder / "movies.parquet", index=False)
    (folder / "meta.json").write_text(json.dumps({"rating_scale": list(data.rating_scale)}))
    return out


def stage_als(params: Params) -> list[Stage]:
    """Fit movierec's ALS on every rating; save it (untimed) for the latency stage."""
    from movierec.models import create_model

    interactions = _load_interactions(params)
    model = create_model(
        "als",
        factors=params.factors,
        iterations=params.als_iterations,
        num_threads=params.threads,
        seed=params.seed,
    )
    out: list[Stage] = []
    with _measure("als fit", "movierec ALS", interactions.nnz, out):
        model.fit(interactions)
    model.save(params.als_path)
    return out


def stage_implicit(params: Params) -> list[Stage]:
    """The reference: ``implicit``'s own ALS, fitted on the same matrix with the same settings.

    As implicit recommends, BLAS runs single-threaded during the fit (movierec's ALS does the
    same); implicit's ``num_threads`` does the parallel work.
    """
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    from movierec.models.als import ALSConfig

    config = ALSConfig()
    matrix = sp.csr_matrix(_load_interactions(params).matrix, dtype=np.float32, copy=True)
    out: list[Stage] = []
    with (
        threadpool_limits(limits=1, user_api="blas"),
        _measure("als fit", "implicit ALS (reference)", matrix.nnz, out),
    ):
        AlternatingLeastSquares(
            factors=params.factors,
            iterations=params.als_iterations,
            regularization=config.regularization,
            alpha=config.alpha,
            num_threads=params.threads,
            random_state=params.seed,
            dtype=np.float32,
        ).fit(matrix, show_progress=False)
    out[0].reference = True
    return out


def stage_mf(params: Params) -> list[Stage]:
    """Fit movierec's biased MF (``"svd"``) on every rating."""
    from movierec.models import create_model

    interactions = _load_interactions(params)
    model = create_model(
        "svd", n_factors=params.factors, n_epochs=params.mf_epochs, seed=params.seed
    )
    out: list[Stage] = []
    with _measure("svd fit", "movierec BiasedMF", interactions.nnz, out):
        model.fit(interactions)
    _rate(out[0], interactions.nnz * params.mf_epochs, "ratings x epochs/s")
    return out


def stage_mf_reference(params: Params) -> list[Stage]:
    """The references on ml-100k: the same model, and ``surprise.SVD`` when it is installed."""
    from movierec.config import Settings
    from movierec.data.interactions import Interactions
    from movierec.data.sources import load_movielens
    from movierec.models import create_model

    with tempfile.TemporaryDirectory(dir=params.workdir) as data_dir:
        settings = Settings(datasets_dir=Path(params.datasets_dir), data_dir=Path(data_dir))
        data = load_movielens("ml-100k", settings, progress=False)
    interactions = Interactions.from_frames(
        data.ratings, data.movies, rating_scale=data.rating_scale
    )
    common = {"n_factors": params.factors, "seed": params.seed}
    create_model("svd", n_epochs=1, **common).fit(interactions)  # load numba's cached kernel
    model = create_model("svd", n_epochs=params.mf_epochs, **common)
    out: list[Stage] = []
    with _measure("svd fit", "movierec BiasedMF, ml-100k (reference)", interactions.nnz, out):
        model.fit(interactions)
    try:
        import surprise
    except ImportError:
        print("  surprise is not installed: no surprise.SVD reference", file=sys.stderr)
    else:
        reader = surprise.Reader(rating_scale=data.rating_scale)
        columns = data.ratings[["user_id", "item_id", "rating"]]
        trainset = surprise.Dataset.load_from_df(columns, reader).build_full_trainset()
        svd = surprise.SVD(
            n_factors=params.factors, n_epochs=params.mf_epochs, random_state=params.seed
        )
        with _measure("svd fit", "surprise SVD, ml-100k (reference)", trainset.n_ratings, out):
            svd.fit(trainset)
    for stage in out:
        stage.reference = True
        _rate(stage, stage.ratings * params.mf_epochs, "ratings x epochs/s")
    return out


def stage_evaluate(params: Params) -> list[Stage]:
    """Rank every user with an ALS fitted on a per-user temporal holdout's train part."""
    from movierec.data.split import user_temporal_holdout
    from movierec.evaluation.protocol import EvaluationConfig, evaluate
    from movierec.models import create_model

    interactions = _load_interactions(params)
    setup: dict[str, float] = {}
    with _stopwatch(setup, "split_s"):
        split = user_temporal_holdout(interactions, test_fraction=0.2, seed=params.seed)
    del interactions
    model = create_model(
        "als",
        factors=params.factors,
        iterations=params.als_iterations,
        num_threads=params.threads,
        seed=params.seed,
    )
    with _stopwatch(setup, "fit_s"):
        model.fit(split.train)
    users = np.arange(split.train.n_users, dtype=np.int64)
    out: list[Stage] = []
    with _measure("recommend all", f"{len(users):,} users, k={K}", split.train.nnz, out):
        model.recommend(users, k=K)
    out[0].details = setup | {"users": len(users)}
    _rate(out[0], len(users), "users/s")
    # relevance_threshold=None: every test rating is relevant, so every user with a test
    # rating (all of them: synthetic users have at least 20 ratings) is ranked.
    config = EvaluationConfig(ks=(K,), relevance_threshold=None)
    with _measure("evaluate", f"every user, k={K}", split.train.nnz, out) as details:
        report = evaluate(model, split, config, fit=False)
    details |= {"users": report.n_users_ranked, f"ndcg@{K}": report.metrics[f"ndcg@{K}"]}
    _rate(out[1], report.n_users_ranked, "users/s")
    return out


def stage_latency(params: Params) -> list[Stage]:
    """``recommend`` from a freshly loaded ALS: one user at a time, then batches of users."""
    from movierec.models.als import ALS

    setup: dict[str, float] = {}
    with _stopwatch(setup, "load_s"):
        model = ALS.load(params.als_path)
    rng = np.random.default_rng(params.seed)
    users = rng.integers(0, model.n_users, size=params.latency_users)
    out: list[Stage] = []
    with _measure("recommend 1", f"{len(users):,} single users, k={K}", 0, out) as details:
        times = np.empty(len(users))
        for row, user in enumerate(users.tolist()):
            began = time.perf_counter()
            model.recommend(user, k=K)
            times[row] = time.perf_counter() - began
    details |= setup | {
        "mean_ms": 1e3 * float(times.mean()),
        "p50_ms": 1e3 * float(np.percentile(times, 50)),
        "p99_ms": 1e3 * float(np.percentile(times, 99)),
    }
    _rate(out[0], len(users), "users/s")
    batches = rng.integers(0, model.n_users, size=(5, params.batch_users))
    with _measure("recommend batch", f"5 x {params.batch_users:,} users, k={K}", 0, out):
        for batch in batches:
            model.recommend(batch, k=K)
    _rate(out[1], batches.size, "users/s")
    return out


def _in_fresh_process(body: Callable[[Params], list[Stage]], params: Params) -> list[Stage]:
    """Run ``body(params)`` in a new spawned interpreter, so its peak RSS is its own."""
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        stages = pool.submit(body, params).result()
    for stage in stages:
        print(
            f"  {stage.stage:<16} {stage.what:<40} {stage.seconds:9.2f} s"
            f" {stage.peak_rss / GB:6.2f} GB",
            file=sys.stderr,
            flush=True,
        )
    return stages


# --- the run -----------------------------------------------------------------------------------


def run(args: argparse.Namespace, workdir: str) -> list[Stage]:
    """Every stage not skipped, in order, then the verdicts."""
    params = Params(
        ratings=args.ratings,
        users=args.users,
        items=args.items,
        seed=args.seed,
        workdir=workdir,
        threads=args.threads,
        factors=args.factors,
        als_iterations=args.als_iterations,
        mf_epochs=args.mf_epochs,
        latency_users=args.latency_users,
        batch_users=args.batch_users,
        datasets_dir=str(args.datasets_dir),
    )
    bodies: list[Callable[[Params], list[Stage]]] = [stage_data]
    if not args.skip_als:
        bodies += [stage_als] + ([] if args.skip_reference else [stage_implicit])
    if not args.skip_mf:
        bodies += [stage_mf] + ([] if args.skip_reference else [stage_mf_reference])
    if not args.skip_eval:
        bodies.append(stage_evaluate)
    if not args.skip_latency:
        if args.skip_als:
            print("  no latency stage: it loads the model the ALS stage saves", file=sys.stderr)
        else:
            bodies.append(stage_latency)
    stages = [stage for body in bodies for stage in _in_fresh_process(body, params)]
    _judge(stages, params)
    return stages


def _judge(stages: list[Stage], params: Params) -> None:
    """Comparisons with the references, targets and verdicts."""
    _compare(stages, "als fit", "implicit", "implicit's")
    _compare(stages, "svd fit", "movierec BiasedMF, ml-100k", "ml-100k's")
    _compare(stages, "svd fit", "surprise", "surprise's")
    targets = {
        "als fit": ALS_TARGET_S * params.scale,
        "svd fit": MF_TARGET_S * params.scale,
        "evaluate": EVAL_TARGET_S * params.scale,
    }
    for stage in stages:
        if stage.reference:
            continue
        memory_ok = stage.peak_rss <= PEAK_TARGET_BYTES
        if stage.stage in targets:
            stage.target = f"<= {targets[stage.stage]:.3g} s, <= 8 GB"
            stage.passed = memory_ok and stage.seconds <= targets[stage.stage]
        elif stage.stage == "recommend 1":
            stage.target = f"mean <= {LATENCY_TARGET_MS:g} ms, <= 8 GB"
            stage.passed = memory_ok and stage.details["mean_ms"] <= LATENCY_TARGET_MS
        else:
            stage.target = "<= 8 GB"
            stage.passed = memory_ok


def _compare(stages: list[Stage], name: str, reference_prefix: str, label: str) -> None:
    """Append ``ours / reference`` throughput to the ``versus`` column of our ``name`` stage."""
    ours = [s for s in stages if s.stage == name and not s.reference]
    reference = [
        s for s in stages if s.stage == name and s.reference and s.what.startswith(reference_prefix)
    ]
    if not ours or not reference:
        return
    ratio = ours[0].throughput / reference[0].throughput
    ours[0].versus = ", ".join(filter(None, [ours[0].versus, f"{ratio:.2f}x {label}"]))


def render(stages: list[Stage]) -> str:
    """The results as a Markdown table (pastes straight into the README)."""
    head = (
        "| stage | what | seconds | throughput | peak RSS | load | vs reference | details |"
        " target | result |"
    )
    lines = [head, "|" + "---|" * 10]
    for s in stages:
        result = "reference" if s.reference else "PASS" if s.passed else "FAIL"
        lines.append(
            f"| {s.stage} | {s.what} | {s.seconds:.2f} | {s.throughput:,.0f} {s.unit} |"
            f" {s.peak_rss / GB:.2f} GB | {s.load_1min:.1f} | {s.versus} |"
            f" {_details(s.details)} | {s.target} | {result} |"
        )
    return "\n".join(lines)


def _details(details: dict[str, float]) -> str:
    parts = []
    for key, value in details.items():
        text = f"{value:,.0f}" if key == "users" else f"{value:.3g}"
        parts.append(f"{key} {text}")
    return ", ".join(parts)


def machine(threads: int) -> dict[str, Any]:
    """What the numbers were measured on."""
    import implicit
    import numba
    import scipy
    from threadpoolctl import threadpool_info

    with open("/proc/meminfo", encoding="ascii") as meminfo:
        total_kb = int(meminfo.readline().split()[1])
    blas = [
        f"{p['internal_api']} {p['version']} ({p['num_threads']} threads)"
        for p in threadpool_info()
    ]
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(total_kb / (1 << 20), 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "implicit": implicit.__version__,
        "numba": numba.__version__,
        "blas": blas,
        "training_threads": threads,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; ``--small`` replaces the default sizes (explicit sizes still win)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_size_arguments(parser)
    parser.add_argument("--threads", type=int, default=2, help="ALS training threads")
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--als-iterations", type=int, default=15)
    parser.add_argument("--mf-epochs", type=int, default=20)
    parser.add_argument("--latency-users", type=int, default=2_000)
    parser.add_argument("--batch-users", type=int, default=1_000)
    parser.add_argument(
        "--datasets-dir", type=Path, default=DEFAULT_DATASETS, help="holds ml-100k.zip"
    )
    parser.add_argument("--skip-als", action="store_true", help="also skips the latency stage")
    parser.add_argument("--skip-mf", action="store_true")
    parser.add_argument("--skip-eval", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument(
        "--skip-reference", action="store_true", help="no implicit, ml-100k or surprise runs"
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--workdir", type=Path, help="temporary files here (default: system tmp)")
    args = parser.parse_args(argv)
    resolve_sizes(args)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table; exit 1 when a target is missed."""
    args = parse_args(argv)
    print(
        f"models benchmark: {args.ratings:,} ratings, {args.users:,} users, {args.items:,} items",
        file=sys.stderr,
    )
    # Other work on the machine skews every figure: the load average is printed with them.
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="movierec-bench-") as workdir:
        stages = run(args, workdir)
    load_after = os.getloadavg()[0]
    info = machine(args.threads) | {"load_avg_1min": [load_before, load_after]}
    print(render(stages))
    print(
        f"\n{info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB;"
        f" {'; '.join(info['blas'])}; 1-min load average {load_before:.1f} before,"
        f" {load_after:.1f} after"
    )
    if args.json:
        write_json_report(args.json, args, info, stages=[asdict(s) for s in stages])
    return 0 if all(s.passed for s in stages if not s.reference) else 1


if __name__ == "__main__":
    sys.exit(main())

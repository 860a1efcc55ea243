"""Monitoring benchmark: what watching the data and the served lists costs.

Section ``drift``: data drift of 1M current ratings against a 20M-rating reference (synthetic,
ML-20M's shape; the reference is the oldest 20M ratings, the current the newest 1M, as after a
snapshot). The drift runs in a fresh process, so its peak RSS is its own: read both parquet
files, profile the reference (once per snapshot), compare; then a repeat with the profile
cached (what every later check costs) and Evidently's HTML report of the 100k-row samples. The
baseline, in the same process, computes the same numeric features the obvious way: per-rating
pandas columns (``groupby`` counts mapped onto every rating) and scipy on the raw 21M values.
Targets: <= 10 s and <= 4 GB for the cold check.

Section ``served``: what the serving monitor's thread does for one second of traffic at
``--rate`` lists/s (the serving benchmark's rate on this machine): add the lists to the
served-quality figures, and log their impressions (columnar batches: a row per model version
per write); the baseline logs the same impressions as a request-path logger would (a row per
movie shown, a commit per list). Then online feedback over ``--kept`` logged lists (the
retention's default cap), in a fresh process: its time and peak RSS.

Usage: python benchmarks/monitoring.py [--section drift|served] [--small] [--current N]
    [--rate N] [--kept N] [--json FILE]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from common import add_size_arguments, cpu_model, resolve_sizes, rss_bytes, write_json_report

TARGET_SECONDS = 10.0
TARGET_BYTES = 4 * 1024**3
GB = 1024**3


def drift_section(args: argparse.Namespace) -> dict[str, Any]:
    """Cold and cached drift checks and the naive baseline, each in a fresh process."""
    from movierec.data.synth import generate

    print(f"\n## Drift: {args.current:,} current ratings against {args.ratings:,}")
    started = time.perf_counter()
    data = generate(args.users, args.items, args.ratings + args.current, seed=args.seed)
    ratings = data.ratings.sort_values("timestamp", kind="stable", ignore_index=True)
    with tempfile.TemporaryDirectory(prefix="movierec-bench-drift-") as tmp:
        folder = Path(tmp)
        ratings.iloc[: args.ratings].to_parquet(folder / "reference.parquet")
        ratings.iloc[args.ratings :].to_parquet(folder / "current.parquet")
        data.movies.to_parquet(folder / "movies.parquet")
        del data, ratings
        print(f"generated and written in {time.perf_counter() - started:.1f} s")
        ours = _in_fresh_process(_drift_check, folder)
        naive = _in_fresh_process(_naive_check, folder)
    _print_drift(ours, naive)
    return {"ours": ours, "naive": naive}


def _drift_check(folder: Path) -> dict[str, Any]:
    from movierec.monitoring.drift import DriftInputs, ReferenceProfile, Window, compare, drift_html

    started = time.perf_counter()
    reference = pd.read_parquet(folder / "reference.parquet")
    movies = pd.read_parquet(folder / "movies.parquet")
    movies["genres"] = movies["genres"].map(list)
    read = time.perf_counter()
    profile = ReferenceProfile.from_frames("bench", reference, movies)
    del reference
    profiled = time.perf_counter()
    current = pd.read_parquet(folder / "current.parquet")
    inputs = DriftInputs(profile, Window(profile.max_timestamp + 1), current, movies)
    report = compare(inputs, drift_share=0.5)
    compared = time.perf_counter()
    peak = rss_bytes()
    compare(inputs, drift_share=0.5)
    cached = time.perf_counter() - compared
    html_started = time.perf_counter()
    page = drift_html(inputs, drift_share=0.5)
    return {
        "read_reference_s": read - started,
        "profile_s": profiled - read,
        "read_and_compare_s": compared - profiled,
        "cold_s": compared - started,
        "cached_compare_s": cached,
        "html_s": time.perf_counter() - html_started,
        "html_bytes": len(page),
        "peak_rss_bytes": peak,
        "verdict": report.verdict,
        "features": {f.feature: round(f.value, 4) for f in report.features},
        "drifted": report.drifted_features,
    }


def _naive_check(folder: Path) -> dict[str, Any]:
    """rating (JS), user activity, item popularity percentile and ratings per hour (normed
    Wasserstein) as per-rating columns: the obvious pandas/scipy code."""
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import wasserstein_distance

    def normed(ref: pd.Series, cur: pd.Series) -> float:
        return float(wasserstein_distance(ref, cur) / max(float(ref.std(ddof=0)), 0.001))

    started = time.perf_counter()
    reference = pd.read_parquet(folder / "reference.parquet")
    current = pd.read_parquet(folder / "current.parquet")
    levels = pd.concat([reference["rating"], current["rating"]]).unique()
    shares = [
        f["rating"].value_counts().reindex(levels, fill_value=0) for f in (reference, current)
    ]
    activity = reference.groupby("user_id").size()
    popularity = reference.groupby("item_id").size().rank(pct=True)
    values = {
        "rating": float(jensenshannon(*shares)),
        "user_activity": normed(
            reference["user_id"].map(activity), current["user_id"].map(activity).fillna(0)
        ),
        "item_popularity": normed(
            reference["item_id"].map(popularity), current["item_id"].map(popularity).fillna(0)
        ),
        "ratings_per_hour": normed(*(f.groupby(f["timestamp"] // 3600).size()
                                     for f in (reference, current))),
    }  # fmt: skip
    return {"seconds": time.perf_counter() - started, "peak_rss_bytes": rss_bytes(),
            "features": values}  # fmt: skip


def _in_fresh_process(function: Callable[[Path], dict[str, Any]], folder: Path) -> dict[str, Any]:
    """``function(folder)`` in a new interpreter: its peak RSS is its own, not the generator's."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, (folder,))


def _print_drift(ours: dict[str, Any], naive: dict[str, Any]) -> None:
    print("| run | seconds | peak RSS GB |")
    print("|---|---|---|")
    print(f"| cold check (read, profile, compare) | {ours['cold_s']:.2f} | "
          f"{ours['peak_rss_bytes'] / GB:.2f} |")  # fmt: skip
    print(f"| - read the reference | {ours['read_reference_s']:.2f} | |")
    print(f"| - profile the reference | {ours['profile_s']:.2f} | |")
    print(f"| - read and compare the current | {ours['read_and_compare_s']:.2f} | |")
    print(f"| check with the profile cached | {ours['cached_compare_s']:.2f} | |")
    print(f"| Evidently HTML of 100k-row samples | {ours['html_s']:.2f} | |")
    print(f"| naive per-rating pandas, 4 features | {naive['seconds']:.2f} | "
          f"{naive['peak_rss_bytes'] / GB:.2f} |")  # fmt: skip
    print(f"cold check vs naive: {naive['seconds'] / ours['cold_s']:.1f}x faster, "
          f"{naive['peak_rss_bytes'] / ours['peak_rss_bytes']:.1f}x less memory; "
          f"cached vs cold: {ours['cold_s'] / ours['cached_compare_s']:.0f}x")  # fmt: skip
    print(f"verdict {ours['verdict']}; drifted: {', '.join(ours['drifted']) or 'none'}")
    print(f"features: {ours['features']}")
    print(f"naive features: { {k: round(v, 4) for k, v in naive['features'].items()} }")
    seconds_ok = ours["cold_s"] <= TARGET_SECONDS
    memory_ok = ours["peak_rss_bytes"] <= TARGET_BYTES
    print(f"cold check {ours['cold_s']:.2f} s (target <= {TARGET_SECONDS:.0f} s): "
          f"{'PASS' if seconds_ok else 'FAIL'}")  # fmt: skip
    print(f"peak RSS {ours['peak_rss_bytes'] / GB:.2f} GB (target <= 4 GB): "
          f"{'PASS' if memory_ok else 'FAIL'}")  # fmt: skip


def served_section(args: argparse.Namespace) -> dict[str, Any]:
    """The serving monitor's work for one second of traffic at ``--rate`` lists/s, against
    logging each impression on the request path; then online feedback over ``--kept`` lists."""
    import numpy as np

    from movierec.config import Settings
    from movierec.data.interactions import Interactions
    from movierec.data.synth import generate
    from movierec.models import create_model
    from movierec.monitoring.batch import Queued, columns
    from movierec.monitoring.impressions import ImpressionLog, ImpressionStore
    from movierec.monitoring.served import ServedQuality
    from movierec.serving.catalog import Catalog, ModelView
    from movierec.serving.loading import ModelInfo
    from movierec.serving.service import Answer

    print(f"\n## Serving monitor: {args.rate:,} lists/s, online feedback over {args.kept:,} lists")
    data = generate(7_000, 3_000, 1_000_000, seed=args.seed)
    model = create_model("popularity").fit(
        Interactions.from_frames(data.ratings, data.movies, rating_scale=data.rating_scale)
    )
    view = ModelView.build(model, Catalog.from_frame(data.movies))
    info = ModelInfo(name="popularity", version=1, source="registry", run_id=None)
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="movierec-bench-served-") as tmp:
        folder = Path(tmp)
        settings = Settings(_env_file=None, data_dir=folder)  # type: ignore[call-arg]
        store = ImpressionStore(settings.store_url)
        store.ingest(data)
        now = time.time()

        def second(offset: float) -> list[Queued]:
            users = rng.integers(0, 7_000, args.rate)
            items = rng.integers(0, view.model.n_items, (args.rate, 10))
            return [(Answer("personalized", view, info, row.tolist(), [], [], []), int(u), 10,
                     now + offset) for u, row in zip(users, items, strict=True)]  # fmt: skip

        batches = [second(i) for i in range(args.seconds)]
        quality, log = ServedQuality(folder / "served"), ImpressionLog(store, settings)
        # The monitor turns a batch into columns once, for both: counted with served quality.
        served_ms = _ms_per_batch(lambda batch: quality.add(columns(batch)), batches)
        logged_ms = _ms_per_batch(log.add, [columns(batch) for batch in batches])
        naive_ms = _ms_per_batch(lambda batch: _naive_log(store, batch), batches[:1])
        online = _online_at_scale(store, log, second, args.kept, settings)
    figures = {"rate": args.rate, "served_ms_per_s": served_ms, "impressions_ms_per_s": logged_ms,
               "naive_impressions_ms_per_s": naive_ms, **online}  # fmt: skip
    print(f"served quality: {served_ms:.1f} ms of CPU per second of traffic "
          f"({served_ms / 10:.2f}% of a core)")  # fmt: skip
    print(f"impression log: {logged_ms:.1f} ms per second of traffic ({logged_ms / 10:.2f}% of a "
          f"core); naive (a row per movie, a commit per list): {naive_ms:,.0f} ms, "
          f"{naive_ms / logged_ms:,.0f}x more")  # fmt: skip
    print(f"online feedback over {args.kept:,} lists: {online['online_s']:.1f} s, "
          f"peak RSS {online['online_peak_rss_bytes'] / GB:.2f} GB")  # fmt: skip
    return figures


def _ms_per_batch(add: Callable[[Any], Any], batches: list[Any]) -> float:
    started = time.perf_counter()
    for batch in batches:
        add(batch)
    return 1000 * (time.perf_counter() - started) / len(batches)


def _naive_log(store: Any, batch: list[Any]) -> None:
    """What a logger on the request path does: a row per movie shown, a commit per list (in
    a table of its own)."""
    import sqlalchemy as sa

    with store._write() as conn:
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS naive_impressions (user_id BIGINT,"
                             " movie_id BIGINT, shown_at BIGINT)"))  # fmt: skip
    insert = sa.text("INSERT INTO naive_impressions VALUES (:user_id, :movie_id, :shown_at)")
    for answer, user_id, _k, at in batch:
        with store._write() as conn:
            for item in answer.items:
                conn.execute(insert, {"user_id": user_id, "movie_id": item,
                                      "shown_at": int(at)})  # fmt: skip


def _online_at_scale(
    store: Any, log: Any, second: Callable[[float], list[Any]], kept: int, settings: Any
) -> dict[str, Any]:
    """Fill the log to ``kept`` lists, rate some shown movies, then time online feedback in a
    fresh process (its peak RSS is its own)."""
    import numpy as np
    import pandas as pd

    from movierec.monitoring.batch import columns

    logged = 0
    while logged < kept:
        batch = second(0.0)[: kept - logged]
        log.add(columns(batch))
        logged += len(batch)
    shown = store.shown_since(0)
    tops = shown.movies[np.cumsum(shown.lengths) - shown.lengths]  # each list's first movie
    rated = pd.DataFrame({"user_id": shown.users, "item_id": tops}).head(50_000)
    rated = rated.drop_duplicates()
    rated["rating"] = 4.0
    rated["timestamp"] = int(time.time()) + 60
    store.append_many(rated)
    return _in_fresh_process(_online_check, Path(settings.data_dir))


def _online_check(folder: Path) -> dict[str, Any]:
    from movierec.monitoring.impressions import ImpressionStore
    from movierec.monitoring.online import online_feedback

    store = ImpressionStore(f"sqlite:///{folder / 'movierec.db'}")
    started = time.perf_counter()
    report = online_feedback(store, horizon_days=7, positive_rating=4.0)
    return {
        "online_s": time.perf_counter() - started,
        "online_peak_rss_bytes": rss_bytes(),
        "online_impressions": sum(v.impressions for v in report.versions),
    }


SECTIONS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "drift": drift_section,
    "served": served_section,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=[*SECTIONS, "all"], default="all")
    add_size_arguments(parser)
    parser.add_argument("--current", type=int, default=1_000_000, help="current ratings")
    parser.add_argument(
        "--rate", type=int, default=3_500,
        help="lists served per second (about the serving benchmark's user route, 2 workers)",
    )  # fmt: skip
    parser.add_argument("--seconds", type=int, default=10, help="seconds of traffic timed")
    parser.add_argument(
        "--kept", type=int, default=1_000_000, help="impressions kept for online feedback"
    )
    parser.add_argument("--json", type=Path, help="also write the figures there")
    args = parser.parse_args()
    resolve_sizes(args)
    if args.small:
        args.current = min(args.current, 100_000)
    print(f"# movierec monitoring benchmark, load average {os.getloadavg()[0]:.2f}")
    print(f"{cpu_model()}, {os.cpu_count()} cores")
    chosen = SECTIONS if args.section == "all" else {args.section: SECTIONS[args.section]}
    results = {name: run(args) for name, run in chosen.items()}
    if args.json:
        machine = {"cpu": cpu_model(), "cores": os.cpu_count()}
        write_json_report(args.json, args, machine, **results)


if __name__ == "__main__":
    main()

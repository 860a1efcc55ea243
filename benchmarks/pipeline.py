"""The training pipeline's wall time, and what MLflow tracking adds to it.

1. ``movierec pipeline run`` as a user runs it (a fresh process, a fresh data dir, the
   project's params.yaml on ml-latest-small): ingest, snapshot, split, five models evaluated,
   the winner refitted, logged, registered and promoted. Target: under 2 minutes. A second
   run on the same data shows the idempotent no-op.
2. Tracking overhead: the same pipeline in-process with tracking off (the winner only saved to
   disk) and on (child runs, the model logged as a pyfunc, plots, registry, promotion), each in
   a fresh data dir (the tracking store's tables created before the clock starts: a one-time
   set-up), alternated ``--repeats`` times. The overhead is the tracking stages' share of the
   fastest tracked run, beside the ratio of the fastest whole runs. Target: < 10%.

    python benchmarks/pipeline.py --datasets-dir ../shared/datasets [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common import cpu_model
from movierec.config import Settings
from movierec.data.ingest import ingest_movielens
from movierec.training import tracking
from movierec.training.pipeline import PipelineConfig, run_pipeline

ROOT = Path(__file__).parents[1]
PARAMS = ROOT / "params.yaml"
# The pipeline's stages that exist only because of tracking: runs and child runs, logging the
# model, registering and applying the promotion rule.
TRACKING_STAGES = ("track", "log", "promote")


def _cli_run(data_dir: Path, datasets_dir: Path) -> float:
    env = {
        **os.environ,
        "MOVIEREC_DATA_DIR": str(data_dir),
        "MOVIEREC_DATASETS_DIR": str(datasets_dir),
    }
    env.pop("MOVIEREC_MLFLOW_TRACKING_URI", None)
    command = [str(Path(sys.executable).parent / "movierec"), "pipeline", "run", "-c", str(PARAMS)]
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def _in_process(data_dir: Path, datasets_dir: Path, *, track: bool) -> tuple[float, dict]:
    settings = Settings(_env_file=None, data_dir=data_dir, datasets_dir=datasets_dir)
    ingest_movielens(settings, "ml-latest-small", progress=False)  # not part of either timing
    config = PipelineConfig.from_yaml(PARAMS).model_copy(update={"track": track})
    if track:  # creating the tracking store's tables happens once per store, not per run
        tracking.experiment_id(settings)
    started = time.perf_counter()
    result = run_pipeline(settings, config, ingest=False)
    return time.perf_counter() - started, result.stage_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets-dir", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    datasets_dir = args.datasets_dir.resolve()
    print(f"# pipeline benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {cpu_model()}")
    print(f"# {os.cpu_count()} cores; params: {PARAMS.name}")

    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch) / "cli"
        first = _cli_run(data_dir, datasets_dir)
        again = _cli_run(data_dir, datasets_dir)
    verdict = "PASS" if first < 120 else "FAIL"
    print(f"movierec pipeline run, fresh: {first:.1f} s (target < 120 s: {verdict})")
    print(f"movierec pipeline run, unchanged data and params (no-op): {again:.1f} s")

    # Best of N: on a shared machine the fastest run is the one least slowed by others.
    best: dict[bool, tuple[float, dict[str, float]]] = {}
    for _ in range(args.repeats):
        for track in (False, True):
            with tempfile.TemporaryDirectory() as scratch:
                seconds, stages = _in_process(Path(scratch), datasets_dir, track=track)
            shown = ", ".join(f"{k} {v:.1f}" for k, v in stages.items())
            print(f"  tracking {'on ' if track else 'off'}: {seconds:.1f} s ({shown})")
            if track not in best or seconds < best[track][0]:
                best[track] = (seconds, stages)
    on, stages = best[True]
    off = best[False][0]
    tracked = sum(stages.get(stage, 0.0) for stage in TRACKING_STAGES)
    share = tracked / (sum(stages.values()) - tracked)
    verdict = "PASS" if share < 0.10 else "FAIL"
    print(
        f"tracking overhead in the fastest tracked run ({' + '.join(TRACKING_STAGES)} = "
        f"{tracked:.1f} s over the other stages): +{share:.1%} (target < 10%: {verdict})"
    )
    print(f"fastest whole runs, tracking on / off: {on:.1f} s / {off:.1f} s = {on / off:.3f}x")


if __name__ == "__main__":
    main()

"""Experiments benchmark: does an online experiment pick the right model, with how many users?

Replays held-out future ratings (each user's latest 20%, the per-user temporal holdout) of
ml-100k and ml-latest-small: two models fitted on the training part, simulated users shown
their lists, a shown movie "rated" when that user rated it in the held-out part (see
:mod:`movierec.experiments.simulation`). For each design (A/B: Welch's t-test of per-user hit
rates, half the users each arm; team-draft interleaving: sign test of per-user preferences),
alpha 5%:

* the share of seeded runs the strong model (EASE) wins against a weak one (popularity), and
  the share either of two identical models (EASE, EASE) "wins" (false positives), per number
  of users;
* the users needed: the fewest on the grid where the strong model wins 95% of the runs.

Usage: python benchmarks/experiments.py [--datasets-dir DIR] [--runs 100] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from movierec.config import Settings
from movierec.data.interactions import Interactions
from movierec.data.sources import load_movielens
from movierec.data.split import make_split
from movierec.experiments.simulation import Design, Replay, replay_of, users_needed, win_rates
from movierec.models import create_model

DATASETS = ("ml-100k", "ml-latest-small")
DESIGNS: tuple[Design, ...] = ("ab", "interleaving")
USERS = (50, 100, 200, 400, 800, 1600)


def replays(name: str, datasets_dir: Path) -> dict[str, Replay]:
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(_env_file=None, data_dir=Path(scratch), datasets_dir=datasets_dir)  # type: ignore[call-arg]
        data = load_movielens(name, settings, progress=False)
    inter = Interactions.from_frames(data.ratings, data.movies, rating_scale=data.rating_scale)
    [split] = make_split("user_temporal", inter)
    strong = create_model("ease").fit(split.train)
    weak = create_model("popularity").fit(split.train)
    return {"strong": replay_of(weak, strong, split), "identical": replay_of(strong, strong, split)}


def measure(name: str, datasets_dir: Path, runs: int) -> dict[str, Any]:
    found = replays(name, datasets_dir)
    figures: dict[str, Any] = {}
    for design in DESIGNS:
        started = time.perf_counter()
        rows = []
        for users in USERS:
            strong = win_rates(found["strong"], design, users=users, runs=runs)
            same = win_rates(found["identical"], design, users=users, runs=runs, first_seed=10**6)
            rows.append(
                {
                    "users": users,
                    "strong_wins": strong["treatment"],
                    "weak_wins": strong["control"],
                    "identical_false_wins": same["treatment"] + same["control"],
                }
            )
            print(
                f"{name:16} {design:12} {users:6} users: strong wins {strong['treatment']:5.0%}"
                f"  weak wins {strong['control']:4.0%}"
                f"  identical models 'win' {same['treatment'] + same['control']:4.0%}",
                flush=True,
            )
        needed = users_needed(found["strong"], design, runs=runs)
        print(f"{name:16} {design:12} users needed for 95% power: {needed}", flush=True)
        figures[design] = {
            "rows": rows,
            "users_needed": needed,
            "seconds": time.perf_counter() - started,
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets-dir",
        type=Path,
        default=Path(os.environ.get("MOVIEREC_DATASETS_DIR", "../shared/datasets")),
    )
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {name: measure(name, args.datasets_dir, args.runs) for name in DATASETS}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""Replaying held-out future ratings of ml-100k: the experiments find the better model, and
find no winner between identical ones at the advertised rate."""

from __future__ import annotations

from pathlib import Path

import pytest

from movierec.config import Settings
from movierec.data.interactions import Interactions
from movierec.data.sources import load_movielens
from movierec.data.split import make_split
from movierec.experiments.simulation import Design, Replay, replay_of, win_rates
from movierec.models import create_model

# Users per simulated experiment: above what benchmarks/experiments.py measures as needed for
# 95% power (A/B 400, interleaving 100) on this data set.
AB_USERS = 800
INTERLEAVING_USERS = 200
RUNS = 100


@pytest.fixture(scope="module")
def replays(datasets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Replay]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, data_dir=tmp_path_factory.mktemp("sim"), datasets_dir=datasets_dir
    )
    data = load_movielens("ml-100k", settings, progress=False)
    inter = Interactions.from_frames(data.ratings, data.movies, rating_scale=data.rating_scale)
    [split] = make_split("user_temporal", inter)
    strong = create_model("ease").fit(split.train)
    weak = create_model("popularity").fit(split.train)
    return {
        "weak_vs_strong": replay_of(weak, strong, split),
        "identical": replay_of(strong, strong, split),
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("design", "users"), [("ab", AB_USERS), ("interleaving", INTERLEAVING_USERS)]
)
def test_the_stronger_model_wins(replays: dict[str, Replay], design: Design, users: int) -> None:
    replay = replays["weak_vs_strong"]
    assert win_rates(replay, design, users=users, runs=RUNS)["treatment"] >= 0.95
    # Whichever arm it is in: the right winner, never the wrong one.
    swapped = win_rates(replay.swapped(), design, users=users, runs=RUNS)
    assert swapped["control"] >= 0.95
    assert swapped["treatment"] == 0.0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("design", "users"), [("ab", AB_USERS), ("interleaving", INTERLEAVING_USERS)]
)
def test_identical_models_rarely_have_a_winner(
    replays: dict[str, Replay], design: Design, users: int
) -> None:
    rates = win_rates(replays["identical"], design, users=users, runs=RUNS, first_seed=1000)
    # alpha = 5%: two standard errors of 100 runs above it is 9%.
    assert rates["treatment"] + rates["control"] <= 0.09


def test_too_few_users_decide_nothing(replays: dict[str, Replay]) -> None:
    rates = win_rates(replays["weak_vs_strong"], "ab", users=3, runs=20)
    assert rates["none"] == 1.0

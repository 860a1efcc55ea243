"""Synthetic activity on a real catalogue: exact counts, no pair twice, on the half-star scale,
the same for the same seed, and the drift knobs move what they say."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from movierec.data.activity import ActivitySpec, synthetic_activity

GENRES = [["Comedy"], ["Drama"], ["Horror"], ["Comedy", "Romance"], ["(no genres listed)"]] * 40
MOVIES = pd.DataFrame({"item_id": np.arange(1, 201) * 10, "genres": GENRES})
COUNTS = np.arange(200, dtype=np.float64)  # later movies more popular
USERS = [*range(1, 31), 10_001, 10_002]


def spec(**overrides: object) -> ActivitySpec:
    fields: dict[str, object] = {"users": USERS, "ratings": 2_000, "seed": 3,
                                 "timestamp": 1_700_000_000, **overrides}  # fmt: skip
    return ActivitySpec(**fields)  # type: ignore[arg-type]


def test_exact_count_distinct_pairs_every_rater_on_the_scale() -> None:
    frame = synthetic_activity(MOVIES, COUNTS, spec())
    assert len(frame) == 2_000
    assert not frame.duplicated(["user_id", "item_id"]).any()
    assert set(frame["user_id"]) == set(USERS)
    assert set(frame["item_id"]) <= set(MOVIES["item_id"])
    assert set(frame["rating"]) <= {x / 2 for x in range(1, 11)}
    assert (frame["timestamp"] == 1_700_000_000).all()
    assert 2.5 < frame["rating"].mean() < 4.5


def test_the_same_seed_gives_the_same_ratings() -> None:
    first = synthetic_activity(MOVIES, COUNTS, spec())
    pd.testing.assert_frame_equal(first, synthetic_activity(MOVIES, COUNTS, spec()))
    assert not first.equals(synthetic_activity(MOVIES, COUNTS, spec(seed=4)))


def test_popular_movies_are_drawn_more() -> None:
    frame = synthetic_activity(MOVIES, COUNTS, spec())
    drawn = frame["item_id"] // 10  # 1..200, popularity rising with the id
    assert (drawn > 100).mean() > 0.58  # uniform draws: 0.495


def test_the_drift_knobs() -> None:
    plain = synthetic_activity(MOVIES, COUNTS, spec())
    harsh = synthetic_activity(MOVIES, COUNTS, spec(rating_shift=-2.0))
    assert harsh["rating"].mean() < plain["rating"].mean() - 1.0
    horror = MOVIES.loc[MOVIES["genres"].map(lambda g: "Horror" in g), "item_id"]
    favoured = synthetic_activity(MOVIES, COUNTS, spec(favoured_genres=["Horror"]))
    assert plain["item_id"].isin(horror).mean() < 0.3 < favoured["item_id"].isin(horror).mean()


def test_fewer_ratings_than_users() -> None:
    frame = synthetic_activity(MOVIES, COUNTS, spec(ratings=10))
    assert len(frame) == 10
    assert frame["user_id"].nunique() <= 10


def test_more_ratings_than_the_users_can_give_say_why() -> None:
    with pytest.raises(ValueError, match="32 users can give at most 6400 ratings of 200 movies"):
        synthetic_activity(MOVIES, COUNTS, spec(ratings=32 * 200 + 1))


def test_every_pair_when_the_users_rate_everything() -> None:
    frame = synthetic_activity(MOVIES, COUNTS, spec(ratings=32 * 200))
    assert len(frame) == 32 * 200
    assert not frame.duplicated(["user_id", "item_id"]).any()

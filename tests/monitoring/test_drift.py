"""Drift statistics: small frames with known answers, synthetic data with and without drift."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from movierec.data.synth import generate
from movierec.monitoring.drift import (
    FEATURES,
    MIN_CURRENT_RATINGS,
    DriftInputs,
    DriftReport,
    InvalidWindowError,
    ReferenceProfile,
    Window,
    _hourly,
    compare,
    drift_html,
)

HOUR = 3_600
T0 = 1_000_000_000  # a whole hour: 2001-09-09 01:00 UTC


def ratings(
    users: list[int], items: list[int], values: list[float], times: list[int]
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": np.asarray(users, dtype=np.int64),
            "item_id": np.asarray(items, dtype=np.int64),
            "rating": np.asarray(values, dtype=np.float32),
            "timestamp": np.asarray(times, dtype=np.int64),
        }
    )


def movies(n: int, genres: list[list[str]] | None = None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": np.arange(1, n + 1, dtype=np.int64),
            "genres": pd.Series(genres if genres is not None else [[] for _ in range(n)]),
        }
    )


def run(reference: pd.DataFrame, current: pd.DataFrame, catalog: pd.DataFrame) -> DriftReport:
    profile = ReferenceProfile.from_frames("test", reference, catalog)
    return compare(DriftInputs(profile, Window(0), current, catalog), drift_share=0.5)


def feature(report: DriftReport, name: str) -> float:
    return next(f.value for f in report.features if f.feature == name)


def repeat(n: int, **columns: object) -> pd.DataFrame:
    """``n`` ratings, each column a constant or a per-row list."""
    values = {k: v if isinstance(v, list) else [v] * n for k, v in columns.items()}
    return ratings(values["user"], values["item"], values["value"], values["time"])  # type: ignore[arg-type]


# ---------------------------------------------------------------- hand-computed values


def test_rating_jensen_shannon_distance_by_hand() -> None:
    # P = (1, 0), Q = (1/2, 1/2), M = (3/4, 1/4): JS = (KL(P|M) + KL(Q|M)) / 2.
    reference = repeat(2_000, user=list(range(2_000)), item=1, value=4.0, time=T0)
    current = repeat(2_000, user=list(range(2_000)), item=1, value=[4.0, 5.0] * 1_000, time=T0)
    kl_p = math.log(4 / 3)
    kl_q = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    report = run(reference, current, movies(1))
    rating = next(f for f in report.features if f.feature == "rating")
    assert rating.statistic == "jensen_shannon_distance"
    assert rating.value == pytest.approx(math.sqrt((kl_p + kl_q) / 2))
    assert rating.drifted
    assert rating.details == {"reference_mean": 4.0, "current_mean": 4.5}


def test_user_activity_normed_wasserstein_by_hand() -> None:
    # User 1 gave 3 ratings, user 2 one: per rating, activity is 3 with weight 3/4 and 1 with
    # weight 1/4 (mean 2.5, std sqrt(0.75)). A current of user 2 only is all 1s: W = 0.75 * 2.
    reference = ratings([1, 1, 1, 2], [1, 2, 3, 1], [4, 4, 4, 4], [T0] * 4)
    current = repeat(1_001, user=2, item=[1 + i % 3 for i in range(1_001)], value=4.0, time=T0)
    activity = next(f for f in run(reference, current, movies(3)).features
                    if f.feature == "user_activity")  # fmt: skip
    assert activity.statistic == "wasserstein_distance_norm"
    assert activity.value == pytest.approx(1.5 / math.sqrt(0.75))
    assert activity.details == {"reference_mean": 2.5, "current_mean": 1.0}


def test_item_popularity_shares_by_hand() -> None:
    # 100 movies: movie 1 has 901 of 1000 ratings, the others one each; top 1% is movie 1,
    # top 10% is movies 1..10.
    items = [1] * 901 + list(range(2, 101))
    reference = ratings(list(range(1_000)), items, [3.0] * 1_000, [T0] * 1_000)
    current = repeat(2_000, user=list(range(2_000)), item=[1, 50] * 1_000, value=3.0, time=T0)
    popularity = next(f for f in run(reference, current, movies(100)).features
                      if f.feature == "item_popularity")  # fmt: skip
    assert popularity.details == pytest.approx(
        {
            "reference_top1_share": 0.901,
            "current_top1_share": 0.5,
            "reference_top10_share": 0.91,
            "current_top10_share": 0.5,
        }
    )
    assert popularity.drifted


def test_unseen_users_and_movies_are_shares_of_the_ratings() -> None:
    reference = ratings([1, 2], [1, 2], [3.0, 3.0], [T0, T0])
    # 60 ratings: a quarter by a new user (9), half on a new movie (3).
    current = ratings([1, 9, 2, 1] * 15, [1, 1, 3, 3] * 15, [3.0] * 60, [T0 + 1] * 60)
    report = run(reference, current, movies(3))
    new_users = next(f for f in report.features if f.feature == "new_users")
    assert (new_users.value, new_users.drifted) == (0.25, True)
    assert new_users.details == {"ratings": 15, "distinct": 1}
    assert feature(report, "new_movies") == 0.5


def test_ratings_per_hour_counts_empty_hours() -> None:
    # Hours 0, 0, 2 (and 1 empty): one hour each with 0, 1 and 2 ratings.
    hourly = _hourly(np.array([T0, T0 + 10, T0 + 2 * HOUR + 5], dtype=np.int64))
    assert hourly.values.tolist() == [0, 1, 2]
    assert hourly.weights.tolist() == [1.0, 1.0, 1.0]
    assert hourly.mean() == 1.0


def test_a_huge_time_span_is_bounded_work() -> None:
    # Ten billion empty hours are one weight, not an array.
    started = time.perf_counter()
    hourly = _hourly(np.array([0, 2**55], dtype=np.int64))
    assert time.perf_counter() - started < 1.0
    assert hourly.values.tolist() == [0, 1]
    assert hourly.weights[0] == 2**55 // HOUR - 1


def test_genre_mix_splits_each_rating_among_its_genres() -> None:
    catalog = movies(2, [["Drama", "Comedy"], ["Drama"]])
    reference = repeat(1_100, user=list(range(1_100)), item=1, value=3.0, time=T0)
    current = repeat(1_100, user=list(range(1_100)), item=2, value=3.0, time=T0)
    report = run(reference, current, catalog)
    genres = next(f for f in report.features if f.feature == "genre_mix")
    # Reference: Comedy 1/2, Drama 1/2; current: Drama 1 (both move by 1/2; the first is named).
    assert genres.details == {
        "most_changed_genre": "Comedy",
        "reference_share": 0.5,
        "current_share": 0.0,
    }
    assert genres.drifted


# ---------------------------------------------------------------- small samples, bad input


def test_small_samples_use_tests_with_p_values() -> None:
    data = generate(300, 200, 9_000, seed=1).ratings
    same = run(data, data.sample(500, random_state=0), movies(200))
    tests = {f.feature: f.statistic for f in same.features}
    assert tests["rating"] == "chi_squared_p_value"
    assert tests["user_activity"] == "ks_p_value"
    assert all(f.threshold == 0.05 for f in same.features if f.statistic.endswith("p_value"))
    assert not any(f.drifted for f in same.features if f.statistic.endswith("p_value"))
    low = data.sample(500, random_state=0).assign(rating=np.float32(0.5))
    assert next(f for f in run(data, low, movies(200)).features if f.feature == "rating").drifted


def test_a_window_without_ratings_has_nothing_to_compare() -> None:
    reference = ratings([1], [1], [3.0], [T0])
    report = run(reference, reference.iloc[:0], movies(1))
    assert report.status == "nothing_to_compare"
    assert report.verdict == "nothing to compare"
    assert "nothing to compare" in report.message
    assert (report.features, report.drift_share, report.drift_detected) == ([], 0.0, False)
    assert {s.feature for s in report.skipped} == set(FEATURES)
    json.dumps(report.to_dict(), allow_nan=False)


def test_too_few_ratings_judge_nothing() -> None:
    data = generate(300, 200, 9_000, seed=1).ratings
    few = data.sample(MIN_CURRENT_RATINGS - 1, random_state=0).assign(rating=np.float32(0.5))
    report = run(data, few, movies(200))
    assert (report.status, report.current_ratings) == ("nothing_to_compare", len(few))
    assert f"only {len(few)} ratings" in report.message
    assert not report.drift_detected
    enough = data.sample(MIN_CURRENT_RATINGS, random_state=0).assign(rating=np.float32(0.5))
    rating = next(f for f in run(data, enough, movies(200)).features if f.feature == "rating")
    assert rating.drifted  # as many of the same half stars are judged


def test_a_data_set_without_genres_skips_the_genre_mix_and_says_so() -> None:
    data = generate(300, 200, 9_000, seed=1).ratings
    report = run(data, data, movies(200))
    assert "genre_mix" not in {f.feature for f in report.features}
    [skipped] = report.skipped
    assert (skipped.feature, skipped.reason) == ("genre_mix", "the data set lists no genres")
    assert len(report.features) == len(FEATURES) - 1


def test_ratings_of_new_users_only_skip_the_activity() -> None:
    reference = ratings([1], [1], [3.0], [T0])
    report = run(reference, ratings([2], [1], [3.0], [T0 + 1]), movies(1))
    assert "user_activity" in {s.feature for s in report.skipped}


def test_a_window_ending_before_it_starts_is_refused() -> None:
    profile = ReferenceProfile.from_frames("x", ratings([1], [1], [3.0], [T0]), movies(1))
    assert profile.window() == Window(T0 + 1)
    with pytest.raises(InvalidWindowError, match="must come after its start"):
        profile.window(start=10, end=10)


def test_the_report_survives_json() -> None:
    data = generate(300, 200, 9_000, seed=1)
    report = run(data.ratings, data.ratings.iloc[:2_000], data.movies)
    text = json.dumps(report.to_dict(), allow_nan=False)
    assert DriftReport.from_dict(json.loads(text)) == report


# ---------------------------------------------------------------- synthetic drift


@pytest.fixture(scope="module")
def synthetic() -> tuple[pd.DataFrame, pd.DataFrame]:
    data = generate(3_000, 1_500, 200_000, seed=7)
    return data.ratings, data.movies


def test_a_random_split_of_one_data_set_does_not_drift(
    synthetic: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    frame, catalog = synthetic
    shuffled = frame.sample(frac=1.0, random_state=0)
    report = run(shuffled.iloc[:150_000], shuffled.iloc[150_000:], catalog)
    values = {f.feature: f.value for f in report.features}
    # Same users, movies and values; only the volume per hour differs (a quarter of the data).
    for name in ("rating", "user_activity", "item_popularity", "genre_mix"):
        assert values[name] < 0.02, name
    assert values["new_users"] == 0.0
    assert values["new_movies"] < 0.01
    assert not report.drift_detected


def test_a_shifted_population_drifts(synthetic: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    frame, catalog = synthetic
    reference = frame[frame["user_id"] <= 2_000]
    # New users who rate low and only the long tail, in a burst.
    tail = frame[frame["user_id"] > 2_000]
    tail = tail[tail["item_id"] > 1_000].assign(
        rating=np.float32(1.0), timestamp=lambda f: T0 + np.arange(len(f)) // 50
    )
    report = run(reference, tail, catalog)
    assert set(report.drifted_features) >= {"rating", "new_users", "ratings_per_hour"}
    assert report.drift_detected
    assert report.verdict == "drift"


@given(
    st.lists(
        st.tuples(
            st.integers(1, 30),
            st.integers(1, 20),
            st.sampled_from([1.0, 2.5, 4.0, 5.0]),
            st.integers(T0, T0 + 50 * HOUR),
        ),
        min_size=1,
        max_size=300,
    )
)
def test_data_compared_with_itself_never_drifts(
    rows: list[tuple[int, int, float, int]],
) -> None:
    frame = ratings(*map(list, zip(*rows, strict=True)))  # type: ignore[arg-type]
    report = run(frame, frame, movies(20, [["Drama"] if i % 2 else ["War"] for i in range(20)]))
    assert not report.drift_detected
    assert report.drifted_features == []
    json.dumps(report.to_dict(), allow_nan=False)


def test_the_html_report_is_evidently_s(synthetic: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    frame, catalog = synthetic
    profile = ReferenceProfile.from_frames("test", frame.iloc[:100_000], catalog)
    assert len(profile.sample) == 100_000
    assert set(profile.sample.columns) >= {"rating", "user_activity", "genre", "hour_of_day"}
    page = drift_html(DriftInputs(profile, Window(0), frame.iloc[100_000:], catalog),
                      drift_share=0.5)  # fmt: skip
    assert page.lstrip().startswith("<!DOCTYPE html>")
    assert "root_metric_" in page
    assert "user_activity" in page
    empty = drift_html(DriftInputs(profile, Window(5), frame.iloc[:0], catalog), drift_share=0.5)
    assert "nothing to compare" in empty

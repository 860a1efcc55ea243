"""Synthetic data: exact size, distinct pairs, canonical tables, realistic shape, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.data.schema import RATING_DTYPES, as_canonical_movies
from movierec.data.sources import CsvSpec, LoadedData, read_ratings_csv
from movierec.data.synth import (
    FIRST_YEAR,
    GENRES,
    LAST_YEAR,
    RATINGS_END,
    RATINGS_START,
    generate,
    write_csv,
)

N_USERS, N_ITEMS, N_RATINGS = 3_000, 1_200, 200_000


@pytest.fixture(scope="module")
def data() -> LoadedData:
    return generate(N_USERS, N_ITEMS, N_RATINGS, seed=7)


def _pair_keys(ratings: pd.DataFrame, n_items: int) -> np.ndarray:
    return ratings["user_id"].to_numpy() * (n_items + 1) + ratings["item_id"].to_numpy()


def test_exact_row_count_and_distinct_pairs(data: LoadedData) -> None:
    assert len(data.ratings) == N_RATINGS
    assert len(np.unique(_pair_keys(data.ratings, N_ITEMS))) == N_RATINGS


def test_ratings_are_canonical_and_sorted(data: LoadedData) -> None:
    ratings = data.ratings
    assert list(ratings.columns) == list(RATING_DTYPES)
    assert ratings.dtypes.to_dict() == {c: np.dtype(t) for c, t in RATING_DTYPES.items()}
    assert isinstance(ratings.index, pd.RangeIndex)
    assert (np.diff(_pair_keys(ratings, N_ITEMS)) > 0).all()
    assert ratings["user_id"].between(1, N_USERS).all()
    assert ratings["item_id"].between(1, N_ITEMS).all()


def test_ratings_on_half_star_grid_with_a_realistic_mean(data: LoadedData) -> None:
    stars = data.ratings["rating"].to_numpy()
    assert data.rating_scale == (0.5, 5.0)
    assert stars.min() >= 0.5
    assert stars.max() <= 5.0
    assert np.array_equal(stars * 2, np.rint(stars * 2))
    assert 3.2 < stars.mean() < 3.8
    assert 0.7 < stars.std() < 1.3
    # Whole stars dominate, as in MovieLens, but half stars are used too.
    whole = np.mean(stars == np.rint(stars))
    assert 0.6 < whole < 0.95


def test_every_user_has_the_minimum_and_activity_is_skewed(data: LoadedData) -> None:
    per_user = data.ratings.groupby("user_id").size()
    assert len(per_user) == N_USERS
    assert per_user.min() >= 20
    assert per_user.max() > 8 * per_user.median()


def test_item_popularity_has_a_head_and_a_long_tail(data: LoadedData) -> None:
    per_item = data.ratings["item_id"].value_counts().reindex(range(1, N_ITEMS + 1), fill_value=0)
    top = np.sort(per_item.to_numpy())[::-1]
    assert top[: N_ITEMS // 100].sum() > 0.10 * N_RATINGS
    assert np.median(top) < 0.25 * top[0]


def test_popular_items_are_rated_higher(data: LoadedData) -> None:
    by_item = data.ratings.groupby("item_id")["rating"].agg(["mean", "size"])
    by_item = by_item[by_item["size"] >= 10]
    assert np.corrcoef(np.log(by_item["size"]), by_item["mean"])[0, 1] > 0.1


def test_timestamps_within_span_and_after_release(data: LoadedData) -> None:
    ratings = data.ratings
    assert ratings["timestamp"].between(RATINGS_START, RATINGS_END).all()
    years = data.movies.set_index("item_id")["year"].astype(np.int64)
    released = pd.to_datetime(years.astype(str), format="%Y").astype("int64") // 10**9
    assert (ratings["timestamp"].to_numpy() >= released.loc[ratings["item_id"]].to_numpy()).all()
    spans = ratings.groupby("user_id")["timestamp"].agg(lambda t: t.max() - t.min())
    assert spans.median() < 0.5 * (RATINGS_END - RATINGS_START)


def test_movies_are_canonical(data: LoadedData) -> None:
    movies = data.movies
    pd.testing.assert_frame_equal(movies, as_canonical_movies(movies))
    assert movies["item_id"].tolist() == list(range(1, N_ITEMS + 1))
    assert movies["title"].iloc[122] == "Synthetic Movie 123"
    assert movies["year"].between(FIRST_YEAR, LAST_YEAR).all()
    assert movies["year"].median() > 1995
    assert movies["genres"].map(len).between(1, 3).all()
    assert set(movies["genres"].explode()) <= set(GENRES)
    assert movies["imdb_id"].isna().all()
    assert movies["tmdb_id"].isna().all()


def test_name_report_and_users(data: LoadedData) -> None:
    assert data.name == f"synth-{N_USERS}x{N_ITEMS}x{N_RATINGS}-s7"
    assert data.users is None
    assert data.report.rows_read == data.report.rows_accepted == N_RATINGS
    assert data.report.rows_rejected == data.report.duplicates_dropped == 0
    assert len(data.checksum) == 64


def test_same_seed_same_data_other_seed_other_data() -> None:
    first, again, other = (generate(200, 100, 6_000, seed=s) for s in (1, 1, 2))
    pd.testing.assert_frame_equal(first.ratings, again.ratings)
    pd.testing.assert_frame_equal(first.movies, again.movies)
    assert first.checksum == again.checksum
    assert other.checksum != first.checksum
    assert not first.ratings.equals(other.ratings)


def test_checksum_covers_every_parameter() -> None:
    base = generate(50, 40, 1_500, seed=0)
    assert generate(50, 40, 1_500, seed=0, min_ratings=5).checksum != base.checksum
    assert generate(50, 40, 1_500, seed=0, noise=0.3).checksum != base.checksum


def test_a_complete_matrix_is_possible() -> None:
    data = generate(30, 40, 30 * 40, min_ratings=5)
    assert len(np.unique(_pair_keys(data.ratings, 40))) == 30 * 40


@pytest.mark.parametrize(
    ("n_users", "n_items", "n_ratings", "kwargs", "message"),
    [
        (10, 10, 101, {}, "exceeds the 100 distinct"),
        (100, 50, 1_000, {}, "below n_users \\* min_ratings"),
        (10, 10, 50, {"min_ratings": 11}, "exceeds n_items"),
        (0, 10, 0, {}, "at least 1"),
        (10, 10, 50, {"min_ratings": 1, "noise": -1.0}, "non-negative"),
    ],
)
def test_impossible_requests_raise(
    n_users: int, n_items: int, n_ratings: int, kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        generate(n_users, n_items, n_ratings, **kwargs)  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(
    n_users=st.integers(1, 60),
    n_items=st.integers(1, 60),
    fill=st.floats(0.0, 1.0),
    min_ratings=st.integers(1, 5),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_feasible_request_is_met_exactly(
    n_users: int, n_items: int, fill: float, min_ratings: int, seed: int
) -> None:
    floor = min(min_ratings, n_items)
    low, high = n_users * floor, n_users * n_items
    n_ratings = low + round(fill * (high - low))
    data = generate(n_users, n_items, n_ratings, seed=seed, min_ratings=floor)
    ratings = data.ratings
    assert len(ratings) == n_ratings
    assert len(np.unique(_pair_keys(ratings, n_items))) == n_ratings
    assert ratings.groupby("user_id").size().reindex(range(1, n_users + 1)).min() >= floor


def test_write_csv_in_movielens_format(tmp_path: Path) -> None:
    data = generate(100, 80, 3_000, seed=3)
    ratings_path, movies_path = write_csv(data, tmp_path / "synth")
    lines = ratings_path.read_text().splitlines()
    assert lines[0] == "userId,movieId,rating,timestamp"
    assert len(lines) == 3_001
    assert lines[1].split(",")[2] in {f"{h / 2:.1f}" for h in range(1, 11)}
    back = pd.read_csv(ratings_path)
    assert np.array_equal(back["rating"].to_numpy(np.float32), data.ratings["rating"].to_numpy())
    assert np.array_equal(back["timestamp"].to_numpy(), data.ratings["timestamp"].to_numpy())
    movies = pd.read_csv(movies_path)
    assert list(movies.columns) == ["movieId", "title", "genres"]
    first = data.movies.iloc[0]
    assert movies["title"].iloc[0] == f"Synthetic Movie 1 ({first['year']})"
    assert movies["genres"].iloc[0] == "|".join(first["genres"])


def test_written_ratings_read_back_through_the_csv_source(tmp_path: Path) -> None:
    data = generate(100, 80, 3_000, seed=3)
    ratings_path, _ = write_csv(data, tmp_path)
    spec = CsvSpec(
        user_col="userId",
        item_col="movieId",
        rating_col="rating",
        timestamp_col="timestamp",
        rating_scale=(0.5, 5.0),
    )
    back = read_ratings_csv(ratings_path, spec, strict=True).ratings
    order = back.sort_values(["user_id", "item_id"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(order, data.ratings)

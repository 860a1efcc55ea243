"""Interactions: exact matrices on hand-made data, snapshots, and the real ml-latest-small."""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.data.interactions import Interactions, UnknownIdError
from movierec.data.schema import split_title_year
from movierec.errors import DataSourceError, MovierecError, ParseError

# Users 10, 7, 1000 and items 5, 3, 9 (plus unrated catalog movie 42), all out of order.
RATINGS = pd.DataFrame(
    {
        "user_id": [10, 7, 1000, 7, 10],
        "item_id": [5, 5, 3, 9, 3],
        "rating": [0.0, 4.5, 3.0, 1.0, 2.0],
        "timestamp": [50, 40, 30, 20, 10],
    }
)
MOVIES = pd.DataFrame(
    {
        "item_id": [9, 42, 5],
        "title": ["Nine", "Forty-two", "Five"],
        "year": [1999, None, 2001],
        "genres": [["Drama"], [], ["Comedy", "Drama"]],
        "imdb_id": ["tt0000009", None, "tt0000005"],
        "tmdb_id": [99, None, 55],
    }
)


@pytest.fixture
def tiny() -> Interactions:
    return Interactions.from_frames(RATINGS, MOVIES, rating_scale=(0.0, 5.0))


def sorted_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["user_id", "item_id"]).reset_index(drop=True)


# ---------------------------------------------------------------------- hand-made data


def test_matrix_and_id_maps_are_exact(tiny: Interactions) -> None:
    np.testing.assert_array_equal(tiny.user_ids, [7, 10, 1000])
    np.testing.assert_array_equal(tiny.item_ids, [3, 5, 9, 42])
    expected = [[0.0, 4.5, 1.0, 0.0], [2.0, 0.0, 0.0, 0.0], [3.0, 0.0, 0.0, 0.0]]
    np.testing.assert_array_equal(tiny.matrix.toarray(), expected)
    assert (tiny.n_users, tiny.n_items, tiny.nnz) == (3, 4, 5)
    assert tiny.density == pytest.approx(5 / 12)
    assert tiny.matrix.dtype == np.float32
    assert tiny.user_ids.dtype == np.int64
    assert tiny.item_ids.dtype == np.int64
    assert tiny.matrix.has_sorted_indices
    np.testing.assert_array_equal(tiny.user_index([1000, 7, 10]), [2, 0, 1])
    np.testing.assert_array_equal(tiny.item_index([42, 3]), [3, 0])
    np.testing.assert_array_equal(tiny.user_ids[tiny.user_index([10, 1000])], [10, 1000])


def test_a_rating_of_zero_is_stored(tiny: Interactions) -> None:
    items, ratings = tiny.user_items(int(tiny.user_index(10)))
    np.testing.assert_array_equal(tiny.item_ids[items], [3, 5])
    np.testing.assert_array_equal(ratings, [2.0, 0.0])
    assert tiny.matrix.getnnz() == 5
    assert tiny.binarize().matrix[1, 1] == 1.0


def test_timestamps_share_the_structure(tiny: Interactions) -> None:
    ts = tiny.timestamps
    assert ts is not None
    assert ts.dtype == np.int64
    np.testing.assert_array_equal(ts.indptr, tiny.matrix.indptr)
    np.testing.assert_array_equal(ts.indices, tiny.matrix.indices)
    np.testing.assert_array_equal(ts.toarray(), [[0, 40, 20, 0], [10, 50, 0, 0], [30, 0, 0, 0]])


def test_catalog_is_in_item_order_with_placeholders(tiny: Interactions) -> None:
    catalog = tiny.catalog
    assert list(catalog.index) == [3, 5, 9, 42]
    assert catalog.index.name == "item_id"
    assert list(catalog.columns) == ["title", "year", "genres", "imdb_id", "tmdb_id"]
    assert list(catalog["title"]) == ["Item 3", "Five", "Nine", "Forty-two"]
    assert list(catalog["genres"]) == [[], ["Comedy", "Drama"], ["Drama"], []]
    assert catalog["year"].dtype == "Int64"
    assert catalog.loc[5, "year"] == 2001
    assert catalog["year"].isna().tolist() == [True, False, False, True]
    assert catalog.loc[3, "imdb_id"] is None
    assert catalog.loc[5, "imdb_id"] == "tt0000005"
    assert catalog.loc[9, "tmdb_id"] == 99


def test_unknown_ids_map_to_minus_one_or_raise(tiny: Interactions) -> None:
    np.testing.assert_array_equal(tiny.user_index([7, 8, 2000, -1]), [0, -1, -1, -1])
    np.testing.assert_array_equal(tiny.item_index([4, 42]), [-1, 3])
    assert tiny.item_index(5) == 1
    with pytest.raises(UnknownIdError, match=r"2 unknown user id\(s\): 8, 2000") as info:
        tiny.user_index([7, 8, 2000], strict=True)
    assert isinstance(info.value, MovierecError)
    assert isinstance(info.value, KeyError)
    with pytest.raises(TypeError, match="integers"):
        tiny.item_index([1.5])


def test_to_frame_round_trips(tiny: Interactions) -> None:
    frame = tiny.to_frame()
    assert list(frame.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert frame.dtypes.to_dict() == {
        "user_id": np.int64,
        "item_id": np.int64,
        "rating": np.float32,
        "timestamp": np.int64,
    }
    expected = sorted_frame(RATINGS.astype({"rating": np.float32}))
    pd.testing.assert_frame_equal(frame, expected)


def test_is_immutable(tiny: Interactions) -> None:
    for array in (tiny.matrix.data, tiny.matrix.indices, tiny.user_ids, tiny.item_ids):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 1
    assert tiny.timestamps is not None
    with pytest.raises(ValueError, match="read-only"):
        tiny.timestamps.data[0] = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        tiny.rating_scale = (1.0, 2.0)  # type: ignore[misc]


def test_later_changes_to_the_input_frame_do_not_leak_in() -> None:
    frame = sorted_frame(RATINGS.astype({"rating": np.float32}))  # sorted: no reordering copy
    inter = Interactions.from_frames(frame)
    frame.loc[0, "rating"] = 5.0
    frame.loc[0, "timestamp"] = 99
    assert inter.matrix[0, 1] == 4.5
    assert inter.timestamps is not None
    assert inter.timestamps[0, 1] == 40


def test_read_only_matrix_still_supports_the_usual_algebra(tiny: Interactions) -> None:
    dense = tiny.matrix.toarray()
    vector = np.arange(4, dtype=np.float32)
    np.testing.assert_allclose(tiny.matrix @ vector, dense @ vector)
    np.testing.assert_array_equal(tiny.matrix.T.tocsr().toarray(), dense.T)
    np.testing.assert_array_equal(tiny.matrix[[2, 0]].toarray(), dense[[2, 0]])
    np.testing.assert_array_equal(np.asarray(tiny.matrix.sum(axis=0)).ravel(), dense.sum(axis=0))


def test_binarize(tiny: Interactions) -> None:
    everything = tiny.binarize()
    assert everything.nnz == tiny.nnz
    assert set(everything.matrix.data.tolist()) == {1.0}
    assert everything.rating_scale == (0.0, 1.0)
    liked = tiny.binarize(threshold=3.0)
    np.testing.assert_array_equal(
        liked.matrix.toarray(), [[0, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]]
    )
    assert liked.timestamps is not None
    np.testing.assert_array_equal(liked.timestamps.data, [40, 30])
    assert liked.same_index_space(tiny)
    assert liked.catalog is tiny.catalog


def test_subset_by_mask_or_positions(tiny: Interactions) -> None:
    by_mask = tiny.subset(tiny.matrix.data >= 2.0)
    by_positions = tiny.subset([4, 0, 2])
    for part in (by_mask, by_positions):
        assert part.user_ids is tiny.user_ids
        assert part.item_ids is tiny.item_ids
        assert part.catalog is tiny.catalog
        np.testing.assert_array_equal(
            part.matrix.toarray(), [[0, 4.5, 0, 0], [2.0, 0, 0, 0], [3.0, 0, 0, 0]]
        )
    with pytest.raises(ValueError, match="repeat"):
        tiny.subset([1, 1])
    with pytest.raises(ValueError, match="shape"):
        tiny.subset(np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match=r"0\.\.4"):
        tiny.subset([5])


def test_user_items_checks_the_index(tiny: Interactions) -> None:
    items, ratings = tiny.user_items(0)
    np.testing.assert_array_equal(items, [1, 2])
    np.testing.assert_array_equal(ratings, [4.5, 1.0])
    with pytest.raises(IndexError):
        tiny.user_items(3)


def test_repr_is_concise(tiny: Interactions) -> None:
    text = repr(tiny)
    assert text.startswith("Interactions(3 users x 4 items, 5 ratings")
    assert "timestamps" in text
    assert "\n" not in text


def test_duplicates_keep_the_latest_rating() -> None:
    ratings = pd.DataFrame(
        {
            "user_id": [1, 2, 1, 1, 2],
            "item_id": [1, 1, 1, 2, 1],
            "rating": [1.0, 2.0, 5.0, 3.0, 4.0],
            "timestamp": [10, 5, 30, 20, 5],
        }
    )
    inter = Interactions.from_frames(ratings)
    # (1, 1): the time-30 rating wins; (2, 1): same time, the later row wins.
    np.testing.assert_array_equal(inter.matrix.toarray(), [[5.0, 3.0], [4.0, 0.0]])
    assert inter.rating_scale == (1.0, 5.0)  # inferred from the input, replaced ratings too


def test_no_timestamp_column_gives_no_timestamps() -> None:
    inter = Interactions.from_frames(RATINGS.drop(columns="timestamp"), rating_scale=(0, 5))
    assert inter.timestamps is None
    assert list(inter.to_frame().columns) == ["user_id", "item_id", "rating"]


def test_huge_sparse_ids_take_the_general_path() -> None:
    ratings = RATINGS.assign(user_id=RATINGS["user_id"] * 10**15, item_id=-RATINGS["item_id"])
    inter = Interactions.from_frames(ratings, rating_scale=(0.0, 5.0))
    np.testing.assert_array_equal(inter.user_ids, [7 * 10**15, 10 * 10**15, 1000 * 10**15])
    np.testing.assert_array_equal(inter.item_ids, [-9, -5, -3])
    pd.testing.assert_frame_equal(inter.to_frame(), sorted_frame(ratings.astype({"rating": "f4"})))


@pytest.mark.parametrize(
    ("ratings", "scale", "message"),
    [
        (RATINGS.drop(columns="rating"), (0, 5), "lacks column"),
        (RATINGS.assign(rating=[1.0, np.nan, 2.0, 3.0, 4.0]), (0, 5), "null"),
        (RATINGS.assign(rating=[1.0, np.inf, 2.0, 3.0, 4.0]), (0, 5), "not finite"),
        (RATINGS, (1, 5), r"1 rating\(s\) outside the scale 1\.\.5"),
        (RATINGS.assign(user_id=["a", "b", "c", "d", "e"]), (0, 5), "user_id"),
    ],
)
def test_bad_ratings_are_refused(
    ratings: pd.DataFrame, scale: tuple[float, float], message: str
) -> None:
    with pytest.raises(ParseError, match=message):
        Interactions.from_frames(ratings, rating_scale=scale)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(-3, 40),
            st.integers(0, 10**6),
            st.sampled_from([0.0, 0.5, 3.0, 5.0]),
            st.integers(0, 10),
        ),
        min_size=1,
        max_size=40,
        unique_by=lambda row: (row[0], row[1]),
    ),
)
def test_any_row_order_builds_the_same_matrix(rows: list[tuple[int, int, float, int]]) -> None:
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    shuffled = frame.sample(frac=1.0, random_state=len(rows))
    inter = Interactions.from_frames(shuffled, rating_scale=(0.0, 5.0))
    expected = sorted_frame(frame.astype({"rating": np.float32}))
    pd.testing.assert_frame_equal(inter.to_frame(), expected)
    assert inter.nnz == len(rows)
    assert inter.matrix.has_canonical_format


# ---------------------------------------------------------------------- snapshots


def write_snapshot(folder: Path, rating_scale: list[float] | None = None) -> None:
    ratings = pa.table(
        {
            "user_id": pa.array(RATINGS["user_id"], pa.int64()),
            "item_id": pa.array(RATINGS["item_id"], pa.int64()),
            "rating": pa.array(RATINGS["rating"], pa.float32()),
            "timestamp": pa.array(RATINGS["timestamp"], pa.int64()),
        }
    )
    movies = pa.table(
        {
            "item_id": pa.array([9, 42, 5], pa.int64()),
            "title": pa.array(["Nine", "Forty-two", "Five"], pa.string()),
            "year": pa.array([1999, None, 2001], pa.int64()),
            "genres": pa.array([["Drama"], [], ["Comedy", "Drama"]], pa.list_(pa.string())),
            "imdb_id": pa.array(["tt0000009", None, "tt0000005"], pa.string()),
            "tmdb_id": pa.array([99, None, 55], pa.int64()),
        }
    )
    pq.write_table(ratings, folder / "ratings.parquet")
    pq.write_table(movies, folder / "movies.parquet")
    manifest = {"rating_scale": rating_scale, "content_hash": "abc123def4567890", "rows": 5}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_from_snapshot_matches_from_frames(tmp_path: Path, tiny: Interactions) -> None:
    write_snapshot(tmp_path, [0.0, 5.0])
    inter = Interactions.from_snapshot(tmp_path)
    assert inter.snapshot_hash == "abc123def4567890"
    assert inter.rating_scale == (0.0, 5.0)
    np.testing.assert_array_equal(inter.matrix.toarray(), tiny.matrix.toarray())
    np.testing.assert_array_equal(inter.item_ids, tiny.item_ids)
    pd.testing.assert_frame_equal(inter.to_frame(), tiny.to_frame())
    pd.testing.assert_frame_equal(inter.catalog, tiny.catalog)
    assert "snapshot abc123def456" in repr(inter)
    assert inter.subset([0]).snapshot_hash == inter.snapshot_hash


def test_snapshot_without_a_scale_infers_it(tmp_path: Path) -> None:
    write_snapshot(tmp_path)
    assert Interactions.from_snapshot(tmp_path).rating_scale == (0.0, 4.5)


def test_incomplete_snapshot_is_a_data_source_error(tmp_path: Path) -> None:
    write_snapshot(tmp_path)
    (tmp_path / "movies.parquet").unlink()
    with pytest.raises(DataSourceError, match=r"movies\.parquet"):
        Interactions.from_snapshot(tmp_path)


# ---------------------------------------------------------------------- real data


def read_ml_latest_small(archive: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    with zipfile.ZipFile(archive) as zf:
        with zf.open("ml-latest-small/ratings.csv") as handle:
            ratings = pd.read_csv(handle)
        with zf.open("ml-latest-small/movies.csv") as handle:
            raw_movies = pd.read_csv(handle)
    ratings = ratings.rename(columns={"userId": "user_id", "movieId": "item_id"})
    titles, years = zip(*(split_title_year(t) for t in raw_movies["title"]), strict=True)
    movies = pd.DataFrame(
        {
            "item_id": raw_movies["movieId"],
            "title": titles,
            "year": pd.array(years, dtype="Int64"),
            "genres": [
                [] if g == "(no genres listed)" else g.split("|") for g in raw_movies["genres"]
            ],
        }
    )
    return ratings, movies


def test_ml_latest_small(datasets_dir: Path) -> None:
    ratings, movies = read_ml_latest_small(datasets_dir / "ml-latest-small.zip")
    inter = Interactions.from_frames(ratings, movies, rating_scale=(0.5, 5.0))
    assert (inter.n_users, inter.n_items, inter.nnz) == (610, 9742, 100_836)
    unrated = np.diff(inter.matrix.tocsc().indptr) == 0
    assert unrated.sum() == 9742 - ratings["item_id"].nunique()
    toy_story = inter.catalog.loc[1]
    assert (toy_story["title"], toy_story["year"]) == ("Toy Story", 1995)
    assert "Animation" in toy_story["genres"]
    row = inter.user_index(1, strict=True)
    col = inter.item_index(1, strict=True)
    assert inter.matrix[row, col] == 4.0
    assert inter.timestamps is not None
    assert inter.timestamps[row, col] == 964982703

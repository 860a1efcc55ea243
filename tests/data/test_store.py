"""RatingsStore against real SQLite and PostgreSQL databases (the ``store_url`` fixture)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from movierec.data import store as store_module
from movierec.data.schema import as_canonical_movies
from movierec.data.store import IngestResult, RatingColumns, RatingsStore, redact_url
from movierec.errors import StoreError
from tests.conftest import PG_ADMIN_URL, new_connections_refused, temporary_database


@dataclass(frozen=True)
class Report:
    rows_read: int = 0
    rows_rejected: int = 0


@dataclass(frozen=True)
class Loaded:
    """A stand-in for ``sources.LoadedData``."""

    name: str
    ratings: pd.DataFrame
    movies: pd.DataFrame
    checksum: str
    users: pd.DataFrame | None = None
    rating_scale: tuple[float, float] = (0.5, 5.0)
    report: Report = field(default_factory=Report)


def make_movies(ids: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": np.asarray(ids, dtype=np.int64),
            "title": [f"Movie {i}" for i in ids],
            "year": pd.array([1990 + i if i % 3 else None for i in ids], dtype="Int64"),
            "genres": [["Comedy", "Drama"] if i % 2 else [] for i in ids],
            "imdb_id": [f"tt{i:07d}" if i % 2 else None for i in ids],
            "tmdb_id": pd.array([i * 10 if i % 2 else None for i in ids], dtype="Int64"),
        }
    )


def make_ratings(rows: list[tuple[int, int, float, int]]) -> pd.DataFrame:
    user, item, rating, ts = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "user_id": np.asarray(user, dtype=np.int64),
            "item_id": np.asarray(item, dtype=np.int64),
            "rating": np.asarray(rating, dtype=np.float32),
            "timestamp": np.asarray(ts, dtype=np.int64),
        }
    )


BASE_ROWS = [(1, 10, 4.0, 100), (1, 11, 3.5, 101), (2, 10, 5.0, 102), (3, 12, 1.0, 103)]


def base_data(name: str = "ml-test", checksum: str = "c1") -> Loaded:
    users = pd.DataFrame({"user_id": np.array([1, 2], dtype=np.int64), "name": ["ann", "bob"]})
    return Loaded(
        name,
        make_ratings(BASE_ROWS),
        make_movies([10, 11, 12, 13]),
        checksum,
        users=users,
        report=Report(5, 1),
    )


def sorted_ratings(store: RatingsStore) -> pd.DataFrame:
    return store.ratings_frame().sort_values(["user_id", "item_id"]).reset_index(drop=True)


@pytest.fixture
def store(store_url: str) -> RatingsStore:
    with RatingsStore(store_url) as opened:
        yield opened


def test_ingest_counts_and_readers(store: RatingsStore) -> None:
    result = store.ingest(base_data())
    assert (result.rows, result.inserted, result.updated, result.unchanged) == (4, 4, 0, 0)
    assert result.rejected == 1
    assert result.skipped_reason is None
    ratings = sorted_ratings(store)
    assert ratings.dtypes.to_dict() == {
        "user_id": np.int64,
        "item_id": np.int64,
        "rating": np.float32,
        "timestamp": np.int64,
    }
    pd.testing.assert_frame_equal(ratings, make_ratings(BASE_ROWS))
    movies = store.movies_frame()
    pd.testing.assert_frame_equal(movies, as_canonical_movies(make_movies([10, 11, 12, 13])))
    assert store.users_frame()["name"].tolist() == ["ann", "bob"]
    assert store.dataset_name == "ml-test"
    assert store.rating_scale == (0.5, 5.0)
    assert len(store.ratings_frame(since=102)) == 2
    log = store.ingestion_log()
    assert log[0]["status"] == "success"
    assert (log[0]["rows_inserted"], log[0]["rows_read"], log[0]["rows_rejected"]) == (4, 5, 1)


def test_reingest_is_skipped_and_forced_reingest_adds_nothing(store: RatingsStore) -> None:
    store.ingest(base_data())
    again = store.ingest(base_data())
    assert again.skipped_reason is not None
    assert "already ingested" in again.skipped_reason
    assert again.inserted == again.updated == 0
    forced = store.ingest(base_data(), force=True)
    assert forced.skipped_reason is None
    assert (forced.inserted, forced.updated, forced.unchanged) == (0, 0, 4)
    assert store.stats().n_ratings == 4
    assert [e["status"] for e in store.ingestion_log()] == ["success", "skipped", "success"]


def test_upsert_newest_timestamp_wins(store: RatingsStore) -> None:
    store.ingest(base_data())
    newer = make_ratings(
        [
            (1, 10, 2.0, 200),  # newer: replaces 4.0
            (1, 11, 1.0, 50),  # older than the stored one: ignored
            (2, 10, 5.0, 102),  # identical: unchanged
            (4, 13, 3.0, 300),  # new pair (new user)
            (4, 12, 2.0, 10),  # duplicate pair in the input: the newest (next row) wins
            (4, 12, 4.5, 20),
        ]
    )
    result = store.ingest(replace(base_data(checksum="c2"), ratings=newer))
    assert (result.rows, result.inserted, result.updated, result.unchanged) == (5, 2, 1, 2)
    got = sorted_ratings(store).set_index(["user_id", "item_id"])
    assert got.loc[(1, 10)].tolist() == [2.0, 200]
    assert got.loc[(1, 11)].tolist() == [3.5, 101]
    assert got.loc[(4, 12)].tolist() == [4.5, 20]
    assert len(got) == 6


def test_failed_ingest_rolls_back_and_is_logged(store: RatingsStore) -> None:
    store.ingest(base_data())
    before = sorted_ratings(store)
    # Changed movies and ratings, then a rating of a movie that exists nowhere: the check
    # runs inside the transaction, after the movies were upserted.
    bad = replace(
        base_data(checksum="c2"),
        ratings=make_ratings([(1, 10, 1.0, 500), (9, 99, 3.0, 500)]),
        movies=make_movies([10, 11, 12, 13, 14]).assign(title="changed"),
    )
    with pytest.raises(StoreError, match=r"not in the catalog, e\.g\. \[99\]"):
        store.ingest(bad)
    pd.testing.assert_frame_equal(sorted_ratings(store), before)
    assert store.movies_frame()["title"].tolist() == [f"Movie {i}" for i in (10, 11, 12, 13)]
    log = store.ingestion_log()
    assert log[0]["status"] == "failed"
    assert "99" in log[0]["details"]["error"]


def test_failure_after_ratings_loaded_rolls_back(
    store: RatingsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after the ratings are in (here: while writing the metadata) undoes them."""
    store.ingest(base_data())
    before = store.stats()

    def crash(*_args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store_module.RatingsStore, "_write_meta", crash)
    more = make_ratings([(7, 10, 3.0, 900), (1, 10, 1.0, 900)])
    with pytest.raises(StoreError, match="disk on fire"):
        store.ingest(replace(base_data(checksum="c3"), ratings=more))
    assert store.stats() == before
    assert store.ingestion_log()[0]["status"] == "failed"


def test_first_load_failure_leaves_store_empty(store_url: str) -> None:
    """The PostgreSQL fast path (drop key, COPY, re-add key) also rolls back as a whole."""
    with RatingsStore(store_url) as store:
        bad = replace(base_data(), movies=make_movies([10, 11]))
        with pytest.raises(StoreError, match="not in the catalog"):
            store.ingest(bad)
        assert store.stats().n_ratings == 0
        assert store.dataset_name is None
        store.ingest(base_data())  # the key and index are back: the upsert path works
        assert store.ingest(base_data(checksum="c9")).unchanged == 4


def test_rating_off_scale_is_refused(store: RatingsStore) -> None:
    data = replace(base_data(), ratings=make_ratings([(1, 10, 7.0, 1)]))
    with pytest.raises(StoreError, match=r"outside the rating scale \[0\.5, 5\.0\]"):
        store.ingest(data)
    assert store.ingestion_log()[0]["status"] == "failed"


def test_different_dataset_refused_unless_replace(store: RatingsStore) -> None:
    store.ingest(base_data("ml-latest-small"))
    other = replace(
        base_data("ml-100k", checksum="k1"),
        ratings=make_ratings([(5, 20, 3.0, 7)]),
        movies=make_movies([20]),
        users=None,
    )
    with pytest.raises(StoreError, match=r"holds dataset 'ml-latest-small'.*replace"):
        store.ingest(other)
    assert store.dataset_name == "ml-latest-small"
    result = store.ingest(other, replace=True)
    assert result.inserted == 1
    assert store.dataset_name == "ml-100k"
    assert sorted_ratings(store)["user_id"].tolist() == [5]
    assert store.movies_frame()["item_id"].tolist() == [20]
    assert store.users_frame().empty
    # The old dataset's checksum does not count as loaded any more.
    back = store.ingest(base_data("ml-latest-small"), replace=True)
    assert back.skipped_reason is None
    assert back.inserted == 4


def test_append_is_durable_and_newest_wins(store_url: str) -> None:
    with RatingsStore(store_url) as store:
        store.ingest(base_data())
        store.append(1, 10, 1.5, timestamp=1_000)
        store.append(1, 10, 5.0, timestamp=999)  # older: ignored
        store.append(42, 13, 2.5)  # new user, timestamp now
        written = store.append_many(
            pd.DataFrame({"user_id": [43, 43], "item_id": [10, 11], "rating": [3.0, 4.0]})
        )
        assert written == 2
    with RatingsStore(store_url) as reopened:
        got = sorted_ratings(reopened).set_index(["user_id", "item_id"])
        assert got.loc[(1, 10)].tolist() == [1.5, 1_000]
        assert got.loc[(42, 13), "rating"] == 2.5
        assert got.loc[(42, 13), "timestamp"] > 1_600_000_000
        assert len(got) == 7


def test_append_validation(store: RatingsStore) -> None:
    with pytest.raises(StoreError, match="no dataset"):
        store.append(1, 10, 3.0)
    store.ingest(base_data())
    with pytest.raises(StoreError, match="rating scale"):
        store.append(1, 10, 9.0)
    with pytest.raises(StoreError, match=r"not in the catalog, e\.g\. \[777\]"):
        store.append(1, 777, 3.0)
    assert store.stats().n_ratings == 4


def _group(rows: list[tuple[int, int, float, int]]) -> RatingColumns:
    frame = make_ratings(rows)
    return RatingColumns(*(frame[c].to_numpy() for c in RatingColumns._fields))


def test_append_groups_counts_each_groups_changes_as_if_written_in_turn(
    store: RatingsStore,
) -> None:
    store.ingest(base_data())  # (1, 10) is 4.0 at 100
    groups = [
        _group([(7, 10, 4.0, 10), (7, 11, 3.0, 10)]),  # two new pairs
        _group([(7, 10, 4.0, 10)]),  # the same again: no change
        _group([(7, 10, 2.0, 5)]),  # older than the stored one: ignored
        _group([(7, 10, 5.0, 11), (8, 10, 1.0, 1)]),  # newer, and a new user
        _group([(1, 10, 4.0, 100)]),  # identical to the ingested rating
        _group([(1, 10, 2.5, 100), (1, 10, 3.0, 100)]),  # same time: the last one wins
    ]
    assert store.append_groups(groups) == [2, 0, 0, 2, 0, 1]
    # No pair in two groups (PostgreSQL's single statement): each counts its own.
    assert store.append_groups(
        [_group([(9, 12, 3.0, 1)]), _group([(9, 13, 3.0, 1), (7, 11, 3.0, 10)])]
    ) == [1, 1]
    # A rating no float holds exactly, posted twice: the same, not a change.
    assert store.append_groups([_group([(9, 11, 3.7, 5)])]) == [1]
    assert store.append_groups([_group([(9, 11, 3.7, 5)]), _group([(9, 11, 3.7, 4)])]) == [0, 0]
    got = sorted_ratings(store).set_index(["user_id", "item_id"])
    assert got.loc[(7, 10)].tolist() == [5.0, 11]
    assert got.loc[(7, 11)].tolist() == [3.0, 10]
    assert got.loc[(8, 10)].tolist() == [1.0, 1]
    assert got.loc[(1, 10)].tolist() == [3.0, 100]
    assert got.loc[(9, 13)].tolist() == [3.0, 1]
    assert len(got) == 10


def test_append_groups_refuses_the_whole_group_for_one_bad_rating(store: RatingsStore) -> None:
    with pytest.raises(StoreError, match="no dataset"):
        store.append_groups([_group([(7, 10, 3.0, 1)])])
    store.ingest(base_data())
    with pytest.raises(StoreError, match=r"not in the catalog, e\.g\. \[777\]"):
        store.append_groups([_group([(7, 10, 3.0, 1)]), _group([(8, 777, 3.0, 1)])])
    with pytest.raises(StoreError, match="rating scale"):
        store.append_groups([_group([(7, 10, 3.0, 1)]), _group([(8, 11, 9.0, 1)])])
    assert store.stats().n_ratings == 4


@pytest.mark.postgres
def test_a_connected_writer_writes_while_the_database_refuses_new_connections() -> None:
    with (
        temporary_database(PG_ADMIN_URL, "refuse") as url,
        RatingsStore(url) as connected,
        RatingsStore(url) as late,
    ):
        connected.ingest(base_data())
        connected.connect_writer()
        with new_connections_refused(url):
            assert connected.append_groups([_group([(7, 10, 3.0, 1)])]) == [1]
            with pytest.raises(StoreError, match="refused a connection"):
                late.append_groups([_group([(7, 11, 3.0, 1)])])
        assert late.append_groups([_group([(7, 11, 3.0, 1)])]) == [1]  # connects now


def test_stats(store: RatingsStore) -> None:
    empty = store.stats()
    assert (empty.n_ratings, empty.dataset, empty.rating_mean) == (0, None, None)
    store.ingest(base_data())
    stats = store.stats()
    assert (stats.n_ratings, stats.n_users, stats.n_items, stats.n_movies) == (4, 3, 3, 4)
    assert (stats.rating_min, stats.rating_max) == (1.0, 5.0)
    assert stats.rating_mean == pytest.approx(3.375)
    assert (stats.first_timestamp, stats.last_timestamp) == (100, 103)
    assert (stats.dataset, stats.rating_scale) == ("ml-test", (0.5, 5.0))
    assert stats.ratings_per_day == 4.0


def random_ratings(n: int, seed: int, users: int = 500) -> pd.DataFrame:
    """``n`` ratings of movies 10 to 13 in random order, repeated pairs among them."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "user_id": rng.integers(1, users, n),
            "item_id": rng.integers(10, 14, n),
            "rating": (rng.integers(1, 11, n) / 2).astype(np.float32),
            "timestamp": rng.integers(0, 10**9, n),
        }
    )


def test_large_unsorted_ingest_round_trips(store: RatingsStore) -> None:
    """Many rows, unsorted, with duplicates: exercises chunking and the sort/dedup path."""
    frame = random_ratings(30_000, seed=7)
    result = store.ingest(replace(base_data(), ratings=frame))
    expected = (
        frame.sort_values("timestamp", kind="stable")
        .drop_duplicates(["user_id", "item_id"], keep="last")
        .sort_values(["user_id", "item_id"])
        .reset_index(drop=True)
    )
    assert result.inserted == len(expected)
    pd.testing.assert_frame_equal(sorted_ratings(store), expected)


@pytest.mark.parametrize("scheme", ["postgresql+psycopg", "mysql+pymysql"])
def test_unreachable_url_names_it_without_password(scheme: str) -> None:
    url = f"{scheme}://movierec:s3cret@127.0.0.1:1/nowhere"
    with pytest.raises(StoreError) as info:
        RatingsStore(url)
    message = str(info.value)
    assert "s3cret" not in message
    assert "movierec:***@127.0.0.1:1/nowhere" in message
    assert "\n" not in message
    assert redact_url(url) == f"{scheme}://movierec:***@127.0.0.1:1/nowhere"


def test_sqlite_creates_parent_dir_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "store.db"
    with RatingsStore(f"sqlite:///{path}") as store:
        store.ingest(base_data())
        with store._engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert path.exists()


def test_exact_values_round_trip(store: RatingsStore) -> None:
    """utf8mb4 titles, 64-bit and negative ids, float32 ratings with all their digits: every
    store gives back exactly what it was given (MySQL's FLOAT text keeps only 6 digits)."""
    rng = np.random.default_rng(3)
    ratings = pd.DataFrame(
        {
            "user_id": np.array([-5, 1, 2**40, 2**62], dtype=np.int64),
            "item_id": np.array([10, 2**33, 10, 2**33], dtype=np.int64),
            "rating": rng.uniform(0, 100, 4).astype(np.float32),
            "timestamp": np.array([0, -86_400, 2**40, 1], dtype=np.int64),
        }
    )
    movies = make_movies([10, 2**33]).assign(
        title=["Amélie 🎬 東京物語", "Ca' Foscari"], year=pd.array([2001, None], dtype="Int64")
    )
    data = replace(base_data(), ratings=ratings, movies=movies, users=None, rating_scale=(0, 100))
    store.ingest(data)
    expected = ratings.sort_values(["user_id", "item_id"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(sorted_ratings(store), expected)
    assert store.movies_frame()["title"].tolist() == ["Amélie 🎬 東京物語", "Ca' Foscari"]
    stats = store.stats()  # a summary: as precise as float32, not bit for bit
    assert (stats.rating_min, stats.rating_max) == pytest.approx(
        (ratings["rating"].min(), ratings["rating"].max()), rel=1e-6
    )
    # An append of the same float32 value is no change; a different one is.
    assert store.append_many(ratings.iloc[[0]]) == 0
    changed = ratings.iloc[[0]].assign(rating=np.nextafter(ratings["rating"].iloc[0], np.inf))
    assert store.append_many(changed) == 1


def test_dataset_names_compare_exactly(store: RatingsStore) -> None:
    """A name differing in case is another data set (MySQL's default collation folds case)."""
    store.ingest(base_data("ml-test"))
    with pytest.raises(StoreError, match="holds dataset 'ml-test'"):
        store.ingest(base_data("ML-TEST"))


def test_two_ingests_at_once_load_once(store_url: str) -> None:
    """The second of two concurrent ingests of the same data waits, then finds it loaded."""
    data = replace(base_data(), ratings=random_ratings(200_000, seed=11, users=5_000))

    def ingest() -> IngestResult:
        with RatingsStore(store_url) as store:
            return store.ingest(data)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: ingest(), range(2)))
    assert sorted(r.skipped_reason is not None for r in results) == [False, True]
    with RatingsStore(store_url) as store:
        assert store.stats().n_ratings == max(r.inserted for r in results)
        assert [e["status"] for e in store.ingestion_log()] == ["skipped", "success"]

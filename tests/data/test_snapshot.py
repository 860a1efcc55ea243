"""Snapshots: content hash, reuse, layout and round trip, from SQLite and PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from movierec.data.schema import as_canonical_movies
from movierec.data.snapshot import (
    create_snapshot,
    latest_snapshot,
    load_snapshot,
    read_snapshot_frames,
)
from movierec.data.store import RatingsStore
from movierec.errors import StoreError
from tests.data.test_store import BASE_ROWS, base_data, make_movies, make_ratings

# Unsorted on purpose: the snapshot sorts by (user, item) whatever order the store returns.
SNAPSHOT_ROWS = [(3, 12, 1.0, 103), (1, 11, 3.5, 101), (2, 10, 5.0, 102), (1, 10, 4.0, 100)]


def loaded_store(url: str) -> RatingsStore:
    store = RatingsStore(url)
    store.ingest(replace(base_data(), ratings=make_ratings(SNAPSHOT_ROWS)))
    return store


def test_snapshot_layout_and_round_trip(store_url: str, tmp_path: Path) -> None:
    with loaded_store(store_url) as store:
        snap = create_snapshot(store, tmp_path)
    assert snap.path == tmp_path / snap.content_hash[:16]
    assert len(snap.content_hash) == 64
    assert sorted(p.name for p in snap.path.iterdir()) == [
        "manifest.json",
        "movies.parquet",
        "ratings.parquet",
        "users.parquet",
    ]
    manifest = json.loads((snap.path / "manifest.json").read_text())
    assert manifest["content_hash"] == snap.content_hash
    assert (manifest["dataset"], manifest["rating_scale"]) == ("ml-test", [0.5, 5.0])
    assert (manifest["n_ratings"], manifest["n_users"], manifest["n_items"]) == (4, 3, 3)
    assert manifest["n_movies"] == 4
    assert (manifest["min_timestamp"], manifest["max_timestamp"]) == (100, 103)
    assert manifest["movierec_version"]
    ratings, movies = read_snapshot_frames(snap)
    pd.testing.assert_frame_equal(ratings, make_ratings(BASE_ROWS))  # sorted by user, item
    pd.testing.assert_frame_equal(movies, as_canonical_movies(make_movies([10, 11, 12, 13])))
    assert load_snapshot(snap.path) == snap
    assert latest_snapshot(tmp_path) == snap


def test_same_data_same_hash_in_any_store(tmp_path: Path, store_url: str) -> None:
    """A SQLite store and the ``store_url`` one (another SQLite file, or PostgreSQL)."""
    with loaded_store(f"sqlite:///{tmp_path / 'reference.db'}") as reference:
        expected = create_snapshot(reference, tmp_path / "snaps-a")
    with loaded_store(store_url) as other:
        got = create_snapshot(other, tmp_path / "snaps-b")
    assert got.content_hash == expected.content_hash
    assert got.path.name == expected.path.name


def test_existing_snapshot_is_reused_and_a_change_gives_a_new_hash(
    store_url: str, tmp_path: Path
) -> None:
    with loaded_store(store_url) as store:
        first = create_snapshot(store, tmp_path)
        marker = (first.path / "manifest.json").stat().st_mtime_ns
        again = create_snapshot(store, tmp_path)
        assert again == first
        assert (first.path / "manifest.json").stat().st_mtime_ns == marker
        store.append(1, 10, 4.5, timestamp=10_000)
        changed = create_snapshot(store, tmp_path)
    assert changed.content_hash != first.content_hash
    assert latest_snapshot(tmp_path) == changed
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    ratings, _ = read_snapshot_frames(changed.path)
    assert ratings.loc[(ratings.user_id == 1) & (ratings.item_id == 10), "rating"].item() == 4.5


def test_snapshot_of_empty_store_is_refused(store_url: str, tmp_path: Path) -> None:
    with RatingsStore(store_url) as store, pytest.raises(StoreError, match="no ratings"):
        create_snapshot(store, tmp_path)
    assert latest_snapshot(tmp_path) is None


def test_large_snapshot_is_sorted(store_url: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 20_000
    frame = pd.DataFrame(
        {
            "user_id": rng.permutation(n) % 4000,
            "item_id": rng.permutation(n) % 4 + 10,
            "rating": np.full(n, 3.0, dtype=np.float32),
            "timestamp": np.arange(n, dtype=np.int64),
        }
    )
    with RatingsStore(store_url) as store:
        store.ingest(replace(base_data(), ratings=frame))
        snap = create_snapshot(store, tmp_path)
    ratings, _ = read_snapshot_frames(snap)
    keys = ratings["user_id"].to_numpy() * 100 + ratings["item_id"].to_numpy()
    assert (np.diff(keys) > 0).all()
    assert len(ratings) == snap.manifest["n_ratings"]

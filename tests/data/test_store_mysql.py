"""What only the MySQL/MariaDB store does: its schema, its two bulk paths, its block reads.

Every other store test runs on MariaDB too (the ``store_url`` fixture); these pin the MySQL
paths a small test would not reach (several read blocks, a server refusing local files).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from movierec.data import mysql as mysql_paths
from movierec.data.snapshot import create_snapshot
from movierec.data.store import RatingColumns, RatingsStore
from movierec.errors import StoreError
from tests.data.test_store import base_data, make_movies, random_ratings, sorted_ratings

pytestmark = [
    pytest.mark.mysql,
    pytest.mark.parametrize("store_url", ["mysql"], indirect=True),
]


def test_schema_keeps_float32_ratings_and_exact_text(store_url: str) -> None:
    with RatingsStore(store_url) as store, store._engine.connect() as conn:
        ratings = conn.exec_driver_sql("SHOW CREATE TABLE ratings").one()[1]
        collations = conn.exec_driver_sql(
            "SELECT DISTINCT table_collation FROM information_schema.tables "
            "WHERE table_schema = DATABASE()"
        ).scalars()
        assert "`rating` float NOT NULL" in ratings
        assert "PRIMARY KEY (`user_id`,`item_id`)" in ratings
        assert set(collations) == {"utf8mb4_bin"}


def test_mariadb_url_is_the_same_store(store_url: str) -> None:
    url = sa.make_url(store_url).set(drivername="mariadb+pymysql")
    with RatingsStore(url.render_as_string(hide_password=False)) as store:
        assert store.dialect == "mysql"
        store.ingest(base_data())
        assert store.stats().n_ratings == 4


def test_without_local_files_bulk_loads_are_multi_row_inserts(
    store_url: str, tmp_path: Path
) -> None:
    """``?local_infile=0`` (a server the client does not trust with its files, or one that
    refuses them): both bulk paths (empty table, staging upsert) give what LOAD DATA gives."""
    first, second = random_ratings(20_000, 1), random_ratings(20_000, 2)
    hashes = []
    for url in (store_url, store_url + "?local_infile=0"):
        with RatingsStore(url) as store:
            with store._engine.connect() as conn:
                assert mysql_paths._local_infile_allowed(conn) == (url == store_url)
            store.ingest(replace(base_data(), ratings=first), replace=True)
            result = store.ingest(replace(base_data(checksum="c2"), ratings=second))
            assert result.inserted + result.updated + result.unchanged == result.rows
            hashes.append(create_snapshot(store, tmp_path / str(len(hashes))).content_hash)
    assert hashes[0] == hashes[1]
    with RatingsStore(f"sqlite:///{tmp_path / 'ref.db'}") as reference:
        reference.ingest(replace(base_data(), ratings=first))
        reference.ingest(replace(base_data(checksum="c2"), ratings=second))
        assert create_snapshot(reference, tmp_path / "ref").content_hash == hashes[0]


def test_reads_page_through_blocks(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with RatingsStore(store_url) as store:
        store.ingest(replace(base_data(), ratings=random_ratings(5_000, 3)))
        whole = sorted_ratings(store)
        monkeypatch.setattr(mysql_paths, "_block_rows", lambda _conn: 7)
        pd.testing.assert_frame_equal(sorted_ratings(store), whole)
        since = int(whole["timestamp"].median())
        recent = store.ratings_frame(since=since).sort_values(["user_id", "item_id"])
        expected = whole[whole["timestamp"] >= since]
        pd.testing.assert_frame_equal(
            recent.reset_index(drop=True), expected.reset_index(drop=True)
        )


def test_a_cut_block_is_an_error_not_lost_ratings(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GROUP_CONCAT cuts an over-long result with only a warning: the reader refuses it."""
    with RatingsStore(store_url) as store:
        store.ingest(base_data())
        monkeypatch.setattr(mysql_paths, "_block_rows", lambda _conn: 4)
        monkeypatch.setattr(mysql_paths, "_MAX_ROW_TEXT", 3)  # 12 bytes for 4 ratings
        with pytest.raises(StoreError, match="cut a block of 4 ratings"):
            store.ratings_frame()


def test_live_groups_count_inserts_updates_and_stale_ratings(store_url: str) -> None:
    """The counts of the small upsert come from the server's affected rows (2 per update)."""
    with RatingsStore(store_url) as store:
        store.ingest(replace(base_data(), movies=make_movies([10, 11, 12, 13])))
        cols = {
            "user_id": np.array([1, 1, 2, 9], dtype=np.int64),
            "item_id": np.array([10, 11, 10, 13], dtype=np.int64),
            "rating": np.array([2.5, 1.0, 5.0, 3.0], dtype=np.float32),
            # newer (update), older (stale), identical (unchanged), new pair (insert)
            "timestamp": np.array([500, 1, 102, 7], dtype=np.int64),
        }
        assert store.append_groups([RatingColumns(**cols)]) == [2]
        got = sorted_ratings(store).set_index(["user_id", "item_id"])
        assert got.loc[(1, 10)].tolist() == [2.5, 500]
        assert got.loc[(1, 11)].tolist() == [3.5, 101]
        assert got.loc[(9, 13)].tolist() == [3.0, 7]

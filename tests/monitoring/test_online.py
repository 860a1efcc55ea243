"""Impressions and online feedback against real SQLite and PostgreSQL stores."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
from scipy.stats import kstest

from movierec.config import Settings
from movierec.monitoring.impressions import DAY, ImpressionLog, ImpressionStore, user_shares
from movierec.monitoring.online import online_feedback
from movierec.serving.catalog import ModelView
from movierec.serving.loading import ModelInfo
from tests.data.test_store import Loaded, make_movies, make_ratings
from tests.monitoring.conftest import served

T = 1_800_000_000
ALS = ModelInfo(name="als", version=None, source="local", run_id=None)


@pytest.fixture
def store(store_url: str) -> ImpressionStore:
    impressions = ImpressionStore(store_url)
    base = make_ratings([(9, 10, 3.0, 100)])
    impressions.ingest(Loaded("ml-test", base, make_movies([10, 20, 30, 40]), "c1"))
    return impressions


def log_for(store: ImpressionStore, **settings: object) -> ImpressionLog:
    return ImpressionLog(store, Settings(**settings))  # type: ignore[arg-type]


def test_online_rates_count_pairs_rated_within_the_horizon(
    store: ImpressionStore, view: ModelView
) -> None:
    log = log_for(store)
    written = log.add(
        [
            served(view, [10, 20], user=1, at=T),
            served(view, [10, 20], user=1, at=T + 100),  # shown again: the same two pairs
            served(view, [30, 40], user=2, at=T),
            served(view, [10], user=3, at=T, info=ALS),
            served(view, [10, 20], user=None, at=T),  # a visitor: no one to hear back from
            served(view, [], user=4, at=T),  # nothing shown
        ]
    )
    assert written == 4
    store.append_many(
        make_ratings(
            [
                (1, 10, 5.0, T + 50),  # a positive hit
                (1, 20, 2.0, T + 100 + 7 * DAY - 1),  # a hit, within 7 days of the last showing
                (2, 30, 4.0, T - 10),  # rated before it was shown: no feedback on the list
                (2, 40, 4.5, T + 8 * DAY),  # too late
                (3, 10, 4.0, T + 1),
            ]
        )
    )
    report = online_feedback(store, horizon_days=7, positive_rating=4.0, now=T + 30 * DAY)
    by_version = {(v.model, v.version): v for v in report.versions}
    ours = by_version["popularity", "3"]
    assert (ours.lists, ours.users, ours.impressions, ours.rated, ours.positive) == (3, 2, 4, 2, 1)
    assert ours.pending == 0
    assert ours.hit_rate.value == 0.5
    assert ours.positive_rate.value == 0.5
    # Wilson's interval of 2 in 4 at 95%: 0.5 +- 0.35.
    assert ours.hit_rate.low == pytest.approx(0.150, abs=1e-3)
    assert ours.hit_rate.high == pytest.approx(0.850, abs=1e-3)
    als = by_version["als", "none"]
    assert (als.impressions, als.rated, als.positive, als.hit_rate.value) == (1, 1, 1, 1.0)
    # Pairs shown less than the horizon ago may still be rated: they are pending.
    early = online_feedback(store, horizon_days=7, positive_rating=4.0, now=T + 200)
    assert {v.pending for v in early.versions} == {4, 1}
    # Only lists shown since a time.
    late = online_feedback(store, horizon_days=7, positive_rating=4.0, since=T + 50)
    assert [(v.lists, v.impressions) for v in late.versions] == [(1, 2)]


def test_no_impressions_is_an_empty_report_not_nan(store: ImpressionStore) -> None:
    report = online_feedback(store, horizon_days=7, positive_rating=4.0)
    assert report.versions == []


def test_impressions_are_sampled_by_user(store: ImpressionStore, view: ModelView) -> None:
    log = log_for(store, impressions_sample_rate=0.25)
    lists = [served(view, [10], user=user, at=T) for user in range(2_000)]
    first = log.add(lists)
    assert 400 <= first <= 600
    assert log.add(lists) == first  # the same users every time: a sampled user is complete
    assert log_for(store, impressions_sample_rate=0.0).add(lists) == 0


def test_user_shares_are_uniform_and_the_hash_of_exact_integers() -> None:
    shares = user_shares(np.arange(20_000))
    assert kstest(shares, "uniform").pvalue > 0.001
    ids = np.array([0, 1, 12_345, 2**40 + 7, 2**63 - 1], dtype=np.int64)
    assert user_shares(ids).tolist() == [_share_of(int(user)) for user in ids]


def _share_of(user_id: int) -> float:
    """splitmix64's mixing in Python's exact integers, reduced modulo 2**64 by hand."""
    mask, mix = 2**64 - 1, 0x9E3779B97F4A7C15
    mixed = (user_id * mix) & mask
    mixed ^= mixed >> 31
    return ((mixed * mix) & mask) / 2.0**64


def test_retention_drops_old_and_surplus_impressions(
    store: ImpressionStore, view: ModelView
) -> None:
    log = log_for(store, impressions_retention_days=10, impressions_max_rows=3)
    for user in range(6):  # a batch each
        log.add([served(view, [10], user=user, at=T + user * DAY)])
    assert log.purge(now=T + 12 * DAY) == 3  # users 0 and 1 are too old, user 2 is surplus
    assert sorted(store.shown_since(0).users.tolist()) == [3, 4, 5]


def test_a_store_that_refuses_the_write_loses_the_batch_not_the_server(
    store: ImpressionStore, view: ModelView
) -> None:
    with store._write() as conn:
        conn.execute(sa.text("DROP TABLE impressions"))
    log = log_for(store)
    assert log.add([served(view, [10], user=1, at=T)]) == 0
    assert log.dropped == 1


def test_movie_ids_are_logged_in_rank_order(store: ImpressionStore, view: ModelView) -> None:
    log_for(store).add([served(view, [40, 10, 30], user=7, at=T, k=3)])
    shown = store.shown_since(0)
    assert shown.movies.tolist() == [40, 10, 30]
    assert (shown.users.tolist(), shown.lengths.tolist(), shown.versions) == (
        [7],
        [3],
        [("popularity", "3")],
    )


def test_lists_gathered_over_time_are_written_in_one_batch(
    store: ImpressionStore, view: ModelView
) -> None:
    log = log_for(store)
    log.gather([served(view, [10, 20], user=1, at=T)])
    assert len(store.shown_since(0)) == 0  # gathered, not written yet
    assert log.add([served(view, [30], user=2, at=T + 60)]) == 2
    shown = store.shown_since(T + 30)  # a window inside a batch keeps its later lists only
    assert (shown.users.tolist(), shown.movies.tolist()) == ([2], [30])

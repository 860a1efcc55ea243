"""Served quality: figures known by hand, windows, several workers, and properties."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.monitoring.served import MINUTES, ServedQuality, read_figures, read_series
from movierec.serving.catalog import ModelView
from movierec.serving.loading import ModelInfo
from tests.monitoring.conftest import build_view, served

NOW = 1_800_000_000.0  # a minute boundary: 30,000,000 minutes


def only(figures: list, model: str = "popularity"):  # type: ignore[no-untyped-def]
    (version,) = [f for f in figures if f.model == model]
    return version


def test_figures_of_three_lists_match_the_hand_computation(view: ModelView, tmp_path: Path) -> None:
    quality = ServedQuality(tmp_path)
    quality.add(
        [
            served(view, [10, 20], user=1, at=NOW),  # novelty 0.5, popularity 5/6, ILD 0
            served(view, [30, 40], user=2, at=NOW + 1),  # novelty 2, popularity 1/6
            served(view, [10, 30], user=3, at=NOW + 2, strategy="folded_in"),
        ]
    )
    version = only(read_figures(tmp_path, now=NOW + 30))
    assert (version.version, version.catalogue_size) == ("3", 4)
    hour = version.windows["1h"]
    assert (hour.lists, hour.items, hour.empty_lists, hour.short_lists) == (3, 6, 0, 0)
    assert hour.distinct_movies == 4
    assert hour.coverage == 1.0
    assert hour.novelty_bits == pytest.approx((0.5 + 2 + 1) / 3)
    assert hour.popularity_percentile == pytest.approx((5 / 6 + 1 / 6 + (1 + 1 / 6) / 2) / 3)
    # ILD: 0 (Action, Action); 1 - 1/sqrt(2) (Comedy, Action|Comedy); 1 (Action, Comedy).
    assert hour.diversity == pytest.approx((0 + (1 - 1 / math.sqrt(2)) + 1) / 3)
    # Cosine similarities of the lists: A-B 0, A-C 1/2, B-C 1/2.
    assert hour.personalization == pytest.approx(1 - 1 / 3)
    assert hour.strategy_counts == {"personalized": 2, "folded_in": 1, "popular_fallback": 0}
    assert version.windows["start"] == hour  # the reservoir holds all three lists too


def test_windows_count_each_list_once_by_when_it_was_served(
    view: ModelView, tmp_path: Path
) -> None:
    quality = ServedQuality(tmp_path)
    quality.add([served(view, [20], user=4, at=NOW - 2 * 3600, k=10)])  # short, 2 h ago
    quality.add([served(view, [10, 20], user=1, at=NOW)])
    windows = only(read_figures(tmp_path, now=NOW)).windows
    assert [windows[w].lists for w in ("1h", "1d", "start")] == [1, 2, 2]
    assert [windows[w].short_lists for w in ("1h", "1d", "start")] == [0, 1, 1]
    assert windows["1h"].coverage == 0.5  # movies 10 and 20
    # A day later the ring's slots of both minutes have expired; the start keeps them.
    later = only(read_figures(tmp_path, now=NOW + MINUTES * 60)).windows
    assert (later["1h"].lists, later["1d"].lists, later["start"].lists) == (0, 0, 2)
    assert later["1d"].novelty_bits is None
    assert later["1d"].coverage == 0.0
    assert later["1d"].personalization is None


def test_a_ring_slot_is_started_over_after_a_day(view: ModelView, tmp_path: Path) -> None:
    quality = ServedQuality(tmp_path)
    quality.add([served(view, [10, 20], user=1, at=NOW)])
    quality.add([served(view, [30, 40], user=2, at=NOW + MINUTES * 60)])  # the same slot
    windows = only(read_figures(tmp_path, now=NOW + MINUTES * 60)).windows
    assert (windows["1h"].lists, windows["start"].lists) == (1, 2)
    assert windows["1h"].novelty_bits == pytest.approx(2.0)


def test_workers_writing_their_own_files_are_added_up(view: ModelView, tmp_path: Path) -> None:
    first, second = ServedQuality(tmp_path), ServedQuality(tmp_path)
    first.add([served(view, [10, 20], user=1, at=NOW)])
    second.add([served(view, [30, 40], user=2, at=NOW)])
    hour = only(read_figures(tmp_path, now=NOW)).windows["1h"]
    assert (hour.lists, hour.distinct_movies) == (2, 4)
    assert hour.personalization == pytest.approx(1.0)  # disjoint lists of two users


def test_versions_are_kept_apart(view: ModelView, tmp_path: Path) -> None:
    quality = ServedQuality(tmp_path)
    other = ModelInfo(name="als", version=None, source="local", run_id=None)
    quality.add(
        [served(view, [10, 20], user=1, at=NOW), served(view, [30], user=1, at=NOW, info=other)]
    )
    figures = read_figures(tmp_path, now=NOW)
    assert {(f.model, f.version, f.windows["start"].lists) for f in figures} == {
        ("popularity", "3", 1),
        ("als", "none", 1),
    }


def test_the_same_users_lists_do_not_count_as_personalization(
    view: ModelView, tmp_path: Path
) -> None:
    quality = ServedQuality(tmp_path)
    quality.add([served(view, [10, 20], user=1, at=NOW), served(view, [10, 20], user=1, at=NOW)])
    assert only(read_figures(tmp_path, now=NOW)).windows["1h"].personalization is None
    quality.add([served(view, [10, 20], user=None, at=NOW), served(view, [10, 20], user=2, at=NOW)])
    # Identical lists of different visitors: nothing personal about them.
    assert only(read_figures(tmp_path, now=NOW)).windows["1h"].personalization == pytest.approx(0)


def test_empty_lists_and_a_catalogue_without_genres(tmp_path: Path) -> None:
    plain = build_view({10: [], 20: [], 30: [], 40: []})
    quality = ServedQuality(tmp_path)
    quality.add([served(plain, [], user=1, at=NOW), served(plain, [10, 20], user=2, at=NOW)])
    hour = only(read_figures(tmp_path, now=NOW)).windows["1h"]
    assert (hour.lists, hour.empty_lists, hour.short_lists) == (2, 1, 1)
    assert hour.diversity is None  # no genres: no diversity, rather than a made-up number
    assert hour.novelty_bits == pytest.approx(0.5)  # over the non-empty list only


def test_the_series_adds_lists_by_interval(view: ModelView, tmp_path: Path) -> None:
    quality = ServedQuality(tmp_path)
    quality.add(
        [served(view, [10, 20], user=1, at=NOW - 600), served(view, [30, 40], user=2, at=NOW)]
    )
    (points,) = read_series(tmp_path, hours=1, step_minutes=10, now=NOW).values()
    assert len(points) == 6
    assert points[-1].at == NOW - 540
    assert [p.lists for p in points] == [0, 0, 0, 0, 1, 1]
    assert points[-1].novelty_bits == pytest.approx(2.0)
    assert points[0].novelty_bits is None


lists_strategy = st.lists(
    st.tuples(
        st.lists(st.sampled_from([10, 20, 30, 40]), max_size=4, unique=True),
        st.integers(0, 5),
        st.integers(0, 3 * 24 * 3600),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=30, deadline=None)
@given(lists=lists_strategy)
def test_figures_stay_in_their_ranges(
    lists: list[tuple[list[int], int, int]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    view = build_view()
    folder = tmp_path_factory.mktemp("served")
    quality = ServedQuality(folder)
    ordered = sorted(lists, key=lambda entry: entry[2])
    quality.add([served(view, movies, user=user, at=NOW + t, k=4) for movies, user, t in ordered])
    windows = only(read_figures(folder, now=NOW + 3 * 24 * 3600)).windows
    assert windows["start"].lists == len(lists)
    assert windows["start"].items == sum(len(m) for m, _, _ in lists)
    assert windows["start"].distinct_movies == len({m for movies, _, _ in lists for m in movies})
    for figures in windows.values():
        assert 0.0 <= figures.coverage <= 1.0
        assert figures.lists <= len(lists)
        for value in (figures.diversity, figures.popularity_percentile, figures.personalization):
            assert value is None or -1e-9 <= value <= 1 + 1e-9
        assert figures.novelty_bits is None or 0.0 <= figures.novelty_bits <= 2.0 + 1e-9

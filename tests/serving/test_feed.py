"""Workers of one server share fresh ratings and reloads; a restart forgets no posted rating.

Two :class:`RecommenderService` objects over one store and one feed file stand for two uvicorn
workers (the real two-worker server is exercised in ``test_server.py``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from movierec.config import Settings
from movierec.data.interactions import Interactions
from movierec.data.snapshot import create_snapshot
from movierec.data.sources import LoadedData
from movierec.models import create_model
from movierec.serving.app import _start_service
from movierec.serving.feed import SharedFeed
from movierec.serving.observability import Metrics
from movierec.serving.service import Filter, RatingEvent, RecommenderService
from movierec.serving.users import ServingStore
from movierec.serving.workers import FEED_ENV
from tests.serving.conftest import SMALL_ALS, ml_settings_in, settings_for

NEW_USER = 900_001
LIKED = [1, 260, 1196, 1210]  # Toy Story and the Star Wars trilogy


def _service(settings: Settings, feed: SharedFeed | None) -> RecommenderService:
    service = RecommenderService(settings, ServingStore(settings.store_url), feed=feed)
    service.load(broadcast=False)  # as a worker starts
    return service


def _post(service: RecommenderService, user: int, movies: list[int]) -> None:
    now = int(time.time())
    service.add_ratings([RatingEvent(user, m, 5.0, now + i) for i, m in enumerate(movies)])


def test_the_feed_carries_whole_lines_to_the_other_readers(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    one, two = SharedFeed(path), SharedFeed(path)
    one.publish("ratings", [3, 5])
    one.publish("reload")
    assert one.poll() == []  # its own events
    events = two.poll()
    assert [(e.kind, e.user_ids) for e in events] == [("ratings", [3, 5]), ("reload", [])]
    assert two.poll() == []
    with path.open("a") as handle:  # a line still being written is not read
        handle.write(json.dumps({"pid": "other", "kind": "ratings", "users": [8]})[:-5])
    assert two.poll() == []
    with path.open("a") as handle:
        handle.write(json.dumps({"pid": "other", "kind": "ratings", "users": [8]})[-5:] + "\n")
    assert [e.user_ids for e in two.poll()] == [[8]]
    late = SharedFeed(path)  # a worker started later: every rating, no reload before it
    assert [(e.kind, e.user_ids) for e in late.poll()] == [("ratings", [3, 5]), ("ratings", [8])]
    one.publish("reload")
    assert [e.kind for e in late.poll()] == ["reload"]


@pytest.fixture
def workers(
    tmp_path: Path, ml_small: LoadedData, ml_model_dir: Path
) -> tuple[RecommenderService, RecommenderService]:
    """Two services over one store and one feed file: two workers of one server."""
    settings = ml_settings_in(tmp_path, ml_small, ml_model_dir)
    feed = tmp_path / "feed.jsonl"
    return _service(settings, SharedFeed(feed)), _service(settings, SharedFeed(feed))


def test_starting_workers_do_not_make_each_other_reload(
    tmp_path: Path, ml_small: LoadedData, ml_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each worker loads the model at its start; none tells the others to load it again."""
    settings = ml_settings_in(tmp_path, ml_small, ml_model_dir)
    monkeypatch.setenv(FEED_ENV, str(tmp_path / "feed.jsonl"))
    first = _start_service(settings, Metrics())
    second = _start_service(settings, Metrics())
    for service in (first, second):
        assert service._feed is not None
        assert service._feed.poll() == []
    first.load(fall_back_on_error=False)  # an asked reload still reaches the other worker
    assert second._feed is not None
    assert [e.kind for e in second._feed.poll()] == ["reload"]


def test_a_rating_posted_to_one_worker_is_used_by_the_other(
    workers: tuple[RecommenderService, RecommenderService],
) -> None:
    first, second = workers
    _post(first, NEW_USER, LIKED)
    answer = second.recommend_user(NEW_USER, 10, Filter())
    assert answer.strategy == "folded_in"
    assert not set(answer.movie_ids) & set(LIKED)


def test_a_reload_on_one_worker_reloads_the_other(
    workers: tuple[RecommenderService, RecommenderService],
) -> None:
    first, second = workers
    before = second.state.info
    assert before is not None
    first.load()
    second.similar(1, 5)  # any request reads the feed; the reload runs in the background
    deadline = time.monotonic() + 60
    while second.state.info is before:
        assert time.monotonic() < deadline, "the other worker never reloaded"
        time.sleep(0.05)
    assert second.state.info is not None
    assert second.state.info.loaded_at > before.loaded_at


@pytest.fixture
def snapshot_settings(tmp_path: Path, ml_small: LoadedData) -> Settings:
    """ml-latest-small in a store, ALS trained on its snapshot, the snapshot recorded."""
    settings = settings_for(tmp_path)
    with ServingStore(settings.store_url) as store:
        store.ingest(ml_small)
        snapshot = create_snapshot(store, settings.snapshots_dir)
    model = create_model("als", **SMALL_ALS).fit(Interactions.from_snapshot(snapshot.path))
    folder = settings.models_dir / "als"
    model.save(folder)
    report = {"data": {"snapshot_hash": snapshot.content_hash}, "metrics": {}}
    (folder / "report.json").write_text(json.dumps(report))
    return settings


def test_a_restarted_server_folds_in_ratings_posted_before_it_started(
    snapshot_settings: Settings,
) -> None:
    _post(_service(snapshot_settings, None), NEW_USER, LIKED)
    restarted = _service(snapshot_settings, None)
    answer = restarted.recommend_user(NEW_USER, 10, Filter())
    assert answer.strategy == "folded_in"
    assert not set(answer.movie_ids) & set(LIKED)
    untouched = restarted.recommend_user(1, 10, Filter())
    assert untouched.strategy == "personalized"


def test_a_known_users_history_is_folded_in_oldest_first(snapshot_settings: Settings) -> None:
    service = _service(snapshot_settings, None)
    _post(service, 1, [2571, 4993])  # user 1 exists; two new ratings, 4993 the latest
    view = service.state.view
    assert view is not None
    items, _ = service._stored_history(view, 1)
    movie_ids = view.model.item_ids[items]
    assert movie_ids[-1] == 4993
    assert movie_ids[-2] == 2571
    assert len(items) == len(set(items.tolist()))
    assert service.recommend_user(1, 10, Filter()).strategy == "folded_in"

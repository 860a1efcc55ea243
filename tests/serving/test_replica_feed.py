"""The replicas' channel in one process, over a real PostgreSQL and a real Redis: what one
replica publishes another receives (long user lists too), a server skips its own messages, a
start catches up from the store, and the settings refuse a channel that cannot work."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from movierec.serving.feed import FeedEvent
from movierec.serving.replicas.channel import ReplicaFeed
from movierec.serving.replicas.messages import MAX_PAYLOAD_BYTES, decode, encode
from movierec.serving.replicas.metrics import FeedMetrics
from movierec.serving.replicas.postgres import PostgresTransport
from movierec.serving.replicas.redis_pubsub import RedisTransport
from movierec.serving.replicas.transport import Transport
from tests.replicas import redis_server
from tests.servers import free_port
from tests.serving.conftest import settings_for


def test_settings_name_what_the_channel_lacks(tmp_path: Path) -> None:
    cases: dict[str, dict[str, object]] = {
        "MOVIEREC_DATABASE_URL to be a PostgreSQL URL": {"replica_feed": "postgres"},
        "MOVIEREC_REDIS_URL, which is not set": {"replica_feed": "redis"},
        "is not a redis://, rediss:// or unix:// URL": {
            "replica_feed": "redis", "redis_url": "127.0.0.1:6379"},
        "Input should be 'none', 'postgres' or 'redis'": {"replica_feed": "kafka"},
        "greater than or equal to 0": {"champion_poll_interval": -1},
    }  # fmt: skip
    for message, values in cases.items():
        with pytest.raises(ValidationError, match=message):
            settings_for(tmp_path, **values)
    assert settings_for(tmp_path, replica_feed="redis", redis_url="redis://h:1/0").redis_url


def test_a_long_list_of_users_is_split_under_postgresqls_payload_limit() -> None:
    users = list(range(10**15, 10**15 + 2_000))
    payloads = encode("host:server", "ratings", users)
    assert len(payloads) > 1
    assert all(len(p.encode()) < MAX_PAYLOAD_BYTES for p in payloads)
    decoded = [decode(p) for p in payloads]
    assert [u for m in decoded if m is not None for u in m.event.user_ids] == users
    assert decode("not json") is None
    assert decode('{"o": "x", "k": "drop tables", "u": [], "t": 0}') is None


def _pair(transport: Transport, other: Transport, since: float | None = None) -> list[ReplicaFeed]:
    feeds = []
    for n, channel in enumerate((transport, other)):
        feed = ReplicaFeed(channel, f"server-{n}", FeedMetrics(CollectorRegistry(), channel.name))
        feed.start(lambda _since: {7, 8}, since=since)
        feeds.append(feed)
    for feed in feeds:
        _until(lambda f=feed: f.status.connected)  # type: ignore[misc]
    return feeds


def _until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.01)


def _received(feed: ReplicaFeed, count: int, seconds: float = 10.0) -> list[FeedEvent]:
    events: list[FeedEvent] = []
    deadline = time.monotonic() + seconds
    while len(events) < count:
        assert time.monotonic() < deadline, f"{len(events)} of {count} events in {seconds} s"
        events += feed.poll()
        time.sleep(0.01)
    return events


@pytest.fixture
def pg_feeds(pg_server_url: str) -> Iterator[list[ReplicaFeed]]:
    feeds = _pair(PostgresTransport(pg_server_url), PostgresTransport(pg_server_url))
    yield feeds
    for feed in feeds:
        feed.close()


@pytest.fixture
def redis_feeds(tmp_path: Path) -> Iterator[list[ReplicaFeed]]:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    with redis_server(port, tmp_path / "redis"):
        feeds = _pair(RedisTransport(url), RedisTransport(url))
        yield feeds
        for feed in feeds:
            feed.close()


@pytest.mark.postgres
def test_postgres_carries_ratings_and_reloads_to_the_other_server(
    pg_feeds: list[ReplicaFeed],
) -> None:
    _carries(pg_feeds)


def test_redis_carries_ratings_and_reloads_to_the_other_server(
    redis_feeds: list[ReplicaFeed],
) -> None:
    _carries(redis_feeds)


def _carries(feeds: list[ReplicaFeed]) -> None:
    one, two = feeds
    users = list(range(1, 1_500))  # several NOTIFY payloads
    one.publish("ratings", users)
    one.publish("reload")
    events = _received(two, 2)
    assert sorted(u for e in events for u in e.user_ids) == users
    assert any(e.kind == "reload" for e in events)
    time.sleep(0.2)
    assert one.poll() == []  # its own messages are its local feed's business


@pytest.mark.postgres
def test_a_start_catches_up_from_the_store_before_it_returns(pg_server_url: str) -> None:
    feed = ReplicaFeed(
        PostgresTransport(pg_server_url), "late", FeedMetrics(CollectorRegistry(), "postgres")
    )
    asked: list[int] = []

    def users_since(since: int) -> set[int]:
        asked.append(since)
        return {3, 4}

    feed.start(users_since, since=1_000_000.0)
    try:
        assert feed.poll()[0] == FeedEvent("ratings", [3, 4])
        assert asked[0] < 1_000_000  # with slack for other hosts' clocks
    finally:
        feed.close()

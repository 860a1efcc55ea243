"""API replicas on several hosts: how they share fresh ratings and reloads.

The workers of one server tell each other through a local file (:mod:`movierec.serving.feed`).
Replicas on other hosts share no file: with ``MOVIEREC_REPLICA_FEED=postgres`` they talk through
LISTEN/NOTIFY on their shared ratings store, with ``redis`` through pub/sub at
``MOVIEREC_REDIS_URL`` (:mod:`.channel`). Every worker of every replica listens; a server skips
its own messages, which its local feed already carried.

The channel carries news, the store keeps the record: a replica that starts late or loses its
connection asks the store which users rated meanwhile, and the registry which version is
champion (:mod:`.champion`), so a missed message costs nothing but its speed. While the channel
is down a replica keeps serving (its own ratings and model are intact; only the other replicas'
news waits): ``/ready`` stays 200 and says so in ``replica_feed``, as does the
``movierec_replica_feed_connected`` gauge. A 503 would take every replica out of the load
balancer at once for an outage of a shared service that no request needs.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from movierec.config import Settings
from movierec.serving.feed import EventKind, Feed, FeedEvent, SharedFeed
from movierec.serving.replicas.champion import ChampionWatch
from movierec.serving.replicas.channel import FeedStatus, ReplicaFeed
from movierec.serving.replicas.metrics import FeedMetrics
from movierec.serving.replicas.transport import Transport
from movierec.serving.workers import FEED_ENV

if TYPE_CHECKING:
    from movierec.serving.service import RecommenderService

__all__ = ["FeedStatus", "Feeds", "ReplicaFeeds", "build_feeds", "start_feeds"]


class Feeds:
    """Several feeds as one: publish to each, poll them all."""

    def __init__(self, feeds: Sequence[Feed]) -> None:
        self._feeds = tuple(feeds)

    def publish(self, kind: EventKind, user_ids: list[int] | None = None) -> None:
        for feed in self._feeds:
            feed.publish(kind, user_ids)

    def poll(self) -> list[FeedEvent]:
        events: list[FeedEvent] = []
        for feed in self._feeds:
            events += feed.poll()
        return events

    def close(self) -> None:
        for feed in self._feeds:
            feed.close()


@dataclass(frozen=True)
class ReplicaFeeds:
    """A worker's feeds: the one the service uses, and the parts the app starts and reports."""

    feed: Feed | None
    replicas: ReplicaFeed | None
    champion: ChampionWatch | None


def build_feeds(settings: Settings, registry: CollectorRegistry) -> ReplicaFeeds:
    """The local feed (several workers), the replicas' channel and the champion watch, as the
    settings ask; the channel's metrics go to ``registry``."""
    local = SharedFeed.from_environment()
    replicas = None
    if settings.replica_feed != "none":
        transport = _transport(settings)
        replicas = ReplicaFeed(transport, _origin(), FeedMetrics(registry, transport.name))
    # With replicas the watch also runs at interval 0: a gap in the channel asks it to look.
    wants_watch = settings.champion_poll_interval > 0 or replicas is not None
    champion = ChampionWatch(settings, settings.champion_poll_interval) if wants_watch else None
    parts: list[Feed] = [f for f in (local, replicas, champion) if f is not None]
    feed = None if not parts else parts[0] if len(parts) == 1 else Feeds(parts)
    return ReplicaFeeds(feed, replicas, champion)


def _transport(settings: Settings) -> Transport:
    # Only the configured channel's client is imported.
    if settings.replica_feed == "postgres":
        from movierec.serving.replicas.postgres import PostgresTransport  # noqa: PLC0415

        return PostgresTransport(settings.store_url)
    from movierec.serving.replicas.redis_pubsub import RedisTransport  # noqa: PLC0415

    assert settings.redis_url is not None  # the settings' validator checked it
    return RedisTransport(settings.redis_url.get_secret_value())


def _origin() -> str:
    """This server's name on the channel: its host and its workers' feed file (one per server
    start), or a name of this process's own when it serves alone."""
    return f"{socket.gethostname()}:{os.environ.get(FEED_ENV) or uuid.uuid4().hex}"


def start_feeds(feeds: ReplicaFeeds, service: RecommenderService) -> None:
    """Start the champion watch and the replicas' channel of a service that has loaded (or
    failed to load) its model: the first catch-up starts where that model's data ends."""
    if feeds.champion is not None:
        feeds.champion.start(served=lambda: _served_version(service), on_news=service.sync)
    if feeds.replicas is not None:
        info = service.state.info
        trained = info.trained_at if info is not None else None
        feeds.replicas.start(
            service.store.users_rated_after,
            since=trained.timestamp() if trained is not None else None,
            on_gap=feeds.champion.check_now if feeds.champion is not None else lambda: None,
            on_news=service.sync,
        )


def _served_version(service: RecommenderService) -> int | None:
    info = service.state.info
    return info.version if info is not None and info.source == "registry" else None

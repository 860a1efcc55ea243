"""The replica feed's Prometheus metrics, in the app's registry (see
:mod:`movierec.serving.observability`: in multiprocess mode every worker's values meet in the
server's files, so these are per worker where it matters, by a ``pid`` label)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Milliseconds to seconds: LISTEN/NOTIFY and pub/sub deliver in about a millisecond on a LAN.
DELAY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class FeedMetrics:
    """Whether the channel is up, what goes through it, and what it costs to catch up."""

    def __init__(self, registry: CollectorRegistry, feed: str) -> None:
        self.feed = feed
        self.connected = Gauge(
            "movierec_replica_feed_connected",
            "1 while this worker listens on the replicas' channel, 0 while it is down.",
            ["feed"],
            registry=registry,
            # The server is as connected as its least connected worker.
            multiprocess_mode="livemin",
        ).labels(feed)
        self.messages = Counter(
            "movierec_replica_feed_messages",
            "Messages sent to or received from the other replicas.",
            ["feed", "direction", "kind"],
            registry=registry,
        )
        self.failures = Counter(
            "movierec_replica_feed_failures",
            "Failed connections to the channel or sends on it.",
            ["feed", "operation"],
            registry=registry,
        )
        self.caught_up_users = Counter(
            "movierec_replica_feed_caught_up_users",
            "Users found fresh in the store after a gap in the channel (start or reconnect).",
            ["feed"],
            registry=registry,
        ).labels(feed)
        self.delay = Histogram(
            "movierec_replica_feed_delay_seconds",
            "From another replica's send to this worker's receipt (clocks of two hosts).",
            ["feed"],
            buckets=DELAY_BUCKETS,
            registry=registry,
        ).labels(feed)

    def message(self, direction: str, kind: str, count: int = 1) -> None:
        self.messages.labels(self.feed, direction, kind).inc(count)

    def failure(self, operation: str) -> None:
        self.failures.labels(self.feed, operation).inc()

"""One worker's end of the replicas' channel: a listening thread, a sending thread, a status.

The request path never touches the network: :meth:`ReplicaFeed.publish` queues and returns (the
rating writer calls it right after its commit, and a channel that is down must not stall the
writes), :meth:`ReplicaFeed.poll` drains what the listener received.

Messages are news, not the record: the store is. Whenever the listener (re)subscribes it asks
the store for users with ratings newer than the last moment it was known to be listening (less
:data:`CATCH_UP_SLACK_S` for the clocks of other hosts, which stamp the ratings), and asks for a
check of the registry's champion, so a replica that started late or lost its connection misses
no fresh user and no promotion. A rating posted with an explicit timestamp older than the gap
is the exception: it is found at the next retraining.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from movierec.errors import MovierecError
from movierec.serving.feed import EventKind, FeedEvent
from movierec.serving.replicas.messages import decode, encode
from movierec.serving.replicas.metrics import FeedMetrics
from movierec.serving.replicas.transport import ChannelError, Listener, Transport

logger = logging.getLogger("movierec.serving")

CATCH_UP_SLACK_S = 30.0  # clock skew between hosts and commit-to-send delays, with room
RECEIVE_WAIT_S = 1.0  # how often the listener looks up from its wait (to stop, to be healthy)
BACKOFF_S = (0.2, 0.5, 1.0, 2.0)  # between attempts to reach a channel that is down

UsersSince = Callable[[int], set[int]]


@dataclass(frozen=True)
class FeedStatus:
    """What ``/ready`` says of the channel."""

    feed: str
    connected: bool
    down_since: datetime | None


@dataclass
class _Outbox:
    """Events not sent yet, merged: a channel down for minutes holds one set of users."""

    users: set[int]
    reload: bool = False

    def take(self) -> list[tuple[EventKind, list[int]]]:
        events: list[tuple[EventKind, list[int]]] = []
        if self.users:
            events.append(("ratings", sorted(self.users)))
        if self.reload:
            events.append(("reload", []))
        self.users, self.reload = set(), False
        return events


class ReplicaFeed:
    """The replicas' news for one worker, over ``transport``.

    Args:
        transport: The channel (PostgreSQL or Redis).
        origin: This server's name on the channel; its own messages are skipped (its workers
            tell each other through their local feed).
        metrics: Where the channel's state and traffic are counted.
    """

    def __init__(self, transport: Transport, origin: str, metrics: FeedMetrics) -> None:
        self._transport = transport
        self._origin = origin
        self._metrics = metrics
        self._inbox: deque[FeedEvent] = deque()
        self._outbox = _Outbox(set())
        self._outbox_lock = threading.Lock()
        self._wake_sender: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._connected = False
        self._down_since: datetime | None = datetime.now(UTC)
        self._heard_at = 0.0  # when the listener last returned from a wait, alive
        self._on_news: Callable[[], None] = lambda: None
        self._threads: list[threading.Thread] = []
        metrics.connected.set(0)

    @property
    def status(self) -> FeedStatus:
        return FeedStatus(self._transport.name, self._connected, self._down_since)

    def start(
        self,
        users_since: UsersSince,
        since: float | None,
        on_gap: Callable[[], None] = lambda: None,
        on_news: Callable[[], None] = lambda: None,
    ) -> None:
        """Start listening and sending.

        Args:
            users_since: The store's users with a rating newer than an epoch second.
            since: When the served model's data ends (its users are fresh from then on), None
                when unknown: the first catch-up is then skipped.
            on_gap: Called after each (re)subscription: a reload may have been missed.
            on_news: Called (in the listener's thread) when news arrived, to apply it before
                the next request asks.
        """
        self._on_news = on_news
        # The first catch-up before this returns, so before the replica answers: a rating
        # posted elsewhere while it was down is used by its first answer. The store may answer
        # while the channel does not (Redis down); if not, the listener tries again.
        if since is not None:
            try:
                self._catch_up(users_since, since)
                since = time.time()
            except MovierecError as exc:
                logger.warning("replica feed: cannot catch up from the store yet: %s", exc)
        for target, args in ((self._listen, (users_since, since, on_gap)), (self._send, ())):
            thread = threading.Thread(target=target, args=args, daemon=True,
                                      name=f"replica-feed-{target.__name__}")  # fmt: skip
            thread.start()
            self._threads.append(thread)

    def publish(self, kind: EventKind, user_ids: list[int] | None = None) -> None:
        with self._outbox_lock:
            if kind == "reload":
                self._outbox.reload = True
            else:
                self._outbox.users.update(user_ids or [])
        self._wake_sender.put(True)

    def poll(self) -> list[FeedEvent]:
        inbox = self._inbox
        if not inbox:  # every request asks: one length check when there is no news
            return []
        events = []
        while inbox:
            events.append(inbox.popleft())
        return events

    def close(self) -> None:
        """Stop, after sending what was published before (unless the channel is down: the
        other replicas then find those users in the store when they hear from it again)."""
        self._wake_sender.put(False)
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=RECEIVE_WAIT_S + 2)
        self._transport.close()
        self._metrics.connected.set(0)

    # ---- listening --------------------------------------------------------------------------

    def _listen(
        self, users_since: UsersSince, since: float | None, on_gap: Callable[[], None]
    ) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                listener = self._transport.listen()
            except ChannelError as exc:
                attempt = self._failed("listen", exc, attempt)
                continue
            subscribed_at, caught_up = time.time(), False
            try:
                # Subscribed first, then the store: nothing falls between the two.
                self._catch_up(users_since, since)
                caught_up = True
                on_gap()
                self._up()
                attempt = 0
                self._receive(listener)
            except (ChannelError, MovierecError) as exc:
                attempt = self._failed("listen", exc, attempt)
            finally:
                listener.close()
            if caught_up:  # the next catch-up starts where this subscription was last heard
                since = max(subscribed_at, self._heard_at)

    def _catch_up(self, users_since: UsersSince, since: float | None) -> None:
        if since is None:
            return
        users = users_since(int(since - CATCH_UP_SLACK_S))
        if users:
            self._inbox.append(FeedEvent("ratings", sorted(users)))
        self._metrics.caught_up_users.inc(len(users))
        logger.info("replica feed: %d users with ratings since %s", len(users),
                    datetime.fromtimestamp(since, UTC).isoformat(timespec="seconds"))  # fmt: skip

    def _receive(self, listener: Listener) -> None:
        """Receive until stopped, or until the connection is lost (raises). A wait that ends
        without error proves the connection was alive (a silently dead one is found within the
        transport's keepalive or health check, which :data:`CATCH_UP_SLACK_S` covers)."""
        while not self._stop.is_set():
            payloads = listener.receive(RECEIVE_WAIT_S)
            self._heard_at = now = time.time()
            for payload in payloads:
                self._received(payload, now)

    def _received(self, payload: str, now: float) -> None:
        message = decode(payload)
        if message is None or message.origin == self._origin:
            return
        self._inbox.append(message.event)
        self._metrics.message("received", message.event.kind)
        self._metrics.delay.observe(max(0.0, now - message.sent_at))
        self._on_news()

    def _up(self) -> None:
        if not self._connected:
            logger.info("replica feed: listening on %s", self._transport.name)
        self._connected, self._down_since = True, None
        self._metrics.connected.set(1)

    def _failed(self, operation: str, exc: Exception, attempt: int) -> int:
        """Count and log a failure, mark the channel down, wait before the next attempt."""
        self._metrics.failure(operation)
        if operation == "listen":
            if self._connected or attempt == 0:
                logger.warning("replica feed down (%s): %s", self._transport.name, exc)
            self._connected = False
            self._down_since = self._down_since or datetime.now(UTC)
            self._metrics.connected.set(0)
        self._stop.wait(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
        return attempt + 1

    # ---- sending ----------------------------------------------------------------------------

    def _send(self) -> None:
        attempt = 0
        while True:
            if attempt == 0 and not self._wake_sender.get():
                return  # closing, and everything published before was sent
            if attempt > 0 and self._stop.is_set():
                return  # closing while the channel is down
            with self._outbox_lock:
                events = self._outbox.take()
            if not events:
                continue
            payloads = [p for kind, users in events for p in encode(self._origin, kind, users)]
            try:
                self._transport.publish(payloads)
            except ChannelError as exc:
                self._keep(events)  # sent when the channel is back, merged with later news
                if attempt == 0:
                    logger.warning("replica feed: cannot send (%s): %s", self._transport.name, exc)
                attempt = self._failed("publish", exc, attempt)
                continue
            attempt = 0
            for kind, _ in events:
                self._metrics.message("sent", kind)

    def _keep(self, events: list[tuple[EventKind, list[int]]]) -> None:
        with self._outbox_lock:
            for kind, users in events:
                if kind == "reload":
                    self._outbox.reload = True
                self._outbox.users.update(users)

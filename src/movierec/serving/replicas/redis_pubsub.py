"""The replicas' channel through Redis pub/sub.

redis-py reconnects a subscription by itself and subscribes again, silently: messages sent in
between would be lost without anyone knowing to catch up. Retries are off here, so every lost
connection reaches :class:`~movierec.serving.replicas.channel.ReplicaFeed`, which reconnects and
catches up from the store. A ping every few idle seconds finds a connection that died silently.
"""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from movierec.serving.replicas.transport import CHANNEL, ChannelError, first_line

HEALTH_CHECK_S = 5
TIMEOUT_S = 3


class RedisListener:
    def __init__(self, pubsub: redis.client.PubSub) -> None:
        self._pubsub = pubsub

    def receive(self, timeout: float) -> list[str]:
        try:
            message = self._pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
        except (redis.RedisError, OSError) as exc:
            raise ChannelError(f"lost the Redis channel: {first_line(exc)}") from exc
        if message is None or message.get("type") != "message":
            return []
        return [message["data"]]

    def close(self) -> None:
        self._pubsub.close()


class RedisTransport:
    """PUBLISH and SUBSCRIBE on the Redis server of ``url``."""

    name = "redis"

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(
            url,
            decode_responses=True,
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=TIMEOUT_S,
            socket_timeout=TIMEOUT_S + HEALTH_CHECK_S,  # above the listener's wait
            health_check_interval=HEALTH_CHECK_S,
        )
        kwargs = self._client.get_connection_kwargs()  # the URL, less any password
        place = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
        self._where = f"Redis at {place}"

    def listen(self) -> RedisListener:
        pubsub = self._client.pubsub()
        try:
            pubsub.subscribe(CHANNEL)
        except (redis.RedisError, OSError) as exc:
            pubsub.close()
            raise ChannelError(f"cannot subscribe on {self._where}: {first_line(exc)}") from exc
        return RedisListener(pubsub)

    def publish(self, payloads: list[str]) -> None:
        try:
            pipe = self._client.pipeline(transaction=False)  # one round trip for the lot
            for payload in payloads:
                pipe.publish(CHANNEL, payload)
            pipe.execute()
        except (redis.RedisError, OSError) as exc:
            raise ChannelError(f"cannot publish on {self._where}: {first_line(exc)}") from exc

    def close(self) -> None:
        self._client.close()

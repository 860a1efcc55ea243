"""What a replica feed needs of its channel: listen, and publish (from another thread)."""

from __future__ import annotations

from typing import Protocol

from movierec.errors import MovierecError

CHANNEL = "movierec_replicas"  # the NOTIFY channel and the Redis pub/sub channel


class ChannelError(MovierecError):
    """The channel cannot be reached, or the connection to it was lost."""


class Listener(Protocol):
    def receive(self, timeout: float) -> list[str]:
        """The payloads that arrived, returning as soon as one does or after ``timeout``
        seconds with none. Raises :class:`ChannelError` when the connection is lost."""
        ...

    def close(self) -> None: ...


class Transport(Protocol):
    name: str

    def listen(self) -> Listener:
        """A new subscription to :data:`CHANNEL`; raises :class:`ChannelError`."""
        ...

    def publish(self, payloads: list[str]) -> None:
        """Send ``payloads`` (reconnecting first if the last send failed); raises
        :class:`ChannelError`."""
        ...

    def close(self) -> None: ...


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__

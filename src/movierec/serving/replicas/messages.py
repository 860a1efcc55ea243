"""The replicas' messages: one JSON object of a few hundred bytes each.

``{"o": origin, "k": "ratings" | "reload", "u": [user ids], "t": sent at (epoch seconds)}``.
PostgreSQL refuses a NOTIFY payload of 8000 bytes or more, so a long list of users is split over
several messages (Redis has no such limit; one rule for both keeps them alike).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from movierec.serving.feed import EventKind, FeedEvent

MAX_PAYLOAD_BYTES = 7_000  # under PostgreSQL's 8000, with room for the other fields
_USER_BYTES = 21  # the widest int64 and its comma


@dataclass(frozen=True)
class Message:
    """A feed event, where it came from and when it was sent."""

    origin: str
    event: FeedEvent
    sent_at: float


def encode(origin: str, kind: EventKind, user_ids: list[int]) -> list[str]:
    """The payloads of one event: one, or one per slice of its users."""
    per_message = max(1, (MAX_PAYLOAD_BYTES - 200 - len(origin)) // _USER_BYTES)
    slices = [user_ids[i : i + per_message] for i in range(0, len(user_ids), per_message)]
    now = time.time()
    return [
        json.dumps({"o": origin, "k": kind, "u": part, "t": now}, separators=(",", ":"))
        for part in slices or [[]]
    ]


def decode(payload: str | bytes) -> Message | None:
    """The message of ``payload``, None for anything else (another program on the channel)."""
    try:
        record = json.loads(payload)
        kind = record["k"]
        if kind not in ("ratings", "reload"):
            return None
        users = [int(u) for u in record["u"]]
        return Message(str(record["o"]), FeedEvent(kind, users), float(record["t"]))
    except (ValueError, TypeError, KeyError):
        return None

"""The one shape every channel sends.

The outbox renders a reminder into an ``OutgoingMessage`` once and hands the same object to the
channel on every attempt, so a message re-sent after a crash carries the same ``key`` and a
receiver (a mail client via Message-ID, a webhook via Idempotency-Key, a person reading a group
robot via the trailing ``（编号 KEY）`` line) can tell it is the same reminder.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class OutgoingMessage:
    """A rendered reminder addressed to one recipient on one channel."""

    key: str  # stable idempotency key: the same reminder always has the same key
    recipient: str  # the person or role, e.g. "党组书记" or "办公室"
    address: str  # channel-specific: an email address, a webhook handle, a robot @-target or ""
    subject: str
    text: str  # plain-text body
    html: str | None = None  # optional HTML alternative (email only)
    data: dict[str, Any] = field(default_factory=dict)  # structured payload for webhooks

    def __post_init__(self) -> None:
        # An empty key would make every re-send look new to the receiver, defeating deduplication.
        if not isinstance(self.key, str) or not self.key.strip():
            raise ValueError("OutgoingMessage.key must be a non-empty string")


def _json_default(value: Any) -> Any:
    # Ledger rows carry dates and decimals; receivers get them in their ISO/plain text forms.
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot send a {type(value).__name__} as JSON")


def dumps(value: Any) -> str:
    """JSON as every channel writes it: Chinese kept readable (and a third the size of ``\\uXXXX``)."""
    return json.dumps(value, ensure_ascii=False, default=_json_default, separators=(",", ":"))

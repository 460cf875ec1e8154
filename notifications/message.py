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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AppCard:
    """What an organisation app's notice shows besides the text: the one contract between the
    pipeline, which writes it into the outbox row (``data["card"]``), and the app channels
    (``channels/_app.py``), which turn it into the platform's card."""

    lines: tuple[str, ...]  # the digest's item lines, most urgent first
    total: int  # how many items the digest carries (the card shows the first few)
    link: str | None  # the 去处理 button: the recipient's signed link, else the workspace's list
    pressing: bool = False  # something is overdue or escalated: the card says so in its colour

    def stored(self) -> dict[str, Any]:
        """The JSON kept in the outbox row's ``data["card"]``."""
        return {"lines": list(self.lines), "total": self.total, "link": self.link, "pressing": self.pressing}

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> AppCard | None:
        """The card an outbox row's ``data`` carries; None for a message without one (a test notice,
        a hand-made message). Read leniently: a row queued by an older version still sends."""
        card = data.get("card")
        if not isinstance(card, Mapping):
            return None
        lines = tuple(str(x) for x in card.get("lines") or ())
        link = card.get("link")
        total = card.get("total")
        return cls(lines, total if isinstance(total, int) and not isinstance(total, bool) else len(lines),
                   link if isinstance(link, str) and link else None, bool(card.get("pressing")))


@dataclass(frozen=True)
class OutgoingMessage:
    """A rendered reminder addressed to one recipient on one channel."""

    key: str  # stable idempotency key: the same reminder always has the same key
    recipient: str  # the person or role, e.g. "党组书记" or "办公室"
    address: str  # channel-specific: an email address, a webhook handle, a robot @-target or ""
    subject: str
    text: str  # plain-text body
    html: str | None = None  # optional HTML alternative (email only)
    data: dict[str, Any] = field(default_factory=dict)  # structured payload for webhooks (and ``card``)

    def __post_init__(self) -> None:
        # An empty key would make every re-send look new to the receiver, defeating deduplication.
        if not isinstance(self.key, str) or not self.key.strip():
            raise ValueError("OutgoingMessage.key must be a non-empty string")

    @property
    def card(self) -> AppCard | None:
        """The app channels' card the pipeline wrote (``AppCard``), if any."""
        return AppCard.from_stored(self.data) if isinstance(self.data, Mapping) else None


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

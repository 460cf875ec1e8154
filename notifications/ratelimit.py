"""Send-rate limits per channel, shared by every daemon through the database.

The group robots enforce quotas on their side: DingTalk and WeCom take 20 messages a minute per
robot (DingTalk then blocks the robot for 10 minutes), Feishu 5 a second. A per-process throttle
(apprise's) is not enough once two daemons, or a daemon and a ``duban remind send`` run, share a
robot, so the count lives in the ``rate_windows`` row of the channel and every sender takes from it
inside a transaction that serialises with the others.

The window is fixed, not sliding: the platforms count per calendar window too, and a fixed window
needs one row and one locked update per message.

The organisation apps also limit what one person receives, and drop the excess while answering
success (WeCom: 30 a minute and 1,000 an hour per member; DingTalk: 500 a day per user, by
Beijing's calendar). Those windows (``Channel.recipient_windows``) are counted per addressee in
rows of the same table (``recipient_wait``), aligned to the clock as the platforms count them, so a
notice over a person's limit waits for the next window instead of vanishing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from notifications.channels.base import Channel
from notifications.store import RateWindow

_UNITS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_ALIASES = {"s": "second", "sec": "second", "min": "minute", "m": "minute", "h": "hour", "d": "day"}
_LIMIT = re.compile(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*([a-z]+)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Limit:
    """At most ``count`` messages per ``seconds``-long window."""

    count: int
    seconds: float

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ValueError(f"a rate limit needs a positive whole count, got {self.count!r}")
        if isinstance(self.seconds, bool) or not isinstance(self.seconds, (int, float)) or not (
            self.seconds > 0
        ):
            raise ValueError(f"a rate limit needs a positive window in seconds, got {self.seconds!r}")

    @classmethod
    def parse(cls, text: str) -> Limit:
        """``"20/minute"``, ``"5/second"``, ``"100/hour"``, ``"10/5minutes"``, ``"1/day"``."""
        match = _LIMIT.fullmatch(text) if isinstance(text, str) else None
        unit = None
        if match:
            word = match.group(3).lower()
            if word not in _UNITS and word not in _ALIASES and word.endswith("s"):
                word = word[:-1]  # plurals: "minutes", "secs"
            unit = _UNITS.get(_ALIASES.get(word, word))
        if match is None or unit is None:
            raise ValueError(
                f"rate limit {text!r} is not written as COUNT/UNIT "
                "(e.g. '20/minute', '5/second', '100/hour')"
            )
        multiple = float(match.group(2)) if match.group(2) else 1.0
        return cls(int(match.group(1)), multiple * unit)

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds:g}s"


# By channel kind, from the platforms' documentation; a [channels.NAME] rate_limit overrides them.
DEFAULTS: dict[str, Limit] = {
    "dingtalk": Limit(20, 60),
    "wecom": Limit(20, 60),
    "feishu": Limit(5, 1),
    # the apps: DingTalk 40 calls a second per app (half of it), Feishu 50 messages a second
    "dingtalk_app": Limit(20, 1),
    "feishu_app": Limit(20, 1),
}


def _ensure_row(session: Session, channel: str, now: dt.datetime) -> None:
    """Insert the channel's row unless it exists, without failing when another sender races us."""
    values = {"channel": channel, "window_start": now, "count": 0}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # ON CONFLICT waits for a concurrent inserter to commit, then does nothing: no error, no
        # aborted transaction, and the row is there for the locking read below.
        session.execute(pg_insert(RateWindow).values(values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        session.execute(sqlite_insert(RateWindow).values(values).on_conflict_do_nothing())
    else:  # pragma: no cover - duban supports SQLite and PostgreSQL only
        if session.get(RateWindow, channel) is None:
            session.execute(insert(RateWindow).values(values))


def take(session: Session, channel: str, limit: Limit, now: dt.datetime) -> float:
    """Count one message against ``channel``'s window; 0.0 if it may go, else seconds to wait.

    Runs in the caller's transaction, which must commit for the count to stick. On PostgreSQL the
    row is locked (``SELECT … FOR UPDATE``) until then, so concurrent senders queue on it; on SQLite
    the transaction is ``BEGIN IMMEDIATE`` and already holds the write lock. A refusal counts
    nothing, so postponed messages do not eat the next window.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"take needs an aware datetime, got naive {now.isoformat()}")
    _ensure_row(session, channel, now)
    # unpacked by position: to the type checker a Row's .count is tuple.count
    start, count = session.execute(
        select(RateWindow.window_start, RateWindow.count)
        .where(RateWindow.channel == channel)
        .with_for_update()
    ).one()
    window = dt.timedelta(seconds=limit.seconds)
    if now >= start + window:
        start, count = now, 0  # the window has passed: a new one starts with this message
    if count < limit.count:
        session.execute(
            update(RateWindow)
            .where(RateWindow.channel == channel)
            .values(window_start=start, count=count + 1)
            .execution_options(synchronize_session=False)
        )
        return 0.0
    wait = (start + window - now).total_seconds()
    # A window that starts in our future (another host's clock runs ahead) must not park messages
    # for longer than one window; and a refusal must never say "go now", or the caller would spin.
    return min(max(wait, 0.001), limit.seconds)


def _window_key(channel: Channel, person: str, count: int, seconds: float) -> str:
    # Per app (two channels of one app share its quota), hashed: the table shows no ids.
    app = channel.app_id() if hasattr(channel, "app_id") else channel.name
    raw = f"{channel.kind}\n{app}\n{person.lower()}\n{count}/{seconds:g}"
    return "r:" + hashlib.sha256(raw.encode()).hexdigest()[:40]


def aligned_start(now: dt.datetime, seconds: float, offset: float) -> dt.datetime:
    """The start of the clock-aligned window of ``seconds`` holding ``now`` (``offset`` east of UTC)."""
    stamp = now.timestamp() + offset
    return dt.datetime.fromtimestamp(math.floor(stamp / seconds) * seconds - offset, dt.UTC)


def recipient_wait(session: Session, channel: Channel | None, address: str, now: dt.datetime) -> dt.datetime | None:
    """None if every person ``address`` names may receive one more message from ``channel`` now
    (and it is counted), else when the first window that is full opens again (nothing counted)."""
    if channel is None or not channel.recipient_windows:
        return None
    rows: list[tuple[str, dt.datetime, int]] = []
    opens: list[dt.datetime] = []
    for person in dict.fromkeys(channel.recipients(address)):
        for count, seconds, offset in channel.recipient_windows:
            key = _window_key(channel, person, count, seconds)
            _ensure_row(session, key, now)
            start, used = session.execute(
                select(RateWindow.window_start, RateWindow.count).where(RateWindow.channel == key).with_for_update()
            ).one()
            current = aligned_start(now, seconds, offset)
            if start < current:
                used = 0  # an earlier window: this one starts empty
            start = current  # a new row is stamped with ``now``; the window is the clock's
            if used >= count:
                opens.append(start + dt.timedelta(seconds=seconds))
            rows.append((key, start, used))
    if opens:
        return max(max(opens), now + dt.timedelta(milliseconds=1))
    for key, start, used in rows:
        session.execute(update(RateWindow).where(RateWindow.channel == key)
                        .values(window_start=start, count=used + 1).execution_options(synchronize_session=False))
    return None

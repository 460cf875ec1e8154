"""Delivering outbox messages: claim, send, record, retry with backoff, give up visibly.

Modelled on healthchecks' ``sendalerts`` claim loop and Alertmanager's notify stage:

* **Claim** a batch of due messages in one short transaction by writing a lease on them
  (``lease_owner``, ``lease_until``). On PostgreSQL the candidates are picked with
  ``FOR UPDATE SKIP LOCKED`` so concurrent daemons take disjoint batches without waiting on each
  other; on SQLite one ``UPDATE … WHERE id IN (SELECT …)`` inside ``BEGIN IMMEDIATE`` does the same.
  A sender that crashes leaves its lease behind; it expires and another sender picks the message up.
* **Send** each message outside any transaction: a slow SMTP server must not hold row locks or
  SQLite's write lock. Just before sending the lease is renewed (and checked), so a lease only has
  to outlast one send, not a whole batch.
* **Record** the outcome in its own short transaction guarded by the lease
  (``WHERE id = :id AND lease_owner = :claim``): a sender whose lease expired and was taken over
  cannot overwrite what the new owner wrote.

Delivery is at least once: a crash between a send and its record means a second send with the
same key (Message-ID / Idempotency-Key / 编号 line), which the receiver can recognise. Nothing is
dropped silently: unknown channel -> ``undeliverable``, too many failures -> ``dead``, both with
``last_error``; ``Outbox.retry`` brings either back.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import NotFound, Refused
from engine.store.db import transaction
from engine.store.models import DeliveryAttempt, OutboxMessage
from notifications.channels.base import Channel, DeliveryError
from notifications.message import OutgoingMessage
from notifications.quiet import QuietHours
from notifications.ratelimit import DEFAULTS, Limit, take

log = logging.getLogger("duban.outbox")

_MAX_ERROR = 2000  # characters of an error kept on the row; a server can answer with a whole page
_OWNER_LEN = 100  # outbox.lease_owner is String(100)


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard to try. Attempt ``n`` that fails transiently waits ``backoff_base * 2**(n-1)``
    seconds (at most ``backoff_max``), spread by ``± jitter`` so a burst of failures does not come
    back as a burst; after ``max_attempts`` attempts the message is dead."""

    max_attempts: int = 8
    backoff_base: float = 60.0
    backoff_max: float = 3600.0
    jitter: float = 0.2
    lease: float = 120.0  # seconds a claim holds; must exceed the slowest channel's timeout

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if not self.backoff_base > 0 or not self.backoff_max >= self.backoff_base:
            raise ValueError("backoff_base must be positive and backoff_max at least backoff_base")
        # jitter 1.0 could make a wait of zero, and a message retried "now" in a loop.
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be a fraction in [0, 1), got {self.jitter}")
        if not self.lease > 0:
            raise ValueError(f"lease must be a positive number of seconds, got {self.lease}")


@dataclass
class DeliveryStats:
    """What one ``deliver_due`` run did."""

    sent: int = 0
    retried: int = 0
    dead: int = 0
    postponed: int = 0  # quiet hours or a rate limit: tried later, no attempt recorded
    undeliverable: int = 0
    lost: int = 0  # claims another sender took over (ours had expired) before we finished

    def __iadd__(self, other: DeliveryStats) -> DeliveryStats:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self


@dataclass(frozen=True)
class _Claimed:
    """The columns of a claimed row, copied out so nothing depends on a session after commit."""

    id: int
    key: str
    channel: str
    recipient: str
    address: str
    subject: str
    text: str
    html: str | None
    urgent: bool
    attempts: int
    data: dict[str, Any] = field(default_factory=dict)

    def message(self) -> OutgoingMessage:
        # Built from the row on every attempt, so every attempt carries the same key.
        return OutgoingMessage(
            key=self.key, recipient=self.recipient, address=self.address, subject=self.subject,
            text=self.text, html=self.html, data=dict(self.data or {}),
        )


_CLAIMED_COLUMNS = [getattr(OutboxMessage, name) for name in _Claimed.__dataclass_fields__]


def default_worker() -> str:
    """``host:pid``, what attempts record as the sender."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _describe(error: BaseException) -> str:
    text = error.message if isinstance(error, DeliveryError) else f"{type(error).__name__}: {error}"
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 1] + "…"


class Outbox:
    """Sends due outbox messages through configured channels; safe to run in several daemons."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        channels: Mapping[str, Channel],
        *,
        policy: DeliveryPolicy = DeliveryPolicy(),
        worker: str | None = None,
        quiet: QuietHours | None = None,
        limits: Mapping[str, Limit] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.sessions = sessions
        self.channels = dict(channels)
        self.policy = policy
        self.worker = (worker or default_worker())[:_OWNER_LEN]
        self.quiet = quiet
        self.limits = dict(limits or {})
        self.rng = rng or random.Random()

    # -- policy -----------------------------------------------------------------------------

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1 = the first)."""
        p = self.policy
        n = max(1, attempts)
        raw = min(p.backoff_max, p.backoff_base * 2.0 ** min(n - 1, 60))
        return raw * (1.0 + self.rng.uniform(-p.jitter, p.jitter))

    def limit_for(self, channel_name: str) -> Limit | None:
        """The configured limit of a channel, else the default for its kind, else none."""
        if channel_name in self.limits:
            return self.limits[channel_name]
        channel = self.channels.get(channel_name)
        return DEFAULTS.get(channel.kind) if channel is not None else None

    # -- the loop ---------------------------------------------------------------------------

    def deliver_due(
        self, now: dt.datetime, *, batch: int = 50, stop: threading.Event | None = None
    ) -> DeliveryStats:
        """Send every message due at ``now``, batch by batch, until none is left.

        ``now`` is when the run starts; the run's clock moves on from it in real time, so leases
        and retry times stay true however long the sends take. When ``stop`` is set the message in
        hand is finished, the rest of the batch is released for others, and the run returns.
        """
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError(f"deliver_due needs an aware datetime, got naive {now.isoformat()}")
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        started = time.monotonic()

        def clock() -> dt.datetime:
            return now + dt.timedelta(seconds=time.monotonic() - started)

        stats = DeliveryStats()
        blocked: dict[str, dt.datetime] = {}  # channel -> end of a rate window known to be full
        while not (stop is not None and stop.is_set()):
            claim = self._claim_token()
            claimed = self._claim(clock(), batch, claim)
            if not claimed:
                break
            for index, item in enumerate(claimed):
                if stop is not None and stop.is_set():
                    self._release(claimed[index:], claim)
                    return stats
                self._deliver(item, claim, clock, stats, blocked)
        return stats

    def _claim_token(self) -> str:
        # Worker name plus a random part: two Outboxes in one process (same host:pid) or a
        # restarted container (same hostname, pid 1) still hold distinguishable claims.
        suffix = secrets.token_hex(6)
        return f"{self.worker[: _OWNER_LEN - len(suffix) - 1]}#{suffix}"

    def _claim(self, current: dt.datetime, batch: int, claim: str) -> list[_Claimed]:
        due = (
            OutboxMessage.status == "pending",
            # A pending row without a time was never scheduled: due now rather than never.
            or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= current),
            or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < current),
        )
        order = (OutboxMessage.next_attempt_at, OutboxMessage.id)
        lease = {"lease_owner": claim, "lease_until": current + dt.timedelta(seconds=self.policy.lease)}
        with transaction(self.sessions) as session:
            pick = select(OutboxMessage.id).where(*due).order_by(*order).limit(batch)
            if session.get_bind().dialect.name == "postgresql":
                # Rows another daemon is claiming right now are skipped, not waited for.
                ids = list(session.scalars(pick.with_for_update(skip_locked=True)))
                if not ids:
                    return []
                target = OutboxMessage.id.in_(ids)
            else:
                # SQLite: BEGIN IMMEDIATE already holds the write lock, so select-and-mark is atomic.
                target = OutboxMessage.id.in_(pick.scalar_subquery())
            session.execute(
                update(OutboxMessage).where(target).values(**lease)
                .execution_options(synchronize_session=False)
            )
            rows = session.execute(
                select(*_CLAIMED_COLUMNS).where(OutboxMessage.lease_owner == claim).order_by(*order)
            ).all()
        return [_Claimed(**row._mapping) for row in rows]

    def _deliver(self, item: _Claimed, claim: str, clock: Callable[[], dt.datetime],
                 stats: DeliveryStats, blocked: dict[str, dt.datetime]) -> None:
        channel = self.channels.get(item.channel)
        with transaction(self.sessions) as session:
            skipped = self._prepare(session, item, claim, clock(), channel, blocked)
        if skipped is not None:
            setattr(stats, skipped, getattr(stats, skipped) + 1)
            return
        assert channel is not None  # _prepare marked the message undeliverable otherwise
        # The send itself runs outside any transaction (see the module docstring).
        started = time.monotonic()
        error: BaseException | None = None
        try:
            message = item.message()
        except ValueError as exc:  # e.g. an empty key: no retry can fix the row
            error = DeliveryError(f"cannot build the message: {exc}", permanent=True)
        else:
            try:
                channel.send(message)
            except DeliveryError as exc:
                error = exc
            except Exception as exc:  # noqa: BLE001 - a channel's bug is retried, not fatal to the run
                log.exception("outbox message %s: channel %r failed unexpectedly", item.id, item.channel)
                error = exc
        self._record(item, claim, clock(), error, time.monotonic() - started, stats)

    def _prepare(self, session: Session, item: _Claimed, claim: str, current: dt.datetime,
                 channel: Channel | None, blocked: dict[str, dt.datetime]) -> str | None:
        """None if the message should be sent now, else the stats field of why it is not."""
        # Renewing the lease just before the send means it only has to outlast one send; if it
        # already lapsed and someone else holds the message, leave it to them.
        if not self._guarded(session, item.id, claim,
                             lease_until=current + dt.timedelta(seconds=self.policy.lease)):
            return "lost"
        if channel is None:
            log.warning("outbox message %s: channel %r is not configured", item.id, item.channel)
            self._guarded(session, item.id, claim, status="undeliverable", lease_owner=None,
                          lease_until=None, last_error=f"channel {item.channel!r} is not configured")
            return "undeliverable"
        if not item.urgent and self.quiet is not None and not self.quiet.allows(current):
            until = self.quiet.next_open(current)
        else:
            until = self._rate_wait(session, item.channel, current, blocked)
        if until is None:
            return None
        self._guarded(session, item.id, claim, next_attempt_at=until, lease_owner=None, lease_until=None)
        return "postponed"

    def _rate_wait(
        self, session: Session, name: str, current: dt.datetime, blocked: dict[str, dt.datetime]
    ) -> dt.datetime | None:
        """None if the channel's rate limit lets one more message through now, else when to retry."""
        limit = self.limit_for(name)
        if limit is None:
            return None
        full_until = blocked.get(name)
        if full_until is not None and current < full_until:
            return full_until  # known full: no need to lock the shared row again
        wait = take(session, name, limit, current)
        if wait <= 0:
            blocked.pop(name, None)
            return None
        blocked[name] = current + dt.timedelta(seconds=wait)
        return blocked[name]

    def _record(self, item: _Claimed, claim: str, current: dt.datetime,
                error: BaseException | None, seconds: float, stats: DeliveryStats) -> None:
        """Write the outcome of one send, if our claim still holds, and the attempt either way."""
        attempts = item.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "lease_owner": None, "lease_until": None}
        if error is None:
            outcome, text = "sent", ""
            values.update(status="sent", sent_at=current, last_error="")
        else:
            text = _describe(error)
            permanent = isinstance(error, DeliveryError) and error.permanent
            if permanent or attempts >= self.policy.max_attempts:
                outcome = "dead"
                values.update(status="dead", last_error=text)
            else:
                outcome = "retry"
                hint = error.retry_after if isinstance(error, DeliveryError) else None
                wait = max(self.backoff(attempts), hint or 0.0)
                values.update(last_error=text, next_attempt_at=current + dt.timedelta(seconds=wait))
        with transaction(self.sessions) as session:
            owned = self._guarded(session, item.id, claim, **values)
            if not owned:
                # Another sender took the message over; its record stands. The attempt still
                # happened (and may have reached the receiver), so the history says so.
                if session.get(OutboxMessage, item.id) is None:
                    return
                text = (text + "; " if text else "") + "lease lost to another sender, result not applied"
            session.add(DeliveryAttempt(
                message_id=item.id, at=current, channel=item.channel, recipient=item.recipient,
                status=outcome, error=text, seconds=seconds, worker=self.worker,
            ))
        if not owned:
            log.warning("outbox message %s: lease lapsed during the send; another sender has it", item.id)
        elif outcome == "dead":
            log.error("outbox message %s via %r is dead: %s", item.id, item.channel, text)
        name = "lost" if not owned else {"sent": "sent", "dead": "dead", "retry": "retried"}[outcome]
        setattr(stats, name, getattr(stats, name) + 1)

    # -- row updates, all guarded by the claim -----------------------------------------------

    @staticmethod
    def _guarded(session: Session, message_id: int, claim: str, **values: Any) -> bool:
        """Update the row only while our claim holds it; True if it did."""
        result = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.lease_owner == claim,
                   OutboxMessage.status == "pending")
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def _release(self, items: Sequence[_Claimed], claim: str) -> None:
        """Give unsent claims back so another sender need not wait for them to expire."""
        with transaction(self.sessions) as session:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_([i.id for i in items]), OutboxMessage.lease_owner == claim)
                .values(lease_owner=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )

    # -- administration ---------------------------------------------------------------------

    @staticmethod
    def retry(session: Session, message_id: int, now: dt.datetime) -> OutboxMessage:
        """Send a ``dead`` or ``undeliverable`` message again from ``now``, with a fresh attempt count.

        A message still ``pending`` is only brought forward to ``now``. Runs in the caller's
        transaction. Raises ``NotFound`` for an unknown id and ``Refused`` for a message already
        sent (sending it again would be a duplicate) or silenced (lift the silence instead).
        """
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError(f"retry needs an aware datetime, got naive {now.isoformat()}")
        row = session.get(OutboxMessage, message_id, with_for_update=True, populate_existing=True)
        if row is None:
            raise NotFound(f"there is no outbox message {message_id}")
        if row.status == "sent":
            when = f" at {row.sent_at.isoformat()}" if row.sent_at else ""
            raise Refused(f"outbox message {message_id} was already sent{when}; it is not sent twice")
        if row.status == "pending":
            if row.next_attempt_at is None or row.next_attempt_at > now:
                row.next_attempt_at = now
            return row
        if row.status not in ("dead", "undeliverable"):
            raise Refused(
                f"outbox message {message_id} is {row.status}; only dead or undeliverable messages are retried",
                hint="lift the silence to let its reminders through" if row.status == "silenced" else None,
            )
        row.status, row.attempts, row.next_attempt_at = "pending", 0, now
        row.lease_owner = row.lease_until = None
        session.flush()
        return row

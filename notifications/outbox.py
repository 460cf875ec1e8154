"""Delivering outbox messages: claim, send, record, retry with backoff, give up visibly.

Modelled on healthchecks' ``sendalerts`` claim loop and Alertmanager's notify stage:

* **Claim** a batch of due messages in one short transaction by writing a lease on them
  (``lease_owner``, ``lease_until``). Finding the due messages in due order reads every pending
  row, so one scan lists up to ``claims.PREFETCH`` batches of candidates and the claims that
  follow take them in order, each one checking again that its rows are still due and free (others
  may have taken them); the list is scanned again when it runs out or is ``claims.RESCAN_AFTER``
  seconds old, so a message that falls due during a run waits for at most that (plus the batch in
  hand). On PostgreSQL the rows are claimed with ``FOR UPDATE SKIP LOCKED`` so concurrent daemons
  take disjoint batches without waiting on each other; on SQLite ``BEGIN IMMEDIATE`` makes the
  select-and-mark atomic. A sender that crashes leaves its lease behind; it expires and another
  sender picks the message up.
* **Send** each message outside any transaction: a slow SMTP server must not hold row locks or
  SQLite's write lock. Every send starts with at least ``claims.RENEW_BELOW`` (90%) of the lease
  ahead of it: while the batch's lease is that fresh (a fast channel gets through a batch in
  milliseconds) nothing is written before the send, since no other sender can take a live lease;
  once it runs lower, the lease of the rest of the batch is renewed (and checked) in one
  transaction. So a lease only has to outlast one send, not a whole batch. A message that must be
  counted against a rate limit, postponed or marked undeliverable still gets its own transaction
  (renewing and checking its lease there, as before).
* **Record** each outcome, guarded by the lease (``WHERE id = :id AND lease_owner = :claim``): a
  sender whose lease expired and was taken over cannot overwrite what the new owner wrote. The
  results of consecutive fast sends are written together, one row update and one attempt row per
  message in one transaction. After every send they are written if there are
  ``recording.RECORD_EVERY`` of them, if the first of them started ``recording.RECORD_WAIT``
  seconds ago or more (so a slow send is recorded at once, as before) or if any of their leases
  has fallen below the renewal mark; and always at the end of a batch, on ``stop``, and (best
  effort) when the run fails.

Delivery is at least once: a crash between a send and its record means a second send with the
same key (Message-ID / Idempotency-Key / 编号 line), which the receiver can recognise. With results
written together, a crash can leave unrecorded both the send in hand and the sends that started
less than ``recording.RECORD_WAIT`` seconds before it (at most ``recording.RECORD_EVERY``).
Nothing is dropped silently: unknown channel -> ``undeliverable``, too many failures -> ``dead``,
both with ``last_error``; ``Outbox.retry`` brings either back.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from engine.errors import NotFound, Refused
from engine.store.db import transaction
from engine.store.models import OutboxMessage
from notifications.channels.base import Channel, DeliveryError
from notifications.claims import (
    OWNER_LEN,
    RENEW_BELOW,
    Candidates,
    Claimed,
    Lease,
    claim_batch,
    claim_token,
    guarded,
    release,
    renew,
)
from notifications.quiet import QuietHours
from notifications.ratelimit import DEFAULTS, Limit, take
from notifications.recording import SendResult, Unwritten, result_of, write, write_now

log = logging.getLogger("duban.outbox")

# Claiming (the scan, the lease and its renewal, the guarded writes) is notifications.claims;
# recording the outcomes in batches is notifications.recording. This module runs the loop.


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard to try. Attempt ``n`` that fails transiently waits ``backoff_base * 2**(n-1)``
    seconds (at most ``backoff_max``), spread by ``± jitter`` so a burst of failures does not come
    back as a burst; after ``max_attempts`` attempts the message is dead."""

    max_attempts: int = 8
    backoff_base: float = 60.0
    backoff_max: float = 3600.0
    jitter: float = 0.2
    # Seconds a claim holds; a send starts with at least 90% of it ahead (see the module
    # docstring), so it must exceed the slowest channel's timeout by more than a tenth.
    lease: float = 120.0

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



def default_worker() -> str:
    """``host:pid``, what attempts record as the sender."""
    return f"{socket.gethostname()}:{os.getpid()}"


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
        self.worker = (worker or default_worker())[:OWNER_LEN]
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
        candidates = Candidates()
        while not (stop is not None and stop.is_set()):
            claim = claim_token(self.worker)
            claimed, lease = claim_batch(self.sessions, clock(), batch, claim, candidates, self.policy.lease)
            if not claimed:
                break
            results = Unwritten()
            try:
                for index, item in enumerate(claimed):
                    if stop is not None and stop.is_set():
                        self._write(results, lease, stats)
                        release(self.sessions, claimed[index:], claim)
                        return stats
                    result = self._deliver(item, claimed[index:], lease, clock, stats, blocked)
                    if result is not None:
                        results.add(result, lease.until[item.id])
                    if results and write_now(results, clock(), self.policy.lease):
                        self._write(results, lease, stats)
                self._write(results, lease, stats)
            except BaseException:
                if results:  # what was sent should not be sent again if it can still be recorded
                    try:
                        self._write(results, lease, stats)
                    except Exception:  # noqa: BLE001 - the first failure is the one to raise
                        log.exception("outbox: could not record %d sent message(s); they will be sent again"
                                      " with the same keys once their lease expires", len(results))
                raise
        return stats

    def _deliver(self, item: Claimed, rest: Sequence[Claimed], lease: Lease,
                 clock: Callable[[], dt.datetime], stats: DeliveryStats,
                 blocked: dict[str, dt.datetime]) -> SendResult | None:
        """Send one message; its result to write, or None if it was not sent (stats say why)."""
        channel = self.channels.get(item.channel)
        skipped = self._prepare(item, rest, lease, clock(), channel, blocked)
        if skipped is not None:
            setattr(stats, skipped, getattr(stats, skipped) + 1)
            return None
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
        return result_of(item, clock(), error, started, max_attempts=self.policy.max_attempts,
                         backoff=self.backoff)

    def _prepare(self, item: Claimed, rest: Sequence[Claimed], lease: Lease, current: dt.datetime,
                 channel: Channel | None, blocked: dict[str, dt.datetime]) -> str | None:
        """None if the message should be sent now, else the stats field of why it is not."""
        if item.id in lease.lost:
            return "lost"
        quiet = (channel is not None and not item.urgent and self.quiet is not None
                 and not self.quiet.allows(current))
        if channel is not None and not quiet and self.limit_for(item.channel) is None:
            # Nothing to count or postpone: the database is touched only when the lease runs low.
            # While it is live no other sender can have taken the message.
            if lease.left(item.id, current) < self.policy.lease * RENEW_BELOW:
                renew(self.sessions, rest, lease, current, self.policy.lease)
            return "lost" if item.id in lease.lost else None
        with transaction(self.sessions) as session:
            return self._prepare_in(session, item, lease, current, channel, quiet, blocked)

    def _prepare_in(self, session: Session, item: Claimed, lease: Lease, current: dt.datetime,
                    channel: Channel | None, quiet: bool, blocked: dict[str, dt.datetime]) -> str | None:
        # Renewing the lease just before the send means it only has to outlast one send; if it
        # already lapsed and someone else holds the message, leave it to them.
        until = current + dt.timedelta(seconds=self.policy.lease)
        if not guarded(session, item.id, lease.claim, lease_until=until):
            lease.lost.add(item.id)
            return "lost"
        lease.until[item.id] = until
        if channel is None:
            log.warning("outbox message %s: channel %r is not configured", item.id, item.channel)
            guarded(session, item.id, lease.claim, status="undeliverable", lease_owner=None,
                    lease_until=None, last_error=f"channel {item.channel!r} is not configured")
            return "undeliverable"
        if quiet:
            assert self.quiet is not None
            wait_until: dt.datetime | None = self.quiet.next_open(current)
        else:
            wait_until = self._rate_wait(session, item.channel, current, blocked)
        if wait_until is None:
            return None
        guarded(session, item.id, lease.claim, next_attempt_at=wait_until, lease_owner=None,
                lease_until=None)
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

    def _write(self, results: Unwritten, lease: Lease, stats: DeliveryStats) -> None:
        """Write the waiting results (see notifications.recording.write) and count them in ``stats``."""
        for name, count in write(self.sessions, results, lease, self.worker).items():
            setattr(stats, name, getattr(stats, name) + count)

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

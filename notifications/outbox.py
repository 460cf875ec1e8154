"""Delivering outbox messages: claim, send, record, retry with backoff, give up visibly.

Modelled on healthchecks' ``sendalerts`` and Alertmanager's notify stage, the loop of
``Outbox.deliver_due`` reads on one screen:

* **Claim** a batch of due messages in one short transaction by writing a lease on them
  (``notifications.leases``). A sender that crashes leaves its lease behind; it expires and
  another sender picks the message up.
* **Gate** each message: outside working hours (unless urgent) or past its channel's rate limit it
  is postponed, not sent; a channel that is not configured makes it undeliverable.
* **Send** it outside any transaction: a slow SMTP server must not hold row locks or SQLite's
  write lock. Up to ``DeliveryPolicy.in_flight`` messages per channel are on their way at once
  (sent and not yet recorded), and never two to the same recipient, who gets the messages in
  claim order (``notifications.lanes``). A channel whose sends wait on the network sends on
  threads; one whose sends come back as fast as they are made sends on the calling thread, one
  after another, and its outcomes are recorded when its lane is full (``notifications.senders``).
  A send starts only with at least twice its channel's timeout of lease ahead of it; below that
  the rest of the batch's lease is renewed first, so a lease only has to outlast the sends it
  covers. The next batch is claimed as soon as the last message of this one has started.
* **Record** the outcomes of the sends that finished together in one transaction, while their
  leases hold (``notifications.recording``), guarded by the lease; only then do new sends take
  their places. So no more than the messages in flight are ever sent but unrecorded, and a crash
  re-sends at most those; a sender whose lease was taken over cannot overwrite the new owner's
  record. Claiming, gating and recording stay on the calling thread: only sends are handed out.

Delivery is at least once, with the same key on every attempt (Message-ID / Idempotency-Key /
编号 line), which the receiver can recognise. Nothing is dropped silently: unknown channel ->
``undeliverable``, too many failures -> ``dead``, both with ``last_error``; ``Outbox.retry``
brings either back.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import ClassVar

from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import NotFound, Refused
from engine.heap import give_back
from engine.store.db import transaction
from notifications.channels.base import Channel, DeliveryError
from notifications.channels.receipt import Receipt
from notifications.lanes import Lanes
from notifications.leases import OWNER_LEN, Lease, Leased, guarded, lease_batch, lease_owner, release, renew
from notifications.quiet import QuietHours
from notifications.ratelimit import DEFAULTS, Limit, recipient_wait, take
from notifications.recording import record_all, result_of
from notifications.senders import Pace, Senders
from notifications.store import AttemptStatus, OutboxMessage, OutboxStatus

log = logging.getLogger("duban.outbox")


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard to try. Attempt ``n`` that fails transiently waits ``backoff_base * 2**(n-1)``
    seconds (at most ``backoff_max``), spread by ``± jitter`` so a burst of failures does not come
    back as a burst; after ``max_attempts`` attempts the message is dead."""

    max_attempts: int = 8
    backoff_base: float = 60.0
    backoff_max: float = 3600.0
    jitter: float = 0.2
    # Seconds a lease holds; a send starts with at least twice its channel's timeout ahead (see
    # the module docstring), so it must exceed twice the slowest channel's timeout.
    lease: float = 120.0
    # Sends on their way at once per channel ([daemon] delivery_in_flight). Each finished send is
    # recorded before its lease ends, so a crash re-sends at most this many messages per channel.
    in_flight: int = 8

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
        if self.in_flight < 1:
            raise ValueError(f"in_flight must be at least 1, got {self.in_flight}")


@dataclass
class DeliveryStats:
    """What one ``deliver_due`` run did."""

    sent: int = 0
    retried: int = 0
    dead: int = 0
    postponed: int = 0  # quiet hours or a rate limit: tried later, no attempt recorded
    undeliverable: int = 0
    lost: int = 0  # messages another sender took over (ours had expired) before we finished
    # (channel, outcome) -> messages: the same outcomes per channel, for /metrics
    by_channel: Counter[tuple[str, str]] = field(default_factory=Counter, compare=False, repr=False)

    OUTCOMES: ClassVar[tuple[str, ...]] = ("sent", "retried", "dead", "postponed", "undeliverable", "lost")

    def count(self, channel: str, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        self.by_channel[(channel, outcome)] += 1

    def __iadd__(self, other: DeliveryStats) -> DeliveryStats:
        for name in self.OUTCOMES:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.by_channel.update(other.by_channel)
        return self


# Threads of one delivery run at most: the per-channel limit times the channels, within reason.
_MAX_WORKERS = 64
# What a send came back with: the error it failed with (or None) and the platform's receipt, if any.
Sent = tuple[BaseException | None, Receipt | None]
# The stats field of a recorded outcome (a retry is everything else).
_OUTCOME_STAT = {AttemptStatus.SENT: "sent", AttemptStatus.DEAD: "dead"}


class _Run:
    """One ``deliver_due`` run: gate and start sends in claim order, record them as they finish.

    Everything that touches the database (claiming, gating, recording) happens on the calling
    thread; the pool's threads only send. The outcomes of the sends found finished together are
    recorded in one transaction, and only then do their slots take new sends, so at most
    ``in_flight`` messages per channel are ever sent but unrecorded: a crash re-sends no more.
    Each outcome is recorded while its lease (renewed at the start with twice the channel's
    timeout ahead) still holds. The next batch is claimed as soon as every message of the
    current one has started, so the sends still on their way overlap the claim instead of
    draining to none at each batch's end."""

    recorder: Connection
    pool: Senders[tuple[Leased, float, Lease], Sent]  # a send's message, start and lease; what came of it

    def __init__(self, outbox: Outbox, clock: Callable[[], dt.datetime], stats: DeliveryStats, limit: int,
                 batch: int, stop: threading.Event | None) -> None:
        self.outbox, self.clock, self.stats, self.limit, self.size, self.stop = outbox, clock, stats, limit, batch, stop
        self.blocked: dict[str, dt.datetime] = {}  # channel -> end of a rate window known to be full
        # One lanes for the whole run, so a recipient's message of the next batch still waits for
        # their message of this one; what waits there is always of the latest claim (``lease``).
        self.lanes: Lanes[Leased] = Lanes([], limit, outbox.warm)
        self.lease = Lease("", {})
        self.held: list[tuple[Leased, Sent, float, Lease]] = []  # sent on this thread, not yet recorded

    def stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def claim(self) -> bool:
        """Lease the next batch into the lanes; False if nothing is due and free."""
        owner = lease_owner(self.outbox.worker)
        leased, self.lease = lease_batch(self.recorder, self.clock(), self.size, owner, self.outbox.policy.lease)
        self.lanes.extend(leased)
        return bool(leased)

    def run(self) -> None:
        """Send batch after batch until nothing is due, or ``stop``."""
        outbox, lanes = self.outbox, self.lanes
        drained = False  # a claim found nothing: this run claims no more
        while True:
            if not lanes.waiting and not drained and not self.stopping():
                drained = not self.claim()
            while not self.stopping() and (item := lanes.next()) is not None:
                lease = self.lease
                channel = outbox.channels.get(item.channel)
                skipped = outbox._gate(item, lanes.waiting, lease, self.clock(), channel, self.blocked)
                if skipped is not None:
                    lanes.drop(item)
                    self.stats.count(item.channel, skipped)
                    continue
                assert channel is not None  # _gate marked the message undeliverable otherwise
                lanes.start(item)
                self.send(channel, item, lease)
            if self.held:  # sent here, and their lanes (or every lane) are full: record them
                held, self.held = self.held, []
                self.finish(held)
            elif self.pool.out:
                self.finish([(item, sent, began, lease) for (item, began, lease), sent in self.pool.finished()])
            elif drained or self.stopping():
                break
            # else nothing waits or flies (a message that could start has started): claim the next
        if lanes.waiting:  # stopped: what has not started goes back for others
            release(outbox.sessions, lanes.waiting, self.lease.owner)

    def send(self, channel: Channel, item: Leased, lease: Lease) -> None:
        """Start a send on a thread, or make it here and hold its outcome until its lanes are full
        (``notifications.senders.Pace`` says which). Either way it counts as in flight until its
        outcome is recorded."""
        outbox = self.outbox
        began = time.monotonic()
        if self.limit > 1 and item.channel in outbox.pace.threaded:
            self.pool.start((item, began, lease), partial(outbox._send, channel, item))
            return
        if self.held:
            # Those held must be recorded while their leases hold: if this send could outlast one
            # of them (the margin the gate keeps before a send), record them first.
            margin, now = lease_margin(channel), self.clock()
            if any(held_lease.left(held.id, now) < margin for held, _, _, held_lease in self.held):
                held_now, self.held = self.held, []
                self.finish(held_now)
        cpu = time.thread_time()
        sent = outbox._send(channel, item)
        outbox.pace.note(item.channel, time.monotonic() - began, time.thread_time() - cpu)
        self.held.append((item, sent, began, lease))

    def finish(self, finished: Sequence[tuple[Leased, Sent, float, Lease]]) -> None:
        """Record the outcomes of finished sends together, then free their lanes."""
        policy = self.outbox.policy
        now = self.clock()
        results = [(result_of(item, now, error, began, max_attempts=policy.max_attempts,
                              backoff=self.outbox.backoff, receipt=receipt), lease.owner)
                   for item, (error, receipt), began, lease in finished]
        held_all = record_all(self.recorder, results, self.outbox.worker)
        for (result, _), held in zip(results, held_all, strict=True):
            name = _OUTCOME_STAT.get(result.outcome, "retried") if held else "lost"
            self.stats.count(result.item.channel, name)
            self.lanes.finish(result.item)  # recorded: its slot may take the next send


def lease_margin(channel: Channel) -> float:
    """Seconds of lease a message must have left when a send starts: twice the channel's timeout,
    so the send and the record of its outcome both fit in it."""
    return 2 * getattr(channel, "timeout", 1.0)


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
        self.warm: set[str] = set()  # channels that finished a send: several may fly from now on
        self.pace = Pace()  # which channels' sends are worth a thread

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
        self, now: dt.datetime, *, batch: int = 50, stop: threading.Event | None = None,
        in_flight: int | None = None,
    ) -> DeliveryStats:
        """Send every message due at ``now``, batch by batch, until none is left.

        ``now`` is when the run starts; the run's clock moves on from it in real time, so leases
        and retry times stay true however long the sends take. Up to ``in_flight`` (default: the
        policy's) sends per channel are on their way at once (``notifications.lanes``). When
        ``stop`` is set no new send starts, those in flight are finished and recorded, the rest
        of the batch is released for others, and the run returns.
        """
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError(f"deliver_due needs an aware datetime, got naive {now.isoformat()}")
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        limit = self.policy.in_flight if in_flight is None else in_flight
        if limit < 1:
            raise ValueError(f"in_flight must be at least 1, got {limit}")
        started = time.monotonic()

        def clock() -> dt.datetime:
            return now + dt.timedelta(seconds=time.monotonic() - started)

        run = _Run(self, clock, DeliveryStats(), limit, batch, stop)
        workers = min(_MAX_WORKERS, limit * max(1, len(self.channels)))
        # one connection records every outcome; sends go to the pool only when several may fly
        with self.sessions.kw["bind"].connect() as run.recorder, \
                Senders[tuple[Leased, float, Lease], Sent](workers) as run.pool:
            run.run()
        give_back()  # the run's messages and its send threads' buffers are freed: see engine.heap
        return run.stats

    @staticmethod
    def _send(channel: Channel, item: Leased) -> Sent:
        """Send one message; the error it failed with (or None) and the platform's receipt, if any."""
        try:
            message = item.message()
        except ValueError as exc:  # e.g. an empty key: no retry can fix the row
            return DeliveryError(f"cannot build the message: {exc}", permanent=True), None
        try:
            return None, channel.send(message)
        except DeliveryError as exc:
            return exc, None
        except Exception as exc:
            log.exception("outbox message %s: channel %r failed unexpectedly", item.id, item.channel)
            return exc, None

    def _gate(self, item: Leased, rest: Sequence[Leased], lease: Lease, current: dt.datetime,
              channel: Channel | None, blocked: dict[str, dt.datetime]) -> str | None:
        """None if the message should be sent now, else the stats field of why it is not."""
        if item.id in lease.lost:
            return "lost"
        quiet = (channel is not None and not item.urgent and self.quiet is not None
                 and not self.quiet.allows(current))
        if channel is not None and not quiet and self.limit_for(item.channel) is None and not channel.recipient_windows:
            # Nothing to count or postpone: the database is touched only when the lease runs low.
            # While it is live no other sender can have taken the message.
            if lease.left(item.id, current) < lease_margin(channel):
                renew(self.sessions, rest, lease, current, self.policy.lease)
            return "lost" if item.id in lease.lost else None
        with transaction(self.sessions) as session:
            return self._gate_in(session, item, lease, current, channel, quiet, blocked)

    def _gate_in(self, session: Session, item: Leased, lease: Lease, current: dt.datetime,
                 channel: Channel | None, quiet: bool, blocked: dict[str, dt.datetime]) -> str | None:
        # Renewing the lease just before the send means it only has to outlast one send; if it
        # already lapsed and someone else holds the message, leave it to them.
        until = current + dt.timedelta(seconds=self.policy.lease)
        if not guarded(session, item.id, lease.owner, lease_until=until):
            lease.lost.add(item.id)
            return "lost"
        lease.until[item.id] = until
        if channel is None:
            log.warning("outbox message %s: channel %r is not configured", item.id, item.channel)
            guarded(session, item.id, lease.owner, status=OutboxStatus.UNDELIVERABLE, lease_owner=None,
                    lease_until=None, last_error=f"channel {item.channel!r} is not configured")
            return "undeliverable"
        if quiet:
            assert self.quiet is not None
            wait_until: dt.datetime | None = self.quiet.next_open(current)
        else:
            wait_until = self._rate_wait(session, item.channel, current, blocked)
            if wait_until is None:  # the platform drops what is over a person's limit: wait for it here
                wait_until = recipient_wait(session, channel, item.address, current)
        if wait_until is None:
            return None
        guarded(session, item.id, lease.owner, next_attempt_at=wait_until, lease_owner=None,
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
        if row.status == OutboxStatus.SENT:
            when = f" at {row.sent_at.isoformat()}" if row.sent_at else ""
            raise Refused(f"outbox message {message_id} was already sent{when}; it is not sent twice")
        if row.status == OutboxStatus.PENDING:
            if row.next_attempt_at is None or row.next_attempt_at > now:
                row.next_attempt_at = now
            return row
        if row.status not in (OutboxStatus.DEAD, OutboxStatus.UNDELIVERABLE):
            raise Refused(
                f"outbox message {message_id} is {row.status}; only dead or undeliverable messages are retried",
                hint="lift the silence to let its reminders through" if row.status == OutboxStatus.SILENCED else None,
            )
        row.status, row.attempts, row.next_attempt_at = OutboxStatus.PENDING, 0, now
        row.lease_owner = row.lease_until = None
        session.flush()
        return row

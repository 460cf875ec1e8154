"""Delivering outbox messages: claim, send, record, retry with backoff, give up visibly.

Modelled on healthchecks' ``sendalerts`` claim loop and Alertmanager's notify stage:

* **Claim** a batch of due messages in one short transaction by writing a lease on them
  (``lease_owner``, ``lease_until``). Finding the due messages in due order reads every pending
  row, so one scan lists up to ``_PREFETCH`` batches of candidates and the claims that follow take
  them in order, each one checking again that its rows are still due and free (others may have
  taken them); the list is scanned again when it runs out or is ``_RESCAN_AFTER`` seconds old, so a
  message that falls due during a run waits for at most that (plus the batch in hand). On
  PostgreSQL the rows are claimed with ``FOR UPDATE SKIP LOCKED`` so concurrent daemons take
  disjoint batches without waiting on each other; on SQLite ``BEGIN IMMEDIATE`` makes the
  select-and-mark atomic. A sender that crashes leaves its lease behind; it expires and another
  sender picks the message up.
* **Send** each message outside any transaction: a slow SMTP server must not hold row locks or
  SQLite's write lock. Every send starts with at least ``_RENEW_BELOW`` (90%) of the lease ahead of
  it: while the batch's lease is that fresh (a fast channel gets through a batch in milliseconds)
  nothing is written before the send, since no other sender can take a live lease; once it runs
  lower, the lease of the rest of the batch is renewed (and checked) in one transaction. So a lease
  only has to outlast one send, not a whole batch. A message that must be counted against a rate
  limit, postponed or marked undeliverable still gets its own transaction (renewing and checking
  its lease there, as before).
* **Record** each outcome, guarded by the lease (``WHERE id = :id AND lease_owner = :claim``): a
  sender whose lease expired and was taken over cannot overwrite what the new owner wrote. The
  results of consecutive fast sends are written together, one row update and one attempt row per
  message in one transaction. After every send they are written if there are ``_RECORD_EVERY`` of
  them, if the first of them started ``_RECORD_WAIT`` seconds ago or more (so a slow send is
  recorded at once, as before) or if any of their leases has fallen below the renewal mark; and
  always at the end of a batch, on ``stop``, and (best effort) when the run fails.

Delivery is at least once: a crash between a send and its record means a second send with the
same key (Message-ID / Idempotency-Key / 编号 line), which the receiver can recognise. With results
written together, a crash can leave unrecorded both the send in hand and the sends that started
less than ``_RECORD_WAIT`` seconds before it (at most ``_RECORD_EVERY``). Nothing is dropped
silently: unknown channel -> ``undeliverable``, too many failures -> ``dead``, both with
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
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import NotFound, Refused
from engine.store.db import transaction
from engine.store.models import DeliveryAttempt, OutboxMessage
from engine.store.types import UTCDateTime
from notifications.channels.base import Channel, DeliveryError
from notifications.message import OutgoingMessage
from notifications.quiet import QuietHours
from notifications.ratelimit import DEFAULTS, Limit, take

log = logging.getLogger("duban.outbox")

_MAX_ERROR = 2000  # characters of an error kept on the row; a server can answer with a whole page
_OWNER_LEN = 100  # outbox.lease_owner is String(100)
# A send starts only with at least this share of the lease ahead of it; below it the lease of the
# rest of the batch is renewed first. Close to 1 so the guarantee stays close to "a fresh lease per
# send": renewing every tenth of a lease costs nothing next to sends that take that long.
_RENEW_BELOW = 0.9
_RECORD_EVERY = 50  # results written together at most
_RECORD_WAIT = 0.25  # seconds after the first of them started; a slower send is recorded at once
_PREFETCH = 20  # batches of candidates one scan for due messages lists
_RESCAN_AFTER = 1.0  # seconds before the candidates are listed again, used up or not


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


# The statements of every claim and every write, built once (Core, with bound parameters) rather
# than per call: at hundreds of messages a second, building them was a good part of the cost.
_OUTBOX = OutboxMessage.__table__
_C = _OUTBOX.c
_NOW = bindparam("b_now", type_=UTCDateTime())
_DUE = (
    _C.status == "pending",
    # A pending row without a time was never scheduled: due now rather than never.
    or_(_C.next_attempt_at.is_(None), _C.next_attempt_at <= _NOW),
    or_(_C.lease_until.is_(None), _C.lease_until < _NOW),
)
_ORDER = (_C.next_attempt_at, _C.id)
_SCAN = select(_C.id).where(*_DUE).order_by(*_ORDER).limit(bindparam("b_limit"))
_PICK = select(_C.id).where(_C.id.in_(bindparam("b_ids", expanding=True)), *_DUE)
_PICK_SKIP_LOCKED = _PICK.with_for_update(skip_locked=True)  # PostgreSQL
_MARK = (
    update(_OUTBOX).where(_C.id.in_(bindparam("b_ids", expanding=True)))
    .values(lease_owner=bindparam("b_claim"), lease_until=bindparam("b_until"))
)
_CLAIMED_ROWS = (
    select(*(_C[name] for name in _Claimed.__dataclass_fields__))
    .where(_C.id.in_(bindparam("b_ids", expanding=True)), _C.lease_owner == bindparam("b_claim"))
    .order_by(*_ORDER)
)
_HELD = (
    select(_C.id)
    .where(_C.id.in_(bindparam("b_ids", expanding=True)), _C.lease_owner == bindparam("b_claim"),
           _C.status == "pending")
    .order_by(_C.id)
    .with_for_update()  # rendered on PostgreSQL only
)
# The record of a successful send; executed for several rows at once, each still guarded.
_SENT = (
    update(_OUTBOX)
    .where(_C.id == bindparam("b_id"), _C.lease_owner == bindparam("b_claim"), _C.status == "pending")
    .values(status="sent", attempts=bindparam("b_attempts"), sent_at=bindparam("b_at"), last_error="",
            lease_owner=None, lease_until=None)
)


@dataclass
class _Lease:
    """What this sender holds of one claimed batch: the lease it wrote on each row, and the rows
    found taken over by another sender."""

    claim: str
    until: dict[int, dt.datetime]
    lost: set[int] = field(default_factory=set)

    def left(self, message_id: int, current: dt.datetime) -> float:
        return (self.until[message_id] - current).total_seconds()


@dataclass
class _Candidates:
    """Ids a scan found due, in due order, not yet tried by a claim."""

    ids: deque[int] = field(default_factory=deque)
    scanned: float = 0.0  # time.monotonic() of the scan


class _Unwritten(list):  # type: ignore[type-arg]
    """Results waiting to be written, and the earliest end of their leases."""

    earliest: dt.datetime | None = None

    def add(self, result: _Result, until: dt.datetime) -> None:
        self.append(result)
        if self.earliest is None or until < self.earliest:
            self.earliest = until

    def clear(self) -> None:
        super().clear()
        self.earliest = None


@dataclass
class _Result:
    """The outcome of one send, waiting to be written."""

    item: _Claimed
    at: dt.datetime
    outcome: str  # sent | retry | dead
    text: str
    values: dict[str, Any]
    seconds: float
    started: float  # time.monotonic() when the send began


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
        candidates = _Candidates()
        while not (stop is not None and stop.is_set()):
            claim = self._claim_token()
            claimed, lease = self._claim(clock(), batch, claim, candidates)
            if not claimed:
                break
            results = _Unwritten()
            try:
                for index, item in enumerate(claimed):
                    if stop is not None and stop.is_set():
                        self._write(results, lease, stats)
                        self._release(claimed[index:], claim)
                        return stats
                    result = self._deliver(item, claimed[index:], lease, clock, stats, blocked)
                    if result is not None:
                        results.add(result, lease.until[item.id])
                    if results and self._write_now(results, clock()):
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

    def _claim_token(self) -> str:
        # Worker name plus a random part: two Outboxes in one process (same host:pid) or a
        # restarted container (same hostname, pid 1) still hold distinguishable claims.
        suffix = secrets.token_hex(6)
        return f"{self.worker[: _OWNER_LEN - len(suffix) - 1]}#{suffix}"

    def _claim(self, current: dt.datetime, batch: int, claim: str,
               candidates: _Candidates) -> tuple[list[_Claimed], _Lease]:
        until = current + dt.timedelta(seconds=self.policy.lease)
        with transaction(self.sessions) as session:
            conn = session.connection()
            # Rows another daemon is claiming right now are skipped, not waited for. SQLite:
            # BEGIN IMMEDIATE already holds the write lock, so select-and-mark is atomic.
            pick = _PICK_SKIP_LOCKED if conn.dialect.name == "postgresql" else _PICK
            rescanned = False
            while True:
                if not candidates.ids or time.monotonic() - candidates.scanned >= _RESCAN_AFTER:
                    if rescanned:  # everything a fresh scan listed is taken: others are on it
                        return [], _Lease(claim, {})
                    candidates.ids = deque(conn.execute(
                        _SCAN, {"b_now": current, "b_limit": batch * _PREFETCH}).scalars())
                    candidates.scanned, rescanned = time.monotonic(), True
                    if not candidates.ids:
                        return [], _Lease(claim, {})
                chunk = [candidates.ids.popleft() for _ in range(min(batch, len(candidates.ids)))]
                # Only those still due and free: another sender may have claimed some since the scan.
                ids = list(conn.execute(pick, {"b_ids": chunk, "b_now": current}).scalars())
                if ids:
                    break
            # The rows are found by primary key (lease_owner has no index: finding them by it would
            # read the whole table at every claim).
            conn.execute(_MARK, {"b_ids": ids, "b_claim": claim, "b_until": until})
            rows = conn.execute(_CLAIMED_ROWS, {"b_ids": ids, "b_claim": claim}).all()
        claimed = [_Claimed(**row._mapping) for row in rows]
        return claimed, _Lease(claim, {item.id: until for item in claimed})

    def _deliver(self, item: _Claimed, rest: Sequence[_Claimed], lease: _Lease,
                 clock: Callable[[], dt.datetime], stats: DeliveryStats,
                 blocked: dict[str, dt.datetime]) -> _Result | None:
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
        return self._result(item, clock(), error, started)

    def _prepare(self, item: _Claimed, rest: Sequence[_Claimed], lease: _Lease, current: dt.datetime,
                 channel: Channel | None, blocked: dict[str, dt.datetime]) -> str | None:
        """None if the message should be sent now, else the stats field of why it is not."""
        if item.id in lease.lost:
            return "lost"
        quiet = (channel is not None and not item.urgent and self.quiet is not None
                 and not self.quiet.allows(current))
        if channel is not None and not quiet and self.limit_for(item.channel) is None:
            # Nothing to count or postpone: the database is touched only when the lease runs low.
            # While it is live no other sender can have taken the message.
            if lease.left(item.id, current) < self.policy.lease * _RENEW_BELOW:
                self._renew(rest, lease, current)
            return "lost" if item.id in lease.lost else None
        with transaction(self.sessions) as session:
            return self._prepare_in(session, item, lease, current, channel, quiet, blocked)

    def _prepare_in(self, session: Session, item: _Claimed, lease: _Lease, current: dt.datetime,
                    channel: Channel | None, quiet: bool, blocked: dict[str, dt.datetime]) -> str | None:
        # Renewing the lease just before the send means it only has to outlast one send; if it
        # already lapsed and someone else holds the message, leave it to them.
        until = current + dt.timedelta(seconds=self.policy.lease)
        if not self._guarded(session, item.id, lease.claim, lease_until=until):
            lease.lost.add(item.id)
            return "lost"
        lease.until[item.id] = until
        if channel is None:
            log.warning("outbox message %s: channel %r is not configured", item.id, item.channel)
            self._guarded(session, item.id, lease.claim, status="undeliverable", lease_owner=None,
                          lease_until=None, last_error=f"channel {item.channel!r} is not configured")
            return "undeliverable"
        if quiet:
            assert self.quiet is not None
            wait_until: dt.datetime | None = self.quiet.next_open(current)
        else:
            wait_until = self._rate_wait(session, item.channel, current, blocked)
        if wait_until is None:
            return None
        self._guarded(session, item.id, lease.claim, next_attempt_at=wait_until, lease_owner=None,
                      lease_until=None)
        return "postponed"

    def _renew(self, rest: Sequence[_Claimed], lease: _Lease, current: dt.datetime) -> None:
        """Renew the lease of the batch's unsent messages in one transaction; note those lost."""
        ids = [i.id for i in rest if i.id not in lease.lost]
        until = current + dt.timedelta(seconds=self.policy.lease)
        with transaction(self.sessions) as session:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids), OutboxMessage.lease_owner == lease.claim,
                       OutboxMessage.status == "pending")
                .values(lease_until=until)
                .execution_options(synchronize_session=False)
            )
            held = set(session.scalars(select(OutboxMessage.id).where(
                OutboxMessage.id.in_(ids), OutboxMessage.lease_owner == lease.claim,
                OutboxMessage.status == "pending")))
        for message_id in ids:
            if message_id in held:
                lease.until[message_id] = until
            else:
                lease.lost.add(message_id)

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

    def _result(self, item: _Claimed, current: dt.datetime, error: BaseException | None,
                started: float) -> _Result:
        """The outcome of one send and the row values that record it."""
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
        return _Result(item, current, outcome, text, values, time.monotonic() - started, started)

    def _write_now(self, results: _Unwritten, current: dt.datetime) -> bool:
        """Whether the waiting results must be written before the next send."""
        assert results.earliest is not None
        return (
            len(results) >= _RECORD_EVERY
            or time.monotonic() - results[0].started >= _RECORD_WAIT
            # never past the point where a lease would be renewed before a send
            or (results.earliest - current).total_seconds() < self.policy.lease * _RENEW_BELOW
        )

    def _write(self, results: _Unwritten, lease: _Lease, stats: DeliveryStats) -> None:
        """Write the outcome of each send, where our claim still holds, and the attempt either way.

        One transaction for all of them; each row is updated only while our claim holds it.
        ``results`` is emptied as soon as the transaction has committed, so a failure after that
        cannot make the same results be written twice.
        """
        if not results:
            return
        claim = lease.claim
        ids = [r.item.id for r in results]
        with transaction(self.sessions) as session:
            # Which rows are still ours, locked until the commit on PostgreSQL (SQLite's BEGIN
            # IMMEDIATE holds the write lock already), so the answer stays true while we write.
            conn = session.connection()
            owned = set(conn.execute(_HELD, {"b_ids": ids, "b_claim": claim}).scalars())
            sent = [{"b_id": r.item.id, "b_claim": claim, "b_attempts": r.values["attempts"], "b_at": r.at}
                    for r in results if r.outcome == "sent" and r.item.id in owned]
            if sent:
                conn.execute(_SENT, sent)
            for r in results:
                if r.outcome != "sent" and r.item.id in owned:
                    self._guarded(session, r.item.id, claim, **r.values)
            others = [i for i in ids if i not in owned]
            # Another sender took these over; its record stands. The attempt still happened (and
            # may have reached the receiver), so the history says so, unless the row is gone.
            present = set(session.scalars(select(OutboxMessage.id).where(OutboxMessage.id.in_(others)))) \
                if others else set()
            attempts = []
            for r in results:
                text = r.text
                if r.item.id not in owned:
                    if r.item.id not in present:
                        continue
                    text = (text + "; " if text else "") + "lease lost to another sender, result not applied"
                attempts.append({
                    "message_id": r.item.id, "at": r.at, "channel": r.item.channel, "recipient": r.item.recipient,
                    "status": r.outcome, "error": text, "seconds": r.seconds, "worker": self.worker,
                })
            if attempts:
                conn.execute(insert(DeliveryAttempt.__table__), attempts)
        done = list(results)
        results.clear()
        for r in done:
            message_id = r.item.id
            if message_id not in owned:
                if message_id in present:
                    log.warning("outbox message %s: lease lapsed during the send; another sender has it",
                                message_id)
                    stats.lost += 1
                continue
            if r.outcome == "dead":
                log.error("outbox message %s via %r is dead: %s", message_id, r.item.channel, r.text)
            name = {"sent": "sent", "dead": "dead", "retry": "retried"}[r.outcome]
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

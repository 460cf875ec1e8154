"""Claiming due outbox messages: the scan for candidates, the lease, and the writes it guards.

The "Claim" step of ``notifications.outbox`` (see its module docstring for the whole loop): one
scan lists up to ``PREFETCH`` batches of due ids in due order, and each claim takes the next batch
of them that is still due and free, writing a lease (``lease_owner``, ``lease_until``) on the rows
in one short transaction. Every later write to a claimed row goes through ``guarded``, so a sender
whose lease lapsed and was taken over cannot overwrite what the new owner wrote.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.store.db import transaction
from engine.store.models import OutboxMessage
from engine.store.types import UTCDateTime
from notifications.message import OutgoingMessage

OWNER_LEN = 100  # outbox.lease_owner is String(100)
# A send starts only with at least this share of the lease ahead of it; below it the lease of the
# rest of the batch is renewed first. Close to 1 so the guarantee stays close to "a fresh lease per
# send": renewing every tenth of a lease costs nothing next to sends that take that long.
RENEW_BELOW = 0.9
PREFETCH = 20  # batches of candidates one scan for due messages lists
RESCAN_AFTER = 1.0  # seconds before the candidates are listed again, used up or not


@dataclass(frozen=True)
class Claimed:
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


# The statements of every claim, built once (Core, with bound parameters) rather than per call:
# at hundreds of messages a second, building them was a good part of the cost.
OUTBOX = OutboxMessage.__table__
_C = OUTBOX.c
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
    update(OUTBOX).where(_C.id.in_(bindparam("b_ids", expanding=True)))
    .values(lease_owner=bindparam("b_claim"), lease_until=bindparam("b_until"))
)
_CLAIMED_ROWS = (
    select(*(_C[name] for name in Claimed.__dataclass_fields__))
    .where(_C.id.in_(bindparam("b_ids", expanding=True)), _C.lease_owner == bindparam("b_claim"))
    .order_by(*_ORDER)
)


@dataclass
class Lease:
    """What this sender holds of one claimed batch: the lease it wrote on each row, and the rows
    found taken over by another sender."""

    claim: str
    until: dict[int, dt.datetime]
    lost: set[int] = field(default_factory=set)

    def left(self, message_id: int, current: dt.datetime) -> float:
        return (self.until[message_id] - current).total_seconds()


@dataclass
class Candidates:
    """Ids a scan found due, in due order, not yet tried by a claim."""

    ids: deque[int] = field(default_factory=deque)
    scanned: float = 0.0  # time.monotonic() of the scan


def claim_token(worker: str) -> str:
    """A claim name for one batch: ``worker`` plus a random part.

    Two Outboxes in one process (same host:pid) or a restarted container (same hostname, pid 1)
    still hold distinguishable claims.
    """
    suffix = secrets.token_hex(6)
    return f"{worker[: OWNER_LEN - len(suffix) - 1]}#{suffix}"


def claim_batch(sessions: sessionmaker[Session], current: dt.datetime, batch: int, claim: str,
                candidates: Candidates, lease_seconds: float) -> tuple[list[Claimed], Lease]:
    """Claim up to ``batch`` due messages under ``claim``; none if nothing is due and free."""
    until = current + dt.timedelta(seconds=lease_seconds)
    with transaction(sessions) as session:
        conn = session.connection()
        # Rows another daemon is claiming right now are skipped, not waited for. SQLite:
        # BEGIN IMMEDIATE already holds the write lock, so select-and-mark is atomic.
        pick = _PICK_SKIP_LOCKED if conn.dialect.name == "postgresql" else _PICK
        rescanned = False
        while True:
            if not candidates.ids or time.monotonic() - candidates.scanned >= RESCAN_AFTER:
                if rescanned:  # everything a fresh scan listed is taken: others are on it
                    return [], Lease(claim, {})
                candidates.ids = deque(conn.execute(
                    _SCAN, {"b_now": current, "b_limit": batch * PREFETCH}).scalars())
                candidates.scanned, rescanned = time.monotonic(), True
                if not candidates.ids:
                    return [], Lease(claim, {})
            chunk = [candidates.ids.popleft() for _ in range(min(batch, len(candidates.ids)))]
            # Only those still due and free: another sender may have claimed some since the scan.
            ids = list(conn.execute(pick, {"b_ids": chunk, "b_now": current}).scalars())
            if ids:
                break
        # The rows are found by primary key (lease_owner has no index: finding them by it would
        # read the whole table at every claim).
        conn.execute(_MARK, {"b_ids": ids, "b_claim": claim, "b_until": until})
        rows = conn.execute(_CLAIMED_ROWS, {"b_ids": ids, "b_claim": claim}).all()
    claimed = [Claimed(**row._mapping) for row in rows]
    return claimed, Lease(claim, {item.id: until for item in claimed})


def renew(sessions: sessionmaker[Session], rest: Sequence[Claimed], lease: Lease, current: dt.datetime,
          lease_seconds: float) -> None:
    """Renew the lease of the batch's unsent messages in one transaction; note those lost."""
    ids = [i.id for i in rest if i.id not in lease.lost]
    until = current + dt.timedelta(seconds=lease_seconds)
    with transaction(sessions) as session:
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


# -- row updates, all guarded by the claim ---------------------------------------------------


def guarded(session: Session, message_id: int, claim: str, **values: Any) -> bool:
    """Update the row only while our claim holds it; True if it did."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.lease_owner == claim,
               OutboxMessage.status == "pending")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def release(sessions: sessionmaker[Session], items: Sequence[Claimed], claim: str) -> None:
    """Give unsent claims back so another sender need not wait for them to expire."""
    with transaction(sessions) as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_([i.id for i in items]), OutboxMessage.lease_owner == claim)
            .values(lease_owner=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )

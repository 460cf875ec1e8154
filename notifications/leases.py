"""Leasing due outbox messages: the lease, and the writes it guards.

The "Claim" step of ``notifications.outbox``, named for the lease it writes ("claims" are what a
re-imported ledger sheet says, ``engine.ledger.claims``): one short transaction picks the due, unleased
messages in due order (a range read of ``ix_outbox_status_next_attempt``; ``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so concurrent daemons take disjoint batches without waiting on each other;
SQLite's ``BEGIN IMMEDIATE`` makes select-and-mark atomic) and writes a lease on them
(``lease_owner``, ``lease_until``). Every later write to a claimed row goes through ``guarded``,
so a sender whose lease lapsed and was taken over cannot overwrite what the new owner wrote.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.store.db import transaction
from engine.store.types import UTCDateTime
from notifications.message import OutgoingMessage
from notifications.store import OUTBOX, OutboxMessage, OutboxStatus

OWNER_LEN = 100  # outbox.lease_owner is String(100)


@dataclass(frozen=True)
class Leased:
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


@dataclass
class Lease:
    """What this sender holds of one claimed batch: the end of the lease of each row, and the rows
    found taken over by another sender."""

    owner: str  # the lease_owner written on the rows (``lease_owner()``)
    until: dict[int, dt.datetime]
    lost: set[int] = field(default_factory=set)

    def left(self, message_id: int, current: dt.datetime) -> float:
        return (self.until[message_id] - current).total_seconds()


# Built once (Core, bound parameters): a lease is taken for every batch.
_C = OUTBOX.c
_NOW = bindparam("b_now", type_=UTCDateTime())
_DUE = (_C.status == OutboxStatus.PENDING, _C.next_attempt_at <= _NOW,
        or_(_C.lease_until.is_(None), _C.lease_until < _NOW))
_PICK = (select(_C.id, func.length(_C.text) + func.coalesce(func.length(_C.html), 0))
         .where(*_DUE).order_by(_C.next_attempt_at, _C.id).limit(bindparam("b_limit")))
# What one batch may hold in message text (characters of text + HTML; the JSON data is about as
# large again): a catch-up's digests of 500 items are ~200 KB each, and 50 of them leased, parsed
# and sent at once took the daemon past 380 MB. At least one message is leased, whatever its size.
BATCH_CHARS = 4_000_000
_PICK_SKIP_LOCKED = _PICK.with_for_update(skip_locked=True)
_MARK = (update(OUTBOX).where(_C.id.in_(bindparam("b_ids", expanding=True)))
         .values(lease_owner=bindparam("b_owner"), lease_until=bindparam("b_until")))
_CLAIMED_ROWS = (select(*(_C[name] for name in Leased.__dataclass_fields__))
                 .where(_C.id.in_(bindparam("b_ids", expanding=True))).order_by(_C.next_attempt_at, _C.id))


def lease_owner(worker: str) -> str:
    """The lease owner of one batch: ``worker`` plus a random part.

    Two Outboxes in one process (same host:pid) or a restarted container (same hostname, pid 1)
    still hold distinguishable leases.
    """
    suffix = secrets.token_hex(6)
    return f"{worker[: OWNER_LEN - len(suffix) - 1]}#{suffix}"


def lease_batch(conn: Connection, current: dt.datetime, batch: int, owner: str,
                lease_seconds: float) -> tuple[list[Leased], Lease]:
    """Lease up to ``batch`` due messages to ``owner``; none if nothing is due and free.

    ``conn`` is a connection of the writing engine held for the run (a Session per batch cost a
    millisecond); the lease is its own short transaction on it.
    """
    until = current + dt.timedelta(seconds=lease_seconds)
    with conn.begin():
        pick = _PICK_SKIP_LOCKED if conn.dialect.name == "postgresql" else _PICK
        ids: list[int] = []
        held = 0
        for message_id, size in conn.execute(pick, {"b_now": current, "b_limit": batch}):
            held += size or 0
            if ids and held > BATCH_CHARS:
                break
            ids.append(message_id)
        if not ids:
            return [], Lease(owner, {})
        conn.execute(_MARK, {"b_ids": ids, "b_owner": owner, "b_until": until})
        rows = conn.execute(_CLAIMED_ROWS, {"b_ids": ids}).all()
    leased = [Leased(**row._mapping) for row in rows]
    return leased, Lease(owner, {item.id: until for item in leased})


def renew(sessions: sessionmaker[Session], rest: Sequence[Leased], lease: Lease, current: dt.datetime,
          lease_seconds: float) -> None:
    """Renew the lease of the batch's unsent messages in one transaction; note those lost."""
    ids = [i.id for i in rest if i.id not in lease.lost]
    until = current + dt.timedelta(seconds=lease_seconds)
    held_by_us = (OutboxMessage.id.in_(ids), OutboxMessage.lease_owner == lease.owner,
                  OutboxMessage.status == OutboxStatus.PENDING)
    with transaction(sessions) as session:
        session.execute(update(OutboxMessage).where(*held_by_us).values(lease_until=until)
                        .execution_options(synchronize_session=False))
        held = set(session.scalars(select(OutboxMessage.id).where(*held_by_us)))
    for message_id in ids:
        if message_id in held:
            lease.until[message_id] = until
        else:
            lease.lost.add(message_id)


def guarded(session: Session, message_id: int, owner: str, **values: Any) -> bool:
    """Update the row only while our lease holds it; True if it did."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.lease_owner == owner,
               OutboxMessage.status == OutboxStatus.PENDING)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def pid_alive(pid: int) -> bool:
    """Whether a process of this machine with ``pid`` exists (a killed daemon's does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def release_dead(sessions: sessionmaker[Session], host: str, alive: Callable[[int], bool] = pid_alive) -> int:
    """Give back the leases held by daemons of ``host`` that no longer run (killed with -9), so a
    restarted daemon need not wait out their lease; returns how many messages were freed."""
    prefix = f"{host}:"
    with transaction(sessions) as session:
        owners = session.scalars(select(OutboxMessage.lease_owner).distinct().where(
            OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.lease_owner.like(f"{prefix}%"))).all()
        dead = []
        for owner in owners:
            pid = (owner or "")[len(prefix):].split("#", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and not alive(int(pid)):
                dead.append(owner)
        if not dead:
            return 0
        result = session.execute(update(OutboxMessage).where(
            OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.lease_owner.in_(dead))
            .values(lease_owner=None, lease_until=None).execution_options(synchronize_session=False))
        return int(result.rowcount)  # type: ignore[attr-defined]


def release(sessions: sessionmaker[Session], items: Sequence[Leased], owner: str) -> None:
    """Give unsent messages back so another sender need not wait for their lease to expire."""
    if not items:
        return
    with transaction(sessions) as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_([i.id for i in items]), OutboxMessage.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )

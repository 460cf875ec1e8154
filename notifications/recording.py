"""Recording the outcome of sends: the row values of each outcome, written together in batches.

The "Record" step of ``notifications.outbox`` (see its module docstring for the whole loop). Each
send's outcome becomes a ``SendResult`` holding the row values that record it; results wait in an
``Unwritten`` list until ``write_now`` says they must be written (``RECORD_EVERY`` of them, the
first started ``RECORD_WAIT`` seconds ago, or a lease near its renewal mark), and ``write`` puts
them all in one transaction, each row updated only while our claim still holds it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.store.db import transaction
from engine.store.models import DeliveryAttempt, OutboxMessage
from notifications.channels.base import DeliveryError
from notifications.claims import OUTBOX, RENEW_BELOW, Claimed, Lease, guarded

log = logging.getLogger("duban.outbox")

_MAX_ERROR = 2000  # characters of an error kept on the row; a server can answer with a whole page
RECORD_EVERY = 50  # results written together at most
RECORD_WAIT = 0.25  # seconds after the first of them started; a slower send is recorded at once

# The statements of every write, built once (Core, with bound parameters) rather than per call:
# at hundreds of messages a second, building them was a good part of the cost.
_C = OUTBOX.c
_HELD = (
    select(_C.id)
    .where(_C.id.in_(bindparam("b_ids", expanding=True)), _C.lease_owner == bindparam("b_claim"),
           _C.status == "pending")
    .order_by(_C.id)
    .with_for_update()  # rendered on PostgreSQL only
)
# The record of a successful send; executed for several rows at once, each still guarded.
_SENT = (
    update(OUTBOX)
    .where(_C.id == bindparam("b_id"), _C.lease_owner == bindparam("b_claim"), _C.status == "pending")
    .values(status="sent", attempts=bindparam("b_attempts"), sent_at=bindparam("b_at"), last_error="",
            lease_owner=None, lease_until=None)
)


@dataclass
class SendResult:
    """The outcome of one send, waiting to be written."""

    item: Claimed
    at: dt.datetime
    outcome: str  # sent | retry | dead
    text: str
    values: dict[str, Any]
    seconds: float
    started: float  # time.monotonic() when the send began


class Unwritten(list):  # type: ignore[type-arg]
    """Results waiting to be written, and the earliest end of their leases."""

    earliest: dt.datetime | None = None

    def add(self, result: SendResult, until: dt.datetime) -> None:
        self.append(result)
        if self.earliest is None or until < self.earliest:
            self.earliest = until

    def clear(self) -> None:
        super().clear()
        self.earliest = None


def describe(error: BaseException) -> str:
    """The error as kept on the row and in the attempt: its message, cut to ``_MAX_ERROR``."""
    text = error.message if isinstance(error, DeliveryError) else f"{type(error).__name__}: {error}"
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 1] + "…"


def result_of(item: Claimed, current: dt.datetime, error: BaseException | None, started: float, *,
              max_attempts: int, backoff: Callable[[int], float]) -> SendResult:
    """The outcome of one send and the row values that record it."""
    attempts = item.attempts + 1
    values: dict[str, Any] = {"attempts": attempts, "lease_owner": None, "lease_until": None}
    if error is None:
        outcome, text = "sent", ""
        values.update(status="sent", sent_at=current, last_error="")
    else:
        text = describe(error)
        permanent = isinstance(error, DeliveryError) and error.permanent
        if permanent or attempts >= max_attempts:
            outcome = "dead"
            values.update(status="dead", last_error=text)
        else:
            outcome = "retry"
            hint = error.retry_after if isinstance(error, DeliveryError) else None
            wait = max(backoff(attempts), hint or 0.0)
            values.update(last_error=text, next_attempt_at=current + dt.timedelta(seconds=wait))
    return SendResult(item, current, outcome, text, values, time.monotonic() - started, started)


def write_now(results: Unwritten, current: dt.datetime, lease_seconds: float) -> bool:
    """Whether the waiting results must be written before the next send."""
    assert results.earliest is not None
    return (
        len(results) >= RECORD_EVERY
        or time.monotonic() - results[0].started >= RECORD_WAIT
        # never past the point where a lease would be renewed before a send
        or (results.earliest - current).total_seconds() < lease_seconds * RENEW_BELOW
    )


def write(sessions: sessionmaker[Session], results: Unwritten, lease: Lease, worker: str) -> Counter[str]:
    """Write the outcome of each send, where our claim still holds, and the attempt either way.

    One transaction for all of them; each row is updated only while our claim holds it.
    ``results`` is emptied as soon as the transaction has committed, so a failure after that
    cannot make the same results be written twice. Returns what to add to the run's
    ``DeliveryStats``, by field name.
    """
    counts: Counter[str] = Counter()
    if not results:
        return counts
    claim = lease.claim
    ids = [r.item.id for r in results]
    with transaction(sessions) as session:
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
                guarded(session, r.item.id, claim, **r.values)
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
                "status": r.outcome, "error": text, "seconds": r.seconds, "worker": worker,
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
                counts["lost"] += 1
            continue
        if r.outcome == "dead":
            log.error("outbox message %s via %r is dead: %s", message_id, r.item.channel, r.text)
        counts[{"sent": "sent", "dead": "dead", "retry": "retried"}[r.outcome]] += 1
    return counts

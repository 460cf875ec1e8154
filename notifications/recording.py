"""Recording the outcome of one send: the row's new values, guarded by the lease, and the attempt.

The "Record" step of ``notifications.outbox``. The outcomes of the sends that finished together
are written in one transaction before any send takes their place, so a crash re-sends at most the
messages that were in flight. A send that came back with a ``Receipt`` (someone missed, or the platform will say later) leaves a
``delivery_reports`` row in the same transaction (``notifications.reports`` follows it up).

A rate-limited answer is the platform saying "not now", not a failure of the message: it waits the
platform's window and does not count towards ``max_attempts`` (up to three times as many tries), so
a notice over a limit waits instead of vanishing.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from engine.store.prepared import PreparedSet, driver_transaction
from engine.store.types import UTCDateTime
from notifications.channels.base import DeliveryError
from notifications.channels.receipt import Receipt
from notifications.leases import Leased
from notifications.store import DELIVERY_ATTEMPTS, DELIVERY_REPORTS, OUTBOX, AttemptStatus, OutboxStatus

log = logging.getLogger("duban.outbox")

_MAX_ERROR = 2000  # characters of an error kept on the row; a server can answer with a whole page
# DingTalk's asynchronous send is usually done within seconds; five minutes lets a large batch
# finish before getsendresult is asked (it answers for 24 hours).
FOLLOW_UP_AFTER = dt.timedelta(minutes=5)
_RATE_LIMITED_TRIES = 3  # times max_attempts a message may be refused "for now"


@dataclass
class SendResult:
    """The outcome of one send."""

    item: Leased
    at: dt.datetime
    outcome: AttemptStatus
    text: str
    values: dict[str, Any]
    seconds: float
    receipt: Receipt | None = None


def describe(error: BaseException) -> str:
    """The error as kept on the row and in the attempt: its message, cut to ``_MAX_ERROR``."""
    text = error.message if isinstance(error, DeliveryError) else f"{type(error).__name__}: {error}"
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 1] + "…"


def result_of(item: Leased, current: dt.datetime, error: BaseException | None, started: float, *,
              max_attempts: int, backoff: Callable[[int], float], receipt: Receipt | None = None) -> SendResult:
    """The outcome of one send and the row values that record it."""
    attempts = item.attempts + 1
    values: dict[str, Any] = {"attempts": attempts, "lease_owner": None, "lease_until": None}
    if error is None:
        outcome, text = AttemptStatus.SENT, ""
        values.update(status=OutboxStatus.SENT, sent_at=current, last_error="")
    else:
        text = describe(error)
        permanent = isinstance(error, DeliveryError) and error.permanent
        waiting = isinstance(error, DeliveryError) and error.rate_limited and attempts < _RATE_LIMITED_TRIES * max_attempts
        if permanent or (attempts >= max_attempts and not waiting):
            outcome = AttemptStatus.DEAD
            values.update(status=OutboxStatus.DEAD, last_error=text)
        else:
            outcome = AttemptStatus.RETRY
            hint = error.retry_after if isinstance(error, DeliveryError) else None
            if isinstance(error, DeliveryError) and error.rate_limited and hint is not None:
                wait = max(1.0, hint)  # the platform's window, not a failure to back off from
            else:
                wait = max(backoff(attempts), hint or 0.0)
            values.update(last_error=text, next_attempt_at=current + dt.timedelta(seconds=wait))
    return SendResult(item, current, outcome, text, values, time.monotonic() - started,
                      receipt if outcome == AttemptStatus.SENT else None)


# The record of each outcome, built once (Core, bound parameters) and run on the driver's cursor
# (engine.store.prepared): it runs after every send.
_C = OUTBOX.c
_HELD = (_C.id == bindparam("b_id"), _C.lease_owner == bindparam("b_owner"), _C.status == OutboxStatus.PENDING)
_RELEASE: dict[str, Any] = {"attempts": bindparam("b_attempts"), "lease_owner": None, "lease_until": None,
            "last_error": bindparam("b_error")}
_RECORD = {
    AttemptStatus.SENT: update(OUTBOX).where(*_HELD).values(
        {**_RELEASE, "status": OutboxStatus.SENT, "sent_at": bindparam("b_at", type_=UTCDateTime())}),
    AttemptStatus.DEAD: update(OUTBOX).where(*_HELD).values({**_RELEASE, "status": OutboxStatus.DEAD}),
    AttemptStatus.RETRY: update(OUTBOX).where(*_HELD).values(
        {**_RELEASE, "next_attempt_at": bindparam("b_next", type_=UTCDateTime())}),
}
_EXISTS = select(_C.id).where(_C.id == bindparam("b_id"))
_A = DELIVERY_ATTEMPTS.c
_ATTEMPT = insert(DELIVERY_ATTEMPTS).values({
    column: bindparam(column, type_=getattr(_A, column).type)
    for column in ("message_id", "at", "channel", "recipient", "status", "error", "seconds", "worker")})
_R = DELIVERY_REPORTS.c
_REPORT = insert(DELIVERY_REPORTS).values({
    column: bindparam(column, type_=getattr(_R, column).type)
    for column in ("message_id", "platform", "recipients", "missed", "missed_ids", "reason", "task", "check_at",
                   "reported_at")})
_PREPARED = PreparedSet({**_RECORD, "attempt": _ATTEMPT, "exists": _EXISTS, "report": _REPORT})


def report_values(message_id: int, receipt: Receipt, at: dt.datetime) -> dict[str, Any]:
    """The ``delivery_reports`` row of a receipt received (or followed up) at ``at``."""
    return {"message_id": message_id, "platform": receipt.platform, "recipients": receipt.recipients,
            "missed": len(receipt.missed), "missed_ids": "|".join(receipt.missed)[:_MAX_ERROR],
            "reason": receipt.reason[:_MAX_ERROR], "task": receipt.task,
            "check_at": at + FOLLOW_UP_AFTER if receipt.task is not None else None, "reported_at": at}


def record_all(conn: Connection, results: Sequence[tuple[SendResult, str]], worker: str) -> list[bool]:
    """Write the outcomes of finished sends, each with its lease's owner, in one transaction: each
    where its lease still holds, and its attempt either way; whether each lease held, in order.

    A lease that lapsed and was taken over leaves the new owner's record standing; the attempt
    still happened (and may have reached the receiver), so the history says so. ``conn`` is a
    connection of the writing engine, held for the run. The commit is most of a record's cost, so
    the sends that finished together share one; the outbox starts no send in their place before
    this returns, which keeps a crash's re-sends within the sends it had on their way.
    """
    if len(results) > 1:
        try:
            return _record(conn, results, worker, together=True)
        except _NotAllHeld:  # rolled back: find out message by message which lease held
            pass
    return _record(conn, results, worker, together=False)


class _NotAllHeld(Exception):
    """The guarded updates of several outcomes, run together, changed fewer rows than outcomes."""


def _record(conn: Connection, results: Sequence[tuple[SendResult, str]], worker: str, *,
            together: bool) -> list[bool]:
    # ``together``: one executemany per kind of outcome, all or nothing (it cannot tell which row
    # failed to match); otherwise one guarded update per outcome, each telling whether it held.
    held_all: list[bool] = []
    attempts: list[dict[str, Any]] = []
    reports: list[dict[str, Any]] = []
    updates = [(result, _update_values(result, owner)) for result, owner in results]
    with driver_transaction(conn):
        if together:
            by_outcome: dict[AttemptStatus, list[dict[str, Any]]] = {}
            for result, params in updates:
                by_outcome.setdefault(result.outcome, []).append(params)
            changed = sum(_PREPARED.get(conn, outcome).run_many(conn, rows) for outcome, rows in by_outcome.items())
            if changed != len(updates):
                raise _NotAllHeld
            held_all = [True] * len(updates)
        else:
            held_all = [_PREPARED.get(conn, result.outcome).run(conn, params) == 1 for result, params in updates]
        for (result, params), held in zip(updates, held_all, strict=True):
            item, text = result.item, result.text
            if not held:
                if _PREPARED.get(conn, "exists").first(conn, params) is None:
                    continue  # the message is gone (retried away, deleted): nothing to record
                text = (text + "; " if text else "") + "lease lost to another sender, result not applied"
                log.warning("outbox message %s: lease lapsed during the send; another sender has it", item.id)
            attempts.append({"message_id": item.id, "at": result.at, "channel": item.channel,
                             "recipient": item.recipient, "status": result.outcome, "error": text,
                             "seconds": result.seconds, "worker": worker})
            if held and result.receipt is not None:
                reports.append(report_values(item.id, result.receipt, result.at))
        _PREPARED.get(conn, "attempt").run_many(conn, attempts)
        _PREPARED.get(conn, "report").run_many(conn, reports)
    for (result, _), held in zip(results, held_all, strict=True):
        if held and result.outcome == AttemptStatus.DEAD:
            log.error("outbox message %s via %r is dead: %s", result.item.id, result.item.channel, result.text)
    return held_all


def _update_values(result: SendResult, owner: str) -> dict[str, Any]:
    """The bound values of the guarded update that records ``result`` under ``owner``'s lease."""
    values = result.values
    return {"b_id": result.item.id, "b_owner": owner, "b_attempts": values["attempts"],
            "b_error": values.get("last_error", ""), "b_at": values.get("sent_at"),
            "b_next": values.get("next_attempt_at")}

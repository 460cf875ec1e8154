"""Recording the outcome of one send: the row's new values, guarded by the claim, and the attempt.

The "Record" step of ``notifications.outbox``. Each send's outcome is written in its own
transaction before the next send starts, so a crash re-sends at most the one message in flight.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from engine.store.db import transaction
from notifications.channels.base import DeliveryError
from notifications.claims import Claimed, guarded
from notifications.store import DELIVERY_ATTEMPTS, AttemptStatus, OutboxMessage, OutboxStatus

log = logging.getLogger("duban.outbox")

_MAX_ERROR = 2000  # characters of an error kept on the row; a server can answer with a whole page


@dataclass
class SendResult:
    """The outcome of one send."""

    item: Claimed
    at: dt.datetime
    outcome: AttemptStatus
    text: str
    values: dict[str, Any]
    seconds: float


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
        outcome, text = AttemptStatus.SENT, ""
        values.update(status=OutboxStatus.SENT, sent_at=current, last_error="")
    else:
        text = describe(error)
        permanent = isinstance(error, DeliveryError) and error.permanent
        if permanent or attempts >= max_attempts:
            outcome = AttemptStatus.DEAD
            values.update(status=OutboxStatus.DEAD, last_error=text)
        else:
            outcome = AttemptStatus.RETRY
            hint = error.retry_after if isinstance(error, DeliveryError) else None
            wait = max(backoff(attempts), hint or 0.0)
            values.update(last_error=text, next_attempt_at=current + dt.timedelta(seconds=wait))
    return SendResult(item, current, outcome, text, values, time.monotonic() - started)


def record(sessions: sessionmaker[Session], result: SendResult, claim: str, worker: str) -> bool:
    """Write the outcome where our claim still holds, and the attempt either way; True if it held.

    A lease that lapsed and was taken over leaves the new owner's record standing; the attempt
    still happened (and may have reached the receiver), so the history says so.
    """
    item = result.item
    with transaction(sessions) as session:
        held = guarded(session, item.id, claim, **result.values)
        text = result.text
        if not held:
            if session.scalar(select(OutboxMessage.id).where(OutboxMessage.id == item.id)) is None:
                return False  # the message is gone (retried away, deleted): nothing to record
            text = (text + "; " if text else "") + "lease lost to another sender, result not applied"
            log.warning("outbox message %s: lease lapsed during the send; another sender has it", item.id)
        session.execute(insert(DELIVERY_ATTEMPTS), [{
            "message_id": item.id, "at": result.at, "channel": item.channel, "recipient": item.recipient,
            "status": result.outcome, "error": text, "seconds": result.seconds, "worker": worker}])
    if held and result.outcome == AttemptStatus.DEAD:
        log.error("outbox message %s via %r is dead: %s", item.id, item.channel, result.text)
    return held

"""Outbox retention: messages that are finished (sent, dead, undeliverable, silenced) and older than
``[notifications] keep_days`` are deleted, with their delivery attempts and reminder links.

The reminders themselves stay: their dedupe keys are what stop a reminder from being written twice,
and each carries ``routed_at``, so deleting its message never routes it again. Deleted in batches
walked in id order (oldest first), each its own short transaction: a daemon's writers never wait
long behind a prune, and the walk stops at the first batch with nothing old left to take.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from .store import DeliveryAttempt, OutboxMessage, OutboxStatus, ReminderMessage

FINISHED = (OutboxStatus.SENT, OutboxStatus.DEAD, OutboxStatus.UNDELIVERABLE, OutboxStatus.SILENCED)


def prune(sessions: sessionmaker[Session], now: dt.datetime, keep_days: int, *, batch: int = 1000) -> int:
    """Delete finished messages created more than ``keep_days`` before ``now``; returns how many.
    ``keep_days`` 0 keeps everything."""
    if keep_days <= 0:
        return 0
    cutoff = now - dt.timedelta(days=keep_days)
    total, after = 0, 0
    while True:
        with sessions.begin() as session:
            ids = list(session.scalars(
                select(OutboxMessage.id).where(OutboxMessage.id > after, OutboxMessage.created_at < cutoff,
                                               OutboxMessage.status.in_(FINISHED))
                .order_by(OutboxMessage.id).limit(batch)))
            if not ids:
                return total
            # spelled out rather than left to ON DELETE CASCADE, which SQLite honours only with its pragma
            session.execute(delete(DeliveryAttempt).where(DeliveryAttempt.message_id.in_(ids)))
            session.execute(delete(ReminderMessage).where(ReminderMessage.message_id.in_(ids)))
            session.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(ids)))
        total += len(ids)
        after = ids[-1]

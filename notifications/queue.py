"""What the doors read of the outbox: its messages newest first, and how many wait in each status."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from notifications.store import OutboxMessage, OutboxStatus

OUTBOX_STATUSES = tuple(s.value for s in OutboxStatus)


@dataclass(frozen=True)
class QueuedMessage:
    id: int
    key: str
    status: str
    channel: str
    recipient: str
    address: str
    subject: str
    attempts: int
    last_error: str
    next_attempt_at: dt.datetime | None
    sent_at: dt.datetime | None
    created_at: dt.datetime


def outbox_messages(session: Session, *, status: OutboxStatus | str | None = None, limit: int = 200) -> list[QueuedMessage]:
    """Up to ``limit`` outbox messages (of one status), newest first."""
    stmt = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(OutboxMessage.status == OutboxStatus(status))
    return [QueuedMessage(m.id, m.key, str(m.status), m.channel, m.recipient, m.address, m.subject, m.attempts,
                          m.last_error, m.next_attempt_at, m.sent_at, m.created_at) for m in session.scalars(stmt)]


def outbox_depth(conn: Connection) -> dict[str, int]:
    """Messages per status (for /metrics): one ``GROUP BY`` over the status index."""
    rows = conn.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all()
    return {str(status): int(n) for status, n in rows}

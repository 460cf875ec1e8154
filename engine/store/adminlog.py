"""The administrators' log: acts on what is not an issue, recorded once and never changed.

An issue's steps are in its history; what an administrator does to a whole ledger (archive,
reopen, delete) or to the installation (restore a backup) is here: who, through which door, when,
what, to what and why, with what it did (``details``: counts, hashes). An entry names its subject
by name, so it outlives a deleted ledger.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from .models import ADMIN_LOG


@dataclass(frozen=True)
class LogEntry:
    at: dt.datetime
    by: str
    door: str
    action: str
    subject: str
    note: str
    details: dict[str, Any]

    def as_json(self, tz: dt.tzinfo) -> dict[str, Any]:
        return {"at": self.at.astimezone(tz).isoformat(timespec="seconds"), "by": self.by, "door": self.door,
                "action": self.action, "subject": self.subject, "note": self.note, "details": self.details}


def record(session: Session, *, at: dt.datetime, by: str, door: str, action: str, subject: str, note: str = "",
           details: dict[str, Any] | None = None) -> None:
    """Append one entry, in the caller's transaction: it is kept exactly when the act is."""
    session.execute(insert(ADMIN_LOG).values(at=at, by=by[:200], door=door[:20], action=action[:60],
                                             subject=subject[:300], note=note, details=details or {}))


def entries(session: Session, *, subject: str | None = None, limit: int = 200) -> list[LogEntry]:
    """The newest entries first (of one subject, if given)."""
    stmt = select(ADMIN_LOG).order_by(ADMIN_LOG.c.at.desc(), ADMIN_LOG.c.id.desc()).limit(limit)
    if subject is not None:
        stmt = stmt.where(ADMIN_LOG.c.subject == subject)
    return [LogEntry(r.at, r.by, r.door, r.action, r.subject, r.note, dict(r.details or {}))
            for r in session.execute(stmt)]

"""What reminders would fall due between two instants, and those already written. Read-only.

The preview asks the core exactly what the sweep asks, over the rows whose next reminder falls by
the end of the window (the index the sweep reads), so it predicts what the sweep will write as
long as nothing changes in between: states and deadlines are taken as they are now.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..store.kinds import OccurrenceState
from ..store.models import Ledger, Reminder
from .parts import ReminderParts
from .rows import ReminderRow, reminder_row
from .subjects import EXTENSIONS, ISSUES, OCCURRENCES, Subject, extension_query, issue_query, occurrence_query

# A window longer than this is refused: every working day of it is a reminder per overdue row.
MAX_WINDOW = dt.timedelta(days=3 * 366)


def preview(session: Session, parts: ReminderParts, start: dt.datetime, end: dt.datetime,
            ledger: Ledger | None = None) -> list[ReminderRow]:
    """Every reminder in ``(start, end]`` as a sweep running all along would write it (``reminders`` rows)."""
    core, read = parts.core, parts.subjects
    out: list[ReminderRow] = []
    issues = issue_query().where(ISSUES.c.next_remind_at <= end)
    occurrences = occurrence_query().where(OCCURRENCES.c.next_remind_at <= end,
                                           OCCURRENCES.c.state == OccurrenceState.OPEN)
    extensions = extension_query().where(EXTENSIONS.c.next_remind_at <= end)
    if ledger is not None:
        issues = issues.where(ISSUES.c.ledger_id == ledger.id)
        occurrences = occurrences.where(OCCURRENCES.c.ledger_id == ledger.id)
        extensions = extensions.where(ISSUES.c.ledger_id == ledger.id)
    subjects: list[Subject] = [*read.issues(session, issues), *read.occurrences(session, occurrences),
                               *read.extensions(session, extensions)]
    for subject in subjects:
        out.extend(reminder_row(core, subject, due) for due in core.between(subject, start, end))
    if ledger is None:
        out.extend(parts.schedule_reminder.between(start, end))
    out.sort(key=lambda r: (r["at"], r["subject"], r["rule"]))
    return out


def entry(row: Mapping[str, Any], tz: dt.tzinfo) -> dict[str, Any]:
    """A reminder row (predicted or written) as ``remind preview`` / ``remind list`` print it."""
    details = row.get("details") or {}
    return {"at": row["at"].astimezone(tz).isoformat(), "subject": row["subject"], "kind": str(row["kind"]),
            "rule": row["rule"], "recipients": list(row["recipients"]), "occurrence": row["occurrence"],
            "days_overdue": row["days_overdue"], "due": row["due"].isoformat() if row["due"] else None,
            "title": details.get("title", ""), "key": row["dedupe_key"]}


def written(session: Session, tz: dt.tzinfo, ledger: Ledger | None = None, limit: int | None = None
            ) -> list[dict[str, Any]]:
    stmt = select(Reminder).order_by(Reminder.at, Reminder.id)
    if ledger is not None:
        stmt = stmt.where(Reminder.ledger_id == ledger.id)
    if limit:
        stmt = stmt.limit(limit)
    out = []
    for r in session.scalars(stmt):
        row = {c: getattr(r, c) for c in ("at", "subject", "kind", "rule", "recipients", "occurrence",
                                         "days_overdue", "due", "details", "dedupe_key")}
        out.append({**entry(row, tz), "written_at": r.created_at.astimezone(tz).isoformat()})
    return out

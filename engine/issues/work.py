"""The work recorded on issues: what the responsible people wrote they did, newest first.

Two kinds of history entries carry it: a progress note (进展情况, trigger ``progress``), written
while the work goes on, and the note sent with the submission for sign-off (销号申请, trigger
``submit``), which says what was completed. The report quotes these, dated, in place of the
measures the ledger planned: a report says what was done, not what was meant to be done. Other
entries (imports, edits, a reviewer's return) are about the ledger, not the work, and are left out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..store.models import HistoryEntry, Issue

PROGRESS, SUBMIT = "progress", "submit"
WORK_TRIGGERS = (PROGRESS, SUBMIT)


@dataclass(frozen=True)
class WorkNote:
    at: dt.datetime
    kind: str  # PROGRESS or SUBMIT
    note: str
    by: str


def recorded_work(session: Session, ledger_id: int, *, until: dt.datetime | None = None) -> dict[int, list[WorkNote]]:
    """Issue id -> its progress and submit notes with text, newest first (entries up to ``until``).

    One query for the whole ledger: the report reads it once, whatever the ledger's size.
    """
    stmt = (select(HistoryEntry.issue_id, HistoryEntry.at, HistoryEntry.trigger, HistoryEntry.note, HistoryEntry.by)
            .join(Issue, Issue.id == HistoryEntry.issue_id)
            .where(Issue.ledger_id == ledger_id, HistoryEntry.trigger.in_(WORK_TRIGGERS), HistoryEntry.note != "")
            .order_by(HistoryEntry.issue_id, HistoryEntry.at.desc(), HistoryEntry.id.desc()))
    if until is not None:
        stmt = stmt.where(HistoryEntry.at <= until)
    out: dict[int, list[WorkNote]] = {}
    for issue_id, at, trigger, note, by in session.execute(stmt):
        if note.strip():
            out.setdefault(issue_id, []).append(WorkNote(at, trigger, note.strip(), by))
    return out

"""What reminders would fall due between two instants, and those already written. Read-only."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .deadlines import Reminder as Due
from .duties import policy_of
from .runtime import Runtime
from .store.models import Duty, DutyOccurrence, Issue, Ledger, Reminder, WorkflowVersion
from .tracks import issue_recipients


def _entry(runtime: Runtime, rem: Due, subject: str, recipients: list[str], **extra: Any) -> dict[str, Any]:
    return {"at": rem.at.astimezone(runtime.config.tz).isoformat(), "subject": subject, "kind": rem.kind,
            "rule": rem.rule, "recipients": recipients, "days_overdue": rem.days_overdue, **extra}


def preview(session: Session, runtime: Runtime, start: dt.datetime, end: dt.datetime,
            ledger: Ledger | None = None) -> list[dict[str, Any]]:
    """Every reminder in ``(start, end]`` as a sweep running all along would write it.

    It reads the rows whose next reminder falls by ``end`` (the same index the sweep uses) and
    touches nothing. States and deadlines are taken as they are now.
    """
    tracker, planner = runtime.tracker, runtime.planner
    out: list[dict[str, Any]] = []
    stmt = (select(Issue, Ledger.name, Ledger.feedback_date, WorkflowVersion).join(Ledger).join(WorkflowVersion)
            .where(Issue.next_remind_at <= end))
    if ledger is not None:
        stmt = stmt.where(Issue.ledger_id == ledger.id)
    for issue, name, feedback, version in session.execute(stmt):
        track = tracker.issue_track(runtime.workflow_hash(version), issue.state, issue.deadline, feedback,
                                    tracker.local(issue.state_since), tracker.local(issue.last_checkin_at))
        if track is None:
            continue
        for due in planner.between(track, start, end):
            out.append(_entry(runtime, due, f"{name}/{issue.ref}", issue_recipients(issue.leader, issue.department, due.add),
                              title=issue.title, due=track.due.isoformat()))
    occ_stmt = (select(DutyOccurrence, Duty).join(Duty)
                .where(DutyOccurrence.next_remind_at <= end, DutyOccurrence.state == "open"))
    if ledger is not None:
        occ_stmt = occ_stmt.where(Duty.ledger_id == ledger.id)
    for occ, duty in session.execute(occ_stmt):
        track = tracker.occurrence_track(occ.due, policy_of(duty))
        for due in planner.between(track, start, end):
            out.append(_entry(runtime, due, duty.key, issue_recipients("", "", (*duty.owners, *due.add)),
                              title=duty.title, due=track.due.isoformat(), period=occ.period))
    out.sort(key=lambda e: (e["at"], e["subject"]))
    return out


def written(session: Session, runtime: Runtime, ledger: Ledger | None = None, limit: int | None = None
            ) -> list[dict[str, Any]]:
    stmt = select(Reminder).order_by(Reminder.at, Reminder.id)
    if ledger is not None:
        stmt = stmt.where(Reminder.ledger_id == ledger.id)
    if limit:
        stmt = stmt.limit(limit)
    tz = runtime.config.tz
    return [{"at": r.at.astimezone(tz).isoformat(), "subject": r.subject, "kind": r.kind, "rule": r.rule,
             "recipients": r.recipients, "occurrence": r.occurrence, "days_overdue": r.days_overdue,
             "due": r.due.isoformat() if r.due else None, "title": r.details.get("title", ""),
             "written_at": r.created_at.astimezone(tz).isoformat(), "key": r.dedupe_key}
            for r in session.scalars(stmt)]

"""What is open and when it is due: the read-only view the board, the report and the ICS feed share.

An issue follows the deadline of its current state, or in the long-term state its next check-in,
exactly as the sweep follows it (``runtime.tracker.issue_track``), so the board never disagrees
with the reminders people receive. How far past due something is, and which escalation it has
reached, comes from the planner's ``reminder_at`` for today's working-day offset: the same
arithmetic that decides when the sweep escalates.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..deadlines import Track
from ..duties import policy_of
from ..runtime import Runtime
from ..store.models import Duty, DutyOccurrence, Issue, Ledger, WorkflowVersion
from ..workflow.rules import ReminderPolicy

# A ledger cell may name several departments ("办公室、财务室"); each counts for a filter.
_SPLIT = re.compile(r"[、,，;；/／\s]+")


def natural(ref: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key for 序号: 2 before 10, as people number them."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", ref) if p)


def departments_of(text: str) -> list[str]:
    """The departments a 责任科室 cell names."""
    return [part for part in _SPLIT.split(text or "") if part]


@dataclass(frozen=True)
class Lateness:
    """How late a track is on a given day: working days overdue and escalations reached."""

    days_overdue: int = 0
    level: int = 0
    escalated_to: tuple[str, ...] = ()

    @property
    def overdue(self) -> bool:
        return self.days_overdue > 0


def lateness(runtime: Runtime, track: Track, today: dt.date) -> Lateness:
    """Working days past the track's due date on ``today`` and the escalation that implies."""
    planner = runtime.planner
    k = planner.index.between(track.due, today)
    if k < track.overdue_from:
        return Lateness()
    rem = planner.reminder_at(track, k)
    return Lateness(rem.days_overdue, rem.level, rem.add)


@dataclass(frozen=True)
class DeadlineItem:
    """An issue's current deadline (``kind`` "deadline") or next check-in (``kind`` "checkin")."""

    kind: str
    ledger: str
    ref: str
    issue_id: int
    title: str
    area: str
    category: str
    leader: str
    department: str
    state: str
    state_label: str
    rule_title: str  # what is due: 制定整改方案, 整改时限, 回头看
    due: dt.date  # the effective due date (moved off holidays)
    deadline: dt.date | None  # the ledger's own 整改时限
    track: Track
    late: Lateness

    @property
    def subject(self) -> str:
        return f"{self.ledger}/{self.ref}"


@dataclass(frozen=True)
class DutyItem:
    """One occurrence of a recurring duty or ledger milestone."""

    occurrence_id: int
    key: str
    title: str
    kind: str  # recurring | milestone
    period: str
    owners: tuple[str, ...]
    due: dt.date
    state: str  # open | done
    done_at: dt.datetime | None
    done_by: str | None
    ledger: str | None  # the milestone's ledger, or the ledger of the issue it is for
    issue_ref: str | None  # LEDGER/序号 of a per-issue occurrence (a look-back)
    issue_id: int | None
    issue_leader: str | None  # 责任领导 and 责任科室 of that issue
    issue_department: str | None
    track: Track
    late: Lateness


def open_deadlines(session: Session, runtime: Runtime, today: dt.date, *, ledger: Ledger | None = None,
                   department: str | None = None, checkins: bool = True) -> list[DeadlineItem]:
    """Every issue that is following a deadline today, soonest (most overdue) first.

    ``checkins=False`` leaves out long-term items' check-ins (the ICS feed does: their look-backs
    are duty occurrences already, and a calendar should not show the same task twice).
    """
    tracker = runtime.tracker
    stmt = (select(Issue, Ledger.name, Ledger.feedback_date, WorkflowVersion)
            .join(Ledger, Issue.ledger_id == Ledger.id).join(WorkflowVersion, Issue.workflow_id == WorkflowVersion.id)
            .order_by(Ledger.name, Issue.position, Issue.id))
    if ledger is not None:
        stmt = stmt.where(Issue.ledger_id == ledger.id)
    out: list[DeadlineItem] = []
    for issue, name, feedback, version in session.execute(stmt):
        if department and department not in departments_of(issue.department):
            continue
        wf_hash = runtime.workflow_hash(version)
        wf = tracker.workflow(wf_hash)
        rule = wf.deadlines.get(issue.state)
        if rule is None and not checkins:
            continue
        track = tracker.issue_track(wf_hash, issue.state, issue.deadline, feedback,
                                    tracker.local(issue.state_since), tracker.local(issue.last_checkin_at))
        if track is None:
            continue
        kind = "deadline" if rule is not None else "checkin"
        what = (rule.title or "整改时限") if rule is not None else "回头看"
        out.append(DeadlineItem(kind, name, issue.ref, issue.id, issue.title, issue.area, issue.category,
                                issue.leader, issue.department, issue.state, wf.label(issue.state), what,
                                track.due, issue.deadline, track, lateness(runtime, track, today)))
    out.sort(key=lambda d: (-d.late.days_overdue, d.due, d.ledger, natural(d.ref)))
    return out


def duty_items(session: Session, runtime: Runtime, today: dt.date, *, start: dt.date | None = None,
               end: dt.date | None = None, ledger: Ledger | None = None, department: str | None = None,
               open_only: bool = False) -> list[DutyItem]:
    """Duty occurrences due in ``[start, end]`` (either open-ended), by due date.

    With a ledger: its milestones, the recurring duties that belong to no ledger, and per-issue
    occurrences of its own issues only. A department matches an owner of the duty or the
    department of the issue a per-issue occurrence is for.
    """
    stmt = (select(DutyOccurrence, Duty, Issue.ref, Issue.leader, Issue.department, Ledger.name)
            .join(Duty, DutyOccurrence.duty_id == Duty.id)
            .outerjoin(Issue, DutyOccurrence.issue_id == Issue.id)
            .outerjoin(Ledger, Ledger.id == Issue.ledger_id)
            .order_by(DutyOccurrence.due, Duty.key, DutyOccurrence.period))
    if start is not None:
        stmt = stmt.where(DutyOccurrence.due >= start)
    if end is not None:
        stmt = stmt.where(DutyOccurrence.due <= end)
    if open_only:
        stmt = stmt.where(DutyOccurrence.state == "open")
    milestone_ledgers = dict(session.execute(select(Ledger.id, Ledger.name)).all())
    policies: dict[int, ReminderPolicy] = {}  # parsing a duty's spec per occurrence would dominate the request
    out: list[DutyItem] = []
    for occ, duty, ref, issue_leader, issue_department, issue_ledger in session.execute(stmt):
        if ledger is not None:
            if duty.ledger_id is not None and duty.ledger_id != ledger.id:
                continue
            if occ.issue_id is not None and issue_ledger != ledger.name:
                continue
        if department and department not in duty.owners and department not in departments_of(issue_department or ""):
            continue
        if duty.id not in policies:
            policies[duty.id] = policy_of(duty)
        track = runtime.tracker.occurrence_track(occ.due, policies[duty.id])
        late = lateness(runtime, track, today) if occ.state == "open" else Lateness()
        owning = issue_ledger or (milestone_ledgers.get(duty.ledger_id) if duty.ledger_id else None)
        out.append(DutyItem(occ.id, duty.key, duty.title, duty.kind, occ.period, tuple(duty.owners), track.due,
                            occ.state, occ.done_at, occ.done_by, owning,
                            f"{issue_ledger}/{ref}" if ref is not None else None, occ.issue_id, issue_leader,
                            issue_department, track, late))
    return out

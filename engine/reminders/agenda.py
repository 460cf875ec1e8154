"""What is open and when it is due: the lists the board, the report and the ICS feed show.

Rows are chosen in SQL by the plan the core stored on them (``due_on``, ``overdue_on``: range
reads of an index, paged), and each row shown is then asked of the core itself: its track, what is
due, how late it is. So a list costs what it shows, and never disagrees with the reminders people
receive.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select, true, union_all
from sqlalchemy.orm import Session

from ..store.kinds import ExtensionState, OccurrenceState
from ..store.models import ISSUE_DEPARTMENTS, Duty, Ledger
from .core import ReminderCore
from .parts import ReminderParts
from .planner import Lateness, Track
from .subjects import (
    EXTENSIONS,
    ISSUES,
    OCCURRENCES,
    ExtensionSubject,
    IssueSubject,
    OccurrenceSubject,
    duty_unit,
    extension_query,
    issue_query,
    occurrence_query,
)


@dataclass(frozen=True)
class DeadlineItem:
    """An issue's current deadline (``kind`` "deadline") or next check-in (``kind`` "checkin")."""

    kind: str
    subject_row: IssueSubject
    state_label: str
    rule_title: str  # what is due: 制定整改方案, 整改时限, 回头看
    track: Track
    late: Lateness

    def __getattr__(self, name: str) -> Any:  # ledger, ref, title, leader… of the issue
        return getattr(self.subject_row, name)

    @property
    def issue_id(self) -> int:
        return self.subject_row.id

    @property
    def subject(self) -> str:
        return self.subject_row.key

    @property
    def due(self) -> dt.date:  # the effective due date (moved off holidays)
        return self.track.due


@dataclass(frozen=True)
class ExtensionItem:
    """A pending 延期申请 waiting on a decision: the track of the decision's due date."""

    subject_row: ExtensionSubject
    state_label: str
    rule_title: str  # what is due: 审批延期申请
    track: Track
    late: Lateness

    kind = "extension"

    def __getattr__(self, name: str) -> Any:  # ledger, ref, title, requested_to, reason, requester…
        return getattr(self.subject_row, name)

    @property
    def subject(self) -> str:
        return self.subject_row.key

    @property
    def due(self) -> dt.date:
        return self.track.due


@dataclass(frozen=True)
class DutyItem:
    """One occurrence of a recurring duty or ledger milestone (or a look-back for one issue)."""

    occurrence: OccurrenceSubject
    due: dt.date
    done_at: dt.datetime | None
    done_by: str | None
    track: Track | None  # None once done, or while its issue is out of the look-back's state
    late: Lateness

    occurrence_id = property(lambda self: self.occurrence.id)
    key = property(lambda self: self.occurrence.duty_key)
    title = property(lambda self: self.occurrence.duty_title)
    kind = property(lambda self: self.occurrence.duty_kind)
    period = property(lambda self: self.occurrence.period)
    owners = property(lambda self: self.occurrence.owners)
    state = property(lambda self: self.occurrence.state)
    ledger = property(lambda self: self.occurrence.ledger)
    issue_ref = property(lambda self: self.occurrence.issue_key)
    issue_id = property(lambda self: self.occurrence.issue_id)
    issue_leader = property(lambda self: self.occurrence.issue_leader)
    issue_department = property(lambda self: self.occurrence.issue_department)
    unit = property(lambda self: self.occurrence.unit)  # a unit's own duty: that unit ("" otherwise)


# -- issues -------------------------------------------------------------------------------------


def _issue_filters(ledger: Ledger | None, department: str | None, ledger_ids: Sequence[int] | None,
                   windowed: bool = False, probe: bool = False) -> list[ColumnElement[bool]]:
    # A window on overdue_on / due_on already leaves out the rows that follow nothing; saying
    # "due_on IS NOT NULL" as well would read every row of the range instead of its index entry.
    where: list[ColumnElement[bool]] = [] if windowed else [ISSUES.c.due_on.is_not(None)]
    if ledger is not None:
        where.append(ISSUES.c.ledger_id == ledger.id)
    if ledger_ids is not None:
        where.append(ISSUES.c.ledger_id.in_(ledger_ids) if ledger_ids else false())
    if department:
        where.append(_of_department(ISSUES.c.id, department, probe=probe or ledger is not None))
    return where


def _of_department(issue_id: ColumnElement[int], department: str, *, probe: bool) -> ColumnElement[bool]:
    """The issue's 责任科室 names ``department``.

    ``probe``: each row the query reads anyway is checked by primary key — within one ledger, or
    for a page read in index order until it is full. Otherwise the department's own index drives
    (to count across ledgers: a name such as 办公室 is in every unit)."""
    d = ISSUE_DEPARTMENTS.c
    if probe:
        return select(d.issue_id).where(d.issue_id == issue_id, d.department == department).exists()
    return issue_id.in_(select(d.issue_id).where(d.department == department))


def _window(today: dt.date, overdue: bool | None, due_until: dt.date | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if overdue is True:
        where.append(ISSUES.c.overdue_on <= today)
    elif overdue is False:
        where.append(ISSUES.c.overdue_on > today)
    if due_until is not None:
        where.append(ISSUES.c.due_on <= due_until)
    return where


def deadline_query(today: dt.date, *, ledger: Ledger | None = None, department: str | None = None,
                   overdue: bool | None = None, due_until: dt.date | None = None,
                   ledger_ids: Sequence[int] | None = None, paged: bool = False,
                   scope: ColumnElement[bool] | None = None) -> Select[Any]:
    """The issues following a deadline, filtered in SQL, most urgent first. ``scope``: a further
    condition over ``issues`` (a user's: ``engine.accounts.actor.Actor.visible``)."""
    # the order of ix_issues_overdue_due (its entries end in the row id): a page is read off the
    # index, never sorted, even when thousands share a due date (every plan of a ledger does)
    order = (ISSUES.c.overdue_on, ISSUES.c.due_on, ISSUES.c.id)
    window = _window(today, overdue, due_until)
    where = _issue_filters(ledger, department, ledger_ids, bool(window), probe=paged)
    if scope is not None:
        where = [*where, scope]
    return issue_query().where(*where, *window).order_by(*order)


def count_deadlines(session: Session, today: dt.date, *, ledger: Ledger | None = None,
                    department: str | None = None, overdue: bool | None = None, due_until: dt.date | None = None,
                    ledger_ids: Sequence[int] | None = None, scope: ColumnElement[bool] | None = None,
                    cap: int | None = None) -> int:
    """How many issues ``open_deadlines`` lists without a limit (at most ``cap``: counting stops there)."""
    window = _window(today, overdue, due_until)
    if cap is not None and department and ledger is None:
        # streamed from the department's index entries, stopping at ``cap``: the IN form would
        # first collect all of them (tens of thousands for 办公室 across a district's units)
        d = ISSUE_DEPARTMENTS.c
        # the ledgers on the department's own entries too: (department, ledger_id) is their index
        own = [d.ledger_id.in_(ledger_ids)] if ledger_ids is not None else []
        rows = (select(ISSUES.c.id).join(ISSUE_DEPARTMENTS, and_(d.issue_id == ISSUES.c.id, d.department == department,
                                                                 *own))
                .where(*_issue_filters(None, None, ledger_ids, bool(window)), *window,
                       *([scope] if scope is not None else [])))
        return count_upto(session, rows, cap)
    where = [*_issue_filters(ledger, department, ledger_ids, bool(window)), *window]
    if scope is not None:
        where.append(scope)
    if cap is not None:
        return count_upto(session, select(ISSUES.c.id).where(*where), cap)
    return session.scalar(select(func.count()).select_from(ISSUES).where(*where)) or 0


def count_upto(session: Session, rows: Select[Any], cap: int) -> int:
    """``min(cap, how many rows)``: the database stops at ``cap`` instead of reading every match."""
    return session.scalar(select(func.count()).select_from(rows.limit(cap).subquery())) or 0


def deadline_item(core: ReminderCore, subject: IssueSubject, today: dt.date) -> DeadlineItem | None:
    track = core.track(subject)
    if track is None:
        return None
    rule = subject.workflow.deadlines.get(subject.state)
    return DeadlineItem("deadline" if rule is not None else "checkin", subject, subject.workflow.label(subject.state),
                        core.what(subject), track, core.planner.lateness(track, today))


def _deadline_items(session: Session, parts: ReminderParts, today: dt.date, stmt: Select[Any]) -> list[DeadlineItem]:
    """Each issue ``stmt`` reads, as the reminder core tracks it (those it does not follow left out)."""
    items = (deadline_item(parts.core, subject, today) for subject in parts.subjects.issues(session, stmt))
    return [item for item in items if item is not None]


def open_deadlines(session: Session, parts: ReminderParts, today: dt.date, *, ledger: Ledger | None = None,
                   department: str | None = None, overdue: bool | None = None, due_until: dt.date | None = None,
                   ledger_ids: Sequence[int] | None = None, limit: int | None = None,
                   offset: int = 0, scope: ColumnElement[bool] | None = None) -> list[DeadlineItem]:
    """Issues following a deadline (or a check-in) today, most overdue first, then soonest due."""
    stmt = deadline_query(today, ledger=ledger, department=department, overdue=overdue, due_until=due_until,
                          ledger_ids=ledger_ids, paged=limit is not None, scope=scope)
    if limit is not None:
        stmt = stmt.limit(limit).offset(offset)
    return _deadline_items(session, parts, today, stmt)


def open_deadlines_in(session: Session, parts: ReminderParts, today: dt.date, heads: Sequence[ColumnElement[bool]],
                      *, scope: ColumnElement[bool], limit: int, offset: int = 0) -> list[DeadlineItem]:
    """``open_deadlines(scope=scope, limit=limit, offset=offset)`` read as a few parts (``heads``:
    one state each, or one ledger each), each part's head read off its own index in the list's
    order (``ix_issues_state_overdue_due``, ``ix_issues_ledger_overdue_due``) and the heads merged.
    Walking the deadline index over every issue instead passes all those of other states or units
    that share a deadline (~95,000 share the feedback date at a million issues) before the page of
    someone whose issues are a few states (a district's reviewer) or one unit's is full."""
    order = (ISSUES.c.overdue_on, ISSUES.c.due_on, ISSUES.c.id)
    if not heads:
        return []
    parts_ = [select(*order).where(head, *_issue_filters(None, None, None), scope)
              .order_by(*order).limit(limit + offset).subquery() for head in heads]
    merged = union_all(*(select(*part.c) for part in parts_)).subquery()
    page = list(session.scalars(select(merged.c.id).order_by(merged.c.overdue_on, merged.c.due_on, merged.c.id)
                                .limit(limit).offset(offset)))
    if not page:
        return []
    stmt = issue_query().where(ISSUES.c.id.in_(page)).order_by(*order)
    return _deadline_items(session, parts, today, stmt)


# -- 延期申请 -------------------------------------------------------------------------------------


_PENDING_LISTED = 1000  # pending requests named by id in the join; past it the join finds them itself


def open_extensions(session: Session, parts: ReminderParts, today: dt.date, *,
                    scope: ColumnElement[bool] | None = None, limit: int | None = None) -> list[ExtensionItem]:
    """Pending requests (``scope``: a further condition, e.g. who may decide them), most overdue first.

    The pending ones are found first, off their own partial index (a handful, often none), and the
    join is asked for those: left to plan the join from the scope's side, SQLite — with no
    statistics on a table that was empty at ANALYZE, so taken for a million rows — read every issue
    the scope names to find none (a reviewer's 我的待办: 25 ms at 100,000 issues, 0.1 ms now)."""
    x = EXTENSIONS.c
    pending = list(session.scalars(select(x.id).where(x.state == ExtensionState.PENDING).limit(_PENDING_LISTED + 1)))
    if not pending:
        return []
    stmt = extension_query().order_by(x.overdue_on, x.due_on, x.id)
    if len(pending) <= _PENDING_LISTED:
        stmt = stmt.where(x.id.in_(pending))
    if scope is not None:
        stmt = stmt.where(scope)
    if limit is not None:
        stmt = stmt.limit(limit)
    core, out = parts.core, []
    for subject in parts.subjects.extensions(session, stmt):
        track = core.extension_track(subject.workflow, core.calendar.local_date(subject.requested_at))
        out.append(ExtensionItem(subject, subject.workflow.label(subject.state), core.what(subject), track,
                                 core.planner.lateness(track, today)))
    return out


# -- duty occurrences ---------------------------------------------------------------------------


def _owned_duties(session: Session, department: str) -> list[int]:
    """Duties whose owners name the department (the duties table is small: read it whole)."""
    return [duty_id for duty_id, owners in session.execute(select(Duty.id, Duty.owners)) if department in (owners or [])]


def _bound_elsewhere(session: Session, unit: str) -> list[int]:
    """Duties bound to a unit other than ``unit`` (the duties table is small: read it whole)."""
    return [duty_id for duty_id, bound in session.execute(select(Duty.id, duty_unit())) if bound and bound != unit]


def occurrence_filters(session: Session, *, start: dt.date | None = None, end: dt.date | None = None,
                       ledger: Ledger | None = None, department: str | None = None, open_only: bool = False,
                       issue_id: int | None = None, paged: bool = False, unit: str | None = None
                       ) -> list[ColumnElement[bool]]:
    """``unit``: only what is that unit's or the installation's (a ledger's own unit by default:
    its report appendix lists no other unit's duties)."""
    where: list[ColumnElement[bool]] = []
    o = OCCURRENCES.c
    if start is not None:
        where.append(o.due >= start)
    if end is not None:
        where.append(o.due <= end)
    if open_only:  # and followed now: a look-back whose issue left its state has no plan
        where += [o.state == OccurrenceState.OPEN, o.overdue_on.is_not(None)]
    if issue_id is not None:
        where.append(o.issue_id == issue_id)
    if ledger is not None:
        # its milestones and look-backs of its own issues, and the recurring duties of no ledger
        where.append(or_(o.ledger_id == ledger.id, o.ledger_id.is_(None)))
        unit = ledger.unit if unit is None else unit
    if unit is not None:
        others = _bound_elsewhere(session, unit)
        if others:
            where.append(o.duty_id.not_in(others))
    if department:
        owned = _owned_duties(session, department)
        where.append(or_(o.duty_id.in_(owned) if owned else false(),
                         _of_department(o.issue_id, department, probe=paged or ledger is not None)))
    return where or [true()]


def duty_items(session: Session, parts: ReminderParts, today: dt.date, *, start: dt.date | None = None,
               end: dt.date | None = None, ledger: Ledger | None = None, department: str | None = None,
               open_only: bool = False, overdue: bool | None = None, issue_id: int | None = None,
               limit: int | None = None, offset: int = 0, unit: str | None = None) -> list[DutyItem]:
    """Duty occurrences due in ``[start, end]`` (either open-ended), by due date.

    Open occurrences whose look-back is not followed now (the issue left the state) are left out,
    as the sweep leaves them out; done ones are listed as done.
    """
    where = occurrence_filters(session, start=start, end=end, ledger=ledger, department=department,
                               open_only=open_only, issue_id=issue_id, paged=limit is not None, unit=unit)
    if overdue is True:
        where.append(OCCURRENCES.c.overdue_on <= today)
    elif overdue is False:
        where.append(or_(OCCURRENCES.c.overdue_on > today, OCCURRENCES.c.overdue_on.is_(None)))
    o = OCCURRENCES.c
    # read in the order of an index (its entries end in the row id), never sorted: overdue ones by
    # ix_duty_occurrences_overdue_due (the same order, since overdue_on follows due), others by due
    order = (o.overdue_on, o.due, o.id) if overdue is True else (o.due, o.id)
    stmt = occurrence_query().where(*where).order_by(*order)
    if limit:
        stmt = stmt.limit(limit).offset(offset)
    done = {} if open_only else {i: (at, by) for i, at, by in session.execute(
        select(OCCURRENCES.c.id, OCCURRENCES.c.done_at, OCCURRENCES.c.done_by)
        .where(*where, OCCURRENCES.c.state == OccurrenceState.DONE))}
    core, out = parts.core, []
    for occ in parts.subjects.occurrences(session, stmt):
        track = core.track(occ)
        if occ.state == OccurrenceState.OPEN and track is None:
            continue
        late = core.planner.lateness(track, today) if track is not None else Lateness()
        done_at, done_by = done.get(occ.id, (None, None))
        out.append(DutyItem(occ, track.due if track else occ.due, done_at, done_by, track, late))
    return out

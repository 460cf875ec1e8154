"""Storing the core's plan on every row again: after an upgrade, or after the calendar changed.

The plan on a row (``next_remind_at``, ``due_on``, ``overdue_on``) is a cache of what the core
says; the core's inputs include the calendar (``[calendar] extra_holidays``) and the schema of the
plan itself, so when either changes every open row is planned again, page by page, from ``now``.
The rows of an archived ledger have no plan (``engine.ledger.lifecycle``) and are left without one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from ..calendar import WorkCalendar
from ..store.kinds import OccurrenceState
from ..store.models import SiteState
from .core import Plan
from .parts import ReminderParts
from .subjects import EXTENSIONS, ISSUES, LEDGERS, OCCURRENCES, extension_query, issue_query, occurrence_query

PAGE = 2000


def store_plans(session: Session, table: Table, plans: Iterable[tuple[int, Plan]], *,
                after: dt.datetime | None) -> int:
    """Store the core's plan on each row (id, plan) of ``issues`` or ``duty_occurrences``: the one
    statement every planner uses (``after``: the instant the row is swept up to, when it moves)."""
    rows = [{"b_id": row_id, "b_next": plan.next_remind_at, "b_due": plan.due_on, "b_overdue": plan.overdue_on,
             "b_after": after} for row_id, plan in plans]
    if not rows:
        return 0
    # bind names must differ from column names: SQLAlchemy reserves those for the SET clause
    values: dict[str, Any] = {"next_remind_at": bindparam("b_next"), "overdue_on": bindparam("b_overdue")}
    if "due_on" in table.c:
        values["due_on"] = bindparam("b_due")
    if after is not None:
        values["remind_after"] = bindparam("b_after")
    session.connection().execute(update(table).where(table.c.id == bindparam("b_id")).values(values), rows)
    return len(rows)


def replan_all(session: Session, parts: ReminderParts, now: dt.datetime, *, ledger_id: int | None = None) -> int:
    """Plan every issue and every open duty occurrence (of one ledger, if given) from ``now``,
    but those of archived ledgers; returns the rows planned."""
    core, read = parts.core, parts.subjects
    count = 0
    last = 0
    live = LEDGERS.c.archived_at.is_(None)
    issues_of = live if ledger_id is None else and_(live, ISSUES.c.ledger_id == ledger_id)
    while True:
        subjects = read.issues(session, issue_query().where(ISSUES.c.id > last, issues_of)
                               .order_by(ISSUES.c.id).limit(PAGE))
        if not subjects:
            break
        count += store_plans(session, ISSUES, ((s.id, core.plan(s, now)) for s in subjects), after=now)
        last = subjects[-1].id
    last = 0
    while True:
        occurrences = read.occurrences(session, occurrence_query().where(
            OCCURRENCES.c.id > last, OCCURRENCES.c.state == OccurrenceState.OPEN, _live_occurrences(ledger_id))
            .order_by(OCCURRENCES.c.id).limit(PAGE))
        if not occurrences:
            break
        count += store_plans(session, OCCURRENCES, ((o.id, core.plan(o, now)) for o in occurrences), after=now)
        last = occurrences[-1].id
    return count + replan_extensions(session, parts, now)


def _live_occurrences(ledger_id: int | None) -> ColumnElement[bool]:
    """Occurrences of no ledger or of a ledger not archived (of ``ledger_id`` alone, if given)."""
    archived = select(LEDGERS.c.id).where(LEDGERS.c.archived_at.is_not(None))
    live = or_(OCCURRENCES.c.ledger_id.is_(None), OCCURRENCES.c.ledger_id.not_in(archived))
    return live if ledger_id is None else and_(live, OCCURRENCES.c.ledger_id == ledger_id)


CALENDAR_KEY = "calendar"


def replan_if_calendar_changed(session: Session, parts: ReminderParts, calendar: WorkCalendar,
                               now: dt.datetime) -> int | None:
    """Plan every row again when the calendar differs from the one the stored plans were made on
    (``[calendar] extra_holidays`` edited, a new chinesecalendar): ``duban init`` and the daemon's
    start and reload call this, so no one has to remember ``duban db replan``. Returns the rows
    planned, or None when the calendar is the same."""
    print_ = calendar.fingerprint()
    row = session.get(SiteState, CALENDAR_KEY, with_for_update=True)
    if row is not None and row.value == print_:
        return None
    with calendar.quietly():  # upkeep of every stored row, years ahead: no command's question about a year
        planned = replan_all(session, parts, now)
    if row is None:  # the first calendar this database records: nothing "changed" to report
        session.add(SiteState(name=CALENDAR_KEY, value=print_, updated_at=now))
        return None
    row.value, row.updated_at = print_, now
    return planned


def replan_extensions(session: Session, parts: ReminderParts, now: dt.datetime) -> int:
    """Plan every pending 延期申请 from ``now`` (a handful: one page)."""
    subjects = parts.subjects.extensions(session, extension_query().order_by(EXTENSIONS.c.id))
    return store_plans(session, EXTENSIONS, ((s.id, parts.core.plan(s, now)) for s in subjects), after=now)

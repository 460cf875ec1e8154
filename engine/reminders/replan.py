"""Storing the core's plan on every row again: after an upgrade, or after the calendar changed.

The plan on a row (``next_remind_at``, ``due_on``, ``overdue_on``) is a cache of what the core
says; the core's inputs include the calendar (``[calendar] extra_holidays``) and the schema of the
plan itself, so when either changes every open row is planned again, page by page, from ``now``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, bindparam, update
from sqlalchemy.orm import Session

from ..calendar import WorkCalendar
from ..store.kinds import OccurrenceState
from ..store.models import SiteState
from .core import Plan, ReminderCore
from .subjects import ISSUES, OCCURRENCES, issue_query, occurrence_query

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


def replan_all(session: Session, core: ReminderCore, now: dt.datetime) -> int:
    """Plan every issue and every open duty occurrence from ``now``; returns the rows planned."""
    count = 0
    last = 0
    while True:
        subjects = core.issues(session, issue_query().where(ISSUES.c.id > last).order_by(ISSUES.c.id).limit(PAGE))
        if not subjects:
            break
        count += store_plans(session, ISSUES, ((s.id, core.plan(s, now)) for s in subjects), after=now)
        last = subjects[-1].id
    last = 0
    while True:
        occurrences = core.occurrences(session, occurrence_query().where(
            OCCURRENCES.c.id > last, OCCURRENCES.c.state == OccurrenceState.OPEN).order_by(OCCURRENCES.c.id).limit(PAGE))
        if not occurrences:
            break
        count += store_plans(session, OCCURRENCES, ((o.id, core.plan(o, now)) for o in occurrences), after=now)
        last = occurrences[-1].id
    return count


CALENDAR_KEY = "calendar"


def replan_if_calendar_changed(session: Session, core: ReminderCore, calendar: WorkCalendar,
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
        planned = replan_all(session, core, now)
    if row is None:
        session.add(SiteState(name=CALENDAR_KEY, value=print_, updated_at=now))
    else:
        row.value, row.updated_at = print_, now
    return planned

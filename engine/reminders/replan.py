"""Storing the core's plan on every row again: after an upgrade, or after the calendar changed.

The plan on a row (``next_remind_at``, ``due_on``, ``overdue_on``) is a cache of what the core
says; the core's inputs include the calendar (``[calendar] extra_holidays``) and the schema of the
plan itself, so when either changes every open row is planned again, page by page, from ``now``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from ..store.kinds import OccurrenceState
from .core import ReminderCore
from .subjects import EXTENSIONS, ISSUES, OCCURRENCES, extension_query, issue_query, occurrence_query

PAGE = 2000


def replan_all(session: Session, core: ReminderCore, now: dt.datetime) -> int:
    """Plan every issue, every open duty occurrence and every pending 延期申请 from ``now``; returns
    the rows planned."""
    count = 0
    last = 0
    while True:
        subjects = core.issues(session, issue_query().where(ISSUES.c.id > last).order_by(ISSUES.c.id).limit(PAGE))
        if not subjects:
            break
        moves = [{"b_id": s.id, "b_next": p.next_remind_at, "b_due": p.due_on, "b_overdue": p.overdue_on,
                  "b_after": now} for s in subjects for p in [core.plan(s, now)]]
        session.connection().execute(update(ISSUES).where(ISSUES.c.id == bindparam("b_id")).values(
            next_remind_at=bindparam("b_next"), due_on=bindparam("b_due"), overdue_on=bindparam("b_overdue"),
            remind_after=bindparam("b_after")), moves)
        count += len(moves)
        last = subjects[-1].id
    last = 0
    while True:
        occurrences = core.occurrences(session, occurrence_query().where(
            OCCURRENCES.c.id > last, OCCURRENCES.c.state == OccurrenceState.OPEN).order_by(OCCURRENCES.c.id).limit(PAGE))
        if not occurrences:
            break
        moves = [{"b_id": o.id, "b_next": p.next_remind_at, "b_overdue": p.overdue_on, "b_after": now}
                 for o in occurrences for p in [core.plan(o, now)]]
        session.connection().execute(update(OCCURRENCES).where(OCCURRENCES.c.id == bindparam("b_id")).values(
            next_remind_at=bindparam("b_next"), overdue_on=bindparam("b_overdue"), remind_after=bindparam("b_after")),
            moves)
        count += len(moves)
        last = occurrences[-1].id
    return count + replan_extensions(session, core, now)


def replan_extensions(session: Session, core: ReminderCore, now: dt.datetime) -> int:
    """Plan every pending 延期申请 from ``now`` (a handful: one page)."""
    subjects = core.extensions(session, extension_query().order_by(EXTENSIONS.c.id))
    moves = [{"b_id": s.id, "b_next": p.next_remind_at, "b_due": p.due_on, "b_overdue": p.overdue_on,
              "b_after": now} for s in subjects for p in [core.plan(s, now)]]
    if moves:
        session.connection().execute(update(EXTENSIONS).where(EXTENSIONS.c.id == bindparam("b_id")).values(
            next_remind_at=bindparam("b_next"), due_on=bindparam("b_due"), overdue_on=bindparam("b_overdue"),
            remind_after=bindparam("b_after")), moves)
    return len(moves)

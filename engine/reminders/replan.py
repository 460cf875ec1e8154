"""Storing the core's plan on every row again: after an upgrade, or after the calendar changed.

The plan on a row (``next_remind_at``, ``due_on``, ``overdue_on``) is a cache of what the core
says; the core's inputs include the calendar (``[calendar] extra_holidays``) and the schema of the
plan itself, so when either changes every open row is planned again, page by page, from ``now``.
The rows of an archived ledger have no plan (``engine.ledger.lifecycle``) and are left without one.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from ..store.kinds import OccurrenceState
from .core import ReminderCore
from .subjects import ISSUES, LEDGERS, OCCURRENCES, issue_query, occurrence_query

PAGE = 2000


def replan_all(session: Session, core: ReminderCore, now: dt.datetime, *, ledger_id: int | None = None) -> int:
    """Plan every issue and every open duty occurrence (of one ledger, if given) from ``now``,
    but those of archived ledgers; returns the rows planned."""
    count = 0
    last = 0
    live = LEDGERS.c.archived_at.is_(None)
    issues_of = live if ledger_id is None else and_(live, ISSUES.c.ledger_id == ledger_id)
    while True:
        subjects = core.issues(session, issue_query().where(ISSUES.c.id > last, issues_of)
                               .order_by(ISSUES.c.id).limit(PAGE))
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
            OCCURRENCES.c.id > last, OCCURRENCES.c.state == OccurrenceState.OPEN, _live_occurrences(ledger_id))
            .order_by(OCCURRENCES.c.id).limit(PAGE))
        if not occurrences:
            break
        moves = [{"b_id": o.id, "b_next": p.next_remind_at, "b_overdue": p.overdue_on, "b_after": now}
                 for o in occurrences for p in [core.plan(o, now)]]
        session.connection().execute(update(OCCURRENCES).where(OCCURRENCES.c.id == bindparam("b_id")).values(
            next_remind_at=bindparam("b_next"), overdue_on=bindparam("b_overdue"), remind_after=bindparam("b_after")),
            moves)
        count += len(moves)
        last = occurrences[-1].id
    return count


def _live_occurrences(ledger_id: int | None) -> ColumnElement[bool]:
    """Occurrences of no ledger or of a ledger not archived (of ``ledger_id`` alone, if given)."""
    archived = select(LEDGERS.c.id).where(LEDGERS.c.archived_at.is_not(None))
    live = or_(OCCURRENCES.c.ledger_id.is_(None), OCCURRENCES.c.ledger_id.not_in(archived))
    return live if ledger_id is None else and_(live, OCCURRENCES.c.ledger_id == ledger_id)

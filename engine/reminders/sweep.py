"""The sweep: write every reminder due at ``now``, exactly once.

Shaped like healthchecks' ``sendalerts``: the next-due instant is an indexed column; the sweep
takes the rows whose instant has come (an index range scan: the work follows what is due, not
the size of the table), asks the core for each one's catch-up reminder, writes it under its
unique dedupe key with INSERT … ON CONFLICT DO NOTHING, and stores the core's new plan for the
row, all in one transaction per batch. Running it twice, or again after a crash, adds nothing.
On PostgreSQL rows are claimed with ``FOR UPDATE SKIP LOCKED`` so concurrent sweeps split the
work. A row whose computation fails is looked at again an hour later, so it cannot stop the rest.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, Select, Table, bindparam, update
from sqlalchemy.orm import Session, sessionmaker

from ..store.kinds import OccurrenceState
from ..store.models import REMINDERS
from ..store.upsert import insert_ignore
from .calendar_years import load_confirmations
from .parts import ReminderParts
from .replan import store_plans
from .rows import ReminderRow, reminder_row
from .subjects import EXTENSIONS, ISSUES, OCCURRENCES, Subject, extension_query, issue_query, occurrence_query

log = logging.getLogger("duban.sweep")

BATCH = 1000
RETRY_BROKEN = dt.timedelta(hours=1)


@dataclass
class SweepResult:
    at: dt.datetime
    examined: int = 0
    written: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


class Sweeper:
    """Streams what is due in batches of ``BATCH``: each batch is read, computed and written in its
    own transaction and let go before the next is read, so a catch-up over hundreds of thousands of
    due rows holds one batch at a time (the daemon's first sweep after a long stop)."""

    def __init__(self, parts: ReminderParts, sessions: sessionmaker[Session],
                 on_batch: Callable[[str, int], None] | None = None):
        self.core = parts.core
        self.subjects = parts.subjects
        self.schedule_reminder = parts.schedule_reminder
        self.sessions = sessions
        self.on_batch = on_batch  # (table, rows) after each batch is committed and let go

    def sweep(self, now: dt.datetime) -> SweepResult:
        started = time.perf_counter()
        result = SweepResult(at=now)
        with self.sessions() as session:  # a year confirmed since the last sweep ends its December reminder
            load_confirmations(session, self.core.calendar)
        issues = issue_query().where(ISSUES.c.next_remind_at <= now).order_by(ISSUES.c.next_remind_at)
        while self._batch(now, result, issues, ISSUES, self.subjects.issue):
            pass
        occurrences = (occurrence_query().where(OCCURRENCES.c.next_remind_at <= now,
                                                OCCURRENCES.c.state == OccurrenceState.OPEN)
                       .order_by(OCCURRENCES.c.next_remind_at))
        while self._batch(now, result, occurrences, OCCURRENCES, self.subjects.occurrence):
            pass
        extensions = extension_query().where(EXTENSIONS.c.next_remind_at <= now).order_by(EXTENSIONS.c.next_remind_at)
        while self._batch(now, result, extensions, EXTENSIONS, self.subjects.extension):
            pass
        calendar = self.schedule_reminder.catch_up(now)
        if calendar is not None:
            with self.sessions() as session, session.begin():
                result.written += self._write(session, [calendar | {"created_at": now}])
        result.seconds = time.perf_counter() - started
        return result

    def _batch(self, now: dt.datetime, result: SweepResult, stmt: Select[Any], table: Table,
               subject_of: Callable[[Session, Row[Any]], Subject]) -> bool:
        count = self._one_batch(now, result, stmt, table, subject_of)  # its rows are let go on return
        if self.on_batch is not None:
            self.on_batch(table.name, count)
        return count == BATCH

    def _one_batch(self, now: dt.datetime, result: SweepResult, stmt: Select[Any], table: Table,
                   subject_of: Callable[[Session, Row[Any]], Subject]) -> int:
        """Claim one batch of due rows, write their reminders, store each row's new plan."""
        with self.sessions() as session, session.begin():
            stmt = stmt.limit(BATCH)
            if session.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True, of=table)
            rows = session.execute(stmt).all()
            reminders: list[ReminderRow] = []
            moves, broken = [], []
            for row in rows:
                try:
                    subject = subject_of(session, row)
                    due = self.core.catch_up(subject, now)
                    if due is not None:
                        reminders.append(reminder_row(self.core, subject, due) | {"created_at": now})
                    moves.append((row.id, self.core.plan(subject, now)))
                except Exception as exc:
                    log.exception("%s %s: cannot compute its reminders", table.name, row.id)
                    result.errors.append(f"{table.name} {row.id}: {exc}")
                    broken.append({"b_id": row.id, "b_after": row.remind_after, "b_next": now + RETRY_BROKEN})
            result.written += self._write(session, reminders)
            conn = session.connection()
            # The plan's dates only move with the row's inputs, which the sweep does not change;
            # they are written anyway, so a row the sweep looked at carries the core's answer.
            store_plans(session, table, moves, after=now)
            if broken:
                conn.execute(update(table).where(table.c.id == bindparam("b_id")).values(
                    remind_after=bindparam("b_after"), next_remind_at=bindparam("b_next")), broken)
            result.examined += len(rows)
            return len(rows)

    @staticmethod
    def _write(session: Session, rows: list[ReminderRow]) -> int:
        if not rows:
            return 0
        # RETURNING gives back only the rows actually inserted: rowcount is not reliable for
        # executemany, and a key that was already there must not count as written.
        stmt = insert_ignore(session, REMINDERS, ["dedupe_key"]).returning(REMINDERS.c.id)
        return len(session.connection().execute(stmt, rows).all())

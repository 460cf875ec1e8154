"""The sweep: write every reminder due at ``now``, exactly once.

Shaped like healthchecks' ``sendalerts``: the next-due instant is an indexed column; the sweep
takes the rows whose instant has come (an index range scan: the work follows what is due, not
the size of the table), writes each reminder under a unique dedupe key (subject, rule,
occurrence) with INSERT … ON CONFLICT DO NOTHING, and moves the row's next-due instant forward,
all in one transaction per batch. Running it twice, or again after a crash, adds nothing. On
PostgreSQL rows are claimed with ``FOR UPDATE SKIP LOCKED`` so concurrent sweeps split the work.
After a downtime each subject gets one reminder for the missed window (see Planner.catch_up).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import Connection, Row, bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from .deadlines import Reminder as Due
from .deadlines import Track
from .duties import policy_of
from .runtime import Runtime
from .store.models import Duty, DutyOccurrence, Issue, Ledger, Reminder, WorkflowVersion
from .store.upsert import insert_ignore
from .tracks import issue_recipients

log = logging.getLogger("duban.sweep")

BATCH = 1000
RETRY_BROKEN = dt.timedelta(hours=1)  # a row whose computation fails is looked at again later
CALENDAR_REMINDER_AT = dt.time(9, 0)


@dataclass
class SweepResult:
    at: dt.datetime
    examined: int = 0
    written: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def _template(policy) -> dict:
    """What the notification layer needs from the reminder policy (only when set: rows stay small)."""
    out: dict = {}
    if policy.item_template:
        out["item_template"] = policy.item_template
    if policy.urgent:
        out["urgent"] = True
    return out


def dedupe_key(subject: str, rule: str, occurrence: str) -> str:
    return f"{subject}|{rule}|{occurrence}"


class Sweeper:
    def __init__(self, runtime: Runtime, sessions: sessionmaker[Session]):
        self.rt = runtime
        self.sessions = sessions
        self._hashes: dict[int, str] = {}

    def sweep(self, now: dt.datetime) -> SweepResult:
        started = time.perf_counter()
        result = SweepResult(at=now)
        while self._issue_batch(now, result):
            pass
        while self._occurrence_batch(now, result):
            pass
        self._calendar_check(now, result)
        result.seconds = time.perf_counter() - started
        return result

    # -- issues ------------------------------------------------------------------------------

    def _workflow_hash(self, session: Session, workflow_id: int) -> str:
        digest = self._hashes.get(workflow_id)
        if digest is None:
            version = session.get(WorkflowVersion, workflow_id)
            digest = self._hashes[workflow_id] = self.rt.workflow_hash(version)
        return digest

    def _claim(self, session: Session, stmt, table):
        """Read the due rows; on PostgreSQL lock them so a concurrent sweep skips them."""
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True, of=table)
        return session.execute(stmt).all()

    def _run_batch(self, now: dt.datetime, result: SweepResult, stmt, table,
                   plan: Callable[[Session, Row], tuple[dict | None, Track | None]],
                   label: Callable[[Row], str]) -> bool:
        """Claim one batch of due rows, write their reminders, move each row's next-due forward.

        ``plan`` turns a row into (the reminder to write or None, the track it follows or None).
        """
        with self.sessions() as session, session.begin():
            rows = self._claim(session, stmt, table)
            reminders, moves = [], []
            for r in rows:
                try:
                    row, track = plan(session, r)
                    if row is not None:
                        reminders.append(row)
                    nxt = None if track is None else self.rt.planner.next_after(track, now)
                    moves.append({"b_id": r.id, "b_after": now, "b_next": nxt})
                except Exception as exc:  # noqa: BLE001 - one bad row must not stop every reminder
                    log.exception("%s: cannot compute its reminders", label(r))
                    result.errors.append(f"{label(r)}: {exc}")
                    moves.append({"b_id": r.id, "b_after": r.remind_after, "b_next": now + RETRY_BROKEN})
            result.written += self._write(session, reminders)
            if moves:
                session.connection().execute(
                    update(table).where(table.c.id == bindparam("b_id"))
                    .values(remind_after=bindparam("b_after"), next_remind_at=bindparam("b_next")), moves)
            result.examined += len(rows)
        return len(rows) == BATCH

    def _issue_batch(self, now: dt.datetime, result: SweepResult) -> bool:
        issues = Issue.__table__
        stmt = (select(issues.c.id, issues.c.ref, issues.c.state, issues.c.deadline, issues.c.state_since,
                       issues.c.last_checkin_at, issues.c.remind_after, issues.c.leader, issues.c.department,
                       issues.c.title, issues.c.area, issues.c.category, issues.c.workflow_id, issues.c.ledger_id,
                       Ledger.name, Ledger.feedback_date)
                .select_from(issues.join(Ledger.__table__))
                .where(issues.c.next_remind_at <= now).order_by(issues.c.next_remind_at).limit(BATCH))
        tracker, planner = self.rt.tracker, self.rt.planner

        def plan(session: Session, r: Row) -> tuple[dict | None, Track | None]:
            track = tracker.issue_track(self._workflow_hash(session, r.workflow_id), r.state, r.deadline,
                                        r.feedback_date, tracker.local(r.state_since), tracker.local(r.last_checkin_at))
            if track is None:
                return None, None
            due = planner.catch_up(track, r.remind_after or r.state_since, now)
            if due is None:
                return None, track
            return self._row(
                now, f"{r.name}/{r.ref}", due, issue_recipients(r.leader, r.department, due.add),
                ledger_id=r.ledger_id, issue_id=r.id, occurrence_id=None, due_date=track.due,
                details={"title": r.title, "ledger": r.name, "ref": r.ref, "state": r.state, "leader": r.leader,
                         "department": r.department, "area": r.area, "category": r.category, "level": due.level,
                         **_template(track.policy)}), track

        return self._run_batch(now, result, stmt, issues, plan, lambda r: f"issue {r.name}/{r.ref}")

    def _occurrence_batch(self, now: dt.datetime, result: SweepResult) -> bool:
        occ = DutyOccurrence.__table__
        issues = Issue.__table__
        stmt = (select(occ.c.id, occ.c.period, occ.c.due, occ.c.remind_after, occ.c.created_at, occ.c.issue_id,
                       occ.c.duty_id, Duty.key, Duty.title, Duty.ledger_id, issues.c.leader,
                       issues.c.department, issues.c.state)
                .select_from(occ.join(Duty.__table__).outerjoin(issues, issues.c.id == occ.c.issue_id))
                .where(occ.c.next_remind_at <= now, occ.c.state == "open")
                .order_by(occ.c.next_remind_at).limit(BATCH))
        tracker, planner = self.rt.tracker, self.rt.planner
        duties: dict[int, Duty] = {}

        def plan(session: Session, r: Row) -> tuple[dict | None, Track | None]:
            duty = duties.get(r.duty_id) or duties.setdefault(r.duty_id, session.get(Duty, r.duty_id))
            each = (duty.spec.get("for_each") or {}).get("state") if duty.kind == "recurring" else None
            if each is not None and r.state != each:  # the issue left the state: no look-back due
                return None, None
            track = tracker.occurrence_track(r.due, policy_of(duty))
            due = planner.catch_up(track, r.remind_after or r.created_at, now)
            if due is None:
                return None, track
            milestone = duty.kind == "milestone"
            return self._row(
                now, r.key, due, issue_recipients(r.leader or "", r.department or "", (*duty.owners, *due.add)),
                ledger_id=r.ledger_id, issue_id=r.issue_id, occurrence_id=r.id, due_date=track.due,
                occurrence=f"{r.period}@{due.occurrence}",
                details={"title": r.title, "duty": r.key, "period": r.period, "level": due.level,
                         "ledger": r.key.split(":", 1)[0] if milestone else None, "milestone": milestone,
                         "department": r.department, **_template(track.policy)}), track

        return self._run_batch(now, result, stmt, occ, plan, lambda r: f"duty {r.key} {r.period}")

    # -- the calendar itself -----------------------------------------------------------------

    def _calendar_check(self, now: dt.datetime, result: SweepResult) -> None:
        """From 1 December, remind the administrators to enter next year's official schedule."""
        cal = self.rt.calendar
        today = cal.local_date(now)
        if today.month != 12 or cal.covers(today.year + 1) or not cal.is_workday(today):
            return
        at = cal.at_local(today, CALENDAR_REMINDER_AT)
        if at > now:
            return
        year = today.year + 1
        due = Due(at=at, kind="duty", rule="official-schedule", occurrence=today.isoformat(), k=0, days_overdue=0)
        row = self._row(now, f"calendar:{year}", due, list(self.rt.config.workflows.admins), ledger_id=None,
                        issue_id=None, occurrence_id=None, due_date=dt.date(year, 1, 1),
                        details={"title": f"录入{year}年国务院节假日安排（extra_holidays / extra_workdays）",
                                 "year": year})
        with self.sessions() as session, session.begin():
            result.written += self._write(session, [row])

    # -- writing -----------------------------------------------------------------------------

    @staticmethod
    def _row(now: dt.datetime, subject: str, due: Due, recipients: list[str], *, ledger_id, issue_id,
             occurrence_id, due_date: dt.date, details: dict, occurrence: str | None = None) -> dict:
        occurrence = occurrence or due.occurrence
        return {"dedupe_key": dedupe_key(subject, due.rule, occurrence), "at": due.at, "subject": subject,
                "kind": due.kind, "rule": due.rule, "occurrence": occurrence, "recipients": recipients,
                "ledger_id": ledger_id, "issue_id": issue_id, "occurrence_id": occurrence_id, "due": due_date,
                "days_overdue": due.days_overdue, "details": details, "created_at": now}

    @staticmethod
    def _write(session: Session, rows: list[dict]) -> int:
        if not rows:
            return 0
        conn: Connection = session.connection()
        table = Reminder.__table__
        # RETURNING gives back only the rows actually inserted: rowcount is not reliable for
        # executemany, and a key that was already there must not count as written.
        stmt = insert_ignore(session, table, ["dedupe_key"]).returning(table.c.id)
        return len(conn.execute(stmt, rows).all())

"""What the status board's pages show, read from the store in one short read-only transaction per
request (the board itself, ``engine.board``, draws and lays out; it never reads the tables).

Every figure is counted in SQL (``GROUP BY`` over an index) and every list is a page of an index
range with its total, so a page costs what it shows: the overview of one ledger reads that
ledger's rows, never the table, and the front page lists the most urgent items, not all of them.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Integer, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from ..reminders.agenda import DeadlineItem, DutyItem, count_deadlines, deadline_item, duty_items, open_deadlines
from ..reminders.subjects import ISSUES, issue_query
from ..runtime import Runtime
from ..store.kinds import OccurrenceState
from ..store.models import HistoryEntry, Issue, IssueDepartment, Ledger, WorkflowVersion
from ..workflow.schema import WorkflowDef
from .classes import Overview, StateClasses, classes_for, review_counts, review_sentence
from .queries import issue_detail, resolve_ref

PAGE = 50  # items of a list shown at once; the rest are a link away
LEDGERS_PAGE = 20  # ledger overviews on one page of the front page
UPCOMING_DAYS = 14
# What a history entry's step and door are called where people read them (the status board's and
# the workspace's issue pages). A workflow's own steps are named by its transitions' labels; these
# are the entries duban records beside them.
STEPS = {"progress": "进展情况", "evidence": "上传佐证材料", "extension_request": "延期申请", "extend": "延期",
         "extension_refused": "不同意延期", "extension_approved": "同意延期", "handover": "人员调整", "edit": "修改",
         "checkin": "回头看", "import": "导入台账", "migrate": "迁移工作流版本"}
DOORS = {"web": "网页", "api": "接口", "cli": "命令行", "import": "导入", "system": "系统"}


def step_words(workflow: WorkflowDef) -> dict[str, str]:
    """Every step a history entry of ``workflow`` may name, as people read it (``STEPS`` and the
    workflow's transition labels): the pages' and ``duban issue show``'s one table."""
    return {**STEPS, **{t.trigger: t.label or t.trigger for t in workflow.transitions}}


@dataclass
class AreaRow:
    name: str
    states: dict[str, int] = field(default_factory=dict)
    done: int = 0
    open: int = 0
    long_term: int = 0

    @property
    def total(self) -> int:
        return sum(self.states.values())


@dataclass
class LedgerBoard:
    """One ledger's overview: the sentence, the area × state table and the burn-down points."""

    name: str
    unit: str
    feedback_date: dt.date | None
    overview: Overview
    states: list[tuple[str, str]]  # (state, label) in workflow order
    areas: list[AreaRow]
    totals: AreaRow
    burndown: list[tuple[dt.date, int, int]]  # (date, open, done)
    last_deadline: dt.date | None
    review: str = ""  # "其中待审核销号1个，经退回二次整改1个" (classes.review_sentence)


def ledger_workflow(session: Session, runtime: Runtime, ledger: Ledger) -> WorkflowDef:
    """The version of its workflow the ledger runs: its states head the overview's columns."""
    return runtime.registry.definition(runtime.registry.of_ledger(session, ledger))


def ledger_board(session: Session, runtime: Runtime, ledger: Ledger, today: dt.date) -> LedgerBoard:
    wf = ledger_workflow(session, runtime, ledger)
    classes = classes_for(runtime.config, ledger.name, wf)
    rows: dict[str, AreaRow] = {}
    totals = AreaRow("合计")
    order = (select(Issue.area, Issue.state, func.count(), func.min(Issue.position))
             .where(Issue.ledger_id == ledger.id).group_by(Issue.area, Issue.state).order_by(func.min(Issue.position)))
    for area, state, n, _ in session.execute(order):
        row = rows.setdefault(area or "—", AreaRow(area or "—"))
        for target in (row, totals):
            target.states[state] = target.states.get(state, 0) + n
            if state in classes.open:
                target.open += n
            else:
                target.done += n
                target.long_term += n if state in classes.long_term else 0
    categories = session.scalar(select(func.count(func.distinct(Issue.category)))
                                .where(Issue.ledger_id == ledger.id, Issue.category != "")) or 0
    overview = Overview(len([a for a in rows if a != "—"]), categories, totals.total, totals.done, totals.open,
                        totals.long_term)
    last = session.scalar(select(func.max(Issue.deadline)).where(Issue.ledger_id == ledger.id))
    return LedgerBoard(ledger.name, ledger.unit, ledger.feedback_date, overview,
                       [(s.name, s.label) for s in wf.states], list(rows.values()), totals,
                       burndown(session, runtime, ledger, classes, today), last,
                       review_sentence(*review_counts(session, ledger.id, wf, classes)))


_BUCKET = 900  # seconds: every time zone's offset is a multiple of 15 minutes


def _bucket(session: Session, column: Any) -> ColumnElement[Any]:
    """The 15-minute slot of a UTC instant column, as an integer, counted in SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", column) / _BUCKET), Integer)
    return cast(func.strftime("%s", column), Integer) // _BUCKET


def burndown(session: Session, runtime: Runtime, ledger: Ledger, classes: StateClasses,
             today: dt.date) -> list[tuple[dt.date, int, int]]:
    """(date, open, done) after each day something changed, from counts grouped in SQL.

    An issue enters the ledger on its ``created_at`` in the state its first history entry left
    (or its current state when it never moved since the import); every history entry (a
    transition, or an import that changed the status) moves it from then on. The entry states are
    not read per issue: the issues open at creation are those open now, less what their moves
    opened since (each move's net effect on "open", summed by the day the issue was created).
    """
    tz = runtime.calendar.tz

    def day(slot: int) -> dt.date:
        return dt.datetime.fromtimestamp(int(slot) * _BUCKET, dt.UTC).astimezone(tz).date()

    # issues are created by imports, a few instants per ledger: grouped by the instant itself
    born = session.execute(select(Issue.created_at, Issue.state, func.count()).where(Issue.ledger_id == ledger.id)
                           .group_by(Issue.created_at, Issue.state)).all()
    moved_at = _bucket(session, HistoryEntry.at)
    moves = session.execute(select(Issue.created_at, moved_at, HistoryEntry.from_state, HistoryEntry.to_state,
                                   func.count())
                            .join(Issue, Issue.id == HistoryEntry.issue_id).where(Issue.ledger_id == ledger.id)
                            .group_by(Issue.created_at, moved_at, HistoryEntry.from_state, HistoryEntry.to_state)).all()
    local = runtime.calendar.local_date
    # per day: (issues added, open added) from creations first, then the moves of the day
    delta: dict[dt.date, list[int]] = defaultdict(lambda: [0, 0])
    for created, state, n in born:  # as if created in the state they are in now…
        counts = delta[local(created)]
        counts[0] += n
        counts[1] += n if state in classes.open else 0
    for created, slot, from_state, to_state, n in moves:
        opens = n * ((to_state in classes.open) - (from_state in classes.open))
        delta[local(created)][1] -= opens  # …less what their moves opened since
        delta[day(slot)][1] += opens
    points: list[tuple[dt.date, int, int]] = []
    total = opened = 0
    for d in sorted(delta):
        total += delta[d][0]
        opened += delta[d][1]
        points.append((d, opened, total - opened))
    if points and points[-1][0] < today:
        points.append((today, points[-1][1], points[-1][2]))
    return points


@dataclass
class Agenda:
    """The lists of the front page: late things first, then what falls due soon; each a page of
    at most ``PAGE`` items with the total it was taken from."""

    overdue: list[DeadlineItem]
    overdue_total: int
    overdue_duties: list[DutyItem]
    upcoming: list[DeadlineItem]
    upcoming_total: int
    upcoming_duties: list[DutyItem]


def agenda(session: Session, runtime: Runtime, today: dt.date, *, ledger: Ledger | None,
           department: str | None, days: int = UPCOMING_DAYS, page: int = 1) -> Agenda:
    horizon = today + dt.timedelta(days=days)
    skip = (page - 1) * PAGE
    filters: dict[str, Any] = {"ledger": ledger, "department": department}
    overdue = open_deadlines(session, runtime, today, overdue=True, limit=PAGE, offset=skip, **filters)
    upcoming = open_deadlines(session, runtime, today, overdue=False, due_until=horizon, limit=PAGE, offset=skip,
                              **filters)
    return Agenda(overdue, count_deadlines(session, today, overdue=True, **filters),
                  duty_items(session, runtime, today, open_only=True, overdue=True, limit=PAGE, **filters),
                  upcoming, count_deadlines(session, today, overdue=False, due_until=horizon, **filters),
                  duty_items(session, runtime, today, start=today, end=horizon, open_only=True, overdue=False,
                             limit=PAGE, **filters))


def month_grid(session: Session, runtime: Runtime, today: dt.date, first: dt.date, months: int, *,
               ledger: Ledger | None, department: str | None) -> list[dict[str, Any]]:
    """Month calendars from ``first``: weeks of days, each with its duties and deadlines counted."""
    start = first.replace(day=1)
    end_month = start
    for _ in range(months):
        end_month = (end_month + dt.timedelta(days=32)).replace(day=1)
    end = end_month - dt.timedelta(days=1)
    by_day: dict[dt.date, Counter[tuple[str, str, str]]] = {}
    for d in duty_items(session, runtime, today, start=start, end=end, ledger=ledger, department=department):
        state = "done" if d.state == OccurrenceState.DONE else ("overdue" if d.late.overdue else "open")
        by_day.setdefault(d.due, Counter())[(d.title, state, "duty")] += 1
    # deadlines are counted per day and state in SQL: a month may hold thousands
    stmt = (select(ISSUES.c.due_on, ISSUES.c.state, ISSUES.c.workflow_id, ISSUES.c.overdue_on <= today, func.count())
            .where(ISSUES.c.due_on >= start, ISSUES.c.due_on <= end)
            .group_by(ISSUES.c.due_on, ISSUES.c.state, ISSUES.c.workflow_id, ISSUES.c.overdue_on <= today))
    if ledger is not None:
        stmt = stmt.where(ISSUES.c.ledger_id == ledger.id)
    if department:
        stmt = stmt.where(ISSUES.c.id.in_(select(IssueDepartment.issue_id).where(IssueDepartment.department == department)))
    versions = {}
    for due, state, workflow_id, late, n in session.execute(stmt):
        if workflow_id not in versions:
            version = session.get(WorkflowVersion, workflow_id)
            assert version is not None  # issues.workflow_id is a foreign key
            versions[workflow_id] = runtime.registry.definition(version)
        rule = versions[workflow_id].deadlines.get(state)
        title, kind = (rule.title or "整改时限", "deadline") if rule is not None else ("长期坚持事项回头看", "checkin")
        by_day.setdefault(due, Counter())[(title, "overdue" if late else "open", kind)] += n
    out = []
    month = start
    while month <= end:
        nxt = (month + dt.timedelta(days=32)).replace(day=1)
        day = month - dt.timedelta(days=month.weekday())  # weeks start on Monday
        weeks = []
        while day < nxt:
            week = []
            for _ in range(7):
                entries = [{"title": t, "state": s, "kind": k, "count": n}
                           for (t, s, k), n in sorted(by_day.get(day, Counter()).items())]
                week.append({"date": day, "in_month": day.month == month.month, "today": day == today,
                             "workday": runtime.calendar.is_workday(day), "entries": entries})
                day += dt.timedelta(days=1)
            weeks.append(week)
        out.append({"month": month, "weeks": weeks})
        month = nxt
    return out


def issue_page(session: Session, runtime: Runtime, ledger_name: str, ref: str, today: dt.date) -> dict[str, Any]:
    """One issue: its fields, history, evidence, current deadline and look-backs."""
    issue = resolve_ref(session, f"{ledger_name}/{ref}")
    core = runtime.core
    subject = runtime.subjects.issues(session, issue_query().where(ISSUES.c.id == issue.id))[0]
    data = issue_detail(session, issue, subject.workflow, runtime.config.tz)  # times local, with their offset
    item = deadline_item(core, subject, today)
    data["track"] = None if item is None else {
        "due": item.due, "what": item.rule_title, "days_overdue": item.late.days_overdue, "level": item.late.level,
        "escalated_to": list(item.late.escalated_to)}
    data["labels"] = {s.name: s.label for s in subject.workflow.states}
    data["steps"] = step_words(subject.workflow)
    data["doors"] = DOORS
    # the times above are in the configured zone; the page says which once, not on every row
    data["zone"] = "UTC" + dt.datetime.combine(today, dt.time(12), runtime.config.tz).isoformat()[-6:]
    data["lookbacks"] = duty_items(session, runtime, today, issue_id=issue.id)
    return data


def ledger_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Ledger)) or 0


def ledgers(session: Session, *, page: int = 1, per_page: int | None = None) -> list[Ledger]:
    stmt = select(Ledger).order_by(Ledger.name)
    if per_page is not None:
        stmt = stmt.limit(per_page).offset((page - 1) * per_page)
    return list(session.scalars(stmt))


def all_departments(session: Session, ledger: Ledger | None) -> list[str]:
    """Every department the issues name (for the filter links)."""
    stmt = select(IssueDepartment.department).distinct().order_by(IssueDepartment.department)
    if ledger is not None:
        stmt = stmt.join(Issue, Issue.id == IssueDepartment.issue_id).where(Issue.ledger_id == ledger.id)
    return list(session.scalars(stmt))


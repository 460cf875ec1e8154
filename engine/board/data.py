"""What the board pages show, read from the store in one short read-only transaction per request."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..errors import NotFound
from ..queries import issue_detail, resolve_ref
from ..report import Overview, StateClasses, classify, settings_for
from ..runtime import Runtime
from ..store.models import HistoryEntry, Issue, Ledger, WorkflowVersion
from ..workflow.schema import WorkflowDef
from .agenda import DeadlineItem, DutyItem, departments_of, duty_items, lateness, natural, open_deadlines


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


def _workflow(session: Session, runtime: Runtime, ledger: Ledger) -> WorkflowDef:
    version = session.scalar(select(WorkflowVersion).join(Issue, Issue.workflow_id == WorkflowVersion.id)
                             .where(Issue.ledger_id == ledger.id).order_by(WorkflowVersion.id.desc()).limit(1))
    if version is None:
        return runtime.registry.definition(runtime.registry.current(session, ledger.workflow_name))
    return runtime.registry.definition(version)


def ledger_board(session: Session, runtime: Runtime, ledger: Ledger, today: dt.date) -> LedgerBoard:
    wf = _workflow(session, runtime, ledger)
    classes = classify(wf, settings_for(runtime.config, ledger.name))
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
                       burndown(session, runtime, ledger, classes, today), last)


def burndown(session: Session, runtime: Runtime, ledger: Ledger, classes: StateClasses,
             today: dt.date) -> list[tuple[dt.date, int, int]]:
    """(date, open, done) after each day something changed, replayed from the history.

    An issue enters the ledger on its ``created_at`` in the state its first history entry left
    (or its current state when it never moved since the import); every history entry (a
    transition, or an import that changed the status) moves it from then on.
    """
    def local(instant: dt.datetime) -> dt.date:
        return runtime.calendar.local_date(instant)

    issues = {i: (state, local(created)) for i, state, created in session.execute(
        select(Issue.id, Issue.state, Issue.created_at).where(Issue.ledger_id == ledger.id))}
    history = session.execute(select(HistoryEntry.issue_id, HistoryEntry.at, HistoryEntry.from_state,
                                     HistoryEntry.to_state).join(Issue, Issue.id == HistoryEntry.issue_id)
                              .where(Issue.ledger_id == ledger.id).order_by(HistoryEntry.at, HistoryEntry.id)).all()
    first: dict[int, str] = {}
    # (day, creation before moves, order within the day, issue, state it is in from then on)
    events: list[tuple[dt.date, int, int, int, str]] = []
    for n, (issue_id, at, from_state, to_state) in enumerate(history):
        first.setdefault(issue_id, from_state or to_state)
        events.append((local(at), 1, n, issue_id, to_state))
    for issue_id, (state, created) in issues.items():
        events.append((created, 0, -1, issue_id, first.get(issue_id, state)))
    events.sort()
    current: dict[int, str] = {}
    points: list[tuple[dt.date, int, int]] = []
    for day, _, _, issue_id, state in events:
        current[issue_id] = state
        opened = sum(1 for s in current.values() if s in classes.open)
        point = (day, opened, len(current) - opened)
        if points and points[-1][0] == day:
            points[-1] = point
        else:
            points.append(point)
    if points and points[-1][0] < today:
        points.append((today, points[-1][1], points[-1][2]))
    return points


@dataclass
class Agenda:
    """The lists of the front page: late things first, then what falls due soon."""

    overdue: list[DeadlineItem]
    overdue_duties: list[DutyItem]
    upcoming: list[DeadlineItem]
    upcoming_duties: list[DutyItem]


def agenda(session: Session, runtime: Runtime, today: dt.date, *, ledger: Ledger | None,
           department: str | None, days: int = 14) -> Agenda:
    deadlines = open_deadlines(session, runtime, today, ledger=ledger, department=department)
    horizon = today + dt.timedelta(days=days)
    duties = duty_items(session, runtime, today, end=horizon, ledger=ledger, department=department, open_only=True)
    overdue = [d for d in deadlines if d.late.overdue]
    overdue.sort(key=lambda d: (-d.late.level, -d.late.days_overdue, d.due, d.ledger, natural(d.ref)))
    return Agenda(overdue, [d for d in duties if d.late.overdue],
                  [d for d in deadlines if not d.late.overdue and d.due <= horizon],
                  [d for d in duties if not d.late.overdue and d.due >= today])


def month_grid(session: Session, runtime: Runtime, today: dt.date, first: dt.date, months: int, *,
               ledger: Ledger | None, department: str | None) -> list[dict[str, Any]]:
    """Month calendars from ``first``: weeks of days, each with its duties (grouped) and deadlines."""
    start = first.replace(day=1)
    end_month = start
    for _ in range(months):
        end_month = (end_month + dt.timedelta(days=32)).replace(day=1)
    end = end_month - dt.timedelta(days=1)
    by_day: dict[dt.date, Counter[tuple[str, str, str]]] = {}
    for d in duty_items(session, runtime, today, start=start, end=end, ledger=ledger, department=department):
        state = "done" if d.state == "done" else ("overdue" if d.late.overdue else "open")
        by_day.setdefault(d.due, Counter())[(d.title, state, "duty")] += 1
    for item in open_deadlines(session, runtime, today, ledger=ledger, department=department):
        if start <= item.due <= end:
            state = "overdue" if item.late.overdue else "open"
            # check-ins of long-term items come in batches (all imported the same day): one line per day
            title = "长期坚持事项回头看" if item.kind == "checkin" else f"{item.rule_title}：{item.subject}"
            by_day.setdefault(item.due, Counter())[(title, state, item.kind)] += 1
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
    version = session.get(WorkflowVersion, issue.workflow_id)
    if version is None:  # pragma: no cover - a foreign key guarantees it
        raise NotFound(f"workflow of {ledger_name}/{ref} is missing")
    wf_hash = runtime.workflow_hash(version)
    data = issue_detail(session, issue, runtime.tracker.workflow(wf_hash))
    tracker = runtime.tracker
    track = tracker.issue_track(wf_hash, issue.state, issue.deadline, issue.ledger.feedback_date,
                                tracker.local(issue.state_since), tracker.local(issue.last_checkin_at))
    data["track"] = None
    if track is not None:
        rule = tracker.workflow(wf_hash).deadlines.get(issue.state)
        late = lateness(runtime, track, today)
        data["track"] = {"due": track.due, "what": (rule.title or "整改时限") if rule else "回头看",
                         "days_overdue": late.days_overdue, "level": late.level,
                         "escalated_to": list(late.escalated_to)}
    tz = runtime.config.tz
    for row, key in [(data, "state_since"), *((h, "at") for h in data["history"]),
                     *((e, "added_at") for e in data["evidence"])]:
        row[key] = dt.datetime.fromisoformat(row[key]).astimezone(tz).isoformat()  # stored in UTC, shown local
    data["labels"] = {s.name: s.label for s in tracker.workflow(wf_hash).states}
    data["lookbacks"] = [o for o in duty_items(session, runtime, today, ledger=issue.ledger) if o.issue_id == issue.id]
    return data


def ledgers(session: Session) -> list[Ledger]:
    return list(session.scalars(select(Ledger).order_by(Ledger.name)))


def all_departments(session: Session, ledger: Ledger | None) -> list[str]:
    """Every department the issues name (for the filter links), each cell split into its parts."""
    stmt = select(Issue.department).distinct()
    if ledger is not None:
        stmt = stmt.where(Issue.ledger_id == ledger.id)
    return sorted({d for cell in session.scalars(stmt) for d in departments_of(cell)})

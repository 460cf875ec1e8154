"""The workspace's lists, each one indexed query filtered by the user's scope in SQL.

*我的待办* is the reminder core's own answer (``open_deadlines``: the deadline rule's title, the due
date and the working days overdue, most urgent first), limited to the issues waiting on the user:
in a state from which one of their roles may take a step; before them, the pending 延期申请 the
user may decide (``open_extensions``, read off the pending requests' index). The issue list and the per-unit
overview count and page in the database; a page is at most ``PAGE`` rows. The list's search (``q``) reads
its candidates off the search index (``engine.issues.search``), never the issues' text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, NamedTuple, cast

from sqlalchemy import ColumnElement, Row, Select, and_, func, select, true
from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..accounts.policy import DutyAction, DutySubject, may_duty
from ..reminders.agenda import (
    DeadlineItem,
    DutyItem,
    ExtensionItem,
    count_deadlines,
    count_upto,
    duty_items,
    open_deadlines,
    open_deadlines_in,
    open_extensions,
)
from ..reminders.core import due_title
from ..runtime import Runtime
from ..store.models import ISSUE_DEPARTMENTS, ISSUE_SEARCH, Issue, Ledger, WorkflowVersion
from ..workflow.schema import WorkflowDef
from . import search
from .classes import classes_for
from .district import status_clause
from .extensions import deciding
from .queries import ledger_units

PAGE = 50
COUNT_CAP = 1000
_FEW_LEDGERS = 50  # a unit's ledgers read one by one (a few inspection rounds), past it all at once
_DUTY_ROUNDS = 5  # pages of duty occurrences read at most for one page the policy thins out


def _definitions(session: Session, runtime: Runtime) -> dict[int, WorkflowDef]:
    """Every workflow version issues are on (a handful): id -> definition."""
    return {v.id: runtime.registry.definition(v) for v in session.scalars(select(WorkflowVersion))}


def states_by_role(definitions: Mapping[int, WorkflowDef]) -> dict[str, set[str]]:
    merged: dict[str, set[str]] = {}
    for wf in definitions.values():
        for role, states in wf.states_by_role().items():
            merged.setdefault(role, set()).update(states)
    return merged


class Counted(NamedTuple):
    """How many a list holds: exact up to ``COUNT_CAP``; past it ``more`` and a lower bound (shown
    "1000+"), because counting tens of thousands of rows on every page view is what made the
    workspace slow at a million issues. ``last`` is the last page known to exist."""

    total: int
    more: bool
    last: int


class Departmental(NamedTuple):
    """An actor whose one grant is a department (most accounts): its name, and their unit's ledgers
    (None: the actor is of no unit)."""

    name: str
    ledgers: list[int] | None


def _department_only(actor: Actor, ledgers: list[int] | None) -> Departmental | None:
    """The department when that is the actor's one grant: their counts are read straight off
    ``issue_departments (department, ledger_id)``, a unit's account's within the unit's ledgers
    (``ledgers``: ``_unit_ledgers``'s answer); anyone else's (and a unit's of many ledgers) through
    ``Actor.visible``."""
    if actor.is_admin or len(actor.grants) != 1 or actor.grants[0][0] != "department":
        return None
    name = actor.scope_of("department", actor.grants[0][1])
    if not actor.unit:
        return Departmental(name, None)
    return None if ledgers is None else Departmental(name, ledgers)


def _unit_ledgers(session: Session, actor: Actor) -> list[int] | None:
    """The ids of the actor's unit's ledgers, when a few (at most ``_FEW_LEDGERS``); else None."""
    if not actor.unit:
        return None
    ledgers = list(session.scalars(select(Ledger.id).where(Ledger.unit == actor.unit).order_by(Ledger.id)
                                   .limit(_FEW_LEDGERS + 1)))
    return ledgers if len(ledgers) <= _FEW_LEDGERS else None


def _search_scope(actor: Actor, ledgers: list[int] | None) -> dict[str, Any]:
    """What the search index itself may narrow to for this actor (``search.matching``'s scope): the
    one leader or department of their one grant, the ledgers of their unit (when a few). Everyone
    else's scope is applied in SQL alone."""
    scope: dict[str, Any] = {}
    if actor.is_admin:
        return scope
    if len(actor.grants) == 1 and actor.grants[0][0] in ("leader", "department"):
        role, raw = actor.grants[0]
        scope[role] = actor.scope_of(role, raw)
    if ledgers is not None:
        scope["ledgers"] = ledgers or [0]  # a unit of no ledger: nothing to find
    return scope


def _counted(total: int, page: int, has_next: bool) -> Counted:
    more = total >= COUNT_CAP
    last = max(1, -(-total // PAGE))
    if more:  # the real last page is unknown: offer the next one while there is one
        last = page + 1 if has_next else page
    return Counted(total, more, last)


def my_todo(session: Session, runtime: Runtime, actor: Actor, today: dt.date,
            page: int) -> tuple[list[DeadlineItem | ExtensionItem], Counted]:
    """(items of the page, how many in all): the requests to decide first, then the deadlines."""
    asked = open_extensions(session, runtime, today, scope=deciding(actor), limit=COUNT_CAP)
    start = (page - 1) * PAGE
    first: list[DeadlineItem | ExtensionItem] = list(asked[start:start + PAGE + 1])
    by_role = states_by_role(_definitions(session, runtime))
    waiting = Issue.overdue_on.is_not(None)
    department = _department_only(actor, _unit_ledgers(session, actor))
    if department is not None:  # the same rule as acting(), worded so the count streams off the index
        states = sorted(set().union(*(s for role, s in by_role.items() if role in ("department", "anyone"))))
        total = count_deadlines(session, today, department=department.name, ledger_ids=department.ledgers,
                                scope=and_(Issue.state.in_(states), waiting), cap=COUNT_CAP)
    else:
        total = count_deadlines(session, today, scope=and_(actor.acting(by_role), waiting), cap=COUNT_CAP)
    wanted, skip = PAGE + 1 - len(first), max(0, start - len(asked))
    scope = and_(actor.acting(by_role, probe=True), waiting)
    if wanted <= 0:
        deadlines: list[DeadlineItem] = []
    elif actor.scoped_by_units():  # a state's head at a time: see open_deadlines_in
        deadlines = open_deadlines_in(session, runtime, today, [Issue.state == state for state in
                                                                actor.acting_states(by_role)],
                                      scope=scope, limit=wanted, offset=skip)
    elif department is not None and department.ledgers is not None:
        # a unit's department: a ledger's head at a time, its rows a tenth of the ledger's where
        # they are a thousandth of the deadline index's
        deadlines = open_deadlines_in(session, runtime, today, [Issue.ledger_id == i for i in department.ledgers],
                                      scope=scope, limit=wanted, offset=skip)
    else:
        deadlines = open_deadlines(session, runtime, today, limit=wanted, offset=skip, scope=scope)
    items = first + deadlines
    return items[:PAGE], _counted(min(COUNT_CAP, total + len(asked)), page, len(items) > PAGE)


def my_duties(session: Session, runtime: Runtime, actor: Actor, today: dt.date, days: int,
              limit: int) -> list[DutyItem]:
    """Open duty occurrences the actor may see, due within ``days`` or overdue, by due date (at most
    ``limit``). Their unit's and their department's are chosen in SQL, so another unit's duties
    never fill the page; the policy then has the last word on each, and while it leaves some out
    the next rows are read (a few pages at most)."""
    # a unit's department also sees the unit's ledger milestones (the policy): only the unit in SQL
    department = None if actor.unit else _department_only(actor, None)
    unit = None if actor.is_admin else actor.unit or None
    kept: list[DutyItem] = []
    for round_ in range(_DUTY_ROUNDS):
        items = duty_items(session, runtime, today, end=today + dt.timedelta(days=days), open_only=True,
                           department=department.name if department else None, unit=unit, limit=limit,
                           offset=round_ * limit)
        units = ledger_units(session, {d.ledger for d in items if d.ledger})
        kept += [d for d in items if may_duty(actor, DutyAction.VIEW, DutySubject(
            owners=tuple(d.owners or ()), unit=units.get(d.ledger or "", "") or d.unit, ledger=d.ledger or "",
            issue_leader=d.issue_leader or "", issue_department=d.issue_department or ""))]
        if len(kept) >= limit or len(items) < limit:
            break
    return kept[:limit]


def issue_rows(session: Session, runtime: Runtime, actor: Actor, today: dt.date, filters: Mapping[str, str],
               page: int) -> dict[str, Any]:
    where: list[ColumnElement[bool]] = []
    of_ledgers = [clause for clause, asked in ((Ledger.unit == filters.get("unit"), filters.get("unit")),
                                                (Ledger.name == filters.get("ledger"), filters.get("ledger"))) if asked]
    if of_ledgers:
        where.append(Issue.ledger_id.in_(select(Ledger.id).where(*of_ledgers)))
    if filters.get("status"):  # a figure of the district's overview: the same clause counted it
        where.append(status_clause(session, runtime, filters["status"], today))
    for name in ("area", "category", "state"):
        if filters.get(name):
            where.append(getattr(Issue, name) == filters[name])
    if filters.get("department"):
        where.append(Issue.id.in_(select(ISSUE_DEPARTMENTS.c.issue_id)
                                  .where(ISSUE_DEPARTMENTS.c.department == filters["department"])))
    if filters.get("overdue"):
        where.append(Issue.overdue_on <= today)
    query = (filters.get("q") or "").strip()
    ledgers = _unit_ledgers(session, actor)  # asked once: the counts and the search both narrow to them
    department = _department_only(actor, ledgers)
    if department is not None:
        d = ISSUE_DEPARTMENTS.c
        own = [d.ledger_id.in_(department.ledgers)] if department.ledgers is not None else []
        counted_rows = select(Issue.id).join(ISSUE_DEPARTMENTS, and_(d.issue_id == Issue.id,
                                                                     d.department == department.name, *own))
    else:
        counted_rows = select(Issue.id).where(actor.visible())
    stmt = (select(*_LISTED, Ledger.name)
            .join(Ledger, Ledger.id == Issue.ledger_id).where(actor.visible(probe=True), *where))
    if query:
        found, total = _found(session, _search_scope(actor, ledgers), cast(Select[Any], stmt),
                              counted_rows.where(*where), query, page)
    else:
        if department is not None and not where:
            # nothing asked of the issues themselves: counted off the department's index alone, not
            # each of up to COUNT_CAP issues looked up by its id too (1.2 ms of 1.3 at 1M issues)
            d = ISSUE_DEPARTMENTS.c
            counted_rows = select(d.issue_id).where(d.department == department.name, *(
                [d.ledger_id.in_(department.ledgers)] if department.ledgers is not None else []))
        total = count_upto(session, counted_rows.where(*where), COUNT_CAP)
        found = _in_list_order(session, actor, where, of_ledgers, cast(Select[Any], stmt), page)
    definitions = _definitions(session, runtime)
    rows = [{"ledger": r.name, "ref": r.ref, "title": r.title, "state": r.state,
             "state_label": definitions[r.workflow_id].label(r.state) if r.workflow_id in definitions else r.state,
             "deadline": r.deadline.isoformat() if r.deadline else None, "leader": r.leader,
             "department": r.department, "round": r.round or 1,
             "overdue": r.overdue_on is not None and r.overdue_on <= today,
             # what is late may be another deadline than 整改时限 (the plan's, a look-back's), or
             # 整改时限 moved (a weekend, an extension): the list says which, beside the cell
             "due": r.due_on.isoformat() if r.due_on else None,
             "due_what": due_title(definitions[r.workflow_id], r.state) if r.workflow_id in definitions else None}
            for r in found]
    counted = _counted(total, page, len(rows) > PAGE)
    states = {s.name: s.label for wf in definitions.values() for s in wf.states}
    ledger_names = list(session.scalars(select(Ledger.name).where(actor.visible_ledgers()).order_by(Ledger.name)
                                        .limit(200)))
    return {"rows": rows[:PAGE], "total": counted.total, "more": counted.more, "last": counted.last,
            "states": list(states.items()), "ledgers": ledger_names}


_LISTED = (Issue.id, Issue.ref, Issue.title, Issue.state, Issue.workflow_id, Issue.deadline, Issue.leader,
           Issue.department, Issue.round, Issue.overdue_on, Issue.due_on)


def _in_list_order(session: Session, actor: Actor, where: list[ColumnElement[bool]],
                   of_ledgers: list[ColumnElement[bool]], stmt: Select[Any], page: int) -> list[Row[Any]]:
    """A page of the issue list in its order, ledgers by name and then 序号 (position, id), read
    off ``ix_issues_ledger_position`` and stopping at the page. SQLite does so with the join as it
    is. PostgreSQL, given the join, sorts a whole ledger's rows before the LIMIT (an Incremental
    Sort presorted on the name: ten times the rows at ten times the issues), so it is asked ledger
    by ledger (LATERAL), each ledger's rows read in order and stopping at the page; the ledgers
    asked are the ones the actor sees and the filters name (``of_ledgers``), so no other ledger's
    rows are walked looking for a row the filter excludes."""
    offset = (page - 1) * PAGE
    if session.get_bind().dialect.name != "postgresql":
        return list(session.execute(stmt.order_by(Ledger.name, Issue.position, Issue.id).limit(PAGE + 1)
                                    .offset(offset)))
    ledgers = select(Ledger.id, Ledger.name).where(actor.visible_ledgers(), *of_ledgers).subquery("listed_ledgers")
    rows = (select(*_LISTED, Issue.position).where(Issue.ledger_id == ledgers.c.id, actor.visible(probe=True), *where)
            .order_by(Issue.position, Issue.id).limit(offset + PAGE + 1).lateral("ledger_rows"))
    r = rows.c
    return list(session.execute(
        select(*(r[c.key] for c in _LISTED), ledgers.c.name).select_from(ledgers).join(rows, true())
        .order_by(ledgers.c.name, r.position, r.id).limit(PAGE + 1).offset(offset)))


def _found(session: Session, scope: dict[str, Any], listed: Select[Any], counted: Select[Any], query: str,
           page: int) -> tuple[list[Row[Any]], int]:
    """(a page of the list ``listed`` searched for ``query``, how many match at most ``COUNT_CAP``).

    The hits in a title first, then the rest, each part in the order the issues were entered: both
    are read off the search index in that order and stop at the page (``engine.issues.search``), so
    a word in a sixth of a million issues costs a page, not a sort of every match."""
    dialect = session.get_bind().dialect.name
    order = search.order(query, dialect)

    def hits(part: str, rows: Select[Any], walk: bool = False) -> Select[Any]:
        return rows.join(ISSUE_SEARCH, ISSUE_SEARCH.c.issue_id == Issue.id).where(
            search.matching(query, dialect, part=part, walk=walk, **scope))

    # PostgreSQL, a common word (the count capped), for whoever sees every issue: matches are spread
    # over all of them, so a page walked in id order fills soon — up to a bound, in case this part
    # (the titles) holds few of them. A unit's matches sit together and are few enough to collect.
    total, first = 0, None
    common = dialect == "postgresql" and not scope and search.common(session, query)
    if common:
        # counted by a walk too, when the statistics say the word is common; short of the cap, by the index
        first = search.walk_bound(session, search.WALK_ROWS)
        walked = hits("any", counted, walk=True)
        total = count_upto(session, walked if first is None else walked.where(ISSUE_SEARCH.c.issue_id <= first),
                           COUNT_CAP)
    if total < COUNT_CAP:
        total = count_upto(session, hits("any", counted), COUNT_CAP)
    walk = dialect == "postgresql" and not scope and total >= COUNT_CAP
    # page 1's bound is the count's: asked once
    bound = (first if common and page == 1 else search.walk_bound(session, search.WALK_ROWS * page)) if walk else None

    def read(part: str, limit: int, offset: int) -> list[Row[Any]]:
        if walk:
            walked = hits(part, listed, walk=True).order_by(order)
            if bound is not None:
                walked = walked.where(ISSUE_SEARCH.c.issue_id <= bound)
            rows = list(session.execute(walked.limit(limit).offset(offset)))
            if len(rows) == limit or bound is None:
                return rows
        return list(session.execute(hits(part, listed).order_by(order).limit(limit).offset(offset)))

    start = (page - 1) * PAGE
    found = read("title", PAGE + 1, start)
    if len(found) <= PAGE:  # the title hits end on this page: the rest follow them
        before = start + len(found) if found else count_upto(session, hits("title", counted), start)
        found += read("rest", PAGE + 1 - len(found), max(0, start - before))
    return found, total


def unit_rows(session: Session, runtime: Runtime, actor: Actor, today: dt.date) -> list[dict[str, Any]]:
    """Per unit: problems, done, overdue, awaiting sign-off, in a second round (counted in SQL)."""
    late = Issue.overdue_on <= today
    second = Issue.round > 1
    stmt = (select(Ledger.name, Ledger.unit, Issue.workflow_id, Issue.state, late, second, func.count())
            .join(Ledger, Ledger.id == Issue.ledger_id).where(actor.visible())
            .group_by(Ledger.name, Ledger.unit, Issue.workflow_id, Issue.state, late, second))
    definitions = _definitions(session, runtime)
    units: dict[str, dict[str, Any]] = {}
    for ledger, unit, workflow_id, state, is_late, is_second, n in session.execute(stmt):
        wf = definitions[workflow_id]
        classes = classes_for(runtime.config, ledger, wf)
        review = wf.states_by_role().get("reviewer", set()) & classes.open
        row = units.setdefault(unit or "", {"unit": unit or "", "issues": 0, "done": 0, "overdue": 0, "awaiting": 0,
                                            "second_round": 0})
        row["issues"] += n
        row["done"] += n if state in classes.done else 0
        row["overdue"] += n if is_late and state in classes.open else 0
        row["awaiting"] += n if state in review else 0
        row["second_round"] += n if is_second else 0
    return sorted(units.values(), key=lambda r: r["unit"])

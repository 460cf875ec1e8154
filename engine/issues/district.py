"""The district's figures: per unit and across units by 问题类别, each one a filter of the issue list.

The 巡察办 reads, per unit, how far rectification has gone and what to chase. Each figure is a *status*
(``STATUSES``) whose SQL clause both counts the unit's issues (one GROUP BY query per status, so the
cost follows the number of units, not of issues) and filters ``/ws/issues?unit=…&status=…``: the
number on the overview and the list its link opens are the same rows by construction.

Definitions:

* done (已完成): the issue's state is in its ledger's done class (``classes_for``: 长期坚持 included,
  as the report counts); the completion rate is done / problems.
* on time (按时完成): done, and the step that brought the issue into its current state is dated (its
  UTC calendar date) on or before its 整改时限 as it stands now (an approved extension moves it). An
  issue without a deadline, or one the ledger already recorded as done on import (no step of ours
  dates it), counts as on time: nothing on record says it was late. The on-time rate is on time / done.
* overdue (逾期): open, and its deadline rule ran out by today (``overdue_on``), as the list's filter.
* awaiting (待审核销号): open in a state a reviewer acts on.
* second round (二次整改): returned at least once (``round`` > 1).
* rebound (反弹): reopened at least once (a ``reopen`` entry in its history: a failed 回头看).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypedDict

from sqlalchemy import ColumnElement, and_, false, func, or_, select
from sqlalchemy.orm import Session

from ..accounts.actor import SYSTEM, Actor
from ..runtime import Runtime
from ..store.models import HistoryEntry, Issue, Ledger, WorkflowVersion
from .classes import StateClasses, classes_for

STATUSES = ("done", "on_time", "overdue", "awaiting", "second_round", "rebound")
LABELS = {"issues": "问题", "done": "已完成", "on_time": "按时完成", "overdue": "逾期", "awaiting": "待审核销号",
          "second_round": "二次整改", "rebound": "反弹"}


def _classes(session: Session, runtime: Runtime) -> list[tuple[ColumnElement[bool], StateClasses, set[str]]]:
    """(which issues, their state classes, the reviewer's states) per workflow version, with the
    ledgers that ``[report.ledgers]`` gives their own classes split out (a handful of rows)."""
    per = runtime.config.report.ledgers
    named = dict(session.execute(select(Ledger.name, Ledger.id).where(Ledger.name.in_(list(per or {}))))
                 .tuples().all()) if per else {}
    out: list[tuple[ColumnElement[bool], StateClasses, set[str]]] = []
    for version in session.scalars(select(WorkflowVersion)):
        wf = runtime.registry.definition(version)
        review = wf.states_by_role().get("reviewer", set())
        on = Issue.workflow_id == version.id
        out.append((and_(on, Issue.ledger_id.not_in(list(named.values()))), classes_for(runtime.config, None, wf),
                    review))
        for name, ledger_id in named.items():
            out.append((and_(on, Issue.ledger_id == ledger_id), classes_for(runtime.config, name, wf), review))
    return out


def _in_class(parts: list[tuple[ColumnElement[bool], StateClasses, set[str]]], pick: str) -> ColumnElement[bool]:
    def states(c: StateClasses, review: set[str]) -> frozenset[str]:
        return c.done if pick == "done" else c.open if pick == "open" else frozenset(review & c.open)
    clauses = [and_(which, Issue.state.in_(sorted(states(c, r)))) for which, c, r in parts if states(c, r)]
    return or_(*clauses) if clauses else false()


def _late_completion() -> ColumnElement[bool]:
    """The step into the current state is dated after the deadline (imports do not date a completion)."""
    h = HistoryEntry
    stepped = (select(h.issue_id).join(Issue, Issue.id == h.issue_id)
               .where(h.to_state == Issue.state, h.trigger != "import", Issue.deadline.is_not(None),
                      or_(h.from_state.is_(None), h.from_state != h.to_state))
               .group_by(h.issue_id, Issue.deadline).having(func.date(func.max(h.at)) > Issue.deadline))
    return Issue.id.in_(stepped)


def status_clause(session: Session, runtime: Runtime, status: str, today: dt.date) -> ColumnElement[bool]:
    """The issues a status names (see the module docstring); ValueError for an unknown one."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}: one of {', '.join(STATUSES)}")
    parts = _classes(session, runtime)
    if status == "done":
        return _in_class(parts, "done")
    if status == "on_time":
        return and_(_in_class(parts, "done"), ~_late_completion())
    if status == "overdue":
        return and_(_in_class(parts, "open"), Issue.overdue_on <= today)
    if status == "awaiting":
        return _in_class(parts, "review")
    if status == "second_round":
        return Issue.round > 1
    return Issue.id.in_(select(HistoryEntry.issue_id).where(HistoryEntry.trigger == "reopen"))


class UnitFigures(TypedDict):
    """One unit's row of the overview and of the 通报: counts per status, rates in % (None: nothing to divide)."""

    unit: str  # "" for issues whose ledger names no unit
    issues: int
    done: int
    on_time: int
    overdue: int
    awaiting: int
    second_round: int
    rebound: int
    completion: float | None  # done / issues
    on_time_rate: float | None  # on_time / done


class CommonCategory(TypedDict):
    """A 问题类别 found in two units or more."""

    category: str
    units: dict[str, int]  # unit -> its issues of this category, by unit name
    total: int


class District(TypedDict):
    units: list[UnitFigures]
    common: list[CommonCategory]


def _per_unit(session: Session, actor: Actor, where: ColumnElement[bool] | None,
              by: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    stmt = (select(Ledger.unit, *by, func.count()).select_from(Issue).join(Ledger, Ledger.id == Issue.ledger_id)
            .where(actor.visible(), *([where] if where is not None else [])).group_by(Ledger.unit, *by))
    return {tuple(r[:-1]): int(r[-1]) for r in session.execute(stmt)}


def _rate(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def unit_figures(session: Session, runtime: Runtime, actor: Actor, today: dt.date) -> list[UnitFigures]:
    """Per unit the actor may see: problems, every status's count, the completion and on-time rates (%)."""
    counts = {"issues": _per_unit(session, actor, None)}
    for status in STATUSES:
        counts[status] = _per_unit(session, actor, status_clause(session, runtime, status, today))
    rows = []
    for (unit,) in sorted(counts["issues"]):
        n = {name: by_unit.get((unit,), 0) for name, by_unit in counts.items()}
        rows.append(UnitFigures(unit=unit or "", issues=n["issues"], done=n["done"], on_time=n["on_time"],
                                overdue=n["overdue"], awaiting=n["awaiting"], second_round=n["second_round"],
                                rebound=n["rebound"], completion=_rate(n["done"], n["issues"]),
                                on_time_rate=_rate(n["on_time"], n["done"])))
    return rows


def unit_counts(session: Session, runtime: Runtime, today: dt.date, statuses: tuple[str, ...],
                actor: Actor = SYSTEM) -> dict[str, dict[str, int]]:
    """Per status, per unit: the count of the actor's issues in that status (the same clauses as the
    overview's figures, so /metrics and the board never disagree); every unit's by default."""
    units = list(_per_unit(session, actor, None))
    out: dict[str, dict[str, int]] = {}
    for status in statuses:
        counted = _per_unit(session, actor, status_clause(session, runtime, status, today))
        # every unit, zeros included: a gauge that vanishes at 0 cannot be told from a unit gone
        out[status] = {key[0] or "": counted.get(key, 0) for key in units}
    return out


def common_categories(session: Session, actor: Actor) -> list[CommonCategory]:
    """共性问题: each 问题类别 found in two units or more, with its count per unit, most units first."""
    counts = _per_unit(session, actor, Issue.category != "", (Issue.category,))
    by_category: dict[str, dict[str, int]] = {}
    for (unit, category), n in counts.items():
        by_category.setdefault(category, {})[unit or ""] = n
    common = [CommonCategory(category=c, units=dict(sorted(u.items())), total=sum(u.values()))
              for c, u in by_category.items() if len(u) >= 2]
    return sorted(common, key=lambda r: (-len(r["units"]), -r["total"], r["category"]))


def district(session: Session, runtime: Runtime, actor: Actor, today: dt.date) -> District:
    return District(units=unit_figures(session, runtime, actor, today), common=common_categories(session, actor))

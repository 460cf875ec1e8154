"""Questions asked of the ledger: find an issue by reference, list issues, count the board."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypedDict
from zoneinfo import ZoneInfo

from sqlalchemy import Row, Select, bindparam, func, select
from sqlalchemy.orm import Session

from ..errors import BadInput, NotFound
from ..store.departments import departments_of
from ..store.models import HISTORY, Evidence, Issue, Ledger, WorkflowVersion
from ..workflow.registry import WorkflowRegistry
from ..workflow.schema import WorkflowDef
from .classes import how_many


def find_ledger(session: Session, name: str | None) -> Ledger | None:
    """The named ledger; ``None`` when no name is given (meaning: all ledgers)."""
    if name is None:
        return None
    ledger = session.scalar(select(Ledger).where(Ledger.name == name))
    if ledger is None:
        known = session.scalars(select(Ledger.name).order_by(Ledger.name).limit(20)).all()
        raise NotFound(f"no ledger named {name!r}", hint=f"ledgers: {', '.join(known) or 'none yet'}")
    return ledger


def one_ledger(session: Session, name: str | None, what: str = "") -> Ledger:
    """The named ledger, or the only one there is (``what``: the command's words for the hint)."""
    ledger = find_ledger(session, name)
    if ledger is not None:
        return ledger
    names = session.scalars(select(Ledger.name).order_by(Ledger.name).limit(21)).all()
    if len(names) != 1:
        raise BadInput(f"say which ledger{' ' + what if what else ''}: --ledger NAME",
                       hint=f"ledgers: {', '.join(names[:20]) or 'none yet'}")
    found = find_ledger(session, names[0])
    assert found is not None  # a name given: found or NotFound
    return found


def named_people(session: Session) -> set[tuple[str, str]]:
    """Every (unit, name) a ledger's 责任领导 / 责任科室 cells name: who reminders are addressed to."""
    out: set[tuple[str, str]] = set()
    for unit, leader, department in session.execute(
            select(Ledger.unit, Issue.leader, Issue.department).join(Ledger, Ledger.id == Issue.ledger_id).distinct()):
        out.update((unit or "", n) for n in [leader.strip(), *departments_of(department)] if n)
    return out


def ledger_units(session: Session, names: set[str]) -> dict[str, str]:
    """Ledger name -> its unit, for the ledgers named."""
    if not names:
        return {}
    return {n: u or "" for n, u in session.execute(select(Ledger.name, Ledger.unit).where(Ledger.name.in_(names)))}


def department_named(session: Session, name: str) -> bool:
    return session.scalar(select(Issue.id).where(Issue.department == name).limit(1)) is not None


def _by(*where: Any) -> dict[bool, Select[Issue]]:
    stmt = select(Issue).join(Ledger).where(*where).limit(2)
    return {False: stmt, True: stmt.with_for_update(of=Issue)}


def _step_by(*where: Any) -> Select[Issue, str]:
    # what a step needs of the issue's workflow version is its hash (the registry builds the rest
    # once per hash): read with the issue, it costs a column instead of a statement of its own
    return (select(Issue, WorkflowVersion.content_hash).join(Ledger)
            .join(WorkflowVersion, WorkflowVersion.id == Issue.workflow_id)
            .where(*where).limit(2).with_for_update(of=Issue))


# built once (bound per call): every step, note and page of one issue starts here
_BY_LEDGER_REF = _by(Ledger.name == bindparam("ledger"), Issue.ref == bindparam("ref"))
_BY_REF = _by(Issue.ref == bindparam("ref"))
_STEP_BY_LEDGER_REF = _step_by(Ledger.name == bindparam("ledger"), Issue.ref == bindparam("ref"))
_STEP_BY_REF = _step_by(Issue.ref == bindparam("ref"))


def resolve_ref(session: Session, ref: str, *, for_update: bool = False) -> Issue:
    """``LEDGER/序号``, or a bare 序号 when exactly one ledger has it."""
    issue: Issue = _resolve(session, ref, _BY_LEDGER_REF[for_update], _BY_REF[for_update])[0]
    return issue


def resolve_step(session: Session, ref: str) -> tuple[Issue, str]:
    """``resolve_ref(for_update=True)`` and the content hash of the issue's workflow version."""
    found = _resolve(session, ref, _STEP_BY_LEDGER_REF, _STEP_BY_REF)
    return found[0], found[1]


def _resolve(session: Session, ref: str, by_ledger_ref: Select[*tuple[Any, ...]],
             by_ref: Select[*tuple[Any, ...]]) -> Row[*tuple[Any, ...]]:
    if "/" in ref:
        ledger_name, number = ref.rsplit("/", 1)
        found = session.execute(by_ledger_ref, {"ledger": ledger_name, "ref": number}).all()
    else:
        found = session.execute(by_ref, {"ref": ref}).all()
    if not found:
        raise no_issue(ref)
    if len(found) > 1:
        ledgers = session.scalars(select(Ledger.name).join(Issue).where(Issue.ref == ref)).all()
        raise NotFound(
            f"issue {ref!r} is ambiguous: it exists in {len(ledgers)} ledgers",
            hint="say which: " + ", ".join(f"{name}/{ref}" for name in ledgers[:5]),
        )
    return found[0]


def no_issue(ref: str) -> NotFound:
    """The answer for a reference that names no issue, word for word the same whether there is
    none or it is another unit's (``open_issue``): so it cannot be used to learn which exist."""
    return NotFound(f"no issue {ref!r}", hint="refer to an issue as LEDGER/序号, e.g. bishan-keji-2022/7")


def issue_ref(issue: Issue) -> str:
    return f"{issue.ledger.name}/{issue.ref}"


def local_time(instant: dt.datetime, tz: ZoneInfo | None) -> str:
    """An instant as people read it: in the configured zone, with its offset."""
    return (instant.astimezone(tz) if tz is not None else instant).isoformat(timespec="seconds")


class IssueJson(TypedDict):
    """An issue as ``duban issue list --json`` prints it (times local, with their offset)."""

    ref: str  # LEDGER/序号
    ledger: str
    number: str
    area: str
    category: str
    title: str
    measures: str
    leader: str
    department: str
    deadline: str | None  # ISO date
    state: str
    state_label: str
    state_since: str
    round: int
    workflow: str  # name@version


def issue_dict(issue: Issue, workflow: WorkflowDef, tz: ZoneInfo | None = None) -> IssueJson:
    return {
        "ref": issue_ref(issue),
        "ledger": issue.ledger.name,
        "number": issue.ref,
        "area": issue.area,
        "category": issue.category,
        "title": issue.title,
        "measures": issue.measures,
        "leader": issue.leader,
        "department": issue.department,
        "deadline": issue.deadline.isoformat() if issue.deadline else None,
        "state": issue.state,
        "state_label": workflow.label(issue.state),
        "state_since": local_time(issue.state_since, tz),
        "round": issue.round or 1,
        "workflow": f"{issue.workflow.name}@{issue.workflow.version}",
    }


# the columns shown, not mapped entries: a note's answer lists the issue's whole history each time
_H = HISTORY.c
_HISTORY_OF = (select(_H.at, _H.by, _H.trigger, _H.from_state, _H.to_state, _H.note, _H.door, _H.changes)
               .where(_H.issue_id == bindparam("issue_id")).order_by(_H.at, _H.id))


def issue_history(session: Session, issue: Issue, tz: ZoneInfo | None = None) -> list[dict[str, Any]]:
    """The issue's history, oldest first, its times in ``tz``."""
    return [{"at": local_time(at, tz), "by": by, "trigger": trigger, "from": from_state, "to": to_state,
             "note": note, "door": door, "changes": list(changes or [])}
            for at, by, trigger, from_state, to_state, note, door, changes
            in session.execute(_HISTORY_OF, {"issue_id": issue.id})]


def issue_detail(session: Session, issue: Issue, workflow: WorkflowDef, tz: ZoneInfo | None = None) -> dict[str, Any]:
    # A plain dict, not a TypedDict: the board's issue page adds its own keys to it and the API picks
    # its fields by the names of its pydantic model.
    out: dict[str, Any] = dict(issue_dict(issue, workflow, tz))
    out["history"] = issue_history(session, issue, tz)
    evidence = session.scalars(select(Evidence).where(Evidence.issue_id == issue.id).order_by(Evidence.id))
    out["evidence"] = [
        {"id": e.id, "file_name": e.file_name, "sha256": e.sha256, "size": e.size,
         "added_at": local_time(e.added_at, tz), "added_by": e.added_by}
        for e in evidence
    ]
    out["triggers"] = workflow.triggers_from(issue.state)
    return out


def list_issues(session: Session, *, ledger: Ledger | None = None, state: str | None = None,
                department: str | None = None) -> Iterator[Issue]:
    stmt = select(Issue).join(Ledger)
    if ledger is not None:
        stmt = stmt.where(Issue.ledger_id == ledger.id)
    if state is not None:
        stmt = stmt.where(Issue.state == state)
    if department is not None:
        stmt = stmt.where(Issue.department == department)
    stmt = stmt.order_by(Ledger.name, Issue.position, Issue.id).execution_options(yield_per=1000)
    yield from session.scalars(stmt)


class BoardJson(TypedDict):
    issues: int
    areas: int
    categories: int
    by_state: dict[str, int]


@dataclass
class Board:
    issues: int
    areas: int
    categories: int
    by_state: dict[str, int]
    labels: dict[str, str]
    by_area: list[tuple[str, dict[str, int]]]

    def sentence(self) -> str:
        """The overview the seed report opens with, e.g. 4个方面共26个具体问题，已完成17个，长期坚持9个."""
        parts = [how_many(self.areas, self.issues)]
        parts += [f"{self.labels.get(s, s)}{n}个" for s, n in self.by_state.items() if n]
        return "，".join(parts)

    def as_json(self) -> BoardJson:
        return {"issues": self.issues, "areas": self.areas, "categories": self.categories,
                "by_state": dict(self.by_state)}


def status_board(session: Session, registry: WorkflowRegistry, *, ledger: Ledger | None,
                 workflow_name: str, ledger_ids: list[int] | None = None) -> Board:
    """The counts of one ledger, of the ledgers ``ledger_ids`` (a unit's), or of every ledger."""
    scope = [Issue.ledger_id == ledger.id] if ledger is not None else []
    if ledger_ids is not None:
        scope.append(Issue.ledger_id.in_(ledger_ids))
    version = registry.of_ledger(session, ledger) if ledger is not None else registry.current(session, workflow_name)
    workflow = registry.definition(version)
    by_state = {s.name: 0 for s in workflow.states}
    labels = {s.name: s.label for s in workflow.states}
    for state, n in session.execute(select(Issue.state, func.count()).where(*scope).group_by(Issue.state)):
        by_state[state] = by_state.get(state, 0) + n
    areas = session.scalar(
        select(func.count()).select_from(
            select(Issue.ledger_id, Issue.area).where(*scope, Issue.area != "").group_by(
                Issue.ledger_id, Issue.area).subquery()))
    categories = session.scalar(
        select(func.count()).select_from(
            select(Issue.ledger_id, Issue.category).where(*scope, Issue.category != "").group_by(
                Issue.ledger_id, Issue.category).subquery()))
    by_area: dict[str, dict[str, int]] = {}
    order = select(Issue.area, Issue.state, func.count(), func.min(Issue.position)).where(*scope).group_by(
        Issue.area, Issue.state).order_by(func.min(Issue.position))
    for area, state, n, _ in session.execute(order):
        by_area.setdefault(area or "—", {})[state] = n
    return Board(sum(by_state.values()), areas or 0, categories or 0, by_state, labels, list(by_area.items()))


def status_by_unit(session: Session, registry: WorkflowRegistry, *, workflow_name: str) -> list[tuple[str, Board]]:
    """One board per unit, in the order the units' first ledgers were imported: two units' problems
    are never added into one sentence. A ledger that names no unit stands alone, as 台账 NAME."""
    groups: dict[str, list[int]] = {}
    for ledger_id, name, unit in session.execute(select(Ledger.id, Ledger.name, Ledger.unit).order_by(Ledger.id)):
        groups.setdefault((unit or "").strip() or f"台账 {name}", []).append(ledger_id)
    return [(label, status_board(session, registry, ledger=None, workflow_name=workflow_name, ledger_ids=ids))
            for label, ids in groups.items()]

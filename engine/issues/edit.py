"""Editing an issue's fields outside a transition: its measures, its deadline (a 延期), its
responsible leader or department (a handover). Each change is a history entry; none moves the state.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..errors import BadInput, Forbidden, Refused
from ..runtime import Runtime
from ..store.departments import set_departments
from ..store.models import HistoryEntry, Issue
from .queries import issue_ref
from .service import open_issue, replan

FIELDS = {"measures": "整改措施", "deadline": "整改时限", "leader": "责任领导", "department": "责任科室"}


@dataclass(frozen=True)
class Edited:
    ref: str
    changes: list[str]  # "整改时限: 2026-12-31 → 2027-01-31", one per field changed


def edit_issue(session: Session, runtime: Runtime, ref: str | Issue, *, actor: Actor, now: dt.datetime, note: str = "",
               measures: str | None = None, deadline: dt.date | None = None, leader: str | None = None,
               department: str | None = None) -> Edited:
    """Change the given fields; a new deadline is an extension (延期) and needs a note.

    Who may: the measures, the issue's leader or department (or a unit administrator, a reviewer);
    the deadline, its leader, a reviewer or a unit administrator (a department asks for an
    extension instead: ``actions.request_extension``); a handover (a new leader or department), a
    unit administrator or a reviewer.
    """
    by = actor.name
    wanted: dict[str, str | dt.date | None] = {"measures": measures, "deadline": deadline, "leader": leader,
                                               "department": department}
    if all(v is None for v in wanted.values()):
        raise BadInput("nothing to change: give --measures, --deadline, --leader or --department")
    for name, given in (("leader", leader), ("department", department)):
        if given is not None and not given.strip():
            raise BadInput(f"--{name} cannot be blank: an issue always has a {FIELDS[name]}")
    issue = open_issue(session, ref, actor, for_update=True)
    for what, touched, allowed in (
            ("hand this issue over", leader is not None or department is not None, ("unit_admin", "reviewer")),
            ("move its deadline (a department asks for an extension: 延期申请)", deadline is not None,
             ("leader", "unit_admin", "reviewer")),
            ("edit its measures", measures is not None, ("leader", "department", "unit_admin", "reviewer"))):
        if touched and not actor.acts_as_any(allowed, issue):
            raise Forbidden(f"{issue_ref(issue)}: {actor.label} may not {what}")
    changes: list[str] = []
    for name, value in wanted.items():
        if value is None:
            continue
        old = getattr(issue, name)
        if isinstance(value, str):
            value = value.strip()
        if value == old:
            continue
        if name == "deadline" and not note.strip():
            raise BadInput("a new deadline is an extension (延期): give --note with the reason")
        setattr(issue, name, value)
        shown_old = old.isoformat() if isinstance(old, dt.date) else (old or "（空）")
        shown_new = value.isoformat() if isinstance(value, dt.date) else value
        changes.append(f"{FIELDS[name]}: {shown_old} → {shown_new}")
        trigger = {"deadline": "extend", "leader": "handover", "department": "handover"}.get(name, "edit")
        session.add(HistoryEntry(issue_id=issue.id, at=now, by=by, trigger=trigger, from_state=issue.state,
                                 to_state=issue.state, note="；".join(p for p in (changes[-1], note.strip()) if p),
                                 door=actor.door))
    if not changes:
        raise Refused(f"{issue_ref(issue)}: nothing changed (the values given are the current ones)")
    issue.updated_at = now
    if "department" in wanted and wanted["department"] is not None:
        set_departments(session, issue.ledger_id, [(issue.id, issue.department)])
    if deadline is not None:
        replan(session, runtime, issue, now)
    session.flush()
    return Edited(issue_ref(issue), changes)

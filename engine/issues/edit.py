"""Editing an issue's fields outside a transition: its measures, its deadline (a 延期), its
responsible leader or department (a handover). Each change is a history entry; none moves the state.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..accounts.policy import Action, can_act_for, login_name, names_of, require
from ..errors import BadInput, Refused
from ..runtime import Runtime
from ..store.departments import set_departments
from ..store.models import Issue
from . import history
from .queries import issue_ref
from .service import open_issue, replan

FIELDS = {"measures": "整改措施", "deadline": "整改时限", "leader": "责任领导", "department": "责任科室"}


@dataclass(frozen=True)
class Edited:
    ref: str
    changes: list[str]  # "整改时限: 2026-12-31 → 2027-01-31", one per field changed


def edit_issue(session: Session, runtime: Runtime, ref: str | Issue, *, actor: Actor, now: dt.datetime, note: str = "",
               measures: str | None = None, deadline: dt.date | None = None, leader: str | None = None,
               department: str | None = None, force: bool = False) -> Edited:
    """Change the given fields; a new deadline is an extension (延期) and needs a note.

    Who may: the measures, the issue's leader or department (or a unit administrator, a reviewer);
    the deadline, its leader, a reviewer or a unit administrator (a department asks for an
    extension instead: ``actions.request_extension``); a handover (a new leader or department), a
    unit administrator or a reviewer (``engine.accounts.policy``). A handover to a leader or
    department that no account can act for (nobody could see the item or be reminded of it) is
    refused with the command that makes one, unless ``force``: then the history says so.
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
    for action, touched in ((Action.HANDOVER, leader is not None or department is not None),
                            (Action.DEADLINE, deadline is not None), (Action.MEASURES, measures is not None)):
        if touched:
            require(actor, action, issue, issue_ref(issue))
    unit = issue.ledger.unit or ""
    nobody = [(role, name) for role, given in (("leader", leader), ("department", department))
              if given is not None and given.strip() != (getattr(issue, role) or "")
              for name in ([given.strip()] if role == "leader" else names_of(given))
              if not can_act_for(session, unit, name)]
    if nobody and not force:
        role, first = nobody[0]
        raise Refused(f"{issue_ref(issue)}: no account can act for {'、'.join(n for _, n in nobody)}"
                      f"{' in ' + unit if unit else ''}: nobody could see this item or be reminded of it",
                      hint=f"make one first: duban user add {login_name(unit, first)}"
                           f"{' --unit ' + unit if unit else ''} --display-name {first} --role {role}:{first}; "
                           "or hand over with --force")
    warning = f"警告：{'、'.join(n for _, n in nobody)} 尚无可办理的账号" if nobody else ""
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
        warned = warning if trigger == "handover" else ""
        history.record(session, issue, by=by, door=actor.door, at=now, trigger=trigger, from_state=issue.state,
                       to_state=issue.state, note="；".join(p for p in (changes[-1], note.strip(), warned) if p),
                       changes=[history.field_change(name, old, value)])
    if not changes:
        raise Refused(f"{issue_ref(issue)}: nothing changed (the values given are the current ones)")
    issue.updated_at = now
    if "department" in wanted and wanted["department"] is not None:
        set_departments(session, issue.ledger_id, [(issue.id, issue.department)])
    if deadline is not None:
        replan(session, runtime, issue, now)
    session.flush()
    return Edited(issue_ref(issue), changes)


def hand_over(session: Session, runtime: Runtime, ref: str | Issue, *, actor: Actor, now: dt.datetime,
              leader: str | None, department: str | None, note: str = "", force: bool = False) -> Edited:
    """A handover as the pages and the API offer it: the leader and department as they should be
    (None or the current value: unchanged), asked of the policy before anything given is looked at."""
    issue = open_issue(session, ref, actor, for_update=True)
    require(actor, Action.HANDOVER, issue, issue_ref(issue))
    leader = leader.strip() if leader is not None else None
    department = department.strip() if department is not None else None
    return edit_issue(session, runtime, issue, actor=actor, now=now, note=note, force=force,
                      leader=leader if leader != issue.leader else None,
                      department=department if department != issue.department else None)

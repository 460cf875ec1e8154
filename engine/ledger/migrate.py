"""Moving a ledger to another version of its workflow, on purpose (``duban workflow migrate``).

A ledger runs one version of its workflow (``WorkflowRegistry.of_ledger``). A changed workflow file
is registered as a new version and moves nothing: the ledger, its re-imports included, stays where
it is until an administrator moves it. The move is one recorded step for the whole ledger, all or
nothing: every issue keeps its state's name unless ``--map OLD=NEW`` says otherwise, a state the new
version lacks with no mapping refuses the move (naming the states and how many issues are in each),
and each issue gets a history row and a new plan under the new version's deadline rules.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..accounts.policy import UnitAction, may_unit
from ..errors import BadInput, Forbidden, Refused
from ..issues import history
from ..issues.queries import find_ledger
from ..issues.service import replan
from ..runtime import Runtime
from ..store.models import Issue, Ledger, WorkflowVersion
from ..workflow.registry import WorkflowRegistry
from ..workflow.schema import WorkflowDef

TRIGGER = "migrate"
_CHUNK = 1000  # issues loaded (and locked) at a time: a large ledger never sits in memory whole


@dataclass(frozen=True)
class StateMove:
    """``issues`` issues on version ``version`` in ``state`` go to ``to_state`` of the new version."""

    version: str
    state: str
    label: str
    to_state: str
    to_label: str
    issues: int

    def as_json(self) -> dict[str, Any]:
        return {"version": self.version, "state": self.state, "label": self.label, "to_state": self.to_state,
                "to_label": self.to_label, "issues": self.issues}


@dataclass
class Migration:
    ledger: str
    workflow: str
    to_version: str
    moves: list[StateMove] = field(default_factory=list)
    dry_run: bool = False

    @property
    def issues(self) -> int:
        return sum(m.issues for m in self.moves)

    def as_json(self) -> dict[str, Any]:
        return {"ledger": self.ledger, "workflow": self.workflow, "to_version": self.to_version,
                "issues": self.issues, "moves": [m.as_json() for m in self.moves], "dry_run": self.dry_run}


def migrate_ledger(session: Session, runtime: Runtime, ledger_name: str, to: str, *, mapping: dict[str, str],
                   actor: Actor, now: dt.datetime, dry_run: bool = False) -> Migration:
    """Move ledger ``ledger_name`` to version ``to`` of its workflow (see the module docstring).

    Raises ``Forbidden`` for anyone but an administrator or the unit's, ``BadInput`` for a version or
    a ``mapping`` that names nothing, ``Refused`` for a state left without a place; nothing is written
    then, nor with ``dry_run``."""
    found = find_ledger(session, ledger_name)
    assert found is not None  # a name given: found or NotFound
    _may_migrate(actor, found)
    # the ledger row locked: an import running meanwhile waits, then puts its rows on the new version
    ledger = session.scalars(select(Ledger).where(Ledger.id == found.id).with_for_update()
                             .execution_options(populate_existing=True)).one()
    registry = runtime.registry
    target = registry.named(session, ledger.workflow_name, to)
    workflow = registry.definition(target)
    result = Migration(ledger.name, ledger.workflow_name, target.version, dry_run=dry_run)
    on = registry.on_ledger(session, ledger)
    if not on:
        newest = registry.current(session, ledger.workflow_name)
        if newest.id != target.id:
            raise Refused(f"ledger {ledger.name!r} has no issues: its first import takes the newest version "
                          f"({ledger.workflow_name}@{newest.version}), so it cannot be kept on @{target.version}")
        return result
    sources = {v.id: v for v, _ in on if v.id != target.id}
    if not sources:
        return result
    states = _resolve(mapping, [registry.definition(v) for v in sources.values()], workflow, target)
    result.moves = _moves(session, registry, ledger, sources, states, workflow)
    _refuse_unplaced(ledger, target, workflow, result.moves)
    if not dry_run:
        _move(session, runtime, ledger, sources, target, workflow, states, actor, now)
    return result


def version_notes(session: Session, registry: WorkflowRegistry, ledger: Ledger, newest: WorkflowVersion,
                  own: WorkflowVersion) -> list[str]:
    """What a re-import says about versions: the file is a version the ledger is not on, or an older
    duban left the ledger's issues on two versions (new rows follow ``own``, the ledger's)."""
    name, wf = ledger.name, ledger.workflow_name
    notes = []
    if newest.id > own.id:
        notes.append(f"workflow {wf} has a newer version @{newest.version}; this ledger stays on @{own.version}: "
                     f"duban workflow migrate {name} --to {newest.version}")
    elif newest.id < own.id:
        notes.append(f"the file of workflow {wf} is the older version @{newest.version}; this ledger stays on "
                     f"@{own.version}: duban workflow migrate {name} --to {newest.version}")
    on = registry.on_ledger(session, ledger)
    if len(on) > 1:
        spread = ", ".join(f"@{v.version} ({n} issue(s))" for v, n in on)
        notes.append(f"ledger {name}'s issues are on {len(on)} versions of {wf}: {spread}; new rows follow "
                     f"@{own.version}: duban workflow migrate {name} --to {own.version} puts them all on one")
    return notes


def _may_migrate(actor: Actor, ledger: Ledger) -> None:
    # the same people as an import: whoever brings the ledger's rows in decides the machine they run on
    if actor.is_admin or (ledger.unit and may_unit(actor, UnitAction.IMPORT, ledger.unit)):
        return
    raise Forbidden(f"{actor.label} may not move ledger {ledger.name!r} to another workflow version",
                    hint="an administrator, or the unit's administrator (unit_admin), does")


def _named(state: str, workflows: list[WorkflowDef]) -> str | None:
    """The state ``state`` names (its name, or its label) in any of ``workflows``."""
    for wf in workflows:
        for s in wf.states:
            if state in (s.name, s.label):
                return s.name
    return None


def _resolve(mapping: dict[str, str], sources: list[WorkflowDef], workflow: WorkflowDef,
             target: WorkflowVersion) -> dict[str, str]:
    """``--map`` as state names (labels accepted on both sides); a side that names no state is bad input."""
    out: dict[str, str] = {}
    choices = ", ".join(f"{s.name} ({s.label})" for s in workflow.states)
    for old, new in mapping.items():
        source = _named(old, sources)
        if source is None:
            known = sorted({f"{s.name} ({s.label})" for wf in sources for s in wf.states})
            raise BadInput(f"--map {old}={new}: {old!r} is not a state the ledger's issues can be in",
                           hint=f"states: {', '.join(known)}")
        dest = _named(new, [workflow])
        if dest is None:
            raise BadInput(f"--map {old}={new}: {new!r} is not a state of {workflow.name}@{target.version}",
                           hint=f"states: {choices}")
        if out.get(source, dest) != dest:
            raise BadInput(f"--map names two places for {source}: {out[source]} and {dest}")
        out[source] = dest
    return out


def _moves(session: Session, registry: WorkflowRegistry, ledger: Ledger, sources: dict[int, WorkflowVersion],
           states: dict[str, str], workflow: WorkflowDef) -> list[StateMove]:
    counts = session.execute(select(Issue.workflow_id, Issue.state, func.count())
                             .where(Issue.ledger_id == ledger.id, Issue.workflow_id.in_(list(sources)))
                             .group_by(Issue.workflow_id, Issue.state)).all()
    keyed = []
    for wid, state, n in counts:
        old = registry.definition(sources[wid])
        dest = states.get(state, state)
        move = StateMove(sources[wid].version, state, old.label(state), dest, workflow.label(dest), n)
        keyed.append(((wid, old.rank(state), state), move))  # oldest version first, states in work order
    return [move for _, move in sorted(keyed, key=lambda pair: pair[0])]


def _refuse_unplaced(ledger: Ledger, target: WorkflowVersion, workflow: WorkflowDef, moves: list[StateMove]) -> None:
    names = {s.name for s in workflow.states}
    unplaced = [m for m in moves if m.to_state not in names]
    if not unplaced:
        return
    count = sum(m.issues for m in unplaced)
    choices = ", ".join(f"{s.name} ({s.label})" for s in workflow.states)
    raise Refused(
        f"ledger {ledger.name!r}: {workflow.name}@{target.version} has no state for {count} issue(s); nothing was moved",
        details=[f"{m.state} ({m.label}) on @{m.version}: {m.issues} issue(s)" for m in unplaced],
        hint=f"say where each goes: --map {unplaced[0].state}=STATE (states of @{target.version}: {choices})")


def _move(session: Session, runtime: Runtime, ledger: Ledger, sources: dict[int, WorkflowVersion],
          target: WorkflowVersion, workflow: WorkflowDef, states: dict[str, str], actor: Actor,
          now: dt.datetime) -> None:
    registry = runtime.registry
    ids = list(session.scalars(select(Issue.id).where(Issue.ledger_id == ledger.id, Issue.workflow_id.in_(list(sources)))
                               .order_by(Issue.position, Issue.id)))
    renamed: list[int] = []
    for i in range(0, len(ids), _CHUNK):
        # FOR UPDATE of the issue rows only: PostgreSQL refuses it on the outer-joined ledger
        chunk = session.scalars(select(Issue).where(Issue.id.in_(ids[i:i + _CHUNK])).with_for_update(of=Issue)
                                .execution_options(populate_existing=True)).all()
        for issue in chunk:
            old = sources[issue.workflow_id]
            before = issue.state
            after = states.get(before, before)
            # state_since stays: the issue took no step, so a deadline counted from the day it
            # entered its state (待审核销号: 10 working days) keeps counting from that day
            issue.workflow_id, issue.state, issue.updated_at = target.id, after, now
            replan(session, runtime, issue, now)
            note = (f"工作流 {workflow.name}@{old.version} → @{target.version}；"
                    f"状态 {registry.definition(old).label(before)} → {workflow.label(after)}")
            _record(session, issue, actor, now, note=note, from_state=before, to_state=after)
            if after != before:
                renamed.append(issue.id)
        session.flush()
        for issue in chunk:
            session.expunge(issue)
    runtime.duty_book.follow_issues(session, renamed, now)  # per-issue duties follow a state by its name
    runtime.duty_book.sync_milestones(session, ledger, workflow.milestones, workflow.reminders, now)
    ledger.updated_at = now


def _record(session: Session, issue: Issue, actor: Actor, now: dt.datetime, *, note: str, from_state: str,
            to_state: str) -> None:
    """The history row of the move, on the issue's chain."""
    history.record(session, issue, by=actor.name, door=actor.door, at=now, trigger=TRIGGER, from_state=from_state,
                   to_state=to_state, note=note, changes=[history.field_change("state", from_state, to_state)])

"""The one transactional entry point for moving an issue: machine, history row, evidence.

Everything a transition writes (the new state, its history entry, the evidence files, a new
deadline) is written in the caller's transaction, so a refused or failed step leaves nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from ..accounts.actor import Actor
from ..accounts.policy import Action, require
from ..errors import BadInput, Forbidden, Refused
from ..runtime import Runtime
from ..store.models import ISSUES, WORKFLOWS, Evidence, HistoryEntry, Issue, WorkflowVersion
from ..store.prepared import PreparedSet
from ..workflow.machine import AttachedIssue
from . import history
from .evidence import EvidenceFile
from .queries import issue_ref, no_issue, resolve_ref, resolve_step


@dataclass(frozen=True)
class Moved:
    ref: str
    trigger: str
    from_state: str
    to_state: str
    at: dt.datetime


def open_issue(session: Session, ref: str | Issue, actor: Actor, *, for_update: bool = False) -> Issue:
    """The issue ``ref`` names, if ``actor`` may see it (every door asks here): ``Forbidden`` for an
    issue of the actor's own unit it may not see, ``NotFound`` as for a missing one for another unit's."""
    issue = ref if isinstance(ref, Issue) else resolve_ref(session, ref, for_update=for_update)
    if actor.hidden(issue):
        # not 403: a unit's account would learn which refs exist in units it has no grant over
        raise no_issue(ref if isinstance(ref, str) else issue_ref(issue))
    if not actor.sees(issue):
        raise Forbidden(f"{issue_ref(issue)}: {actor.label} 无权查看此问题",
                        hint="it belongs to another department, leader or unit")
    return issue


def submitters(session: Session, issue: Issue) -> frozenset[str]:
    """Who brought the issue into its current state in this round: the submitters of a round
    waiting on sign-off (all of them, if it was submitted more than once). Read off the steps
    themselves (``history.round``), so no note, upload or edit written afterwards changes it; a
    workflow migration that renamed the state (``migrate``: old → new) is followed back, and is
    nobody's submission."""
    rows = session.execute(select(HistoryEntry.by, HistoryEntry.trigger, HistoryEntry.from_state,
                                  HistoryEntry.to_state)
                           .where(HistoryEntry.issue_id == issue.id, HistoryEntry.round == (issue.round or 1))
                           .order_by(HistoryEntry.id.desc())).all()
    names, found = {issue.state}, set()
    for by, trigger, before, after in rows:
        if trigger == "migrate":
            if after in names and before:
                names.add(before)
        elif before != after and after in names:
            found.add(by)
    return frozenset(found)


def evidence_of_round(session: Session, issue: Issue) -> int:
    """How many evidence files were added in the issue's current round (整改轮次)."""
    return session.scalar(select(func.count()).select_from(Evidence).where(
        Evidence.issue_id == issue.id, Evidence.round == (issue.round or 1))) or 0


def transition(
    session: Session,
    runtime: Runtime,
    ref: str | Issue,
    trigger: str,
    *,
    actor: Actor,
    now: dt.datetime,
    note: str = "",
    deadline: dt.date | None = None,
    evidence: list[EvidenceFile] | None = None,
) -> Moved:
    """Fire ``trigger`` on the issue as ``actor``; raise ``Refused`` (writing nothing) when not allowed:
    the actor cannot see the issue, the workflow's roles or guards refuse, or the state has no such step."""
    by = actor.name
    if isinstance(ref, Issue):
        issue, stored_hash = open_issue(session, ref, actor), None
    else:
        issue, stored_hash = resolve_step(session, ref)  # the version's hash read with the issue
        open_issue(session, issue, actor)
    version = workflow_of(session, issue, stored_hash)
    require(actor, Action.STEP, issue, issue_ref(issue))
    evidence = evidence or []
    machine = runtime.registry.machine_of(version.content_hash, version.source)

    def count_evidence() -> int:
        return session.scalar(select(func.count()).select_from(Evidence).where(Evidence.issue_id == issue.id)) or 0

    subject = AttachedIssue(ref=issue_ref(issue), state=issue.state, deadline=issue.deadline, count_evidence=count_evidence,
                      count_new_evidence=lambda: evidence_of_round(session, issue),
                      measures=issue.measures, leader=issue.leader, department=issue.department,
                      find_submitters=lambda: submitters(session, issue), issue=issue,
                      admins_sign_own=runtime.config.workspace.admins_sign_own)
    before, deadline_before, round_before = issue.state, issue.deadline, issue.round or 1
    after = machine.fire(subject, trigger, by=by, actor=actor, note=note, deadline=deadline, evidence=evidence)
    moved: dict[str, object] = {"updated_at": now}
    if after != before:
        moved.update(state=after, state_since=now)
    step = next((t for t in machine.definition.transitions if t.trigger == trigger and before in t.source), None)
    if step is not None and step.round == "next":
        moved["round"] = round_before + 1
    if deadline is not None:
        moved["deadline"] = deadline
    _settle(issue, moved)
    if after != before or deadline is not None:
        plan = _plan(runtime, issue, now, version)
        _settle(issue, plan)
        moved.update(plan)
    _write_step(session, issue.id, moved)
    if after != before:  # duties follow an issue's state only; they read the row just written
        runtime.duty_book.follow_issue(session, issue.id, before, after, now)
    # a file given with the step belongs to the round the step was taken in
    rows = [Evidence(issue_id=issue.id, file_name=item.file_name, sha256=item.sha256, size=item.size,
                     content=item.content, path=item.path, added_at=now, added_by=by, round=round_before)
            for item in evidence]
    if rows:
        session.add_all(rows)
        session.flush()  # the files' ids, for the entry that vouches for them
    changes: list[history.Change] = (
        [history.field_change("deadline", deadline_before, deadline)] if deadline_before != issue.deadline else [])
    changes += [{"evidence": row.id, "sha256": row.sha256, "file": row.file_name} for row in rows]
    history.record(session, issue, by=by, door=actor.door, at=now, trigger=trigger, from_state=before, to_state=after,
                   note=note, changes=changes)
    session.flush()  # anything else a step changed (nothing, usually)
    return Moved(subject.ref, trigger, before, after, now)


# What a step changes on the issue row, written in one prepared UPDATE run on the driver
# (engine.store.prepared) instead of a flush of the unit of work (which cost more than the rest of
# a step together) or SQLAlchemy's execute (which cost more than the statement). Only the columns
# the step changed are set: an unchanged deadline's two indexes are not rewritten, and a step that
# stays in its state does not load the deferred plan columns just to write them back.
_STEP_FIELDS = ("state", "state_since", "round", "deadline", "updated_at", "remind_after", "next_remind_at",
                "due_on", "overdue_on")
_STEP_UPDATES: dict[tuple[str, ...], PreparedSet] = {}  # by the columns set: a few combinations


def _settle(issue: Issue, values: dict[str, object]) -> None:
    # set as the row's own values (no change for a flush to find): _write_step writes them
    for name, value in values.items():
        set_committed_value(issue, name, value)


def _write_step(session: Session, issue_id: int, values: dict[str, object]) -> None:
    names = tuple(name for name in _STEP_FIELDS if name in values)
    prepared = _STEP_UPDATES.get(names)
    if prepared is None:
        prepared = _STEP_UPDATES[names] = PreparedSet({"step": update(ISSUES).where(
            ISSUES.c.id == bindparam("b_id")).values({name: bindparam(name, type_=ISSUES.c[name].type)
                                                       for name in names})})
    conn = session.connection()
    prepared.get(conn, "step").run(conn, {**{name: values[name] for name in names}, "b_id": issue_id})


@dataclass(frozen=True)
class Version:
    """An issue's workflow version as a step needs it: its hash, and its source if the registry
    has not built that version yet (read only then: the stored YAML and JSON are the bulk of the row)."""

    content_hash: str
    source: Callable[[], str]


_HASH = select(WORKFLOWS.c.content_hash).where(WORKFLOWS.c.id == bindparam("id"))
_SOURCE = select(WORKFLOWS.c.source).where(WORKFLOWS.c.id == bindparam("id"))


def workflow_of(session: Session, issue: Issue, stored_hash: str | None = None) -> Version:
    """The issue's workflow version: the session's copy if it has one (a migration's new version
    may not be flushed yet), else its hash as stored (``stored_hash`` if the caller read it with the
    issue, else straight from the connection)."""
    workflow_id = issue.workflow_id
    known = session.identity_map.get(identity_key(WorkflowVersion, workflow_id))
    if isinstance(known, WorkflowVersion):
        return Version(known.content_hash, lambda: known.source)
    conn = session.connection()
    if stored_hash is None:
        stored_hash = conn.execute(_HASH, {"id": workflow_id}).scalar_one()
    return Version(stored_hash, lambda: conn.execute(_SOURCE, {"id": workflow_id}).scalar_one())


def replan(session: Session, runtime: Runtime, issue: Issue, now: dt.datetime, *, moved_from: str | None = None,
           version: Version | None = None) -> None:
    """The issue's state or deadline changed: follow its new deadline from now on.

    Leaving a state stops that state's reminders: the next one is computed for the new state only.
    The duties that follow the issue (a look-back while it is 长期坚持) are re-planned with it.
    """
    for name, value in _plan(runtime, issue, now, version or workflow_of(session, issue)).items():
        setattr(issue, name, value)
    if moved_from is not None and moved_from != issue.state:  # duties follow an issue's state only
        runtime.duty_book.follow_issue(session, issue.id, moved_from, issue.state, now)


def _plan(runtime: Runtime, issue: Issue, now: dt.datetime, version: Version) -> dict[str, object]:
    """The issue's reminder plan from ``now``: the columns ``replan`` sets."""
    core = runtime.core
    definition = runtime.registry.definition_of(version.content_hash, version.source)
    track = core.issue_track_at(definition, version.content_hash, issue.state,
                                issue.deadline, issue.ledger.feedback_date, issue.state_since, issue.last_checkin_at,
                                issue.created_at)
    next_remind_at, due_on, overdue_on = core.plan_track(track, now)
    return {"remind_after": now, "next_remind_at": next_remind_at, "due_on": due_on, "overdue_on": overdue_on}


def checkin(session: Session, runtime: Runtime, ref: str, *, actor: Actor, now: dt.datetime, ok: bool,
            note: str = "") -> Moved:
    """Record a long-term item's check-in; a failed one reopens the issue (the problem rebounded)."""
    by = actor.name
    issue = open_issue(session, ref, actor, for_update=True)
    require(actor, Action.CHECKIN, issue, issue_ref(issue))
    version = session.get(WorkflowVersion, issue.workflow_id)
    assert version is not None  # issues.workflow_id is a foreign key
    rule = runtime.registry.definition(version).checkins
    if rule is None or issue.state != rule.state:
        wanted = rule.state if rule else "a state with check-ins"
        raise Refused(f"{issue_ref(issue)}: check-ins are for issues in {wanted}; this one is {issue.state}")
    if not ok:
        if not note.strip():
            raise BadInput("a failed check-in needs --note saying what went wrong")
        return transition(session, runtime, issue, "reopen", actor=actor, now=now, note=f"回头看未通过：{note}")
    issue.last_checkin_at = now
    issue.updated_at = now
    history.record(session, issue, by=by, door=actor.door, at=now, trigger="checkin", from_state=issue.state,
                   to_state=issue.state, note=note)
    replan(session, runtime, issue, now)
    session.flush()
    return Moved(issue_ref(issue), "checkin", issue.state, issue.state, now)

"""What a person does on an issue besides moving it: progress notes, evidence, deadline requests.

Each is a service function taking the acting ``Actor`` (every door calls these, so the permission
check is here, once) and writing the append-only history with the actor and the door. And
``offered()``: the steps the workflow offers *this* actor from the issue's state, each with the
guards that are not met yet in words, so a page can show them before anyone clicks.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..accounts.policy import ARCHIVED, Action, DutyAction, archived, may, may_duty, require
from ..duties.book import duty_subject
from ..errors import BadInput, Forbidden, NotFound, Refused
from ..runtime import Runtime
from ..store.models import DutyOccurrence, Evidence, Issue
from ..workflow.schema import WorkflowDef
from ..workflow.words import GUARD_NEEDS, ROLE_WORDS
from . import history
from .edit import edit_issue
from .queries import issue_ref
from .service import EvidenceFile, open_issue, submitters

MAX_NOTE = 4000


@dataclass(frozen=True)
class Offer:
    trigger: str
    label: str
    needs: list[str]  # guards to meet with the step (evidence, note, deadline), in words
    blocked: str = ""  # why it cannot be taken by this actor now ("" = it can)


def _note(note: str) -> str:
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise BadInput(f"a note of {len(note):,} characters is too long (at most {MAX_NOTE:,})")
    return note


def _doer(session: Session, ref: str | Issue, actor: Actor, action: Action) -> Issue:
    issue = open_issue(session, ref, actor, for_update=True)
    require(actor, action, issue, issue_ref(issue))
    return issue


def record_progress(session: Session, ref: str | Issue, *, actor: Actor, now: dt.datetime, note: str) -> Issue:
    """A dated progress note (进展情况): history, not a state change."""
    issue = _doer(session, ref, actor, Action.PROGRESS)  # who may, before what they wrote is looked at
    text = _note(note)
    if not text:
        raise BadInput("write what was done (进展情况)")
    history.record(session, issue, by=actor.name, door=actor.door, at=now, trigger="progress",
                   from_state=issue.state, to_state=issue.state, note=text)
    issue.updated_at = now
    session.flush()
    return issue


def attach_evidence(session: Session, ref: str | Issue, *, actor: Actor, now: dt.datetime,
                    files: list[EvidenceFile], note: str = "") -> Issue:
    issue = _doer(session, ref, actor, Action.EVIDENCE)
    if not files:
        raise BadInput("choose a file to upload (佐证材料)")
    rows = [Evidence(issue_id=issue.id, file_name=item.file_name[:500], sha256=item.sha256, size=item.size,
                     content=item.content, path=item.path, added_at=now, added_by=actor.name) for item in files]
    session.add_all(rows)
    session.flush()  # the files' ids, for the entry that vouches for them
    names = "、".join(f.file_name for f in files)
    history.record(session, issue, by=actor.name, door=actor.door, at=now, trigger="evidence",
                   from_state=issue.state, to_state=issue.state,
                   note="；".join(p for p in (f"上传佐证材料：{names}", _note(note)) if p),
                   changes=[{"evidence": row.id, "sha256": row.sha256, "file": row.file_name} for row in rows])
    issue.updated_at = now
    session.flush()
    return issue


def request_extension(session: Session, ref: str | Issue, *, actor: Actor, now: dt.datetime, to: dt.date,
                      reason: str) -> Issue:
    """A 延期申请: waits for the leader or a reviewer; the deadline is unchanged until then."""
    issue = _doer(session, ref, actor, Action.EXTENSION_REQUEST)
    text = _note(reason)
    if not text:
        raise BadInput("say why the deadline must move (延期理由)")
    if issue.deadline is not None and to <= issue.deadline:
        raise BadInput(f"the new deadline {to.isoformat()} is not after the current one ({issue.deadline.isoformat()})")
    issue.extra = {**(issue.extra or {}), "extension": {"to": to.isoformat(), "by": actor.name, "reason": text}}
    history.record(session, issue, by=actor.name, door=actor.door, at=now, trigger="extension_request",
                   from_state=issue.state, to_state=issue.state, note=f"申请延期至 {to.isoformat()}：{text}",
                   changes=[{"field": "extension", "before": None, "after": to.isoformat()}])
    issue.updated_at = now
    session.flush()
    return issue


def pending_extension(issue: Issue) -> dict[str, str] | None:
    value = (issue.extra or {}).get("extension")
    return value if isinstance(value, dict) else None


def decide_extension(session: Session, runtime: Runtime, ref: str | Issue, *, actor: Actor, now: dt.datetime,
                     approve: bool, note: str = "") -> Issue:
    issue = open_issue(session, ref, actor, for_update=True)
    require(actor, Action.EXTENSION_DECIDE, issue, issue_ref(issue))
    asked = pending_extension(issue)
    if asked is None:
        raise Refused(f"{issue_ref(issue)}: no extension request is waiting")
    if asked.get("by") == actor.name and not actor.is_admin:
        raise Forbidden(f"{issue_ref(issue)}: {actor.label} asked for this extension and cannot also grant it")
    extra = dict(issue.extra or {})
    extra.pop("extension", None)
    issue.extra = extra
    if approve:
        # granted: the deadline moves through the one edit path (history "extend", re-planned)
        edit_issue(session, runtime, issue, actor=actor, now=now, deadline=dt.date.fromisoformat(asked["to"]),
                   note=f"同意延期申请（{asked['by']}：{asked['reason']}）" + (f"；{_note(note)}" if note.strip() else ""))
    else:
        history.record(session, issue, by=actor.name, door=actor.door, at=now, trigger="extension_refused",
                       from_state=issue.state, to_state=issue.state,
                       note=f"不同意延期至 {asked['to']}" + (f"：{_note(note)}" if note.strip() else ""),
                       changes=[{"field": "extension", "before": asked["to"], "after": None}])
    issue.updated_at = now
    session.flush()
    return issue


def offered(session: Session, workflow: WorkflowDef, issue: Issue, actor: Actor, *,
            admins_sign_own: bool = False) -> list[Offer]:
    """The steps from the issue's state, for this actor: what each needs, or why it is closed to them."""
    count = None
    submitter: frozenset[str] | None = None
    out = []
    for t in workflow.transitions:
        if issue.state not in t.source:
            continue
        needs: list[str] = []
        blocked = ""
        if archived(issue):
            blocked = ARCHIVED
        elif t.roles and not actor.acts_as_any(list(t.roles), issue):
            blocked = f"仅限{'、'.join(ROLE_WORDS.get(r, r) for r in t.roles)}"
        elif not t.roles and not may(actor, Action.STEP, issue):
            blocked = "仅可查看"
        for guard in t.conditions:
            if guard == "has_evidence":
                if count is None:
                    count = session.scalar(select(func.count()).select_from(Evidence)
                                           .where(Evidence.issue_id == issue.id)) or 0
                if not count:
                    needs.append(GUARD_NEEDS[guard])
            elif guard == "not_submitter":
                submitter = submitter if submitter is not None else submitters(session, issue)
                if actor.name in submitter and not blocked and not (actor.is_admin and admins_sign_own):
                    blocked = GUARD_NEEDS[guard]
            elif guard == "has_deadline" and issue.deadline is not None:
                continue
            elif guard in GUARD_NEEDS:
                needs.append(GUARD_NEEDS[guard])
        out.append(Offer(t.trigger, t.label or t.trigger, needs, blocked))
    return out



# Ids are 32-bit on PostgreSQL (64 on SQLite): a larger number names no row, and asking the
# database for it would be an "out of range" error, not a 404.
MAX_ID = 2**31 - 1


def evidence_row(session: Session, actor: Actor, evidence_id: int) -> Evidence:
    """The evidence file ``evidence_id`` if ``actor`` may read it: who may see its issue (the
    policy's view), or for a duty's file who may see the duty; ``NotFound``/``Forbidden`` else."""
    row = session.get(Evidence, evidence_id) if 1 <= evidence_id <= MAX_ID else None
    if row is None:
        raise NotFound(f"no evidence file {evidence_id}")
    if row.issue_id is None:
        occurrence = session.get(DutyOccurrence, row.occurrence_id) if row.occurrence_id is not None else None
        if occurrence is None or not may_duty(actor, DutyAction.VIEW, duty_subject(session, occurrence)):
            raise Forbidden("this file belongs to a duty its reader may not see")
        return row
    issue = session.get(Issue, row.issue_id)
    if issue is None:
        raise NotFound("the issue of this file is gone")
    open_issue(session, issue, actor)  # Forbidden unless the actor may see the issue
    return row

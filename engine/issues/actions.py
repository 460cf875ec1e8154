"""What a person does on an issue besides moving it: progress notes, evidence, deadline requests
(``extensions``, re-exported here).

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
from ..errors import BadInput, Forbidden, NotFound
from ..store.models import DutyOccurrence, Evidence, Issue
from ..workflow.schema import WorkflowDef
from ..workflow.words import GUARD_NEEDS, ROLE_WORDS
from . import history
from .evidence import EvidenceFile
from .extensions import decide_extension as decide_extension
from .extensions import pending_extension as pending_extension
from .extensions import request_extension as request_extension
from .queries import issue_ref
from .service import evidence_of_round, open_issue, submitters

MAX_NOTE = 4000


@dataclass(frozen=True)
class Offer:
    trigger: str
    label: str
    # the guards to meet with the step, by key ("has_evidence"): pages decide which inputs to show
    # from these, so rewording a label in GUARD_NEEDS cannot remove a form field
    unmet: tuple[str, ...]
    blocked: str = ""  # why it cannot be taken by this actor now ("" = it can)

    @property
    def needs(self) -> list[str]:
        """The unmet guards as the person who would take the step reads them ("需上传佐证材料")."""
        return [GUARD_NEEDS[guard] for guard in self.unmet]


def _note(note: str) -> str:
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise BadInput(f"a note of {len(note):,} characters is too long (at most {MAX_NOTE:,})")
    return note


def _issue_to_record(session: Session, ref: str | Issue, actor: Actor, action: Action) -> Issue:
    issue = open_issue(session, ref, actor, for_update=True)
    require(actor, action, issue, issue_ref(issue))
    return issue


def record_progress(session: Session, ref: str | Issue, *, actor: Actor, now: dt.datetime, note: str) -> Issue:
    """A dated progress note (进展情况): history, not a state change."""
    issue = _issue_to_record(session, ref, actor, Action.PROGRESS)  # who may, before what they wrote is looked at
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
    issue = _issue_to_record(session, ref, actor, Action.EVIDENCE)
    if not files:
        raise BadInput("choose a file to upload (佐证材料)")
    rows = [Evidence(issue_id=issue.id, file_name=item.file_name[:500], sha256=item.sha256, size=item.size,
                     content=item.content, path=item.path, added_at=now, added_by=actor.name, round=issue.round or 1)
            for item in files]
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


def offered(session: Session, workflow: WorkflowDef, issue: Issue, actor: Actor, *,
            admins_sign_own: bool = False) -> list[Offer]:
    """The steps from the issue's state, for this actor: what each needs, or why it is closed to them."""
    count = None
    submitter: frozenset[str] | None = None
    out = []
    for t in workflow.transitions:
        if issue.state not in t.source:
            continue
        unmet: list[str] = []
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
                    unmet.append(guard)
            elif guard == "has_new_evidence":
                if not evidence_of_round(session, issue):
                    unmet.append(guard)
            elif guard == "not_submitter":
                submitter = submitter if submitter is not None else submitters(session, issue)
                if actor.name in submitter and not blocked and not (actor.is_admin and admins_sign_own):
                    blocked = GUARD_NEEDS[guard]
            elif guard == "has_deadline" and issue.deadline is not None:
                continue
            elif guard in GUARD_NEEDS:
                unmet.append(guard)
        out.append(Offer(t.trigger, t.label or t.trigger, tuple(unmet), blocked))
    return out



# Ids are 32-bit on PostgreSQL (64 on SQLite): a larger number names no row, and asking the
# database for it would be an "out of range" error, not a 404.
MAX_ID = 2**31 - 1


def evidence_row(session: Session, actor: Actor, evidence_id: int) -> Evidence:
    """The evidence file ``evidence_id`` if ``actor`` may read it: who may see its issue (the
    policy's view), or for a duty's file who may see the duty; ``Forbidden`` else, and ``NotFound``
    when there is no such file or it is another unit's (a refusal would tell which ids exist there)."""
    row = session.get(Evidence, evidence_id) if 1 <= evidence_id <= MAX_ID else None
    if row is None:
        raise NotFound(f"no evidence file {evidence_id}")
    if row.issue_id is None:
        occurrence = session.get(DutyOccurrence, row.occurrence_id) if row.occurrence_id is not None else None
        subject = duty_subject(session, occurrence) if occurrence is not None else None
        if subject is not None and actor.hides(subject.unit):
            raise NotFound(f"no evidence file {evidence_id}")  # as if missing: another unit's
        if subject is None or not may_duty(actor, DutyAction.VIEW, subject):
            raise Forbidden("this file belongs to a duty its reader may not see")
        return row
    issue = session.get(Issue, row.issue_id)
    if issue is None:
        raise NotFound("the issue of this file is gone")
    if actor.hidden(issue):
        raise NotFound(f"no evidence file {evidence_id}")  # as if missing: another unit's
    open_issue(session, issue, actor)  # Forbidden unless the actor may see the issue
    return row

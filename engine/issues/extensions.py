"""延期申请: asking for a later 整改时限, and the answer of those who may decide it.

A request is a row of ``extension_requests``. While it waits it is a subject of the reminder core
(``engine.reminders.subjects.ExtensionSubject``): its decision falls due by the workflow's
``extension_requests`` rule, its deciders (the policy's ``EXTENSION_DECIDE`` roles over the issue:
its 责任领导, a reviewer or a unit administrator) find it in their 我的待办 and the people among them
are reminded of it. One request waits per issue. Deciding it ends it: approving moves the deadline
through the one edit path (history ``extend``, re-planned), refusing needs a reason, which the
requester reads on the issue page and, for ``ANSWER_DAYS`` days, in their own 我的待办.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, select, true
from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..accounts.policy import ISSUE_RULES, Action, require
from ..errors import BadInput, Forbidden, Refused
from ..reminders.agenda import ExtensionItem
from ..reminders.subjects import extension_query
from ..runtime import Runtime
from ..store.kinds import ExtensionState
from ..store.models import EXTENSIONS, ExtensionRequest, Issue, Ledger
from . import history
from .edit import edit_issue
from .queries import issue_ref
from .service import open_issue

MAX_TEXT = 4000
ANSWER_DAYS = 7  # how long a decision stays in the requester's 我的待办
ANSWER_CAP = 50


@dataclass(frozen=True)
class Asked:
    """A 延期申请 as pages, the API and the CLI show it."""

    id: int
    to: dt.date
    by: str
    reason: str
    at: dt.datetime
    state: str  # pending | approved | refused
    decided_by: str | None = None
    decided_at: dt.datetime | None = None
    note: str = ""  # the decider's words: a refusal's reason

    @property
    def pending(self) -> bool:
        return self.state == ExtensionState.PENDING

    @staticmethod
    def of(row: ExtensionRequest) -> Asked:
        return Asked(row.id, row.requested_to, row.requested_by, row.reason, row.requested_at, str(row.state.value),
                     row.decided_by, row.decided_at, row.decision_note or "")


@dataclass(frozen=True)
class Answer:
    """A decision the requester has not had for long: shown in their 我的待办."""

    ledger: str
    ref: str
    title: str
    asked: Asked

    kind = "extension_answer"

    @property
    def refused(self) -> bool:
        return self.asked.state == ExtensionState.REFUSED


def _text(value: str, what: str) -> str:
    text = (value or "").strip()
    if len(text) > MAX_TEXT:
        raise BadInput(f"{what} of {len(text):,} characters is too long (at most {MAX_TEXT:,})")
    return text


def _history(session: Session, issue: Issue, actor: Actor, now: dt.datetime, trigger: str, note: str) -> None:
    # on the issue's chain, like every other change
    history.record(session, issue, by=actor.name, door=actor.door, at=now, trigger=trigger, from_state=issue.state,
                   to_state=issue.state, note=note)


def _waiting(session: Session, issue: Issue) -> ExtensionRequest | None:
    return session.scalar(select(ExtensionRequest).where(ExtensionRequest.issue_id == issue.id,
                                                         ExtensionRequest.state == ExtensionState.PENDING))


def request_extension(session: Session, runtime: Runtime, ref: str | Issue, *, actor: Actor, now: dt.datetime,
                      to: dt.date, reason: str) -> Asked:
    """Ask for the deadline to move to ``to``: waits on the deciders; the deadline is unchanged until then."""
    issue = open_issue(session, ref, actor, for_update=True)
    require(actor, Action.EXTENSION_REQUEST, issue, issue_ref(issue))  # who may, before what they wrote
    text = _text(reason, "a reason")
    if not text:
        raise BadInput("say why the deadline must move (延期理由)")
    if issue.deadline is not None and to <= issue.deadline:
        raise BadInput(f"the new deadline {to.isoformat()} is not after the current one ({issue.deadline.isoformat()})")
    today = runtime.calendar.local_date(now)
    if to <= today:
        raise BadInput(f"the new deadline {to.isoformat()} is not after today ({today.isoformat()})")
    waiting = _waiting(session, issue)
    if waiting is not None:
        raise Refused(f"{issue_ref(issue)}: a 延期申请 is already waiting (to {waiting.requested_to.isoformat()}, "
                      f"asked by {waiting.requested_by})", hint="it must be decided before another is made")
    row = ExtensionRequest(issue_id=issue.id, round=issue.round or 1, requested_to=to, reason=text,
                           requested_by=actor.name, requested_at=now, state=ExtensionState.PENDING,
                           decision_note="", remind_after=now)
    session.add(row)
    _history(session, issue, actor, now, "extension_request", f"申请延期至 {to.isoformat()}：{text}")
    issue.updated_at = now
    session.flush()
    plan_request(session, runtime, row, now)
    return Asked.of(row)


def plan_request(session: Session, runtime: Runtime, row: ExtensionRequest, now: dt.datetime) -> None:
    """Store the reminder core's plan on a pending request (what the sweep and 我的待办 read)."""
    subject = runtime.subjects.extensions(session, extension_query().where(EXTENSIONS.c.id == row.id))[0]
    row.next_remind_at, row.due_on, row.overdue_on = runtime.core.plan(subject, now)
    row.remind_after = now
    session.flush()


def decide_extension(session: Session, runtime: Runtime, ref: str | Issue, *, actor: Actor, now: dt.datetime,
                     approve: bool, note: str = "") -> Asked:
    """Approve (the deadline moves) or refuse (a reason is required) the waiting request; either ends it."""
    issue = open_issue(session, ref, actor, for_update=True)
    require(actor, Action.EXTENSION_DECIDE, issue, issue_ref(issue))
    text = _text(note, "a note")
    if not approve and not text:
        raise BadInput("a refusal needs its reason (不同意延期须写明理由): the requester reads it")
    row = _waiting(session, issue)
    if row is None:
        raise Refused(f"{issue_ref(issue)}: no extension request is waiting")
    if row.requested_by == actor.name and not actor.is_admin:
        raise Forbidden(f"{issue_ref(issue)}: {actor.label} asked for this extension and cannot also grant it")
    row.state = ExtensionState.APPROVED if approve else ExtensionState.REFUSED
    row.decided_at, row.decided_by, row.decision_note = now, actor.name, text
    row.next_remind_at = row.due_on = row.overdue_on = None  # decided: nothing is due any more
    to = row.requested_to.isoformat()
    if not approve:
        _history(session, issue, actor, now, "extension_refused", f"不同意延期至 {to}：{text}")
    elif issue.deadline is not None and row.requested_to <= issue.deadline:  # moved as far meanwhile
        _history(session, issue, actor, now, "extension_approved",
                 f"同意延期申请（整改时限已为 {issue.deadline.isoformat()}）" + (f"；{text}" if text else ""))
    else:
        edit_issue(session, runtime, issue, actor=actor, now=now, deadline=row.requested_to,
                   note=f"同意延期申请（{row.requested_by}：{row.reason}）" + (f"；{text}" if text else ""))
    issue.updated_at = now
    session.flush()
    return Asked.of(row)


def pending_extension(session: Session, issue: Issue) -> Asked | None:
    """The request waiting on the issue, if any."""
    row = _waiting(session, issue)
    return Asked.of(row) if row is not None else None


def last_decision(session: Session, issue: Issue) -> Asked | None:
    """The issue's most recently decided request (its refusal's reason is shown on the issue page)."""
    row = session.scalar(select(ExtensionRequest).where(ExtensionRequest.issue_id == issue.id,
                                                        ExtensionRequest.state != ExtensionState.PENDING)
                         .order_by(ExtensionRequest.decided_at.desc(), ExtensionRequest.id.desc()).limit(1))
    return Asked.of(row) if row is not None else None


def asked_of(item: object) -> Asked | None:
    """The request a 我的待办 item is (``reminders.agenda.ExtensionItem``); None for a deadline."""
    if not isinstance(item, ExtensionItem):
        return None
    x = item.subject_row
    return Asked(x.id, x.requested_to, x.requested_by, x.reason, x.requested_at, ExtensionState.PENDING.value)


def deciding(actor: Actor) -> ColumnElement[bool]:
    """The pending requests ``actor`` may decide, as SQL over ``extension_query()``: the policy's
    ``EXTENSION_DECIDE`` roles over the issue, and not their own request (an administrator may)."""
    if actor.is_admin:
        return true()
    return and_(actor.visible(ISSUE_RULES[Action.EXTENSION_DECIDE], probe=True),
                EXTENSIONS.c.requested_by != actor.name)


def answers(session: Session, actor: Actor, now: dt.datetime) -> list[Answer]:
    """The decisions on ``actor``'s own requests of the last ``ANSWER_DAYS`` days, newest first, on
    issues they still see (read off the requester's index)."""
    x = ExtensionRequest
    stmt = (select(x, Issue.ref, Issue.title, Ledger.name).join(Issue, Issue.id == x.issue_id)
            .join(Ledger, Ledger.id == Issue.ledger_id)
            .where(x.requested_by == actor.name, x.decided_at >= now - dt.timedelta(days=ANSWER_DAYS),
                   actor.visible(probe=True))
            .order_by(x.decided_at.desc(), x.id.desc()).limit(ANSWER_CAP))
    return [Answer(ledger, ref, title, Asked.of(row)) for row, ref, title, ledger in session.execute(stmt)]

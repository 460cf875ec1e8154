"""The subjects reminders are about, and the one query shape each is read with (and the tables
those queries read, re-exported: every reader adds its `where` on them).

Every reader (sweep, preview, board, ICS, report) selects a subject's rows through these queries
and adds its own ``where``: the sweep "next reminder by now", the board "overdue by today", an
issue page "this id". So every reader sees the same columns and the core turns them into the same
tracks. A subject is a plain frozen value built from its row by ``hydrate.SubjectReader``: the core
never needs a session to answer about one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import aliased

from ..store.kinds import ExtensionState
from ..store.models import DUTIES, WORKFLOWS, Ledger
from ..store.models import EXTENSIONS as EXTENSIONS
from ..store.models import ISSUES as ISSUES
from ..store.models import LEDGERS as LEDGERS
from ..store.models import OCCURRENCES as OCCURRENCES
from ..workflow.rules import ReminderPolicy
from ..workflow.schema import WorkflowDef


@dataclass(frozen=True)
class IssueSubject:
    """An issue of a ledger, following the deadline of its state (or its next check-in)."""

    id: int
    ledger_id: int
    ledger: str
    ref: str
    title: str
    area: str
    category: str
    leader: str
    department: str
    state: str
    deadline: dt.date | None
    feedback: dt.date | None  # the ledger's feedback date
    state_since: dt.datetime
    last_checkin_at: dt.datetime | None
    remind_after: dt.datetime | None
    created_at: dt.datetime  # when duban began tracking it (an adopted ledger's import)
    workflow_id: int
    wf_hash: str
    workflow: WorkflowDef = field(compare=False, repr=False)
    # Who a state whose ``actor`` is ``reviewer`` waits on (accounts over the ledger): never part of the track.
    reviewers: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @property
    def key(self) -> str:
        """How reminders, history and people name it: ``LEDGER/序号``."""
        return f"{self.ledger}/{self.ref}"


@dataclass(frozen=True)
class OccurrenceSubject:
    """One period of a duty, a ledger milestone, or a look-back for one issue."""

    id: int
    duty_id: int
    duty_key: str
    duty_title: str
    duty_kind: str  # recurring | milestone
    owners: tuple[str, ...]
    period: str
    due: dt.date
    state: str  # open | done
    remind_after: dt.datetime | None
    created_at: dt.datetime
    ledger_id: int | None  # the milestone's ledger, else the ledger of the issue it is for
    ledger: str | None
    issue_id: int | None
    issue_ref: str | None
    issue_leader: str | None
    issue_department: str | None
    issue_state: str | None
    policy: ReminderPolicy = field(compare=False, repr=False)
    for_each_state: str | None = None  # a look-back exists only while its issue is in this state
    unit: str = ""  # the unit a duty bound to units is for ("" otherwise: its ledger's, or the installation's)

    @property
    def key(self) -> str:
        """The reminder subject: the duty key (``LEDGER:milestone`` for a milestone)."""
        return self.duty_key

    @property
    def issue_key(self) -> str | None:
        return f"{self.ledger}/{self.issue_ref}" if self.issue_ref is not None else None


@dataclass(frozen=True)
class ExtensionSubject:
    """A pending 延期申请 of an issue, following the day its decision is due (the workflow's
    ``extension_requests`` rule, counted from the day it was asked)."""

    id: int
    issue_id: int
    requested_to: dt.date
    reason: str
    requested_by: str
    requested_at: dt.datetime
    remind_after: dt.datetime | None
    ledger_id: int
    ledger: str
    unit: str
    ref: str
    title: str
    area: str
    category: str
    leader: str
    department: str
    state: str  # the issue's
    workflow_id: int
    wf_hash: str
    workflow: WorkflowDef = field(compare=False, repr=False)
    # who may decide it and hears of it (the policy's deciders, less the requester): never part of the track
    deciders: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @property
    def key(self) -> str:
        """The issue's key: a reminder about the request is about the issue."""
        return f"{self.ledger}/{self.ref}"

    @property
    def requester(self) -> str:
        """The requester as people call them: ``办公室`` of ``区教委/办公室``."""
        return self.requested_by.removeprefix(f"{self.unit}/") if self.unit else self.requested_by


Subject = IssueSubject | OccurrenceSubject | ExtensionSubject  # what a reminder is about


def duty_policy(kind: str, spec: dict[str, Any]) -> tuple[ReminderPolicy, str | None]:
    """A duty's reminder policy and the state a per-issue duty follows, from its stored spec."""
    raw = spec.get("policy") if kind == "milestone" else spec.get("reminders")
    policy = ReminderPolicy.model_validate(raw) if raw is not None else ReminderPolicy(before_working_days=(3, 1))
    each = spec.get("for_each") if kind == "recurring" else None
    return policy, (each or {}).get("state")


_I, _L, _W = ISSUES, LEDGERS, WORKFLOWS


def issue_query() -> Select[Any]:
    """The columns of an ``IssueSubject`` (a reader adds its ``where`` and ``order_by``)."""
    return (select(_I.c.id, _I.c.ledger_id, _L.c.name.label("ledger"), _I.c.ref, _I.c.title, _I.c.area,
                   _I.c.category, _I.c.leader, _I.c.department, _I.c.state, _I.c.deadline,
                   _L.c.feedback_date.label("feedback"), _I.c.state_since, _I.c.last_checkin_at,
                   _I.c.remind_after, _I.c.created_at, _I.c.workflow_id, _W.c.content_hash.label("wf_hash"))
            .select_from(_I.join(_L, _L.c.id == _I.c.ledger_id).join(_W, _W.c.id == _I.c.workflow_id)))


_O, _D = OCCURRENCES, DUTIES
_OWN = aliased(Ledger, name="own_ledger")  # a milestone's ledger
_OF = aliased(Ledger, name="issue_ledger")  # the ledger of the issue a look-back is for


def duty_unit() -> ColumnElement[str]:
    """The unit a duty row is bound to (its spec's ``units: [UNIT]``; NULL for the installation's)."""
    unit: ColumnElement[str] = _D.c.spec[("units", 0)].as_string()
    return unit


def occurrence_query() -> Select[Any]:
    """The columns of an ``OccurrenceSubject`` (and of the duty the core reads its policy from)."""
    return (select(_O.c.id, _O.c.duty_id, _D.c.key.label("duty_key"), _D.c.title.label("duty_title"),
                   _D.c.kind.label("duty_kind"), _D.c.owners, _D.c.spec_hash, _O.c.period, _O.c.due, _O.c.state,
                   _O.c.remind_after, _O.c.created_at, _D.c.ledger_id.label("own_ledger_id"),
                   _OWN.name.label("own_ledger"), _O.c.issue_id, _I.c.ref.label("issue_ref"),
                   _I.c.leader.label("issue_leader"), _I.c.department.label("issue_department"),
                   _I.c.state.label("issue_state"), _I.c.ledger_id.label("issue_ledger_id"),
                   _OF.name.label("issue_ledger"), duty_unit().label("duty_unit"))
            .select_from(_O.join(_D, _D.c.id == _O.c.duty_id)
                         .outerjoin(_OWN, _OWN.id == _D.c.ledger_id)
                         .outerjoin(_I, _I.c.id == _O.c.issue_id)
                         .outerjoin(_OF, _OF.id == _I.c.ledger_id)))


_X = EXTENSIONS


def extension_query() -> Select[Any]:
    """The columns of an ``ExtensionSubject``: pending requests only (a decided one follows nothing)."""
    return (select(_X.c.id, _X.c.issue_id, _X.c.requested_to, _X.c.reason, _X.c.requested_by, _X.c.requested_at,
                   _X.c.remind_after, _I.c.ledger_id, _L.c.name.label("ledger"), _L.c.unit, _I.c.ref, _I.c.title,
                   _I.c.area, _I.c.category, _I.c.leader, _I.c.department, _I.c.state, _I.c.workflow_id,
                   _W.c.content_hash.label("wf_hash"))
            .select_from(_X.join(_I, _I.c.id == _X.c.issue_id).join(_L, _L.c.id == _I.c.ledger_id)
                         .join(_W, _W.c.id == _I.c.workflow_id))
            .where(_X.c.state == ExtensionState.PENDING))

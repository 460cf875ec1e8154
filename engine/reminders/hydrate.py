"""Subjects from rows: the database reads that turn a row of ``subjects.*_query()`` into a subject.

A row carries ids; a subject carries what the core needs to answer without a session: the
workflow definition (cached by content hash: versions never change), a duty's reminder policy
(cached by its spec's hash), the reviewers a state waits on and the deciders of a 延期申请
(asked of the accounts through ``Hearers``, once per ledger and session: accounts change between
sweeps, not within one batch).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Row, Select, select
from sqlalchemy.orm import Session

from ..store.models import Duty, WorkflowVersion
from ..workflow.rules import ReminderPolicy
from ..workflow.schema import WorkflowDef
from .hearers import Hearers
from .subjects import ExtensionSubject, IssueSubject, OccurrenceSubject, duty_policy


class SubjectReader:
    """Builds subjects from rows; see the module docstring."""

    def __init__(self, definition: Callable[[WorkflowVersion], WorkflowDef], hearers: Hearers,
                 admins: Iterable[str] = ()):
        self.hearers = hearers
        self.admins = tuple(admins)  # who hears when a subject's accounts name nobody
        self._definition = definition
        self._workflows: dict[str, WorkflowDef] = {}
        self._policies: dict[tuple[int, str], tuple[ReminderPolicy, str | None]] = {}

    def workflow(self, session: Session, workflow_id: int, wf_hash: str) -> WorkflowDef:
        """The definition of a workflow version (versions never change: cached by content hash)."""
        wf = self._workflows.get(wf_hash)
        if wf is None:
            version = session.get(WorkflowVersion, workflow_id)
            if version is None:  # pragma: no cover - a foreign key guarantees it
                raise LookupError(f"workflow version {workflow_id} is missing")
            wf = self._workflows[wf_hash] = self._definition(version)
        return wf

    def issue(self, session: Session, row: Row[Any]) -> IssueSubject:
        """An ``IssueSubject`` from a row of ``subjects.issue_query()``."""
        m = row._mapping
        wf = self.workflow(session, m["workflow_id"], m["wf_hash"])
        waits = any(s.name == m["state"] and "reviewer" in s.actor for s in wf.states)
        return IssueSubject(**m, workflow=wf, reviewers=self._reviewers(session, m["ledger_id"]) if waits else ())

    def issues(self, session: Session, stmt: Select[Any]) -> list[IssueSubject]:
        return [self.issue(session, r) for r in session.execute(stmt)]

    def occurrence(self, session: Session, row: Row[Any]) -> OccurrenceSubject:
        """An ``OccurrenceSubject`` from a row of ``subjects.occurrence_query()``."""
        m = row._mapping
        policy, each = self._duty_policy(session, m["duty_id"], m["spec_hash"], m["duty_kind"])
        own = m["own_ledger_id"]
        return OccurrenceSubject(
            id=m["id"], duty_id=m["duty_id"], duty_key=m["duty_key"], duty_title=m["duty_title"],
            duty_kind=m["duty_kind"], owners=tuple(m["owners"] or ()), period=m["period"], due=m["due"],
            state=m["state"], remind_after=m["remind_after"], created_at=m["created_at"],
            ledger_id=own if own is not None else m["issue_ledger_id"],
            ledger=m["own_ledger"] if own is not None else m["issue_ledger"], issue_id=m["issue_id"],
            issue_ref=m["issue_ref"], issue_leader=m["issue_leader"], issue_department=m["issue_department"],
            issue_state=m["issue_state"], policy=policy, for_each_state=each, unit=m["duty_unit"] or "")

    def occurrences(self, session: Session, stmt: Select[Any]) -> list[OccurrenceSubject]:
        return [self.occurrence(session, r) for r in session.execute(stmt)]

    def extension(self, session: Session, row: Row[Any]) -> ExtensionSubject:
        """An ``ExtensionSubject`` from a row of ``subjects.extension_query()``."""
        m = row._mapping
        wf = self.workflow(session, m["workflow_id"], m["wf_hash"])
        return ExtensionSubject(**m, workflow=wf, deciders=self._deciders(session, m["ledger_id"], m["unit"],
                                                                           m["leader"], m["requested_by"]))

    def extensions(self, session: Session, stmt: Select[Any]) -> list[ExtensionSubject]:
        return [self.extension(session, r) for r in session.execute(stmt)]

    def _reviewers(self, session: Session, ledger_id: int) -> tuple[str, ...]:
        cache: dict[int, tuple[str, ...]] = session.info.setdefault("duban.reviewers", {})
        if ledger_id not in cache:
            cache[ledger_id] = tuple(self.hearers.reviewers(session, ledger_id)) or self.admins
        return cache[ledger_id]

    def _deciders(self, session: Session, ledger_id: int, unit: str, leader: str, requester: str) -> tuple[str, ...]:
        """Who is reminded of a 延期申请: the people among the policy's deciders (``EXTENSION_DECIDE``),
        the issue's 责任领导 and the reviewers over its ledger, never the requester (who may not grant
        their own); duban's administrators when that leaves nobody."""
        cache: dict[int, tuple[str, ...]] = session.info.setdefault("duban.deciders", {})
        if ledger_id not in cache:
            cache[ledger_id] = tuple(self.hearers.reviewers(session, ledger_id))
        heard: dict[tuple[str, str], tuple[str, ...]] = session.info.setdefault("duban.hearers", {})
        if leader and (unit, leader) not in heard:
            heard[(unit, leader)] = tuple(self.hearers.hearers(session, unit, leader))
        leads = [leader] if leader and requester not in heard[(unit, leader)] and requester != leader else []
        return tuple(leads + [r for r in cache[ledger_id] if r != requester]) or self.admins

    def _duty_policy(self, session: Session, duty_id: int, digest: str, kind: str
                     ) -> tuple[ReminderPolicy, str | None]:
        key = (duty_id, digest)
        found = self._policies.get(key)
        if found is None:
            spec = session.scalar(select(Duty.spec).where(Duty.id == duty_id)) or {}
            found = self._policies[key] = duty_policy(kind, spec)
        return found

"""The ``reminders`` row as the sweep writes it (and the preview predicts it): one typed shape.

A reminder is written once under its dedupe key (subject, rule, occurrence): INSERT … ON CONFLICT
DO NOTHING, so a crash or a second daemon writes nothing twice. ``ReminderRow`` is the insert's
parameters, column for column (``engine.store.models.Reminder``): a column renamed on one side is
a type error on the other, not a row that silently lacks it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NotRequired, TypedDict

from ..store.kinds import ReminderKind
from .core import ReminderCore
from .planner import ReminderInstant
from .subjects import ExtensionSubject, IssueSubject, Subject


class ReminderRow(TypedDict):
    dedupe_key: str
    at: dt.datetime
    subject: str  # the subject's key: LEDGER/序号, a duty key, calendar:YEAR
    kind: ReminderKind
    rule: str
    occurrence: str
    recipients: list[str]
    due: dt.date | None
    days_overdue: int
    details: dict[str, Any]  # ReminderFacts.stored(): the JSON column the notifications read back
    ledger_id: int | None
    issue_id: int | None
    occurrence_id: int | None
    created_at: NotRequired[dt.datetime]  # the sweep's instant; a preview's rows were never written


def dedupe_key(subject: str, rule: str, occurrence: str) -> str:
    """The reminder's unique key: written once, whatever crashes or second daemons do."""
    return f"{subject}|{rule}|{occurrence}"


def reminder_row(core: ReminderCore, subject: Subject, due: ReminderInstant) -> ReminderRow:
    """The ``reminders`` row the sweep writes for ``due`` of ``subject``: what the core says of it."""
    track = core.track(subject)
    issue_id: int | None
    occurrence_id: int | None = None
    if isinstance(subject, IssueSubject):
        occurrence, issue_id = due.occurrence, subject.id
    elif isinstance(subject, ExtensionSubject):  # keyed apart from the issue's own deadline reminders
        occurrence, issue_id = f"extension-{subject.id}@{due.occurrence}", subject.issue_id
    else:
        occurrence, issue_id, occurrence_id = f"{subject.period}@{due.occurrence}", subject.issue_id, subject.id
    return ReminderRow(dedupe_key=dedupe_key(subject.key, due.rule, occurrence), at=due.at, subject=subject.key,
                       kind=due.kind, rule=due.rule, occurrence=occurrence,
                       recipients=core.recipients(subject, due), due=track.due if track else None,
                       days_overdue=due.days_overdue, details=core.facts(subject, due).stored(),
                       ledger_id=subject.ledger_id, issue_id=issue_id, occurrence_id=occurrence_id)

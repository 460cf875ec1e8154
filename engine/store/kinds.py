"""The closed vocabularies of the store: what a reminder, a duty and an occurrence can be.

Each is a ``StrEnum`` stored as its value in a text column with a CHECK constraint (see
``types.enum_type``), so a value outside the list is refused by the database itself.
"""

from __future__ import annotations

from enum import StrEnum


class ReminderKind(StrEnum):
    """What a reminder is about, most urgent first in a digest (see notifications.digest)."""

    ESCALATION = "escalation"  # overdue and escalated: adds recipients
    OVERDUE = "overdue"
    DUE = "due"  # due today
    CHECKIN = "checkin"  # a long-term item's look-back falls due
    DUTY = "duty"  # a duty occurrence (or milestone) is due, or comes due soon
    BEFORE = "before"  # an issue's deadline comes in N working days


class SubjectKind(StrEnum):
    """What a reminder is about: an issue, a duty occurrence, a ledger milestone, the calendar."""

    ISSUE = "issue"
    DUTY = "duty"
    MILESTONE = "milestone"
    CALENDAR = "calendar"


class DutyKind(StrEnum):
    RECURRING = "recurring"  # from workflows/duties/*.yaml
    MILESTONE = "milestone"  # a ledger-level deadline of the ledger's workflow


class OccurrenceState(StrEnum):
    OPEN = "open"
    DONE = "done"


class ExtensionState(StrEnum):
    """Where a 延期申请 stands: waiting on its deciders, or decided (which ends it)."""

    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"

"""Deadline and reminder rules as written in YAML (workflows and duties share them).

A deadline rule says when something is due, relative to an anchor; a reminder policy says when to
remind about it. Everything is counted on the official working-day calendar, and every reminder
falls at a local wall-clock time on a working day.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,59}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Offset(_Strict):
    """A distance from an anchor: calendar days, working days or months (one of them, or none)."""

    days: int | None = None
    working_days: int | None = None
    months: int | None = None

    @model_validator(mode="after")
    def _one(self) -> Offset:
        given = [k for k in ("days", "working_days", "months") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of days, working_days or months, not {' and '.join(given)}")
        return self


class DeadlineRule(Offset):
    """When an issue in a state is due.

    ``anchor``: ``feedback`` (the ledger's feedback date), ``entered`` (the day the issue entered
    the state) or ``deadline`` (the issue's own 整改时限); ``not_after: deadline`` caps it at the 整改时限.
    """

    anchor: Literal["feedback", "entered", "deadline"]
    title: str = ""
    # ``deadline``: never later than the issue's own 整改时限, when it has one (a plan for a 立行立改
    # problem, due five working days after the feedback, is not due ten days after the problem is)
    not_after: Literal["deadline"] | None = None


class Escalation(_Strict):
    name: str
    after_working_days: int = Field(ge=1)
    add: tuple[str, ...] = Field(min_length=1, description="recipients (roles) added from this point on")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"rule name {value!r} must be lower-case letters, digits, - and _")
        return value


class ReminderPolicy(_Strict):
    """When to remind about one deadline.

    Defaults are the shipped ones: 5, 3 and 1 working days before at 09:00, on the day, then
    every working day while overdue; escalations add recipients after N working days overdue.
    """

    at: dt.time = dt.time(9, 0)
    before_working_days: tuple[int, ...] = (5, 3, 1)
    on_due: bool = True
    overdue: bool = True
    escalations: tuple[Escalation, ...] = ()
    urgent: bool = False  # urgent reminders ignore quiet hours (see notifications)
    # How one reminder reads in a digest (jinja2, sandboxed); checked by `duban workflow validate`.
    item_template: str | None = None

    @field_validator("at", mode="before")
    @classmethod
    def _time(cls, value: object) -> object:
        if isinstance(value, int):  # YAML reads 09:00 unquoted as a sexagesimal int (540)
            return dt.time(value // 60, value % 60)
        return value

    @field_validator("before_working_days")
    @classmethod
    def _positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(n < 1 for n in value):
            raise ValueError("before_working_days must be whole numbers of at least 1")
        return tuple(sorted(set(value), reverse=True))

    @field_validator("escalations")
    @classmethod
    def _ordered(cls, value: tuple[Escalation, ...]) -> tuple[Escalation, ...]:
        days = [e.after_working_days for e in value]
        if len(set(days)) != len(days):
            raise ValueError("two escalations start on the same day")
        if len({e.name for e in value}) != len(value):
            raise ValueError("escalation names must differ")
        return tuple(sorted(value, key=lambda e: e.after_working_days))


class ExtensionRule(Offset):
    """When a pending 延期申请 must be decided: counted from the day it was asked (``working_days``,
    ``days`` or ``months``), and how its deciders are reminded (``reminders``; default: the working
    day before, on the day, then every working day while it waits, no escalation)."""

    title: str = Field("审批延期申请", min_length=1)
    reminders: ReminderPolicy = ReminderPolicy(before_working_days=(1,))

    @model_validator(mode="after")
    def _offset(self) -> ExtensionRule:
        given = [getattr(self, k) for k in ("days", "working_days", "months") if getattr(self, k) is not None]
        if not given:
            raise ValueError("say when the decision is due: working_days, days or months after the request")
        if given[0] < 0:
            raise ValueError("a request cannot be due before it is made: give 0 or more")
        return self


DEFAULT_EXTENSION_RULE = ExtensionRule(working_days=3)
"""What a workflow without ``extension_requests`` gives its requests: a pending request always waits on someone."""


class CheckinRule(_Strict):
    """Long-term items check in on a cadence; a missed check-in alerts like an overdue deadline."""

    state: str
    every_months: int = Field(default=3, ge=1)
    grace_working_days: int = Field(default=10, ge=0)


class Milestone(Offset):
    """A ledger-level deadline, e.g. the rectification report two months after feedback."""

    name: str
    title: str
    anchor: Literal["feedback"] = "feedback"
    recipients: tuple[str, ...] = Field(min_length=1)
    reminders: ReminderPolicy | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"milestone name {value!r} must be lower-case letters, digits, - and _")
        return value

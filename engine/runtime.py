"""The long-lived helpers one process builds once from its configuration."""

from __future__ import annotations

from functools import cached_property

from .accounts.directory import AccountHearers
from .calendar import WorkCalendar
from .config import Config
from .duties.book import DutyBook
from .duties.definitions import LoadedDuty, load_duty_dirs
from .reminders.calendar_years import ScheduleReminder
from .reminders.core import ReminderCore
from .reminders.hearers import Hearers
from .reminders.hydrate import SubjectReader
from .reminders.planner import Planner
from .workflow.registry import WorkflowRegistry


class Runtime:
    """Calendar, reminder core, workflow registry and duty book for one configuration.

    ``hearers``: who among the accounts a subject waits on (``engine.reminders.hearers``); the
    application hands in the accounts' (``engine.app.loaded``, ``engine.app.cli.context``); left out
    (a test's or a bench's runtime), the runtime wires the same accounts itself.
    """

    def __init__(self, config: Config, *, calendar: WorkCalendar | None = None, hearers: Hearers | None = None):
        self.config = config
        self.hearers: Hearers = hearers if hearers is not None else AccountHearers()
        if calendar is not None:  # a test's calendar with the official data it means
            self.__dict__["calendar"] = calendar

    @cached_property
    def calendar(self) -> WorkCalendar:
        return self.config.work_calendar()

    @cached_property
    def registry(self) -> WorkflowRegistry:
        return WorkflowRegistry(self.config)

    @cached_property
    def core(self) -> ReminderCore:
        return ReminderCore(self.calendar)

    @cached_property
    def subjects(self) -> SubjectReader:
        return SubjectReader(self.registry.definition, self.hearers, self.config.workflows.admins)

    @cached_property
    def schedule_reminder(self) -> ScheduleReminder:
        return ScheduleReminder(self.calendar, self.config.workflows.admins)

    @property
    def planner(self) -> Planner:
        return self.core.planner

    @cached_property
    def duty_book(self) -> DutyBook:
        return DutyBook(self.core, self.subjects, self.config.duties.horizon_days)

    def duty_definitions(self) -> list[LoadedDuty]:
        return load_duty_dirs(self.config.duty_dirs())

"""The long-lived helpers one process builds once from its configuration."""

from __future__ import annotations

from functools import cached_property

from .calendar import WorkCalendar
from .config import Config
from .duties.book import DutyBook
from .duties.definitions import LoadedDuty, load_duty_dirs
from .reminders.core import ReminderCore
from .reminders.planner import Planner
from .workflow.registry import WorkflowRegistry


class Runtime:
    """Calendar, reminder core, workflow registry and duty book for one configuration."""

    def __init__(self, config: Config, *, calendar: WorkCalendar | None = None):
        self.config = config
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
        return ReminderCore(self.calendar, self.registry.definition, self.config.workflows.admins)

    @property
    def planner(self) -> Planner:
        return self.core.planner

    @cached_property
    def duty_book(self) -> DutyBook:
        return DutyBook(self.core, self.config.duties.horizon_days)

    def duty_definitions(self) -> list[LoadedDuty]:
        return load_duty_dirs(self.config.duty_dirs())

"""The long-lived helpers one process builds once from its configuration."""

from __future__ import annotations

from functools import cached_property

from .config import Config
from .deadlines import Planner
from .duties import DutyBook
from .duty_defs import LoadedDuty, load_duty_dirs
from .tracks import Tracker
from .workflow.registry import WorkflowRegistry
from .store.models import WorkflowVersion


class Runtime:
    """Calendar, planner, tracker, workflow registry and duty book for one configuration."""

    def __init__(self, config: Config):
        self.config = config

    @cached_property
    def calendar(self):
        return self.config.work_calendar()

    @cached_property
    def planner(self) -> Planner:
        return Planner(self.calendar)

    @cached_property
    def tracker(self) -> Tracker:
        return Tracker(self.planner)

    @cached_property
    def registry(self) -> WorkflowRegistry:
        return WorkflowRegistry(self.config)

    @cached_property
    def duty_book(self) -> DutyBook:
        return DutyBook(self.tracker, self.config.duties.horizon_days)

    def duty_definitions(self) -> list[LoadedDuty]:
        return load_duty_dirs(self.config.duty_dirs())

    def workflow_hash(self, version: WorkflowVersion) -> str:
        """Register ``version`` with the tracker and return the key tracks use for it."""
        if not self.tracker.knows(version.content_hash):
            self.tracker.add_workflow(version.content_hash, self.registry.definition(version))
        return version.content_hash

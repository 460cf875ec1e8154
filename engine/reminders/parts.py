"""What a reader of reminders is handed: the core, the subject reader and the calendar's reminder.

The sweep, the preview, the re-plan and the agenda each read rows, build subjects from them and ask
the core; ``engine.runtime.Runtime`` builds the three once per process (wiring the accounts in as
the reader's ``Hearers``) and is handed as this.
"""

from __future__ import annotations

from typing import Protocol

from .calendar_years import ScheduleReminder
from .core import ReminderCore
from .hydrate import SubjectReader


class ReminderParts(Protocol):
    @property
    def core(self) -> ReminderCore: ...

    @property
    def subjects(self) -> SubjectReader: ...

    @property
    def schedule_reminder(self) -> ScheduleReminder: ...

"""Which deadline each subject is following now, and who hears about it.

An issue follows the deadline of its current state (``deadlines:`` in its workflow), or, in the
long-term state, its next check-in. A duty occurrence follows its own due date. This module turns
those rows into ``Track``s for the planner, and keeps ``next_remind_at`` (the indexed column the
sweep reads) true whenever a row changes.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from dateutil.relativedelta import relativedelta

from .deadlines import Planner, Track, shift
from .workflow.rules import ReminderPolicy
from .workflow.schema import WorkflowDef


class Tracker:
    """Builds tracks on one planner. Workflows are registered by content hash (hashable keys)."""

    def __init__(self, planner: Planner):
        self.planner = planner
        self.calendar = planner.calendar
        self._workflows: dict[str, WorkflowDef] = {}
        self.issue_track = lru_cache(maxsize=65536)(self._issue_track)

    def add_workflow(self, content_hash: str, wf: WorkflowDef) -> None:
        self._workflows[content_hash] = wf

    def knows(self, content_hash: str) -> bool:
        return content_hash in self._workflows

    def workflow(self, content_hash: str) -> WorkflowDef:
        return self._workflows[content_hash]

    def _issue_track(self, wf_hash: str, state: str, deadline: dt.date | None, feedback: dt.date | None,
                     since: dt.date, checkin: dt.date | None) -> Track | None:
        """The track of an issue in ``state``; dates are local calendar dates."""
        wf = self._workflows[wf_hash]
        rule = wf.deadlines.get(state)
        if rule is not None:
            anchor = {"feedback": feedback, "entered": since, "deadline": deadline}[rule.anchor]
            if anchor is None:
                return None
            due = self.planner.effective_due(shift(anchor, rule, self.calendar))
            return Track(due=due, policy=wf.reminders)
        checkins = wf.checkins
        if checkins is not None and state == checkins.state:
            base = max(since, checkin) if checkin else since
            due = self.planner.effective_due(base + relativedelta(months=checkins.every_months))
            return Track(due=due, policy=wf.reminders, due_kind="checkin", before_kind="checkin",
                         overdue_from=checkins.grace_working_days + 1)
        return None

    def local(self, instant: dt.datetime | None) -> dt.date | None:
        return None if instant is None else self.calendar.local_date(instant)

    def issue_next(self, wf_hash: str, state: str, deadline: dt.date | None, feedback: dt.date | None,
                   state_since: dt.datetime, last_checkin: dt.datetime | None, after: dt.datetime
                   ) -> dt.datetime | None:
        """When the issue next reminds after ``after`` (None: nothing to follow in this state)."""
        track = self.issue_track(wf_hash, state, deadline, feedback, self.local(state_since), self.local(last_checkin))
        return None if track is None else self.planner.next_after(track, after)

    def occurrence_track(self, due: dt.date, policy: ReminderPolicy) -> Track:
        return Track(due=self.planner.effective_due(due), policy=policy, due_kind="duty", before_kind="duty")


def issue_recipients(leader: str, department: str, added: tuple[str, ...] = ()) -> list[str]:
    """The issue's responsible leader and department, then whoever an escalation adds."""
    out: list[str] = []
    for name in (leader, department, *added):
        name = (name or "").strip()
        if name and name not in out:
            out.append(name)
    return out

"""The reminder core: what is due, for whom, and why — the one answer every reader asks.

For any subject (an issue in a state with a deadline, a long-term item's check-in, a duty
occurrence, a ledger milestone, a look-back for one issue, a pending 延期申请) the core gives its ``Track`` (the
deadline it follows), the next reminder after an instant, the catch-up reminder for a missed
window, every reminder in a window, how late it is today, who hears about it and the facts they
are told. The sweep writes what it says, the preview predicts with it, the board, the report and
the ICS feed list with it; nothing else computes a due date or a recipient.

Subjects are built from rows elsewhere (``hydrate``: the database reads), and the reminder row the
sweep writes is shaped by ``rows``; the core itself is pure: a function of subjects and instants.
What the core says about a subject is also stored on its row (``next_remind_at``, ``due_on``,
``overdue_on``: see ``plan``) so that "what is due" is an indexed query. The stored columns are a
cache of this module's answer, refreshed whenever the row's inputs change.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, NamedTuple

from dateutil.relativedelta import relativedelta

from ..calendar import WorkCalendar
from ..store.departments import departments_of
from ..store.kinds import ReminderKind, SubjectKind
from ..workflow.rules import ReminderPolicy
from ..workflow.schema import WorkflowDef
from .facts import ReminderFacts
from .planner import Lateness, Planner, ReminderInstant, Track, shift
from .subjects import ExtensionSubject, IssueSubject, OccurrenceSubject, Subject

EXTENSION_STEPS = ("同意延期", "不同意延期（写明理由）")  # what a decider of a 延期申请 can do


class Plan(NamedTuple):
    """The core's answer as stored on a subject's row."""

    next_remind_at: dt.datetime | None
    due_on: dt.date | None  # the effective due date of the track (None: nothing followed)
    overdue_on: dt.date | None  # the first working day it counts as overdue


NOTHING = Plan(None, None, None)


def before_tracking(duty_kind: str, due: dt.date, tracked: dt.date) -> bool:
    """A recurring duty's period that fell due before duban stored it (a ``since:`` in the past):
    history, recorded late or not at all, never reminded of. A milestone is followed even then."""
    return duty_kind != "milestone" and due < tracked


def next_steps(workflow: WorkflowDef, state: str) -> tuple[str, ...]:
    """The labels of the steps the workflow offers from ``state`` (what a reminder says to do)."""
    out: list[str] = []
    for t in workflow.transitions:
        label = t.label or t.trigger
        if state in t.source and label not in out:
            out.append(label)
    return tuple(out)


def due_title(workflow: WorkflowDef, state: str) -> str:
    """What an issue in ``state`` is due for, in the words of its rule: 制定整改方案, 整改时限, 回头看."""
    rule = workflow.deadlines.get(state)
    if rule is not None:
        return rule.title or "整改时限"
    return "回头看"


def spec_hash(spec: dict[str, Any]) -> str:
    text = json.dumps(spec, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ReminderCore:
    """Answers about subjects on one calendar; see the module docstring. It needs no session:
    subjects come built from their rows (``hydrate.SubjectReader``), and what is stored of an
    answer is shaped by ``rows``."""

    def __init__(self, calendar: WorkCalendar):
        self.calendar = calendar
        self.planner = Planner(calendar)
        self._workflows: dict[str, WorkflowDef] = {}  # by content hash: the track cache's key
        self._issue_track = lru_cache(maxsize=65536)(self._compute_issue_track)
        self.duty_track = lru_cache(maxsize=65536)(self._duty_track)

    # -- tracks ----------------------------------------------------------------------------

    def track(self, subject: Subject) -> Track | None:
        """The deadline the subject follows now; None when it follows none (nothing to remind)."""
        if isinstance(subject, ExtensionSubject):
            return self.extension_track(subject.workflow, self.calendar.local_date(subject.requested_at))
        if isinstance(subject, IssueSubject):
            return self.issue_track_at(subject.workflow, subject.wf_hash, subject.state, subject.deadline,
                                       subject.feedback, subject.state_since, subject.last_checkin_at,
                                       subject.created_at)
        if subject.state != "open":
            return None
        if subject.for_each_state is not None and subject.issue_state != subject.for_each_state:
            return None  # the issue left the state the look-back is for
        if before_tracking(subject.duty_kind, subject.due, self.calendar.local_date(subject.created_at)):
            return None
        return self.duty_track(subject.due, subject.policy, self.calendar.local_date(subject.created_at))

    def issue_track_at(self, workflow: WorkflowDef, wf_hash: str, state: str, deadline: dt.date | None,
                       feedback: dt.date | None, state_since: dt.datetime, last_checkin_at: dt.datetime | None,
                       created_at: dt.datetime) -> Track | None:
        """The one mapping from an issue's row to the deadline it follows: every planner (the sweep,
        the services' re-plan, an import's new and edited rows) gives the row's own instants here,
        so none can forget one (an import once planned as if no look-back had been recorded)."""
        local = self.calendar.local_date
        return self.issue_track(workflow, wf_hash, state, deadline, feedback, local(state_since),
                                None if last_checkin_at is None else local(last_checkin_at), tracked=local(created_at))

    def issue_track(self, workflow: WorkflowDef, wf_hash: str, state: str, deadline: dt.date | None,
                    feedback: dt.date | None, since: dt.date, checkin: dt.date | None, *,
                    tracked: dt.date | None = None) -> Track | None:
        """The track of an issue in ``state`` (dates local), for rows not in the store yet (an import).

        ``tracked``: the day duban began tracking the issue (its row's creation); an issue adopted
        when already overdue escalates only on the overdue days duban has seen.
        """
        self._workflows.setdefault(wf_hash, workflow)
        return self._issue_track(wf_hash, state, deadline, feedback, since, checkin, tracked)

    def _compute_issue_track(self, wf_hash: str, state: str, deadline: dt.date | None, feedback: dt.date | None,
                             since: dt.date, checkin: dt.date | None, tracked: dt.date | None) -> Track | None:
        track = self._bare_issue_track(wf_hash, state, deadline, feedback, since, checkin)
        return None if track is None else self.planner.adopted(track, tracked)

    def _bare_issue_track(self, wf_hash: str, state: str, deadline: dt.date | None, feedback: dt.date | None,
                          since: dt.date, checkin: dt.date | None) -> Track | None:
        wf = self._workflows[wf_hash]
        rule = wf.deadlines.get(state)
        if rule is not None:
            anchor = {"feedback": feedback, "entered": since, "deadline": deadline}[rule.anchor]
            if anchor is None:
                return None
            due = shift(anchor, rule, self.calendar)
            if rule.not_after == "deadline" and deadline is not None:
                due = min(due, deadline)
            return Track(due=self.planner.effective_due(due), policy=wf.reminders)
        checkins = wf.checkins
        if checkins is not None and state == checkins.state:
            base = max(since, checkin) if checkin else since
            due = self.planner.effective_due(base + relativedelta(months=checkins.every_months))
            return Track(due=due, policy=wf.reminders, due_kind=ReminderKind.CHECKIN,
                         before_kind=ReminderKind.CHECKIN, overdue_from=checkins.grace_working_days + 1)
        return None

    def extension_track(self, workflow: WorkflowDef, asked: dt.date) -> Track:
        """The track of a 延期申请 asked on ``asked`` (local): its decision is due by the workflow's rule."""
        rule = workflow.extension_rule
        return Track(due=self.planner.effective_due(shift(asked, rule, self.calendar)), policy=rule.reminders)

    def _duty_track(self, due: dt.date, policy: ReminderPolicy, tracked: dt.date | None = None) -> Track:
        """The track of a duty occurrence due on ``due`` (see ``track`` for when one is followed);
        ``tracked``: the day the occurrence was created (see ``issue_track``)."""
        return self.planner.adopted(Track(due=self.planner.effective_due(due), policy=policy,
                                          due_kind=ReminderKind.DUTY, before_kind=ReminderKind.DUTY), tracked)

    def what(self, subject: Subject) -> str:
        """What is due, in the words of the rule: 制定整改方案, 整改时限, 回头看, or the duty's title."""
        if isinstance(subject, OccurrenceSubject):
            return subject.duty_title
        if isinstance(subject, ExtensionSubject):
            return subject.workflow.extension_rule.title
        return due_title(subject.workflow, subject.state)

    # -- reminders -------------------------------------------------------------------------

    def _swept_until(self, subject: Subject) -> dt.datetime:
        if isinstance(subject, IssueSubject):
            return subject.remind_after or subject.state_since
        if isinstance(subject, ExtensionSubject):
            return subject.remind_after or subject.requested_at
        return subject.remind_after or subject.created_at

    def catch_up(self, subject: Subject, now: dt.datetime) -> ReminderInstant | None:
        """The one reminder a sweep at ``now`` writes (the latest of a missed window), if any."""
        track = self.track(subject)
        return None if track is None else self.planner.catch_up(track, self._swept_until(subject), now)

    def next_after(self, subject: Subject, instant: dt.datetime) -> dt.datetime | None:
        track = self.track(subject)
        return None if track is None else self.planner.next_after(track, instant)

    def between(self, subject: Subject, start: dt.datetime, end: dt.datetime) -> list[ReminderInstant]:
        """Every reminder in ``(start, end]``, as a sweep running all along would write them."""
        track = self.track(subject)
        if track is None:
            return []
        # Nothing before what was already swept: those windows are the past the sweep has seen.
        return self.planner.between(track, max(start, self._swept_until(subject)), end)

    def plan(self, subject: Subject, now: dt.datetime) -> Plan:
        """What to store on the subject's row after it was looked at ``now``."""
        return self.plan_track(self.track(subject), now)

    def plan_track(self, track: Track | None, now: dt.datetime) -> Plan:
        if track is None:
            return NOTHING
        return Plan(self.planner.next_after(track, now), track.due, self.planner.overdue_on(track))

    def lateness(self, subject: Subject, today: dt.date) -> Lateness:
        track = self.track(subject)
        return Lateness() if track is None else self.planner.lateness(track, today)

    # -- who hears and what they are told --------------------------------------------------

    def recipients(self, subject: Subject, due: ReminderInstant | None = None) -> list[str]:
        """The issue's leader and department, a duty's owners, then whoever an escalation adds."""
        added = due.add if due is not None else ()
        if isinstance(subject, IssueSubject):
            names: Iterable[str] = (*self.actors(subject), *added)
        elif isinstance(subject, ExtensionSubject):
            names = (*subject.deciders, *added)
        else:
            names = (subject.issue_leader or "", *departments_of(subject.issue_department or ""),
                     *subject.owners, *added)
        out: list[str] = []
        for name in names:
            name = (name or "").strip()
            if name and name not in out:
                out.append(name)
        return out

    @staticmethod
    def actors(subject: IssueSubject) -> list[str]:
        """Who must act on the issue in its state: the state's ``actor`` (default: its leader and department);
        ``reviewer`` names the reviewers over its ledger (or duban's administrators when it has none)."""
        state = next((s for s in subject.workflow.states if s.name == subject.state), None)
        wanted = (state.actor if state is not None else None) or ["leader", "department"]
        # a cell naming several departments ("办公室、财务室") reminds each, as each sees the item
        own = {"leader": [subject.leader], "department": departments_of(subject.department),
               "reviewer": list(subject.reviewers)}
        return [person for name in wanted for person in own.get(name, [name])]

    def facts(self, subject: Subject, due: ReminderInstant) -> ReminderFacts:
        track = self.track(subject)
        policy = track.policy if track is not None else ReminderPolicy()
        common: dict[str, Any] = {"what": self.what(subject), "level": due.level,
                                  "item_template": policy.item_template, "urgent": policy.urgent}
        if isinstance(subject, IssueSubject):
            wf = subject.workflow
            return ReminderFacts(subject_kind=SubjectKind.ISSUE, title=subject.title, ledger=subject.ledger,
                                 ref=subject.ref, state=subject.state, leader=subject.leader,
                                 department=subject.department, area=subject.area, category=subject.category,
                                 state_label=wf.label(subject.state), actions=next_steps(wf, subject.state), **common)
        if isinstance(subject, ExtensionSubject):
            return self._extension_facts(subject, common)
        milestone = subject.duty_kind == "milestone"
        kind = SubjectKind.MILESTONE if milestone else SubjectKind.DUTY
        # A milestone happens once: its period ("once") is not something to show a reader.
        return ReminderFacts(subject_kind=kind, title=subject.duty_title, ledger=subject.ledger, unit=subject.unit,
                             ref=subject.issue_ref, state=subject.issue_state, leader=subject.issue_leader or "",
                             department=subject.issue_department or "", duty=subject.duty_key,
                             period=None if milestone else subject.period, actions=("登记完成情况",), **common)

    @staticmethod
    def _extension_facts(subject: ExtensionSubject, common: dict[str, Any]) -> ReminderFacts:
        """A reminder about the issue that says 延期申请, the date asked for and why."""
        to, reason = subject.requested_to, " ".join(subject.reason.split())
        reason = reason if len(reason) <= 120 else reason[:119] + "…"
        title = f"延期申请：{subject.requester}申请将整改时限延至{to.year}年{to.month}月{to.day}日，理由：{reason}"
        return ReminderFacts(subject_kind=SubjectKind.ISSUE, title=title, ledger=subject.ledger, ref=subject.ref,
                             state=subject.state, leader=subject.leader, department=subject.department,
                             area=subject.area, category=subject.category,
                             state_label=subject.workflow.label(subject.state), actions=EXTENSION_STEPS, **common)

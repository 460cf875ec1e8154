"""When things are due and when to remind about them: pure functions of dates and rules.

A ``Track`` is one deadline being followed (an issue's 整改时限, a plan due 15 working days after
feedback, a long-term item's next check-in, a duty occurrence). Its reminders sit on working days
counted from the effective due date: ``k`` working days after it (negative before). The stream of
a track is the set of ``k`` at which it reminds: each ``before`` day, the due day, then every
working day while overdue. Everything here is a function of (track, instants), like APScheduler's
``get_next_fire_time(prev, now)``: no clock, no database, so it is cached and tested directly.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from functools import lru_cache

from dateutil.relativedelta import relativedelta

from ..calendar import WorkCalendar
from ..store.kinds import ReminderKind
from ..workflow.rules import Offset, ReminderPolicy


@dataclass(frozen=True)
class Track:
    """One followed deadline.

    ``due`` is the effective due date: a deadline that falls on a holiday moves to the next
    working day (期限届满日为节假日的，顺延至节假日后的第一个工作日). ``overdue_from`` is the first
    working day after ``due`` that counts as overdue (1; later for a check-in with a grace period).
    ``seen_k``, set only for a subject duban began tracking when it was already overdue (an adopted
    ledger), is the k of that day: escalations count only the overdue working days duban has seen.
    """

    due: dt.date
    policy: ReminderPolicy
    due_kind: ReminderKind = ReminderKind.DUE  # DUE, CHECKIN or DUTY
    before_kind: ReminderKind = ReminderKind.BEFORE
    overdue_from: int = 1
    seen_k: int | None = None


@dataclass(frozen=True)
class ReminderInstant:
    """A reminder instant of a track."""

    at: dt.datetime  # aware UTC
    kind: ReminderKind
    rule: str  # before-5, due, overdue, escalate-...
    occurrence: str  # the local date it falls on
    k: int  # working days after the due date
    days_overdue: int
    add: tuple[str, ...] = field(default=())  # recipients added by escalation
    level: int = 0  # escalations reached


@dataclass(frozen=True)
class Lateness:
    """How late a track is on a given day: working days overdue and escalations reached."""

    days_overdue: int = 0
    level: int = 0
    escalated_to: tuple[str, ...] = ()

    @property
    def overdue(self) -> bool:
        return self.days_overdue > 0


def shift(anchor: dt.date, offset: Offset, calendar: WorkCalendar) -> dt.date:
    if offset.working_days is not None:
        return calendar.add_workdays(anchor, offset.working_days)
    if offset.months is not None:
        return anchor + relativedelta(months=offset.months)
    return anchor + dt.timedelta(days=offset.days or 0)


class Planner:
    """Turns tracks into reminder instants on one calendar; caches what repeats across rows."""

    def __init__(self, calendar: WorkCalendar):
        self.calendar = calendar
        self.catch_up = lru_cache(maxsize=65536)(self._catch_up)
        self.next_after = lru_cache(maxsize=65536)(self._next_after)
        # a list of thousands of items has a few hundred distinct (due date, policy) tracks
        self.lateness = lru_cache(maxsize=65536)(self._lateness)
        self.first_reminder = lru_cache(maxsize=65536)(self._first_reminder)

    # -- working-day arithmetic on k --------------------------------------------------------

    def effective_due(self, d: dt.date) -> dt.date:
        return self.calendar.next_workday(d, include=True)

    def adopted(self, track: Track, tracked: dt.date | None) -> Track:
        """``track`` for a subject duban began tracking on ``tracked``: if that was after the
        track fell overdue, escalations count from that day (see ``Track.seen_k``)."""
        if tracked is None or tracked <= self.overdue_on(track):
            return track
        return replace(track, seen_k=self.calendar.workdays_between(track.due, self.calendar.next_workday(tracked, include=True)))

    def overdue_on(self, track: Track) -> dt.date:
        """The first working day on which the track counts as overdue."""
        return self.calendar.add_workdays(track.due, track.overdue_from)

    def _first_reminder(self, track: Track) -> ReminderInstant:
        """The track's earliest reminder: its first before-reminder, else the due day's."""
        before = track.policy.before_working_days
        return self.reminder_at(track, -max(before) if before else 0)

    def _lateness(self, track: Track, today: dt.date) -> Lateness:
        """Working days past the track's due date on ``today`` and the escalation that implies."""
        k = self.calendar.workdays_between(track.due, today)
        if k < track.overdue_from:
            return Lateness()
        rem = self.reminder_at(track, k)
        return Lateness(rem.days_overdue, rem.level, rem.add)

    def _last_slot(self, instant: dt.datetime, at: dt.time) -> dt.date:
        """The latest working day whose reminder time ``at`` is at or before ``instant``."""
        day = self.calendar.local_date(instant)
        if not self.calendar.is_workday(day) or self.calendar.at_local(day, at) > instant:
            day = self.calendar.add_workdays(day, -1)
        return day

    def _k(self, due: dt.date, day: dt.date) -> int:
        return self.calendar.workdays_between(due, day)

    def _stream_max(self, track: Track, low: int, high: int) -> int | None:
        """The largest k of the track's stream with low < k <= high."""
        policy = track.policy
        if policy.overdue and high >= track.overdue_from and high > low:
            return high
        fixed = [-n for n in policy.before_working_days]
        if policy.on_due:
            fixed.append(0)
        hits = [k for k in fixed if low < k <= high]
        return max(hits) if hits else None

    def _stream_next(self, track: Track, after: int) -> int | None:
        """The smallest k of the track's stream with k > after."""
        policy = track.policy
        fixed = [-n for n in policy.before_working_days] + ([0] if policy.on_due else [])
        hits = [k for k in fixed if k > after]
        if policy.overdue:
            hits.append(max(after + 1, track.overdue_from))
        return min(hits) if hits else None

    def reminder_at(self, track: Track, k: int) -> ReminderInstant:
        policy = track.policy
        day = self.calendar.add_workdays(track.due, k)
        at = self.calendar.at_local(day, policy.at)
        days_overdue = max(0, k - track.overdue_from + 1) if k >= track.overdue_from else 0
        seen = days_overdue if track.seen_k is None else min(days_overdue, max(0, k - track.seen_k + 1))
        add: tuple[str, ...]
        if k < 0:
            kind, rule, add = track.before_kind, f"before-{-k}", ()
        elif k < track.overdue_from:
            kind, rule, add = track.due_kind, track.due_kind.value, ()
        else:
            kind, rule, add = ReminderKind.OVERDUE, "overdue", ()
            for esc in policy.escalations:
                if seen >= esc.after_working_days:
                    kind, rule, add = ReminderKind.ESCALATION, esc.name, add + tuple(esc.add)
        level = sum(1 for esc in policy.escalations if k >= track.overdue_from and seen >= esc.after_working_days)
        return ReminderInstant(at, kind, rule, day.isoformat(), k, days_overdue, add, level)

    # -- what the sweep asks ------------------------------------------------------------------

    def _catch_up(self, track: Track, after: dt.datetime, now: dt.datetime) -> ReminderInstant | None:
        """The one reminder a sweep at ``now`` writes for a track last swept at ``after``.

        Several instants may have passed (a downtime): only the latest is sent, since it
        supersedes the others (an overdue notice says more than the 'due in 3 days' it replaces).
        """
        at = track.policy.at
        high = self._k(track.due, self._last_slot(now, at))
        low = self._k(track.due, self._last_slot(after, at))
        k = self._stream_max(track, low, high)
        return None if k is None else self.reminder_at(track, k)

    def _next_after(self, track: Track, instant: dt.datetime) -> dt.datetime | None:
        """When the track next reminds after ``instant`` (None: never again)."""
        low = self._k(track.due, self._last_slot(instant, track.policy.at))
        k = self._stream_next(track, low)
        return None if k is None else self.reminder_at(track, k).at

    def between(self, track: Track, start: dt.datetime, end: dt.datetime) -> list[ReminderInstant]:
        """Every reminder instant in ``(start, end]``, as continuous sweeping would write them."""
        at = track.policy.at
        low = self._k(track.due, self._last_slot(start, at))
        high = self._k(track.due, self._last_slot(end, at))
        out = []
        k = self._stream_next(track, low)
        while k is not None and k <= high:
            out.append(self.reminder_at(track, k))
            k = self._stream_next(track, k)
        return out

"""When things are due and when to remind about them: pure functions of dates and rules.

A ``Track`` is one deadline being followed (an issue's 整改时限, a plan due 15 working days after
feedback, a long-term item's next check-in, a duty occurrence). Its reminders sit on working days
counted from the effective due date: ``k`` working days after it (negative before). The stream of
a track is the set of ``k`` at which it reminds: each ``before`` day, the due day, then every
working day while overdue. Everything here is a function of (track, instants), like APScheduler's
``get_next_fire_time(prev, now)``: no clock, no database, so it is cached and tested directly.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache

from dateutil.relativedelta import relativedelta

from .calendar import WorkCalendar
from .workflow.rules import Offset, ReminderPolicy


@dataclass(frozen=True)
class Track:
    """One followed deadline.

    ``due`` is the effective due date: a deadline that falls on a holiday moves to the next
    working day (期限届满日为节假日的，顺延至节假日后的第一个工作日). ``overdue_from`` is the first
    working day after ``due`` that counts as overdue (1; later for a check-in with a grace period).
    """

    due: dt.date
    policy: ReminderPolicy
    due_kind: str = "due"  # "due", "checkin" or "duty"
    before_kind: str = "before"
    overdue_from: int = 1


@dataclass(frozen=True)
class Reminder:
    """A reminder instant of a track."""

    at: dt.datetime  # aware UTC
    kind: str  # before | due | overdue | escalation | checkin | duty
    rule: str  # before-5, due, overdue, escalate-...
    occurrence: str  # the local date it falls on
    k: int  # working days after the due date
    days_overdue: int
    add: tuple[str, ...] = field(default=())  # recipients added by escalation
    level: int = 0  # escalations reached


def shift(anchor: dt.date, offset: Offset, calendar: WorkCalendar) -> dt.date:
    if offset.working_days is not None:
        return calendar.add_workdays(anchor, offset.working_days)
    if offset.months is not None:
        return anchor + relativedelta(months=offset.months)
    return anchor + dt.timedelta(days=offset.days or 0)


class WorkdayIndex:
    """Working-day arithmetic in O(years) instead of O(days).

    An item overdue since 2022 is k ≈ 1,000 working days past due; counting day by day for each
    of 1,000 due rows would cost the sweep most of a second. Per year, the index keeps the sorted
    working days, so counting is a bisect and stepping is a lookup.
    """

    def __init__(self, calendar: WorkCalendar):
        self.calendar = calendar
        self._years: dict[int, list[int]] = {}  # year -> ordinals of its working days

    def _year(self, year: int) -> list[int]:
        days = self._years.get(year)
        if days is None:
            start = dt.date(year, 1, 1).toordinal()
            end = dt.date(year, 12, 31).toordinal()
            is_workday = self.calendar.is_workday
            days = [o for o in range(start, end + 1) if is_workday(dt.date.fromordinal(o))]
            self._years[year] = days
        return days

    def _rank(self, d: dt.date) -> tuple[int, int]:
        """(year, number of working days of that year on or before d)."""
        return d.year, bisect.bisect_right(self._year(d.year), d.toordinal())

    def between(self, start: dt.date, end: dt.date) -> int:
        """Working days in (start, end]; negative when end < start."""
        if end < start:
            return -self.between(end, start)
        (y0, r0), (y1, r1) = self._rank(start), self._rank(end)
        return r1 - r0 + sum(len(self._year(y)) for y in range(y0, y1))

    def add(self, d: dt.date, n: int) -> dt.date:
        """The n-th working day after d (before it when n < 0); d when n == 0."""
        if n == 0:
            return d
        year, days = d.year, self._year(d.year)
        if n > 0:  # working days <= d hold ranks 1..r; the n-th after has rank r + n
            target = bisect.bisect_right(days, d.toordinal()) + n
        else:  # working days < d hold ranks 1..r'; the |n|-th before has rank r' + n + 1
            target = bisect.bisect_left(days, d.toordinal()) + n + 1
        while target > len(self._year(year)):
            target -= len(self._year(year))
            year += 1
        while target < 1:
            year -= 1
            target += len(self._year(year))
        return dt.date.fromordinal(self._year(year)[target - 1])


class Planner:
    """Turns tracks into reminder instants on one calendar; caches what repeats across rows."""

    def __init__(self, calendar: WorkCalendar):
        self.calendar = calendar
        self.index = WorkdayIndex(calendar)
        self.catch_up = lru_cache(maxsize=65536)(self._catch_up)
        self.next_after = lru_cache(maxsize=65536)(self._next_after)

    # -- working-day arithmetic on k --------------------------------------------------------

    def effective_due(self, d: dt.date) -> dt.date:
        return self.calendar.next_workday(d, include=True)

    def _last_slot(self, instant: dt.datetime, at: dt.time) -> dt.date:
        """The latest working day whose reminder time ``at`` is at or before ``instant``."""
        day = self.calendar.local_date(instant)
        if not self.calendar.is_workday(day) or self.calendar.at_local(day, at) > instant:
            day = self.index.add(day, -1)
        return day

    def _k(self, due: dt.date, day: dt.date) -> int:
        return self.index.between(due, day)

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

    def reminder_at(self, track: Track, k: int) -> Reminder:
        policy = track.policy
        day = self.index.add(track.due, k)
        at = self.calendar.at_local(day, policy.at)
        days_overdue = max(0, k - track.overdue_from + 1) if k >= track.overdue_from else 0
        if k < 0:
            kind, rule, add = track.before_kind, f"before-{-k}", ()
        elif k < track.overdue_from:
            kind, rule, add = track.due_kind, track.due_kind, ()
        else:
            kind, rule, add = "overdue", "overdue", ()
            for esc in policy.escalations:
                if days_overdue >= esc.after_working_days:
                    kind, rule, add = "escalation", esc.name, add + tuple(esc.add)
        level = sum(1 for esc in policy.escalations if k >= track.overdue_from and days_overdue >= esc.after_working_days)
        return Reminder(at, kind, rule, day.isoformat(), k, days_overdue, add, level)

    # -- what the sweep asks ------------------------------------------------------------------

    def _catch_up(self, track: Track, after: dt.datetime, now: dt.datetime) -> Reminder | None:
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

    def between(self, track: Track, start: dt.datetime, end: dt.datetime) -> list[Reminder]:
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

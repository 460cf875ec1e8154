"""When reminders may go out: office hours on working days of the official calendar.

A reminder that lands at 20:00 on a Friday or during the National Day week is read on the next
working morning anyway, and a phone buzzing at night for a rectification deadline is the fastest way
to get the robot muted. So the outbox holds non-urgent messages until the window opens again; the
window follows ``WorkCalendar`` (法定节假日 and 调休 Saturdays included), not Monday to Friday.
"""

from __future__ import annotations

import datetime as dt
import re

from engine.calendar import WorkCalendar

_RANGE = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")


def _clock(hour: str, minute: str, text: str) -> dt.time:
    try:
        return dt.time(int(hour), int(minute))
    except ValueError:
        raise ValueError(f"working hours {text!r}: {hour}:{minute} is not a time of day") from None


def parse_hours(text: object) -> tuple[dt.time, dt.time]:
    """``"08:30-18:00"`` (or ``"9:00-17:30"``) -> the window's start and end, local times."""
    match = _RANGE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"working hours {text!r} are not written as HH:MM-HH:MM (e.g. '08:30-18:00')")
    start = _clock(match.group(1), match.group(2), str(text))
    end = _clock(match.group(3), match.group(4), str(text))
    if start >= end:
        raise ValueError(f"working hours {text!r}: the start must be earlier than the end "
                         "(windows across midnight are not supported)")
    return start, end


class QuietHours:
    """Sending is allowed on working days from ``start`` (inclusive) to ``end`` (exclusive), local time."""

    def __init__(
        self, calendar: WorkCalendar, start: dt.time = dt.time(8, 30), end: dt.time = dt.time(18, 0)
    ) -> None:
        if start.tzinfo is not None or end.tzinfo is not None:
            # The window is wall-clock time in the calendar's zone; a zone here would be a second,
            # conflicting answer to "which zone".
            raise ValueError("quiet hours take local times without a time zone")
        if start >= end:
            raise ValueError(
                f"quiet hours: the window must start before it ends, got "
                f"{start:%H:%M}-{end:%H:%M} (windows across midnight are not supported)"
            )
        self.calendar = calendar
        self.start = start
        self.end = end

    def __repr__(self) -> str:
        return f"QuietHours({self.start:%H:%M}-{self.end:%H:%M}, {self.calendar.tz})"

    def allows(self, instant: dt.datetime) -> bool:
        """True if ``instant`` (aware) falls on a working day between start and end, local time."""
        local = self._local(instant)
        if not self.calendar.is_workday(local.date()):
            return False
        return self.start <= local.time().replace(tzinfo=None) < self.end

    def next_open(self, instant: dt.datetime) -> dt.datetime:
        """``instant`` itself if sending is allowed then, else when the next window opens (aware UTC)."""
        if self.allows(instant):
            return instant.astimezone(dt.UTC)
        local = self._local(instant)
        day = local.date()
        # Before the window on a working day: it opens later today. Otherwise (after the window,
        # or a weekend/holiday) on the next working day.
        if not (self.calendar.is_workday(day) and local.time().replace(tzinfo=None) < self.start):
            day = self.calendar.next_workday(day, include=False)
        return self.calendar.at_local(day, self.start)

    def _local(self, instant: dt.datetime) -> dt.datetime:
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise ValueError(f"quiet hours need an aware datetime, got naive {instant.isoformat()}")
        return instant.astimezone(self.calendar.tz)

"""Working days on China's official schedule (法定节假日 and 调休).

Deadlines in rectification ledgers are counted in working days ("10 个工作日内"), and in China a
working day is not simply Monday to Friday: the State Council publishes each year which weekdays
are holidays and which weekends are make-up working days. ``chinese_calendar`` carries that data;
this module wraps it with the two things it lacks: admin overrides from ``config.toml`` and a
fallback for years the installed data does not cover yet.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
import threading
from collections.abc import Iterable
from zoneinfo import ZoneInfo

import chinese_calendar

log = logging.getLogger("duban.calendar")

UTC = dt.timezone.utc

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@functools.lru_cache(maxsize=None)
def official_covers(year: int) -> bool:
    """Whether the installed ``chinese_calendar`` has the official schedule for ``year``."""
    try:
        chinese_calendar.is_workday(dt.date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def _parse_dates(values: Iterable[dt.date | str], setting: str) -> frozenset[dt.date]:
    """Read an admin list of dates; anything that is not a plain date is named in the error."""
    out: set[dt.date] = set()
    for value in values:
        # datetime is a subclass of date; a time of day here means the admin meant something else.
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            out.add(value)
            continue
        if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
            try:
                out.add(dt.date.fromisoformat(value.strip()))
                continue
            except ValueError:
                pass
        raise ValueError(f"[calendar] {setting}: {value!r} is not a date (use YYYY-MM-DD, e.g. 2027-01-01)")
    return frozenset(out)


class WorkCalendar:
    """Answers "is this a working day?" and counts working days, in one time zone.

    Precedence for a date: the admin lists (``extra_workdays``, ``extra_holidays``) first, then
    ``chinese_calendar``'s official data, then, for a year that data does not cover, Monday to
    Friday (with one warning per year, so the gap is noticed before it matters).
    """

    def __init__(
        self,
        tz: ZoneInfo,
        extra_holidays: Iterable[dt.date | str] = (),
        extra_workdays: Iterable[dt.date | str] = (),
    ) -> None:
        self.tz = tz
        self._extra_holidays = _parse_dates(extra_holidays, "extra_holidays")
        self._extra_workdays = _parse_dates(extra_workdays, "extra_workdays")
        clash = sorted(self._extra_holidays & self._extra_workdays)
        if clash:
            raise ValueError(
                f"[calendar] {clash[0].isoformat()} is in both extra_holidays and extra_workdays; "
                "keep it in one"
            )
        self._admin_years = frozenset(d.year for d in self._extra_holidays | self._extra_workdays)
        # The sweep asks about the same few thousand dates millions of times, and
        # chinese_calendar rescans its whole table on every call, so answers are kept.
        self._cache: dict[dt.date, bool] = {}
        self._warned_years: set[int] = set()
        self._warn_lock = threading.Lock()

    # -- single days -------------------------------------------------------------------------

    def is_workday(self, d: dt.date) -> bool:
        """True if ``d`` is a working day."""
        try:
            return self._cache[d]
        except KeyError:
            pass
        if isinstance(d, dt.datetime):
            # Taking .date() of an instant silently picks the UTC day, which is the wrong day
            # for eight hours of every Beijing evening.
            raise TypeError("is_workday takes a date; convert an instant with local_date() first")
        answer = self._compute(d)
        self._cache[d] = answer
        return answer

    def is_holiday(self, d: dt.date) -> bool:
        """True if ``d`` is not a working day (weekend, public holiday or admin holiday)."""
        return not self.is_workday(d)

    def _compute(self, d: dt.date) -> bool:
        if d in self._extra_workdays:
            return True
        if d in self._extra_holidays:
            return False
        if official_covers(d.year):
            return bool(chinese_calendar.is_workday(d))
        self._warn_uncovered(d.year)
        return d.weekday() < 5

    def _warn_uncovered(self, year: int) -> None:
        # Admins who have entered anything for the year have seen the problem; do not nag them.
        if year in self._admin_years:
            return
        with self._warn_lock:
            if year in self._warned_years:
                return
            self._warned_years.add(year)
        log.warning(
            "the official holiday schedule for %d is unknown (chinese_calendar %s has no data for it); "
            "falling back to Monday-Friday as working days. Admins can add the year's holidays and "
            "make-up working days under [calendar] extra_holidays / extra_workdays in config.toml, "
            "or upgrade chinesecalendar once it ships that year",
            year,
            getattr(chinese_calendar, "__version__", "?"),
        )

    def covers(self, year: int) -> bool:
        """True if the year's schedule is known: official data, or admins entered dates for it."""
        return official_covers(year) or year in self._admin_years

    # -- counting ----------------------------------------------------------------------------

    def next_workday(self, d: dt.date, *, include: bool = True) -> dt.date:
        """The first working day from ``d`` on (``d`` itself if ``include`` and it is one)."""
        if include and self.is_workday(d):
            return d
        return self.add_workdays(d, 1)

    def add_workdays(self, d: dt.date, n: int) -> dt.date:
        """The ``n``-th working day strictly after ``d`` (before it if ``n`` < 0); ``d`` if ``n`` == 0."""
        step = dt.timedelta(days=1 if n > 0 else -1)
        remaining = abs(n)
        current = d
        while remaining:
            current += step
            if self.is_workday(current):
                remaining -= 1
        return current

    def workdays_between(self, start: dt.date, end: dt.date) -> int:
        """Working days in ``(start, end]``; the negative of ``(end, start]`` if ``end`` < ``start``."""
        if end < start:
            return -self.workdays_between(end, start)
        one = dt.timedelta(days=1)
        count = 0
        current = start + one
        while current <= end:
            count += self.is_workday(current)
            current += one
        return count

    # -- time zone ---------------------------------------------------------------------------

    def local_date(self, instant: dt.datetime) -> dt.date:
        """The calendar date an aware instant falls on in this calendar's time zone."""
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise ValueError(f"local_date needs an aware datetime, got naive {instant.isoformat()}")
        return instant.astimezone(self.tz).date()

    def at_local(self, d: dt.date, t: dt.time) -> dt.datetime:
        """The instant (aware, UTC) when local wall-clock time ``t`` is reached on date ``d``."""
        return dt.datetime.combine(d, t.replace(tzinfo=None), tzinfo=self.tz).astimezone(UTC)

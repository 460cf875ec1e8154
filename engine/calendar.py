"""Working days on China's official schedule (法定节假日 and 调休): the one implementation.

Deadlines in rectification ledgers are counted in working days ("10 个工作日内"), and in China a
working day is not simply Monday to Friday: the State Council publishes each year which weekdays
are holidays and which weekends are make-up working days. ``chinese_calendar`` carries that data
(``OFFICIAL``); ``WorkCalendar`` adds the admin overrides from ``config.toml`` and, for years the
data does not cover, the holidays by law (``engine.statutory``: the festivals of Article 2 and
their make-up days of Article 6), and counts working days in O(log) per question by keeping, per
year, the sorted ordinals of its working days (an item overdue since 2022 is ~1,000 working days
past due, and the sweep asks about 1,000 rows at once).

A year the data does not cover is *provisional* until its schedule is *entered*: either the admin
lists name every festival day of the law that falls on a weekday that year (what any notice
lists), or an administrator confirmed the year (``duban calendar confirm YEAR``, stored in the
database and handed to the calendar with ``confirm``). A single date in the lists does not enter a
year. While a year is provisional, the first question a process asks about it logs one warning
(once per process, whatever calendars the process builds); questions that only look ahead
(``quietly``) do not count. Entering or confirming a year changes no working day by itself.

The official data is injected (``official=``), so what a test expects never depends on the
version of the package installed: a test gives a schedule that covers exactly the years it means.
"""

from __future__ import annotations

import bisect
import datetime as dt
import logging
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Protocol
from zoneinfo import ZoneInfo

import chinese_calendar

from .statutory import law_days, statutory_holidays

log = logging.getLogger("duban.calendar")

UTC = dt.UTC
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

# The provisional years this process has warned about: once per process, not per calendar (a
# command builds one, a daemon one per reload, a test run hundreds).
_warned: set[int] = set()
_warned_lock = threading.Lock()


def forget_warnings() -> None:
    """Warn again about every provisional year (for tests that assert the warning)."""
    with _warned_lock:
        _warned.clear()


class OfficialSchedule(Protocol):
    """Where the State Council's schedule comes from."""

    def covers(self, year: int) -> bool:
        """Whether the schedule of ``year`` is known."""
        ...

    def is_workday(self, d: dt.date) -> bool:
        """Whether ``d`` is a working day (only asked for covered years)."""
        ...


class ChineseCalendarData:
    """The schedule as the installed ``chinese_calendar`` package knows it.

    ``until`` caps the years it may answer for, so a test (or an admin who distrusts a release)
    can say which years count as published.
    """

    def __init__(self, until: int | None = None):
        self.until = until

    def covers(self, year: int) -> bool:
        if self.until is not None and year > self.until:
            return False
        return _package_covers(year)

    def is_workday(self, d: dt.date) -> bool:
        return bool(chinese_calendar.is_workday(d))


@cache
def _package_covers(year: int) -> bool:
    try:
        chinese_calendar.is_workday(dt.date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


OFFICIAL = ChineseCalendarData()


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


@dataclass(frozen=True)
class _Year:
    ordinals: list[int]  # sorted ordinals of the year's working days
    workdays: frozenset[int]
    by_law: bool  # no official schedule: the days by law, without 调休


class WorkCalendar:
    """Answers "is this a working day?" and counts working days, in one time zone.

    Precedence for a date: the admin lists (``extra_workdays``, ``extra_holidays``) first, then the
    official schedule, then, for a year it does not cover, the holidays by law and Monday to Friday
    (one short warning per provisional year and process, when a question first touches the year).
    """

    def __init__(
        self,
        tz: ZoneInfo,
        extra_holidays: Iterable[dt.date | str] = (),
        extra_workdays: Iterable[dt.date | str] = (),
        *,
        official: OfficialSchedule = OFFICIAL,
    ) -> None:
        self.tz = tz
        self.official = official
        self._extra_holidays = _parse_dates(extra_holidays, "extra_holidays")
        self._extra_workdays = _parse_dates(extra_workdays, "extra_workdays")
        clash = sorted(self._extra_holidays & self._extra_workdays)
        if clash:
            raise ValueError(
                f"[calendar] {clash[0].isoformat()} is in both extra_holidays and extra_workdays; "
                "keep it in one"
            )
        self._listed_years = frozenset(y for y in {d.year for d in self._extra_holidays}
                                       if self._lists_enter(y))
        self._confirmed: frozenset[int] = frozenset()
        self._years: dict[int, _Year] = {}
        self._lock = threading.Lock()
        self._quiet = threading.local()

    def _lists_enter(self, year: int) -> bool:
        """The admin lists hold the year's schedule: every festival day of the law on a weekday."""
        weekdays = [d for d in statutory_holidays(year) if d.weekday() < 5]
        return bool(weekdays) and all(d in self._extra_holidays for d in weekdays)

    def fingerprint(self) -> str:
        """What decides every working day: the admin lists, the official schedule's source and
        version, the zone. Stored deadlines are re-planned when it changes (``engine.reminders.replan``)."""
        import hashlib
        import json
        from importlib.metadata import PackageNotFoundError, version

        try:
            package = version("chinesecalendar")
        except PackageNotFoundError:  # pragma: no cover - a dependency
            package = "?"
        # v2: Article 6's make-up days count in provisional years (plans made on v1 are made again)
        parts = ["duban-calendar-v2", self.tz.key, sorted(d.isoformat() for d in self._extra_holidays),
                 sorted(d.isoformat() for d in self._extra_workdays), type(self.official).__name__, package,
                 getattr(self.official, "until", None)]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()

    # -- the data ----------------------------------------------------------------------------

    def _year(self, year: int) -> _Year:
        found = self._years.get(year)
        if found is None:
            start = dt.date(year, 1, 1).toordinal()
            end = dt.date(year, 12, 31).toordinal()
            ordinals = [o for o in range(start, end + 1) if self._compute(dt.date.fromordinal(o))]
            found = _Year(ordinals, frozenset(ordinals), not self.official.covers(year))
            with self._lock:  # two threads may build the same year; either answer is the same
                self._years[year] = found
        if found.by_law and year not in _warned and not getattr(self._quiet, "on", False) and self.provisional(year):
            self._warn_uncovered(year)
        return found

    @contextmanager
    def quietly(self) -> Iterator[None]:
        """Questions that only look ahead (storing a duty's occurrences a year ahead) do not warn
        about a provisional year; the first question a command itself asks about it does."""
        before = getattr(self._quiet, "on", False)
        self._quiet.on = True
        try:
            yield
        finally:
            self._quiet.on = before

    def _compute(self, d: dt.date) -> bool:
        if d in self._extra_workdays:
            return True
        if d in self._extra_holidays:
            return False
        if self.official.covers(d.year):
            return self.official.is_workday(d)
        return d.weekday() < 5 and d not in law_days(d.year)

    def source(self, d: dt.date) -> str:
        """Why ``d`` is what it is: "admin list", "official data", "law" (Article 2 or 6 of the
        放假办法) or "weekday rule"."""
        if d in self._extra_workdays or d in self._extra_holidays:
            return "admin list"
        if self.official.covers(d.year):
            return "official data"
        if d in law_days(d.year):
            return "law"
        return "weekday rule"

    def article(self, d: dt.date) -> int | None:
        """The article of the 放假办法 that makes ``d`` a holiday by law (2 or 6), if any."""
        found = law_days(d.year).get(d)
        return found.article if found is not None else None

    def holiday_name(self, d: dt.date) -> str:
        """The festival ``d`` belongs to by law (春节, 春节补假…), or ""."""
        found = law_days(d.year).get(d)
        return found.name if found is not None else ""

    def confirm(self, years: Iterable[int]) -> None:
        """The years an administrator has confirmed as entered (``duban calendar confirm``), as the
        database holds them now; they end the year's warning and its December reminder."""
        self._confirmed = frozenset(years)

    def confirmed(self, year: int) -> bool:
        return year in self._confirmed

    def listed(self, year: int) -> bool:
        """The admin lists hold the year's schedule (every weekday festival day of the law)."""
        return year in self._listed_years

    def provisional(self, year: int) -> bool:
        """True for a year without the official schedule that nobody has entered yet: its 调休
        days are not known, and it follows the law alone."""
        return not self.covers(year)

    def _warn_uncovered(self, year: int) -> None:
        with _warned_lock:
            if year in _warned:
                return
            _warned.add(year)
        log.warning(
            "%d: the State Council's holiday schedule is not known yet (chinesecalendar %s); using the holidays "
            "by law (Articles 2 and 6 of the 放假办法), without 调休 (provisional; `duban calendar show %d`; "
            "enter the notice under [calendar] and run `duban calendar confirm %d`)",
            year, getattr(chinese_calendar, "__version__", "?"), year, year,
        )

    def covers(self, year: int) -> bool:
        """True if the year's schedule is known: official data, the admin lists, or confirmed."""
        return self.official.covers(year) or year in self._listed_years or year in self._confirmed

    # -- single days -------------------------------------------------------------------------

    def is_workday(self, d: dt.date) -> bool:
        """True if ``d`` is a working day."""
        if isinstance(d, dt.datetime):
            # Taking .date() of an instant silently picks the UTC day, which is the wrong day
            # for eight hours of every Beijing evening.
            raise TypeError("is_workday takes a date; convert an instant with local_date() first")
        return d.toordinal() in self._year(d.year).workdays

    def is_holiday(self, d: dt.date) -> bool:
        """True if ``d`` is not a working day (weekend, public holiday or admin holiday)."""
        return not self.is_workday(d)

    # -- counting ----------------------------------------------------------------------------

    def next_workday(self, d: dt.date, *, include: bool = True) -> dt.date:
        """The first working day from ``d`` on (``d`` itself if ``include`` and it is one)."""
        if include and self.is_workday(d):
            return d
        return self.add_workdays(d, 1)

    def add_workdays(self, d: dt.date, n: int) -> dt.date:
        """The ``n``-th working day strictly after ``d`` (before it if ``n`` < 0); ``d`` if ``n`` == 0."""
        if n == 0:
            return d
        year, days = d.year, self._year(d.year).ordinals
        if n > 0:  # working days <= d hold ranks 1..r; the n-th after has rank r + n
            target = bisect.bisect_right(days, d.toordinal()) + n
        else:  # working days < d hold ranks 1..r'; the |n|-th before has rank r' + n + 1
            target = bisect.bisect_left(days, d.toordinal()) + n + 1
        while target > len(self._year(year).ordinals):
            target -= len(self._year(year).ordinals)
            year += 1
        while target < 1:
            year -= 1
            target += len(self._year(year).ordinals)
        return dt.date.fromordinal(self._year(year).ordinals[target - 1])

    def workdays_between(self, start: dt.date, end: dt.date) -> int:
        """Working days in ``(start, end]``; the negative of ``(end, start]`` if ``end`` < ``start``."""
        if end < start:
            return -self.workdays_between(end, start)
        (y0, r0), (y1, r1) = self._rank(start), self._rank(end)
        return r1 - r0 + sum(len(self._year(y).ordinals) for y in range(y0, y1))

    def _rank(self, d: dt.date) -> tuple[int, int]:
        """(year, number of working days of that year on or before d)."""
        return d.year, bisect.bisect_right(self._year(d.year).ordinals, d.toordinal())

    # -- time zone ---------------------------------------------------------------------------

    def local_date(self, instant: dt.datetime) -> dt.date:
        """The calendar date an aware instant falls on in this calendar's time zone."""
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise ValueError(f"local_date needs an aware datetime, got naive {instant.isoformat()}")
        return instant.astimezone(self.tz).date()

    def at_local(self, d: dt.date, t: dt.time) -> dt.datetime:
        """The instant (aware, UTC) when local wall-clock time ``t`` is reached on date ``d``."""
        return dt.datetime.combine(d, t.replace(tzinfo=None), tzinfo=self.tz).astimezone(UTC)

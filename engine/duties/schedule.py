"""Occurrences of recurring duties: which dates a schedule fires on, and when each one is due.

A recurring duty (the quarterly report to the discipline-inspection group, the monthly clearing
of accounts, twelve study sessions a year) is written as either a crontab line or an RFC 5545
RRULE. Each firing is an *occurrence*: its anchor date, a period key that names it for people and
makes it unique in the ledger ("2026-Q3"), and a due date counted in calendar or working days.

Everything here is pure: no clock, no database. Parsing is done by ``dateutil.rrule`` and
APScheduler's ``CronTrigger``; this module only adds the checks that keep their sharp edges away
from people writing workflow YAML.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule, rrulestr

from ..calendar import WorkCalendar

UTC = dt.UTC

DEFAULT_DTSTART = dt.date(2020, 1, 1)

# Coarsest first: "auto" for cron picks the first of these that names every firing uniquely.
PERIODS: tuple[str, ...] = ("year", "half", "quarter", "month", "week", "day")

# "auto" for cron is judged over this span: four whole years, so a leap day and every ISO-week
# edge case are seen, and the answer never depends on the window a caller happens to ask about.
_CRON_SHAPE_SPAN = (dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2028, 1, 1, tzinfo=UTC))


def period_key(d: dt.date, period: str) -> str:
    """Name the period ``d`` falls in: 2026-10-13, 2026-W42, 2026-10, 2026-Q4, 2026-H2 or 2026."""
    if period == "day":
        return d.isoformat()
    if period == "week":
        iso = d.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    if period == "month":
        return f"{d.year}-{d.month:02d}"
    if period == "quarter":
        return f"{d.year}-Q{(d.month - 1) // 3 + 1}"
    if period == "half":
        return f"{d.year}-H{1 if d.month <= 6 else 2}"
    if period == "year":
        return str(d.year)
    raise ValueError(f"unknown period {period!r} (use auto, {', '.join(PERIODS)})")


@dataclass(frozen=True)
class ScheduleSpec:
    """How a recurring duty repeats and when each occurrence is due.

    ``cron`` is a 5-field crontab line read by APScheduler (``"0 9 1 * *"``, ``"0 9 last 3,6,9,12 *"``);
    ``rrule`` an RRULE body (``"FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=-1"``). ``dtstart`` anchors the
    RRULE and, for both kinds, nothing fires before it. The due date is the anchor plus
    ``due_days`` calendar days, or plus ``due_workdays`` working days when that is set (0 meaning
    the anchor itself if it is a working day, else the next one).
    """

    cron: str | None = None
    rrule: str | None = None
    dtstart: dt.date | None = None
    period: str = "auto"
    due_days: int = 0
    due_workdays: int | None = None

    def validate(self) -> None:
        """Raise ``ValueError`` with a message meant for whoever wrote the YAML."""
        if (self.cron is None) == (self.rrule is None):
            raise ValueError("a schedule needs exactly one of 'cron' or 'rrule'")
        if self.period != "auto" and self.period not in PERIODS:
            raise ValueError(f"unknown period {self.period!r} (use auto, {', '.join(PERIODS)})")
        if self.due_workdays is not None and self.due_days:
            raise ValueError("set either due_days or due_workdays, not both")
        if isinstance(self.dtstart, dt.datetime):
            raise ValueError(f"dtstart must be a date, not a date and time: {self.dtstart.isoformat()}")
        if self.rrule is not None:
            _parse_rrule(self.rrule, self._start)
        else:
            _parse_cron(self.cron or "", UTC)

    @property
    def _start(self) -> dt.date:
        return self.dtstart or DEFAULT_DTSTART

    def resolved_period(self) -> str:
        """The period actually used: ``period`` itself, or what "auto" infers from the schedule."""
        self.validate()
        if self.period != "auto":
            return self.period
        if self.rrule is not None:
            return _rrule_period(_parse_rrule(self.rrule, self._start))
        return _cron_period(self.cron or "")


@dataclass(frozen=True)
class Occurrence:
    """One firing of a schedule."""

    period: str
    anchor: dt.date
    due: dt.date


def occurrences(
    spec: ScheduleSpec, start: dt.date, end: dt.date, calendar: WorkCalendar
) -> list[Occurrence]:
    """Every occurrence whose anchor falls in ``[start, end]``, in order.

    Anchors are dates in ``calendar.tz`` (cron fire times are computed in that zone). Raises
    ``ValueError`` if the spec is invalid or two anchors share a period key.
    """
    period = spec.resolved_period()
    out: list[Occurrence] = []
    seen: dict[str, dt.date] = {}
    for anchor in _anchors(spec, start, end, calendar.tz):
        key = period_key(anchor, period)
        if key in seen and period == "day":
            raise ValueError(
                f"the schedule fires more than once on {anchor.isoformat()}; a duty fires at most once a day"
            )
        if key in seen:
            raise ValueError(
                f"period {period!r} is too coarse for this schedule: {seen[key].isoformat()} and "
                f"{anchor.isoformat()} both fall in {key}; set a finer period "
                f"({', '.join(PERIODS[PERIODS.index(period) + 1 :])})"
            )
        seen[key] = anchor
        out.append(Occurrence(period=key, anchor=anchor, due=_due(spec, anchor, calendar)))
    return out


def _due(spec: ScheduleSpec, anchor: dt.date, calendar: WorkCalendar) -> dt.date:
    if spec.due_workdays is None:
        return anchor + dt.timedelta(days=spec.due_days)
    if spec.due_workdays == 0:
        return calendar.next_workday(anchor)
    return calendar.add_workdays(anchor, spec.due_workdays)


def _anchors(spec: ScheduleSpec, start: dt.date, end: dt.date, tz: ZoneInfo) -> Iterator[dt.date]:
    """Anchor dates in ``[start, end]``, lazily, so a runaway schedule fails at its first clash."""
    if end < start:
        return
    if spec.rrule is not None:
        rule = _parse_rrule(spec.rrule, spec._start)
        for when in rule.xafter(dt.datetime.combine(start, dt.time.min), inc=True):
            if when.date() > end:
                return
            yield when.date()
        return
    trigger = _parse_cron(spec.cron or "", tz)
    floor = max(start, spec.dtstart) if spec.dtstart else start
    fire = trigger.get_next_fire_time(None, dt.datetime.combine(floor, dt.time.min, tzinfo=tz))
    while fire is not None and fire.date() <= end:
        yield fire.date()
        fire = trigger.get_next_fire_time(fire, fire)


# -- RRULE -------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _parse_rrule(text: str, dtstart: dt.date) -> rrule:
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[len("RRULE:") :]
    if not body or "\n" in body or ":" in body:
        # DTSTART/EXDATE lines would make an rruleset and fight with our own dtstart.
        raise ValueError(f"invalid RRULE {text!r}: give one RRULE line only (put the start in dtstart)")
    try:
        rule = rrulestr(body, dtstart=dt.datetime.combine(dtstart, dt.time.min))
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        reason = str(exc)
        if "UNTIL" in reason:
            # dateutil's complaint talks about a time-zone-aware DTSTART, which ours never is.
            reason = "UNTIL must be a plain date such as UNTIL=20271231 (anchors are local dates)"
        raise ValueError(f"invalid RRULE {text!r}: {reason}") from None
    if not isinstance(rule, rrule):
        raise ValueError(f"invalid RRULE {text!r}: give one RRULE line only")
    # dateutil exposes no public getter (and its stubs omit the private one); HOURLY and finer sort after DAILY
    if rule._freq > DAILY:  # type: ignore[attr-defined]
        # A duty fires at most once a day, and walking minutes from dtstart would take forever.
        raise ValueError(f"invalid RRULE {text!r}: a duty repeats at most daily (FREQ=DAILY or coarser)")
    if rule.after(dt.datetime.combine(dtstart, dt.time.min), inc=True) is None:
        raise ValueError(f"invalid RRULE {text!r}: it never fires on or after {dtstart.isoformat()}")
    return rule


def _rrule_period(rule: rrule) -> str:
    freq, interval = rule._freq, rule._interval  # type: ignore[attr-defined]  # no public getters, see _parse_rrule
    if freq == YEARLY:
        return "year"
    if freq == MONTHLY:
        return {3: "quarter", 6: "half", 12: "year"}.get(interval, "month")
    if freq == WEEKLY:
        return "week"
    return "day"


# -- cron --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _parse_cron(expr: str, tz: dt.tzinfo) -> CronTrigger:
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(
            f"invalid cron {expr!r}: need 5 fields 'minute hour day month weekday', got {len(fields)}"
        )
    day, weekday = fields[2], fields[4]
    if any(ch.isdigit() for ch in weekday):
        # APScheduler 3 counts weekday 0 as Monday, crontab as Sunday: a number would silently
        # shift the duty by a day, so only names are accepted.
        raise ValueError(
            f"invalid cron {expr!r}: write the weekday field with names (mon, tue, ..., sun; "
            "e.g. mon-fri), not numbers, because APScheduler and crontab number weekdays differently"
        )
    if day != "*" and weekday != "*":
        # crontab fires when EITHER field matches, APScheduler only when BOTH do.
        raise ValueError(
            f"invalid cron {expr!r}: restrict day-of-month or weekday, not both (crontab and APScheduler "
            "disagree on what that means); for e.g. the first Monday use rrule FREQ=MONTHLY;BYDAY=1MO"
        )
    try:
        return CronTrigger.from_crontab(expr, timezone=tz)
    except (ValueError, TypeError, KeyError) as exc:
        hint = ' (write "last" for the last day of the month)' if "L" in day.upper().split(",") else ""
        raise ValueError(f"invalid cron {expr!r}: {exc}{hint}") from None


@functools.lru_cache(maxsize=256)
def _cron_period(expr: str) -> str:
    """The coarsest period that gives every firing over a fixed four-year span its own key."""
    trigger = _parse_cron(expr, UTC)
    candidates = [p for p in PERIODS if p != "day"]
    seen: dict[str, set[str]] = {p: set() for p in candidates}
    first, stop = _CRON_SHAPE_SPAN
    fire = trigger.get_next_fire_time(None, first)
    while fire is not None and fire < stop and candidates:
        for p in list(candidates):
            key = period_key(fire.date(), p)
            if key in seen[p]:
                candidates.remove(p)
            seen[p].add(key)
        fire = trigger.get_next_fire_time(fire, fire)
    return candidates[0] if candidates else "day"

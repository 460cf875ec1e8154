"""Years whose holiday schedule an administrator has confirmed as entered.

A year the official data does not cover follows the law (``engine.statutory``) until someone
enters the State Council's notice. Entering it is work for a person: the make-up working
weekends (调休) go into ``[calendar] extra_workdays``, the bridge days into ``extra_holidays``;
``duban calendar confirm YEAR`` then says the year is done (or that the law's days are the
schedule). The confirmation is one ``site_state`` row per year (``calendar_confirmed:2027``,
its value the person who confirmed), read by every process that asks: the daemon's sweep before
its December reminder, a command when it first opens the database. It changes no working day, so
it does not change the calendar's fingerprint and re-plans nothing.

Until then, ``ScheduleReminder`` reminds the administrators each working day of December.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from ..calendar import WorkCalendar
from ..store.kinds import ReminderKind, SubjectKind
from ..store.models import SiteState
from ..store.upsert import insert_ignore
from .facts import ReminderFacts
from .rows import ReminderRow, dedupe_key

PREFIX = "calendar_confirmed:"
REMIND_AT = dt.time(9, 0)  # local: the December reminder's hour
RULE = "official-schedule"  # its rule on the year's last working day


@dataclass(frozen=True)
class Confirmation:
    year: int
    by: str
    at: dt.datetime


def confirmations(session: Session) -> dict[int, Confirmation]:
    """Every confirmed year, with who confirmed it and when."""
    out: dict[int, Confirmation] = {}
    for row in session.scalars(select(SiteState).where(SiteState.name.startswith(PREFIX, autoescape=True))):
        year = row.name.removeprefix(PREFIX)
        if year.isdigit():
            out[int(year)] = Confirmation(int(year), row.value, row.updated_at)
    return out


def load_confirmations(session: Session, calendar: WorkCalendar) -> None:
    """Hand the calendar the years confirmed now (another process may have confirmed one since)."""
    calendar.confirm(confirmations(session))


def confirm_year(session: Session, year: int, by: str, now: dt.datetime) -> bool:
    """Record ``year`` as entered; False when it already was (the first confirmation stands)."""
    # two administrators confirming at once: the database keeps one, neither fails
    stmt = (insert_ignore(session, cast(Table, SiteState.__table__), ["name"])
            .values(name=f"{PREFIX}{year}", value=by, updated_at=now).returning(SiteState.name))
    return session.execute(stmt).first() is not None


def withdraw_year(session: Session, year: int) -> bool:
    """Take a confirmation back (entered by mistake); False when there was none."""
    row = session.get(SiteState, f"{PREFIX}{year}")
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


class ScheduleReminder:
    """From 1 December, each working day, remind the administrators to enter next year's schedule.

    The calendar's own reminder, not a subject's: it follows no row, only whether the calendar
    covers the next year (``WorkCalendar.covers``: published, listed in full, or confirmed with
    ``duban calendar confirm``). Due by the end of the year, it is worded as any deadline:
    "还有N个工作日到期" (a before-N rule), "今日到期" on the last working day.
    """

    def __init__(self, calendar: WorkCalendar, admins: Iterable[str] = ()):
        self.calendar = calendar
        self.admins = tuple(admins)

    def between(self, start: dt.datetime, end: dt.datetime) -> list[ReminderRow]:
        """The rows a sweep running all along writes in ``(start, end]``: one per working day of a
        December whose following year is not entered yet."""
        out = []
        day = self.calendar.local_date(start)
        last = self.calendar.local_date(end)
        while day <= last:
            if day.month != 12:
                day = dt.date(day.year, 12, 1)
                continue
            at = self.calendar.at_local(day, REMIND_AT)
            if start < at <= end and self.calendar.is_workday(day) and not self.calendar.covers(day.year + 1):
                out.append(self._row(day, at))
            day += dt.timedelta(days=1)
        return out

    def catch_up(self, now: dt.datetime) -> ReminderRow | None:
        """Today's reminder if it has fallen due (a downtime sends today's, not each missed day's)."""
        today = self.calendar.local_date(now)
        at = self.calendar.at_local(today, REMIND_AT)
        if today.month != 12 or at > now or not self.calendar.is_workday(today) or self.calendar.covers(today.year + 1):
            return None
        return self._row(today, at)

    def _row(self, day: dt.date, at: dt.datetime) -> ReminderRow:
        year = day.year + 1
        subject = f"calendar:{year}"
        facts = ReminderFacts(subject_kind=SubjectKind.CALENDAR, year=year,
                              title=f"录入{year}年国务院节假日安排（[calendar] extra_holidays / extra_workdays），"
                                    f"录入后运行 duban calendar confirm {year}",
                              what=f"录入{year}年节假日安排")
        last = dt.date(day.year, 12, 31)
        left = self.calendar.workdays_between(day, last)
        rule = f"before-{left}" if left > 0 else RULE
        return ReminderRow(dedupe_key=dedupe_key(subject, rule, day.isoformat()), at=at, subject=subject,
                           kind=ReminderKind.DUTY, rule=rule, occurrence=day.isoformat(),
                           recipients=list(self.admins), due=last, days_overdue=0, details=facts.stored(),
                           ledger_id=None, issue_id=None, occurrence_id=None)

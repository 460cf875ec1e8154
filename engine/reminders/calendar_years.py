"""Years whose holiday schedule an administrator has confirmed as entered.

A year the official data does not cover follows the law (``engine.statutory``) until someone
enters the State Council's notice. Entering it is work for a person: the make-up working
weekends (调休) go into ``[calendar] extra_workdays``, the bridge days into ``extra_holidays``;
``duban calendar confirm YEAR`` then says the year is done (or that the law's days are the
schedule). The confirmation is one ``site_state`` row per year (``calendar_confirmed:2027``,
its value the person who confirmed), read by every process that asks: the daemon's sweep before
its December reminder, a command when it first opens the database. It changes no working day, so
it does not change the calendar's fingerprint and re-plans nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from ..calendar import WorkCalendar
from ..store.models import SiteState
from ..store.upsert import insert_ignore

PREFIX = "calendar_confirmed:"


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

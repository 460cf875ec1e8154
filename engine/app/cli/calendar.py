"""``duban calendar``: working days by year (show, confirm, withdraw) and the deadline calendar (ICS)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from ...errors import DubanError
from ...i18n import N_, _
from ...ics.feed import ics_bytes
from ...reminders.calendar_years import Confirmation, confirm_year, confirmations, withdraw_year
from .context import App, at_option, pass_app
from .language import Group
from .output import print_json, say, warn

# where a day's status comes from (engine.calendar.WorkCalendar.source), marked for the catalogue
SOURCES = (N_("law"), N_("official data"), N_("admin list"))


@click.group("calendar", cls=Group)
def calendar_group() -> None:
    """The working-day calendar (show a year, confirm it entered), and the deadline calendar (ICS)."""


def _read_confirmations(app: App) -> dict[int, Confirmation]:
    """The confirmed years, for a command that works without a database too (a warning then)."""
    try:
        with app.reading() as session:
            return confirmations(session)
    except DubanError as exc:
        warn(f"confirmations not read: {exc.message}")
        return {}


@calendar_group.command("show")
@click.argument("year", type=click.IntRange(1970, 2099))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def calendar_show(app: App, year: int, as_json: bool) -> None:
    """The holidays on weekdays and the working weekends of YEAR, each with its source
    (official data; law: Article 2 festival days and Article 6 make-up days; admin list)."""
    confirmed = _read_confirmations(app)
    cal = app.runtime.calendar
    cal.confirm(confirmed)
    provisional = cal.provisional(year)
    days = []
    day = dt.date(year, 1, 1)
    while day.year == year:
        weekend = day.weekday() >= 5
        with cal.quietly():  # what the warning would say is said below, day by day
            work = cal.is_workday(day)
        if work == weekend:  # a holiday on a weekday, or a make-up working day on a weekend
            days.append({"date": day.isoformat(), "weekday": "一二三四五六日"[day.weekday()],
                         "kind": "workday" if work else "holiday", "name": cal.holiday_name(day),
                         "source": cal.source(day), "article": cal.article(day),
                         "provisional": provisional and cal.source(day) != "admin list"})
        day += dt.timedelta(days=1)
    entered = confirmed.get(year)
    if as_json:
        print_json({"year": year, "provisional": provisional, "listed": cal.listed(year),
                    "confirmed": {"by": entered.by, "at": entered.at.isoformat()} if entered else None,
                    "days": days})
        return
    if provisional:
        say(f"{year}: provisional — the State Council's schedule is not known yet. The law's holidays are applied "
            "by rule: the festival days (Article 2) and, for a festival day on a weekend, a working day after it "
            "(Article 6, 补假); make-up working weekends (调休) are not. Enter the notice under [calendar] "
            f"extra_holidays / extra_workdays when it is out, then `duban calendar confirm {year}`.")
    elif entered is not None:
        say(f"{year}: confirmed by {entered.by or '?'} on {cal.local_date(entered.at).isoformat()}.")
    elif cal.listed(year):
        say(f"{year}: entered in [calendar] extra_holidays / extra_workdays.")
    for d in days:
        what = "上班" if d["kind"] == "workday" else "放假"
        name = f" {d['name']}" if d["name"] else ""
        source = _(str(d["source"]))  # law, official data, admin list (SOURCES)
        why = _("{source}, article {article}").format(source=source, article=d["article"]) if d["article"] \
            else source
        mark = _(", provisional") if d["provisional"] else ""
        say(f"{d['date']} 周{d['weekday']} {what}{name} ({why}{mark})")


@calendar_group.command("confirm")
@click.argument("year", type=click.IntRange(2000, 2099))
@click.option("--by", default="", metavar="NAME", help="Who entered the year's schedule (recorded).")
@click.option("--withdraw", is_flag=True, help="Take the confirmation back: the year is provisional again.")
@at_option
@pass_app
def calendar_confirm(app: App, year: int, by: str, withdraw: bool, at: str | None) -> None:
    """Mark YEAR's holiday schedule as entered: ends the December reminder and the provisional
    warning (changes no working day: enter the notice's dates under [calendar] first)."""
    cal = app.runtime.calendar
    if cal.official.covers(year):
        say(f"{year} follows the State Council's published schedule (chinesecalendar): nothing to confirm")
        return
    with app.transaction() as session:
        changed = withdraw_year(session, year) if withdraw else confirm_year(session, year, by, app.now(at))
    if withdraw:
        say(f"{year}: confirmation withdrawn; the year is provisional again" if changed
            else f"{year} was not confirmed; nothing to withdraw")
        return
    if not changed:
        say(f"{year} was already confirmed; nothing changed")
        return
    listed = sorted(d for d in (*app.config.calendar.extra_holidays, *app.config.calendar.extra_workdays)
                    if str(d).startswith(f"{year}-"))
    say(f"{year}: confirmed as entered ({len(listed)} date(s) of {year} in [calendar]); the December reminder "
        "ends. No working day changes: stored deadlines stay as planned.")
    if not listed:
        warn(f"[calendar] extra_holidays / extra_workdays hold no date of {year}: the law's days stand alone, "
             "with no make-up working weekend (调休); enter the State Council's notice there when it is out")


@calendar_group.command("export")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="The .ics file to write (default: standard output).")
@click.option("--department", metavar="NAME", help="Only this responsible department's deadlines and duties.")
@click.option("--ledger", "ledger_name", metavar="NAME", help="Only this ledger.")
@at_option
@pass_app
def calendar_export(app: App, output: Path | None, department: str | None, ledger_name: str | None,
                    at: str | None) -> None:
    """Every open deadline and open duty occurrence as all-day events with an alarm (RFC 5545)."""
    app.sync_duties(at)
    with app.reading() as session:
        body, events = ics_bytes(session, app.runtime, app.now(at), ledger_name=ledger_name, department=department)
    if output is None:
        sys.stdout.write(body.decode("utf-8"))
        return
    output.write_bytes(body)
    say(f"{events} event(s) written to {output}")

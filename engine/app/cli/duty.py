"""``duban duty``: recurring duties: their occurrences, marking one done, moving a due date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
from rich.table import Table

from ...clock import parse_date
from ...duties.book import list_occurrences
from ...i18n import _
from ...issues.evidence import EvidenceStore, add_occurrence_evidence, read_evidence
from .context import App, at_option, json_option, pass_app
from .language import Group
from .output import out, print_json, say


@click.group("duty", cls=Group)
def duty_group() -> None:
    """Recurring duties (quarterly reports, monthly clearing…) and ledger milestones."""


@duty_group.command("list")
@click.option("--from", "start", metavar="DATE", help="First due date (default: a month ago).")
@click.option("--until", "until", metavar="DATE", help="Last due date (default: three months ahead).")
@at_option
@json_option
@pass_app
def duty_list(app: App, start: str | None, until: str | None, at: str | None, as_json: bool) -> None:
    """Duty occurrences by due date, with their state (open, done, overdue)."""
    now = app.now(at)
    today = app.runtime.calendar.local_date(now)
    first = parse_date(start) if start else today - dt.timedelta(days=31)
    last = parse_date(until) if until else today + dt.timedelta(days=92)
    with app.transaction() as session:
        app.runtime.duty_book.sync(session, app.runtime.duty_definitions(), now)
        rows = list_occurrences(session, first, last, today, app.config.tz)
    if as_json:
        print_json([{k: r[k] for k in ("duty", "title", "period", "due", "state")} for r in rows])
        return
    table = Table(_("due"), _("duty"), _("period"), _("state"), _("owners"), _("title"))
    for r in rows:
        table.add_row(r["due"], r["duty"], r["period"], r["state"], "、".join(r["owners"]), r["title"])
    out.print(table)
    say(f"{len(rows)} occurrence(s) due {first} … {last}")


@duty_group.command("done")
@click.argument("duty")
@click.option("--period", required=True, help="Which occurrence, e.g. 2026-Q3 (see `duty list`).")
@click.option("--by", required=True)
@click.option("--note", default="")
@click.option("--evidence", multiple=True, type=click.Path(path_type=Path), help="Evidence file; repeatable.")
@click.option("--on", "on", metavar="DATE", help="The day it was done, when recorded late (YYYY-MM-DD).")
@at_option
@pass_app
def duty_done(app: App, duty: str, period: str, by: str, note: str, evidence: tuple[Path, ...], on: str | None,
              at: str | None) -> None:
    """Mark a duty occurrence done; its reminders stop. A past period can be recorded late (--on)."""
    now = app.now(at)
    day = parse_date(on) if on else None
    with EvidenceStore.of(app.config).staging() as staged:
        files = read_evidence(evidence, staged)
        with app.transaction() as session:
            actor = app.actor(session, by)
            by = actor.name
            occ = app.runtime.duty_book.done(session, duty, period, by=by, now=now, note=note, on=day, actor=actor)
            add_occurrence_evidence(session, occ.id, files, by=by, now=now)
            staged.keep(session, by=by)
    say(f"{duty} {period}: done by {by}")


@duty_group.command("set-due")
@click.argument("duty")
@click.option("--period", required=True)
@click.option("--due", "due", required=True, metavar="DATE", help="The new due date (the scheduled one is kept).")
@click.option("--by", required=True, help="Who moves it (an administrator, or the unit's administrator).")
@at_option
@pass_app
def duty_set_due(app: App, duty: str, period: str, due: str, by: str, at: str | None) -> None:
    """Move one occurrence's due date; regenerating the schedule will not undo it."""
    now = app.now(at)
    with app.transaction() as session:
        occ = app.runtime.duty_book.set_due(session, duty, period, parse_date(due), now=now,
                                            actor=app.actor(session, by))
    say(f"{duty} {period}: due {occ.due} (scheduled {occ.scheduled_due})")

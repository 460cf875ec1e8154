"""``duban remind``: the reminders ahead (preview) and those the sweep has written."""

from __future__ import annotations

import click
from rich.table import Table

from ...clock import parse_instant
from ...errors import BadInput
from ...i18n import _
from ...issues.queries import find_ledger
from ...reminders.preview import MAX_WINDOW, entry, preview, written
from .context import App, json_option, pass_app
from .language import Group
from .output import out, print_json, say


def _table(rows: list[dict], title: str) -> Table:
    table = Table(_("at"), _("subject"), _("kind"), _("rule"), _("recipients"), _("title"), title=title)
    for r in rows:
        table.add_row(r["at"][:16].replace("T", " "), r["subject"], r["kind"], r["rule"], "、".join(r["recipients"]),
                      r.get("title", ""))
    return table


@click.group("remind", cls=Group)
def remind_group() -> None:
    """Reminders: the timeline ahead and those already written."""


@remind_group.command("preview")
@click.option("--at", "at", metavar="TIME", help="Start of the window (default: now).")
@click.option("--until", "until", metavar="TIME", required=True, help="End of the window.")
@click.option("--ledger", "ledger_name", metavar="NAME")
@json_option
@pass_app
def preview_(app: App, at: str | None, until: str, ledger_name: str | None, as_json: bool) -> None:
    """Every reminder that would fall due in (--at, --until]; touches nothing."""
    start = app.now(at)
    end = parse_instant(until, app.config.tz)
    if end <= start:
        raise BadInput("--until must be after --at")
    if end - start > MAX_WINDOW:
        raise BadInput(f"--until is more than {MAX_WINDOW.days} days after --at", hint="preview a shorter window")
    tz = app.config.tz
    with app.reading() as session:
        rows = [entry(r, tz) for r in preview(session, app.runtime, start, end, find_ledger(session, ledger_name))]
    if as_json:
        print_json(rows)
        return
    out.print(_table(rows, _("reminders due after {start} until {end}").format(
        start=f"{start.astimezone(app.config.tz):%Y-%m-%d %H:%M}", end=f"{end.astimezone(app.config.tz):%Y-%m-%d %H:%M}")))
    say(f"{len(rows)} reminder(s)")


@remind_group.command("list")
@click.option("--ledger", "ledger_name", metavar="NAME")
@json_option
@pass_app
def list_(app: App, ledger_name: str | None, as_json: bool) -> None:
    """Reminders the sweep has written."""
    with app.reading() as session:
        rows = written(session, app.config.tz, find_ledger(session, ledger_name))
    if as_json:
        print_json(rows)
        return
    out.print(_table(rows, _("reminders written")))
    say(f"{len(rows)} reminder(s)")

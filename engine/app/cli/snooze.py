"""``duban snooze``: silence reminders for an issue, a duty, a department or a ledger."""

from __future__ import annotations

import datetime as dt

import click
from rich.table import Table

from notifications.silences import add_silence, lift_silence, silences

from ...clock import parse_date
from ...duties.book import duty_known
from ...errors import BadInput, NotFound
from ...i18n import _
from ...issues.queries import department_named, find_ledger, issue_ref, resolve_ref
from .context import App, at_option, json_option, pass_app
from .language import Group
from .output import out, print_json, say


@click.group("snooze", cls=Group)
def snooze_group() -> None:
    """Silence reminders for an issue, a duty, a department or a ledger until a date."""


@snooze_group.command("add")
@click.option("--issue", "issue", metavar="REF")
@click.option("--duty", "duty", metavar="KEY")
@click.option("--department", "department", metavar="NAME")
@click.option("--ledger", "ledger", metavar="NAME")
@click.option("--until", "until", required=True, metavar="DATE", help="Reminders resume on this date.")
@click.option("--reason", required=True)
@click.option("--by", required=True)
@at_option
@pass_app
def snooze_add(app: App, issue, duty, department, ledger, until: str, reason: str, by: str, at: str | None) -> None:
    """Add a silence; it expires by itself."""
    given = [(k, v) for k, v in (("issue", issue), ("duty", duty), ("department", department), ("ledger", ledger)) if v]
    if len(given) != 1:
        raise BadInput("say what to silence: exactly one of --issue, --duty, --department, --ledger")
    kind, target = given[0]
    now = app.now(at)
    resume = parse_date(until)
    until_at = dt.datetime.combine(resume, dt.time(0), tzinfo=app.config.tz).astimezone(dt.UTC)
    if until_at <= now:
        raise BadInput(f"--until {until} is not in the future")
    with app.transaction() as session:
        by = app.actor(session, by).name
        if kind == "issue":
            target = issue_ref(resolve_ref(session, target))
        elif kind == "ledger":
            find_ledger(session, target)
        elif kind == "duty" and not duty_known(session, target):
            raise NotFound(f"no duty {target!r}")
        elif kind == "department" and not department_named(session, target):
            raise NotFound(f"no issue has the department {target!r}")
        sid = add_silence(session, kind, target, until=until_at, reason=reason, by=by, now=now)
    say(f"silence {sid}: {kind} {target} until {resume} ({reason})")


@snooze_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include expired and lifted silences.")
@at_option
@json_option
@pass_app
def snooze_list(app: App, show_all: bool, at: str | None, as_json: bool) -> None:
    """Active silences (or all of them)."""
    now = app.now(at)
    tz = app.config.tz
    with app.transaction() as session:
        rows = [{"id": s.id, "kind": s.kind, "target": s.target, "until": s.until.astimezone(tz).date().isoformat(),
                 "reason": s.reason, "by": s.by, "active": s.active} for s in silences(session, now, show_all=show_all)]
    if as_json:
        print_json(rows)
        return
    table = Table(_("id"), _("kind"), _("target"), _("until"), _("reason"), _("by"), _("active"))
    for r in rows:
        table.add_row(str(r["id"]), str(r["kind"]), str(r["target"]), str(r["until"]), str(r["reason"]), str(r["by"]),
                      "yes" if r["active"] else "no")
    out.print(table)


@snooze_group.command("lift")
@click.argument("silence_id", type=click.IntRange(1, 2**63 - 1))
@at_option
@pass_app
def snooze_lift(app: App, silence_id: int, at: str | None) -> None:
    """End a silence now."""
    with app.transaction() as session:
        lift_silence(session, silence_id, app.now(at))
    say(f"silence {silence_id} lifted")

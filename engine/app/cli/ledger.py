"""``duban ledger``: draft a ledger from the feedback document; import and export ledgers (CSV, XLSX);
archive, reopen or delete one; the administrators' log."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ...clock import parse_date
from ...errors import BadInput
from ...i18n import _, translate
from ...issues.history import chain_head
from ...issues.queries import find_ledger, one_ledger
from ...ledger.export import export_ledger
from ...ledger.importer import ensure_ledger_accounts, import_ledger
from ...store import db
from .context import App, at_option, json_option, pass_app
from .language import Group
from .output import err, out, print_json, say, warn

REPORT_MILESTONE = "rectification-report"  # the shipped workflow's 报送整改情况报告


class _DryRun(Exception):
    """Raised inside the transaction to roll back a dry run after every check passed."""


@click.group("ledger", cls=Group)
def ledger_group() -> None:
    """Ledgers (台账): import and export; archive, reopen or delete one; the administrators' log."""


@ledger_group.command("draft")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("-o", "--output", "output", type=click.Path(path_type=Path), required=True, metavar="DRAFT.xlsx",
              help="The draft ledger to write (.xlsx).")
@click.option("--unit", metavar="TEXT", help="Fill the 单位 column (the organisation inspected).")
def draft(file: Path, output: Path, unit: str | None) -> None:
    """Draft a ledger from the feedback document FILE (.docx, .txt, .md): 方面, 问题类别 and 具体问题
    from its numbering (一、（一）1．（1）, 关于“…”问题); the columns the office fills are marked.
    Every paragraph it cannot place is listed with its line (a .docx: its paragraph)."""
    from ...ledger.draft import draft_ledger

    result = draft_ledger(file, output, unit=unit)
    for line in result.summary(output):
        say(line)


@ledger_group.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--ledger", "ledger_name", metavar="NAME", help="Ledger name (default: the file name without extension).")
@click.option("--feedback-date", metavar="DATE", help="When the inspection feedback was received (YYYY-MM-DD).")
@click.option("--unit", metavar="TEXT", help="The organisation the ledger belongs to.")
@click.option("--workflow", "workflow_name", metavar="NAME", help="Workflow for a new ledger (default from config).")
@click.option("--sheet", metavar="NAME", help="XLSX sheet to read (default: the first).")
@click.option("--by", default="admin", show_default=True,
              help="The user importing (an administrator or the unit's; recorded with the door 'import').")
@click.option("--dry-run", is_flag=True, help="Check everything, write nothing; print the changes.")
@click.option("--milestone-done", "milestones", metavar="NAME=DATE", multiple=True,
              help="A milestone of the ledger already met (a ledger taken over mid-way); repeatable.")
@click.option("--report-submitted", metavar="DATE",
              help="The rectification report (报送整改情况报告) was sent on DATE: --milestone-done rectification-report=DATE.")
@at_option
@pass_app
def import_(app: App, file: Path, ledger_name: str | None, feedback_date: str | None, unit: str | None,
            workflow_name: str | None, sheet: str | None, by: str, dry_run: bool, milestones: tuple[str, ...],
            report_submitted: str | None, at: str | None) -> None:
    """Import a ledger file; all rows or none. Re-importing merges by 序号: the 整改状态 column is a
    claim the workflow decides (applied along its transitions, or reported)."""
    feedback = parse_date(feedback_date) if feedback_date else None
    done: dict[str, dt.date] = {}
    for item in milestones:
        name, sep, day = item.partition("=")
        if not sep or not name.strip():
            raise BadInput(f"--milestone-done {item!r}: expected NAME=YYYY-MM-DD")
        done[name.strip()] = parse_date(day.strip())
    if report_submitted:
        done[REPORT_MILESTONE] = parse_date(report_submitted)
    now = app.now(at)
    made: list[str] = []
    with Progress(TextColumn("importing {task.description}", markup=False), BarColumn(), TaskProgressColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task(file.name, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            with app.transaction() as session:
                result = import_ledger(
                    session, app.runtime, file, now=now, actor=app.actor(session, by, "import"),
                    ledger_name=ledger_name, feedback_date=feedback,
                    unit=unit, workflow_name=workflow_name or app.config.workflows.default, dry_run=dry_run,
                    sheet_name=sheet, progress=progress, milestones_done=done)
                if dry_run:
                    raise _DryRun
                if app.config.workspace.auto_accounts:
                    made = ensure_ledger_accounts(session, result.ledger, now)

        except _DryRun:
            pass
    if not dry_run:
        db.refresh_statistics(app.db_engine)
    for line in result.warnings:
        warn(line)
    read_as = result.read_as()
    if read_as:
        say("read as (not written so in the sheet):")
        for line in read_as:
            say(f"  {line}")
    if dry_run:
        for line in result.changes:
            say(line)
    verb = _("would import") if dry_run else _("imported")
    # translated here, each on its own: they are put into the line below
    moves = translate(f", {result.moved} moved along the workflow") if result.moved else ""
    refused = translate(f", {len(result.not_applied)} state claim(s) not applied") if result.not_applied else ""
    say(f"{verb} {result.rows} rows into ledger {result.ledger} ({result.workflow}@{result.workflow_version}): "
        f"{result.created} new, {result.updated} updated, {result.unchanged} unchanged{moves}{refused}")
    if made:
        shown = ", ".join(made[:12]) + (f" and {len(made) - 12} more" if len(made) > 12 else "")
        say(f"accounts made for the people the ledger names (they open their items from their reminders' "
            f"links): {shown}")
    if dry_run:
        say("dry run: nothing was written")


@ledger_group.command("export")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--ledger", "ledger_name", metavar="NAME", help="Ledger to export (needed when there are several).")
@pass_app
def export(app: App, file: Path, ledger_name: str | None) -> None:
    """Write a ledger to FILE (.csv or .xlsx) with the headers it was imported with."""
    if file.suffix.lower() not in (".csv", ".xlsx"):
        raise BadInput(f"{file}: unsupported file type", hint="use .csv or .xlsx")
    with app.transaction() as session:
        ledger = one_ledger(session, ledger_name, "to export")
        head = chain_head(session, ledger, app.now(None))
        count = export_ledger(session, app.registry, ledger, file, chain_head=head)
    say(f"exported {count} issues of ledger {ledger.name} to {file}")
    say(f"chain head {head} (duban audit verify --ledger {ledger.name} --head {head})")


@ledger_group.group("milestone")
def milestone_group() -> None:
    """A ledger's milestones (e.g. 报送整改情况报告)."""


@milestone_group.command("done")
@click.argument("ledger_name", metavar="LEDGER")
@click.argument("name")
@click.option("--on", "on", metavar="DATE", required=True, help="The day it was met (YYYY-MM-DD).")
@click.option("--by", required=True, help="Who records it.")
@click.option("--note", default="", help="What was sent, to whom.")
@at_option
@pass_app
def milestone_done(app: App, ledger_name: str, name: str, on: str, by: str, note: str, at: str | None) -> None:
    """Record the ledger's milestone NAME as met on DATE (reminders about it stop)."""
    day = parse_date(on)
    now = app.now(at)
    with app.transaction() as session:
        by = app.actor(session, by).name
        ledger = find_ledger(session, ledger_name)
        assert ledger is not None  # a name given: found or NotFound
        app.runtime.duty_book.milestone_done(session, ledger, name, day, by=by, now=now, note=note)
    say(f"{ledger_name}: milestone {name} recorded as met on {day.isoformat()}")


@ledger_group.command("archive")
@click.argument("ledger_name", metavar="LEDGER")
@click.option("--by", required=True, help="The administrator (or the unit's) closing it.")
@click.option("--note", default="", help="Why (kept in the administrators' log).")
@at_option
@pass_app
def archive(app: App, ledger_name: str, by: str, note: str, at: str | None) -> None:
    """Close a ledger whose rectification is over: read-only, no reminders; still in reports."""
    from ...ledger.lifecycle import archive_ledger

    now = app.now(at)
    with app.transaction() as session:
        done = archive_ledger(session, app.runtime, ledger_name, actor=app.actor(session, by), now=now, note=note)
    say(f"台账 {done.ledger} 已归档，只读 (archived: read-only): {done.issues} issue(s) and {done.occurrences} "
        f"open milestone(s)/look-back(s) are no longer reminded of, {done.silenced} reminder(s) not yet sent "
        f"were silenced; `duban ledger unarchive {done.ledger}` reopens it")


@ledger_group.command("unarchive")
@click.argument("ledger_name", metavar="LEDGER")
@click.option("--by", required=True, help="The administrator (or the unit's) reopening it.")
@click.option("--note", default="", help="Why (kept in the administrators' log).")
@at_option
@pass_app
def unarchive(app: App, ledger_name: str, by: str, note: str, at: str | None) -> None:
    """Reopen an archived ledger: writable again, its reminders planned from now."""
    from ...ledger.lifecycle import unarchive_ledger

    now = app.now(at)
    with app.transaction() as session:
        done = unarchive_ledger(session, app.runtime, ledger_name, actor=app.actor(session, by), now=now, note=note)
    say(f"台账 {done.ledger} 已重新打开 (reopened): {done.planned} issue(s) and occurrence(s) planned from now")


@ledger_group.command("delete")
@click.argument("ledger_name", metavar="LEDGER")
@click.option("--by", required=True, help="The administrator deleting it.")
@click.option("--confirm", metavar="LEDGER-NAME",
              help="The ledger's name again, for scripts; without it the name is typed at the prompt.")
@click.option("--note", default="", help="Why (kept in the administrators' log).")
@at_option
@pass_app
def delete(app: App, ledger_name: str, by: str, confirm: str | None, note: str, at: str | None) -> None:
    """Delete a ledger (one made for a test or by mistake) with its issues, history, evidence,
    reminders and milestones, after its name is typed again. Administrators only."""
    from ...issues.evidence import EvidenceStore
    from ...ledger.lifecycle import contents, delete_ledger

    now = app.now(at)
    if confirm is None:
        if not sys.stdin.isatty():
            raise BadInput("deleting a ledger needs its name typed at the prompt, or --confirm LEDGER-NAME "
                           "(no terminal to type at)（删除台账须输入台账名称确认）")
        with app.reading() as session:
            counts = contents(session, ledger_name)
        err.print(translate(f"台账 {ledger_name} 将被删除，不可恢复 (to be deleted for good): {counts['issues']} issue(s), "
                            f"{counts['history']} history entries, {counts['evidence']} evidence file(s), "
                            f"{counts['reminders']} reminder(s), {counts['duties']} milestone(s)"), markup=False)
        confirm = click.prompt(_("输入台账名称以确认删除 (type the ledger's name to delete it)"), default="",
                               show_default=False, err=True)
    app.require_schema()
    done = delete_ledger(app.sessions, EvidenceStore.of(app.config), ledger_name,
                         actor_of=lambda session: app.actor(session, by), now=now, confirm=confirm, note=note)
    c = done.counts
    say(f"台账 {done.ledger} 已删除 (deleted): {c['issues']} issue(s), {c['history']} history entries, "
        f"{c['evidence']} evidence row(s) ({len(done.files)} store file(s) no other row used removed), "
        f"{c['reminders']} reminder(s), {c['duties']} milestone(s), {c['imports']} import record(s); "
        f"recorded in the administrators' log (duban ledger log)")


@ledger_group.command("log")
@click.argument("subject", metavar="[LEDGER]", required=False)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@json_option
@pass_app
def log(app: App, subject: str | None, limit: int, as_json: bool) -> None:
    """The administrators' log: ledgers archived, reopened, deleted; backups restored."""
    from ...ledger.lifecycle import admin_log

    with app.reading() as session:
        rows = admin_log(session, subject=subject, limit=limit)
    tz = app.config.tz
    if as_json:
        print_json([r.as_json(tz) for r in rows])
        return
    table = Table(_("when"), _("who"), _("door"), _("what"), _("subject"), _("why"))
    for r in rows:
        table.add_row(r.at.astimezone(tz).isoformat(timespec="minutes"), r.by, r.door, r.action, r.subject, r.note)
    out.print(table)
    say(f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'}")

"""``duban ledger``: import and export ledgers (CSV, XLSX)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy import select

from ...clock import parse_date
from ...errors import BadInput
from ...issues.queries import find_ledger
from ...ledger.export import export_ledger
from ...ledger.importer import import_ledger
from ...store.models import Ledger
from .context import App, at_option, pass_app
from .output import err, say, warn


class _DryRun(Exception):
    """Raised inside the transaction to roll back a dry run after every check passed."""


@click.group("ledger")
def ledger_group() -> None:
    """Ledgers (台账): import and export."""


@ledger_group.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--ledger", "ledger_name", metavar="NAME", help="Ledger name (default: the file name without extension).")
@click.option("--feedback-date", metavar="DATE", help="When the inspection feedback was received (YYYY-MM-DD).")
@click.option("--unit", metavar="TEXT", help="The organisation the ledger belongs to.")
@click.option("--workflow", "workflow_name", metavar="NAME", help="Workflow for a new ledger (default from config).")
@click.option("--sheet", metavar="NAME", help="XLSX sheet to read (default: the first).")
@click.option("--by", default="import", show_default=True, help="Who is importing (recorded).")
@click.option("--dry-run", is_flag=True, help="Check everything, write nothing.")
@at_option
@pass_app
def import_(app: App, file: Path, ledger_name: str | None, feedback_date: str | None, unit: str | None,
            workflow_name: str | None, sheet: str | None, by: str, dry_run: bool, at: str | None) -> None:
    """Import a ledger file; all rows or none. Re-importing updates by 序号."""
    feedback = parse_date(feedback_date) if feedback_date else None
    now = app.now(at)
    with Progress(TextColumn("importing {task.description}"), BarColumn(), TaskProgressColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task(file.name, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            with app.transaction() as session:
                result = import_ledger(
                    session, app.runtime, file, now=now, by=by, ledger_name=ledger_name, feedback_date=feedback,
                    unit=unit, workflow_name=workflow_name or app.config.workflows.default, dry_run=dry_run,
                    sheet_name=sheet, progress=progress)
                if dry_run:
                    raise _DryRun
        except _DryRun:
            pass
    for line in result.warnings:
        warn(line)
    verb = "would import" if dry_run else "imported"
    say(f"{verb} {result.rows} rows into ledger {result.ledger} ({result.workflow}@{result.workflow_version}): "
        f"{result.created} new, {result.updated} updated, {result.unchanged} unchanged")
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
        ledger = find_ledger(session, ledger_name)
        if ledger is None:
            names = session.scalars(select(Ledger.name).order_by(Ledger.name)).all()
            if len(names) != 1:
                raise BadInput("say which ledger to export: --ledger NAME",
                               hint=f"ledgers: {', '.join(names) or 'none yet'}")
            ledger = find_ledger(session, names[0])
            assert ledger is not None  # a name given: found or NotFound
        count = export_ledger(session, app.registry, ledger, file)
    say(f"exported {count} issues of ledger {ledger.name} to {file}")

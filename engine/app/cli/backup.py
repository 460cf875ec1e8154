"""``duban backup FILE``: one archive of the database and the evidence files (see ``engine.backup``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn

from ...backup.archive import make_backup
from ...backup.database import Progress as ProgressFn
from ...errors import EXIT_REFUSED
from .context import App, pass_app
from .language import Command
from .output import err, say, warn

_STAGES = {"database": "database snapshot", "archive": "writing the archive", "verifying": "checking every hash"}


@contextmanager
def progress_bar() -> Iterator[ProgressFn]:
    """Rich progress on stderr (gone when done), like the ledger import's."""
    with Progress(TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("starting", total=None)

        def update(what: str, done: int, total: int | None) -> None:
            bar.update(task, description=_STAGES.get(what, what), completed=done, total=total)

        yield update


def megabytes(n: int) -> str:
    return f"{n / 2**20:,.1f} MB" if n >= 2**20 else f"{n / 1024:,.1f} KB"


@click.command("backup", cls=Command)
@click.argument("file", type=click.Path(path_type=Path))
@pass_app
def backup(app: App, file: Path) -> None:
    """Write ONE archive (tar) holding the database and every evidence file, with a manifest of
    SHA-256 hashes; safe while the daemon runs. FILE is replaced only once the new one is complete."""
    with progress_bar() as progress:
        result = make_backup(app.config, app.db_engine, file, progress=progress)
    m = result.manifest
    evidence = m.evidence()
    stored = sum(m.members[n].size for n in evidence)
    c = m.counts
    say(f"backup written to {result.path} ({megabytes(result.size)} in {result.seconds:.1f} s), {m.created_at}")
    say(f"  database ({m.backend}, schema {m.schema_revision}, duban {m.duban_version}): {c.get('ledgers', 0)} "
        f"ledger(s), {c.get('issues', 0)} issue(s), {c.get('history', 0)} history entries, "
        f"{c.get('evidence_rows', 0)} evidence row(s)")
    say(f"  evidence store: {len(evidence)} file(s), {megabytes(stored)}")
    say(f"  manifest: SHA-256 of {len(m.members)} member(s) (tar xOf {file.name} MANIFEST.json)")
    for sha in m.missing:
        warn(f"evidence file {sha} is named by the database but is not in the store: not in the backup "
             "(duban evidence check)")
    for sha in m.changed:
        warn(f"evidence file {sha} no longer matches its SHA-256: backed up as it is (duban evidence check)")
    if m.missing or m.changed:
        raise click.exceptions.Exit(EXIT_REFUSED)

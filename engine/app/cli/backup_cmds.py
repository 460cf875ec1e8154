"""``duban backup FILE`` and ``duban restore FILE`` (see ``engine.backup``)."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn

from ...backup.archive import make_backup
from ...backup.database import Progress as ProgressFn
from ...backup.restore import restore_backup
from ...errors import EXIT_REFUSED
from ...store import adminlog, db
from .context import App, pass_app
from .db_cmds import _upgrade
from .output import err, say, warn

_STAGES = {"database": "database snapshot", "archive": "writing the archive", "verifying": "checking every hash"}


@contextmanager
def _bar() -> Iterator[ProgressFn]:
    """Rich progress on stderr (gone when done), like the ledger import's."""
    with Progress(TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("starting", total=None)

        def update(what: str, done: int, total: int | None) -> None:
            bar.update(task, description=_STAGES.get(what, what), completed=done, total=total)

        yield update


def _mb(n: int) -> str:
    return f"{n / 2**20:,.1f} MB" if n >= 2**20 else f"{n / 1024:,.1f} KB"


@click.command("backup")
@click.argument("file", type=click.Path(path_type=Path))
@pass_app
def backup(app: App, file: Path) -> None:
    """Write ONE archive (tar) holding the database and every evidence file, with a manifest of
    SHA-256 hashes; safe while the daemon runs. FILE is replaced only once the new one is complete."""
    with _bar() as progress:
        result = make_backup(app.config, app.db_engine, file, progress=progress)
    m = result.manifest
    evidence = m.evidence()
    stored = sum(m.members[n].size for n in evidence)
    c = m.counts
    say(f"backup written to {result.path} ({_mb(result.size)} in {result.seconds:.1f} s), {m.created_at}")
    say(f"  database ({m.backend}, schema {m.schema_revision}, duban {m.duban_version}): {c.get('ledgers', 0)} "
        f"ledger(s), {c.get('issues', 0)} issue(s), {c.get('history', 0)} history entries, "
        f"{c.get('evidence_rows', 0)} evidence row(s)")
    say(f"  evidence store: {len(evidence)} file(s), {_mb(stored)}")
    say(f"  manifest: SHA-256 of {len(m.members)} member(s) (tar xOf {file.name} MANIFEST.json)")
    for sha in m.missing:
        warn(f"evidence file {sha} is named by the database but is not in the store: not in the backup "
             "(duban evidence check)")
    for sha in m.changed:
        warn(f"evidence file {sha} no longer matches its SHA-256: backed up as it is (duban evidence check)")
    if m.missing or m.changed:
        raise click.exceptions.Exit(EXIT_REFUSED)


@click.command("restore")
@click.argument("file", type=click.Path(path_type=Path))
@pass_app
def restore(app: App, file: Path) -> None:
    """Fill an EMPTY database and EMPTY evidence folder from a backup archive: every hash checked
    first, nothing written unless all match; an older schema is upgraded to this duban's."""
    with _bar() as progress:
        restored = restore_backup(app.config, app.db_engine, file, progress=progress)
    app.db_engine.dispose()  # nothing pooled may outlive the file a SQLite restore put in place
    m = restored.manifest
    _, after = _upgrade(app)
    now = app.now(None)
    with app.transaction() as session:
        adminlog.record(session, at=now, by=getpass.getuser(), door="cli", action="restore", subject=file.name,
                        note=f"backup made {m.created_at} by duban {m.duban_version}",
                        details={"schema_from": m.schema_revision, "schema_to": after or "", **m.counts})
    current, _ = db.schema_status(app.db_engine)
    c = m.counts
    say(f"restored {file} (made {m.created_at}) into {restored.database}")
    say(f"  database: {c.get('ledgers', 0)} ledger(s), {c.get('issues', 0)} issue(s), {c.get('history', 0)} "
        f"history entries, {c.get('evidence_rows', 0)} evidence row(s); schema "
        + (f"{m.schema_revision} upgraded to {current}" if m.schema_revision != current else f"{current} (current)"))
    say(f"  evidence: {restored.files} file(s), {_mb(restored.bytes)} in {restored.evidence_folder}, every SHA-256 "
        "checked")

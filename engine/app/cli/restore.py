"""``duban restore FILE``: fill an empty database and evidence folder from a backup archive."""

from __future__ import annotations

import getpass
from pathlib import Path

import click

from ...backup.restore import log_restore, restore_backup
from ...store import db
from .backup import megabytes, progress_bar
from .context import App, pass_app
from .db import upgrade_schema
from .language import Command
from .output import say


@click.command("restore", cls=Command)
@click.argument("file", type=click.Path(path_type=Path))
@pass_app
def restore(app: App, file: Path) -> None:
    """Fill an EMPTY database and EMPTY evidence folder from a backup archive: every hash checked
    first, nothing written unless all match; an older schema is upgraded to this duban's."""
    with progress_bar() as progress:
        restored = restore_backup(app.config, app.db_engine, file, progress=progress)
    app.db_engine.dispose()  # nothing pooled may outlive the file a SQLite restore put in place
    m = restored.manifest
    _, after = upgrade_schema(app)
    now = app.now(None)
    with app.transaction() as session:
        log_restore(session, restored, file.name, by=getpass.getuser(), door="cli", now=now, schema_to=after or "")
    current, _ = db.schema_status(app.db_engine)
    c = m.counts
    say(f"restored {file} (made {m.created_at}) into {restored.database}")
    say(f"  database: {c.get('ledgers', 0)} ledger(s), {c.get('issues', 0)} issue(s), {c.get('history', 0)} "
        f"history entries, {c.get('evidence_rows', 0)} evidence row(s); schema "
        + (f"{m.schema_revision} upgraded to {current}" if m.schema_revision != current else f"{current} (current)"))
    say(f"  evidence: {restored.files} file(s), {megabytes(restored.bytes)} in {restored.evidence_folder}, every SHA-256 "
        "checked")

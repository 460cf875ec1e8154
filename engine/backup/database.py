"""The database in a backup: one consistent snapshot out, a whole copy in, per backend.

**SQLite**: ``sqlite3.Connection.backup`` in ONE step (``pages=-1``). A step-wise backup starts over
whenever another connection writes between steps, so under a daemon that keeps writing it might
never end; one step reads one WAL snapshot, which no writer blocks and which blocks no writer.
What the manifest says (schema revision, counts, the evidence files the rows name) is read from
the copy: what was copied, not what the live database says a moment later.

**PostgreSQL**: a REPEATABLE READ transaction exports its snapshot (``pg_export_snapshot``) and
``pg_dump --format=custom --snapshot`` dumps exactly that state, while the same transaction reads
the revision, the counts and the evidence rows: one instant for all of them. ``pg_restore
--single-transaction`` loads a dump whole or not at all. Both tools come with the PostgreSQL client
(``apt-get install postgresql-client``); the password, if the URL has one, goes to them in
``PGPASSWORD``, never on a command line others can read in ``ps``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, inspect
from sqlalchemy.engine import URL, make_url

from ..errors import BadInput, DubanError
from ..issues.evidence import sync_dir
from ..store import db

Progress = Callable[[str, int, int | None], None]
"""``progress(what, bytes done, bytes in all or None)``."""

_COUNTS = {"ledgers": "ledgers", "issues": "issues", "history": "history", "evidence_rows": "evidence",
           "users": "users"}
_SQLITE_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table'"
_PG_TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"


@dataclass
class Snapshot:
    """A copy of the database and what it says."""

    path: Path
    revision: str
    counts: dict[str, int] = field(default_factory=dict)
    stored: set[str] = field(default_factory=set)  # SHA-256 names of the store files its rows use
    outside: dict[str, Path] = field(default_factory=dict)  # SHA-256 -> a file older rows keep outside the store


def backend(db_engine: Engine) -> str:
    name = db_engine.dialect.name
    if name not in ("sqlite", "postgresql"):
        raise BadInput(f"backups of a {name} database are not supported (SQLite and PostgreSQL are)")
    return name


def sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BadInput(f"the database {url!r} is not a file; nothing to back up or restore into")
    return Path(url.database).expanduser()


# -- out ----------------------------------------------------------------------------------------

def snapshot(db_engine: Engine, dest: Path, progress: Progress) -> Snapshot:
    """Copy the database to ``dest`` as one consistent state, and read what the manifest needs."""
    if backend(db_engine) == "sqlite":
        return _sqlite_snapshot(sqlite_path(db_engine.url), dest, progress)
    return _pg_snapshot(db_engine, dest, progress)


def _sqlite_snapshot(path: Path, dest: Path, progress: Progress) -> Snapshot:
    if not path.is_file():
        raise BadInput(f"{path}: no database there (check [database] url)")
    src = sqlite3.connect(str(path), timeout=30)
    try:
        page_size, pages = (src.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_size", "page_count"))
        total = page_size * pages
        progress("database", 0, total)
        dst = sqlite3.connect(str(dest))
        try:
            src.backup(dst, pages=-1)  # one step: see the module docstring
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, whatever the source's mode
            snap = Snapshot(dest, "")
            _read_facts(snap, lambda sql: dst.execute(sql).fetchall(), _SQLITE_TABLES)
        finally:
            dst.close()
    finally:
        src.close()
    progress("database", dest.stat().st_size, dest.stat().st_size)
    return snap


def _pg_snapshot(db_engine: Engine, dest: Path, progress: Progress) -> Snapshot:
    tool = pg_tool("pg_dump", db_engine)
    url = db_engine.url
    with db_engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
        exported = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
        snap = Snapshot(dest, "")
        _read_facts(snap, lambda sql: [tuple(r) for r in conn.exec_driver_sql(sql).all()], _PG_TABLES)
        size = conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one()
        # the exporting transaction stays open until pg_dump is done: its snapshot lives as long
        _run(tool, ["--format=custom", "--no-owner", "--no-privileges", f"--snapshot={exported}",
                    f"--file={dest}", f"--dbname={_libpq(url)}"], url, "database", progress,
             watch=dest, total=int(size))
    return snap


def _read_facts(snap: Snapshot, query: Callable[[str], Sequence[Sequence[Any]]], tables_sql: str) -> None:
    """Revision, counts and evidence files, by SQL every schema revision since 0001 answers."""
    tables = {str(r[0]) for r in query(tables_sql)}
    if "alembic_version" not in tables or not (rows := query("SELECT version_num FROM alembic_version")):
        raise BadInput("the database has no duban schema yet: nothing to back up", hint="run `duban init` first")
    snap.revision = str(rows[0][0])
    for key, table in _COUNTS.items():
        if table in tables:  # users came with 0008
            snap.counts[key] = int(query(f"SELECT count(*) FROM {table}")[0][0])
    for sha, where in query("SELECT sha256, path FROM evidence WHERE content IS NULL"):
        snap.stored.add(sha)
        if where and where != sha:  # an older row's file kept by its own path (see engine.issues.evidence)
            snap.outside.setdefault(sha, Path(where))


def _libpq(url: URL) -> str:
    """The URL as libpq reads it: no SQLAlchemy driver, no password (that goes in PGPASSWORD)."""
    return url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)


def pg_tool(name: str, db_engine: Engine | None = None) -> str:
    """The path of ``pg_dump`` / ``pg_restore``, or an error naming what to install."""
    found = shutil.which(name)
    if found:
        return found
    major = ""
    if db_engine is not None:
        with contextlib.suppress(Exception), db_engine.connect() as conn:
            major = str(int(conn.exec_driver_sql("SHOW server_version_num").scalar_one()) // 10000)
    raise DubanError(f"{name} not found on PATH: backing up and restoring a PostgreSQL database needs the PostgreSQL "
                     f"client tools{f' (version {major} or newer, as the server)' if major else ''}",
                     hint="Debian/Ubuntu: apt-get install postgresql-client (scripts/setup.sh installs it); "
                          "or put the server's own bin folder on PATH")


def _run(tool: str, args: list[str], url: URL, what: str, progress: Progress, *, watch: Path | None = None,
         total: int | None = None) -> None:
    env = {**os.environ}
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    name = Path(tool).name
    with subprocess.Popen([tool, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as proc:
        try:
            while proc.poll() is None:
                if watch is not None and watch.exists():
                    progress(what, watch.stat().st_size, total)
                time.sleep(0.2)
        except BaseException:
            proc.kill()
            raise
        assert proc.stderr is not None
        problem = proc.stderr.read().decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        lines = problem.splitlines()[-8:] or [f"exit status {proc.returncode}"]
        raise DubanError(f"{name} failed: {lines[0]}", details=lines[1:],
                         hint="a server newer than the client tools needs newer ones (postgresql-client)"
                         if "version mismatch" in problem else None)


# -- in -----------------------------------------------------------------------------------------

def tables_in(url: str) -> list[str]:
    """The tables already in the database ``url`` names (a restore needs none); [] when there is none yet."""
    parsed = make_url(db.normalise_url(url))
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(parsed)
        if not path.exists() or path.stat().st_size == 0:
            return []
        conn = sqlite3.connect(str(path), timeout=30)
        try:
            return [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        finally:
            conn.close()
    probe = db.make_engine(url)
    try:
        return sorted(inspect(probe).get_table_names())
    finally:
        probe.dispose()


def load_sqlite(copy: Path, target: Path) -> None:
    """Put the verified copy in place of the (empty) database file, atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for leftover in ("-wal", "-shm", "-journal"):
        # an empty database's journal beside the new file would be replayed into it
        with contextlib.suppress(FileNotFoundError):
            Path(f"{target}{leftover}").unlink()
    os.replace(copy, target)
    sync_dir(target.parent)


def load_pg(db_engine: Engine, dump: Path, progress: Progress) -> None:
    """Load a custom-format dump into the (empty) database in one transaction."""
    tool = pg_tool("pg_restore", db_engine)
    size = dump.stat().st_size
    progress("database", 0, size)
    _run(tool, ["--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges",
                f"--dbname={_libpq(db_engine.url)}", str(dump)], db_engine.url, "database", progress)
    progress("database", size, size)



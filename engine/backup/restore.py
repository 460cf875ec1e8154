"""``duban restore FILE``: an empty installation filled from a backup archive, all or nothing.

In order, and nothing is written to the database or the evidence folder before the last step:

1. the archive is read as a duban backup: a manifest, member names a backup has, regular files
   only, each member once, exactly the members the manifest lists, the backend this installation
   uses, a schema revision this duban knows (else exit 2);
2. the database must have no tables and the evidence folder no entries (else exit 1: a restore
   never merges into, or overwrites, what is there);
3. every member is copied out beside its destination (the database beside its file, or to a
   temporary file for ``pg_restore``; the evidence files into a hidden folder beside the evidence
   folder) and hashed on the way: a size or SHA-256 that is not the manifest's refuses the
   archive, naming the member (exit 2), and removes every copy;
4. the evidence folder is renamed into place (an empty folder is replaced by the rename), then
   the database: SQLite's file by a rename, PostgreSQL's by ``pg_restore --single-transaction``;
   if the database cannot be put in place, the evidence folder is taken back out.

Upgrading an older archive's schema to head is the caller's next step (``duban restore`` does it).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ..config import Config
from ..errors import BadInput, Refused
from ..issues.evidence import EvidenceStore
from ..store import adminlog, db
from .database import Progress, backend, load_pg, load_sqlite, sqlite_path, sync_dir, tables_in
from .manifest import CHUNK, MANIFEST, Damaged, HashingReader, Manifest, check_name


@dataclass(frozen=True)
class Restored:
    manifest: Manifest
    database: str  # where it went (no password)
    evidence_folder: Path
    files: int
    bytes: int


def restore_backup(config: Config, db_engine: Engine, archive: Path, *, progress: Progress) -> Restored:
    kind = backend(db_engine)
    store = EvidenceStore.of(config)
    with _open(archive) as tar:
        members = _members(tar)
        manifest = _manifest(tar, members)
        _matches(manifest, members, kind, db_engine)
        _require_empty(config, store.folder)
        folder = store.folder
        folder.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.restoring-"))
        db_copy: Path | None = None
        try:
            total = sum(m.size for m in manifest.members.values())
            done = [0]

            def moved(n: int) -> None:
                done[0] += n
                progress("verifying", done[0], total)

            files = work / "evidence"
            files.mkdir()
            for name in manifest.evidence():
                _copy_out(tar, members[name], manifest, files / name.rsplit("/", 1)[1], moved, mode=0o444)
            if kind == "sqlite":
                target = sqlite_path(db_engine.url)
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, raw = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.restoring-")
                os.close(fd)
                db_copy = Path(raw)
            else:
                db_copy = work / "duban.pgdump"
            _copy_out(tar, members[manifest.database_member], manifest, db_copy, moved, mode=0o600)
            _put_in_place(db_engine, kind, db_copy, files, folder, progress)
        finally:
            shutil.rmtree(work, ignore_errors=True)
            if db_copy is not None:
                with contextlib.suppress(FileNotFoundError):
                    db_copy.unlink()
    evidence_bytes = sum(manifest.members[n].size for n in manifest.evidence())
    return Restored(manifest, db_engine.url.render_as_string(hide_password=True), folder, len(manifest.evidence()),
                    evidence_bytes)


def log_restore(session: Session, restored: Restored, archive_name: str, *, by: str, door: str, now: dt.datetime,
                schema_to: str) -> None:
    """The administrators' log entry of a restore, in the caller's transaction (after the upgrade, so
    it names the schema the data now has)."""
    m = restored.manifest
    adminlog.record(session, at=now, by=by, door=door, action="restore", subject=archive_name,
                    note=f"backup made {m.created_at} by duban {m.duban_version}",
                    details={"schema_from": m.schema_revision, "schema_to": schema_to, **m.counts})


@contextlib.contextmanager
def _open(archive: Path) -> Iterator[tarfile.TarFile]:
    if not archive.is_file():
        raise BadInput(f"{archive}: no such archive")
    try:
        tar = tarfile.open(archive, "r:")  # noqa: SIM115 - closed by this context manager
    except (tarfile.TarError, OSError) as exc:
        raise Damaged(f"{archive}: not a duban backup archive (an uncompressed tar): {exc}") from None
    try:
        yield tar
    finally:
        tar.close()


def _members(tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    try:
        infos = tar.getmembers()
    except (tarfile.TarError, OSError) as exc:
        raise Damaged(f"the archive is damaged or cut short: {exc}", hint="nothing was restored") from None
    found: dict[str, tarfile.TarInfo] = {}
    for info in infos:
        check_name(info.name)
        if not info.isreg():
            raise Damaged(f"{info.name}: not a regular file in the archive; nothing was restored")
        if info.name in found:
            raise Damaged(f"{info.name}: in the archive twice; nothing was restored")
        found[info.name] = info
    return found


def _manifest(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo]) -> Manifest:
    info = members.get(MANIFEST)
    if info is None:
        raise Damaged(f"the archive has no {MANIFEST}: not a duban backup, or cut short; nothing was restored")
    if info.size > 64 * 2**20:
        raise Damaged(f"{MANIFEST}: {info.size:,} bytes is no manifest")
    try:
        fh = tar.extractfile(info)
        raw = fh.read() if fh is not None else b""
    except (tarfile.TarError, OSError) as exc:
        raise Damaged(f"{MANIFEST}: unreadable: {exc}") from None
    return Manifest.from_json(raw)


def _matches(manifest: Manifest, members: dict[str, tarfile.TarInfo], kind: str, db_engine: Engine) -> None:
    listed = set(manifest.members)
    present = set(members) - {MANIFEST}
    for name in sorted(listed - present):
        raise Damaged(f"{name}: listed in the manifest but not in the archive (cut short?); nothing was restored")
    for name in sorted(present - listed):
        raise Damaged(f"{name}: in the archive but not in its manifest; nothing was restored")
    for name in sorted(listed):
        if members[name].size != manifest.members[name].size:
            raise Damaged(f"{name}: {members[name].size:,} bytes in the archive, the manifest says "
                          f"{manifest.members[name].size:,}; nothing was restored")
    if manifest.backend != kind:
        raise BadInput(f"the archive holds a {manifest.backend} database; this installation uses {kind} "
                       f"([database] url)", hint="restore into the kind of database the backup came from")
    scripts = ScriptDirectory.from_config(db.alembic_config(db_engine))
    try:
        known = scripts.get_revision(manifest.schema_revision) is not None
    except CommandError:
        known = False
    if not known:
        raise BadInput(f"the archive's schema revision {manifest.schema_revision} (duban {manifest.duban_version}) is "
                       f"unknown to this duban (its newest is {scripts.get_current_head()})",
                       hint="restore it with a duban at least as new as the one that made it")


def _require_empty(config: Config, folder: Path) -> None:
    tables = tables_in(config.database.url)
    if tables:
        shown = ", ".join(tables[:8]) + (" …" if len(tables) > 8 else "")
        raise Refused(f"the database is not empty ({len(tables)} table(s): {shown}); restore fills an empty database "
                      "only, nothing was restored（恢复只能写入空数据库）",
                      hint="point [database] url (or DUBAN_DATABASE_URL) at a new, empty database")
    if folder.exists():
        if not folder.is_dir():
            raise BadInput(f"the evidence folder {folder} is a file")
        entries = sorted(p.name for p in folder.iterdir())
        if entries:
            raise Refused(f"the evidence folder {folder} is not empty ({len(entries)} entr"
                          f"{'y' if len(entries) == 1 else 'ies'}); restore fills an empty folder only, nothing "
                          "was restored（恢复只能写入空的佐证材料目录）", hint="set [evidence] folder to a new, empty folder")


def _copy_out(tar: tarfile.TarFile, info: tarfile.TarInfo, manifest: Manifest, dest: Path,
              moved: Callable[[int], None], *, mode: int) -> None:
    """Copy one member to ``dest``, hashing it; refuse it unless it is what the manifest says."""
    expected = manifest.members[info.name]
    try:
        src = tar.extractfile(info)
        assert src is not None  # a regular file (checked)
        reader = HashingReader(src, moved)
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            while chunk := reader.read(CHUNK):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except (tarfile.TarError, EOFError) as exc:
        raise Damaged(f"{info.name}: unreadable in the archive ({exc}); nothing was restored") from None
    if reader.size != expected.size or reader.hexdigest() != expected.sha256:
        raise Damaged(f"{info.name}: SHA-256 {reader.hexdigest()} ({reader.size:,} bytes), the manifest says "
                      f"{expected.sha256} ({expected.size:,} bytes): the archive is damaged; nothing was restored"
                      f"（备份文件已损坏）")
    os.chmod(dest, mode)


def _put_in_place(db_engine: Engine, kind: str, db_copy: Path, files: Path, folder: Path, progress: Progress) -> None:
    existed = folder.exists()
    try:
        os.replace(files, folder)  # replaces an empty folder; a folder filled meanwhile refuses
    except OSError as exc:
        raise Refused(f"the evidence folder {folder} cannot be filled ({exc.strerror}); nothing was restored") from None
    os.chmod(folder, 0o750)
    sync_dir(folder.parent)
    try:
        if kind == "sqlite":
            load_sqlite(db_copy, sqlite_path(db_engine.url))
        else:
            load_pg(db_engine, db_copy, progress)
    except BaseException:
        os.replace(folder, files)  # back out: the restore leaves nothing behind
        if existed:
            folder.mkdir()
        raise

"""``duban backup FILE``: the database and every evidence file in one archive, replaced atomically.

The work happens in a hidden folder beside FILE (``.FILE.PID.partial``): the database snapshot,
then the tar, each member hashed as it is written; the tar is synced to disk and renamed over
FILE, and the folder removed. A backup killed at any point leaves FILE as it was (the previous
archive, or none) and at most its own hidden folder, which the next backup of FILE removes once
its process is gone.

Which evidence files: every file of the store folder named by a SHA-256, and every file the
copied rows name — a row kept outside the store by an older version is backed up under its
SHA-256, so a restore puts it in the store. A file a row names that is nowhere is listed in the
manifest as ``missing``, one whose bytes no longer match its name as ``changed``; the archive is
still written, and the command says so (exit 1).
"""

from __future__ import annotations

import datetime as dt
import glob
import io
import os
import re
import shutil
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from .. import __version__
from ..config import Config
from ..errors import BadInput
from ..issues.evidence import EvidenceStore
from .database import Progress, Snapshot, backend, snapshot, sync_dir
from .manifest import DATABASE_MEMBERS, MANIFEST, HashingReader, Manifest, Member, evidence_name

_SHA = re.compile(r"[0-9a-f]{64}")
HOLD_ENV = "DUBAN_TEST_BACKUP_HOLD"
"""Tests only: the path of a file the backup waits for once the database is in the archive, so a
test can ``kill -9`` it mid-way, deterministically. Nothing else sets it."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest: Manifest
    size: int
    seconds: float


def make_backup(config: Config, db_engine: Engine, target: Path, *, progress: Progress,
                now: dt.datetime | None = None) -> BackupResult:
    started = time.monotonic()
    store = EvidenceStore.of(config)
    folder = _target_folder(target, store)
    _clear_stale(folder, target.name)
    work = folder / f".{target.name}.{os.getpid()}.partial"
    work.mkdir(mode=0o700)
    try:
        kind = backend(db_engine)
        snap = snapshot(db_engine, work / "database", progress)
        files, missing = _evidence_files(store, snap)
        when = (now or dt.datetime.now(dt.UTC)).astimezone(config.tz)
        manifest = Manifest(duban_version=__version__, schema_revision=snap.revision,
                            created_at=when.isoformat(timespec="seconds"), timezone=config.calendar.timezone,
                            backend=kind, counts={**snap.counts, "evidence_files": len(files)}, missing=missing)
        partial = work / "archive.tar"
        _write_tar(partial, snap, files, manifest, progress)
        os.replace(partial, target)
        sync_dir(folder)
        return BackupResult(target, manifest, target.stat().st_size, time.monotonic() - started)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _target_folder(target: Path, store: EvidenceStore) -> Path:
    folder = target.parent.resolve()
    if not folder.is_dir():
        raise BadInput(f"{target}: the folder {target.parent} does not exist")
    if target.is_dir():
        raise BadInput(f"{target}: is a folder; give the archive's file name (e.g. duban-2026-12-06.tar)")
    if (folder / target.name).is_relative_to(store.folder):
        raise BadInput(f"{target}: inside the evidence folder {store.folder}; keep backups elsewhere")
    return folder


def _clear_stale(folder: Path, name: str) -> None:
    """Remove the work folders of earlier backups of the same FILE whose process is gone."""
    for stale in folder.glob(f".{glob.escape(name)}.*.partial"):
        pid = stale.name[len(name) + 2:-len(".partial")]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _evidence_files(store: EvidenceStore, snap: Snapshot) -> tuple[dict[str, Path], list[str]]:
    """SHA-256 -> the file to archive under it; and the SHA-256s rows name that are nowhere."""
    files: dict[str, Path] = {}
    if store.folder.is_dir():
        for entry in store.folder.iterdir():
            if _SHA.fullmatch(entry.name) and entry.is_file():
                files[entry.name] = entry
    missing = []
    for sha in sorted(snap.stored - files.keys()):
        outside = snap.outside.get(sha)
        if outside is not None and outside.is_file():
            files[sha] = outside
        else:
            missing.append(sha)
    return dict(sorted(files.items())), missing


def _write_tar(partial: Path, snap: Snapshot, files: dict[str, Path], manifest: Manifest, progress: Progress) -> None:
    sizes = {sha: path.stat().st_size for sha, path in files.items()}
    total = snap.path.stat().st_size + sum(sizes.values())
    done = 0

    def moved(n: int) -> None:
        nonlocal done
        done += n
        progress("archive", done, total)

    # 0600: the archive holds the whole database (password hashes, tokens' hashes) and every file
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as raw:
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            manifest.members[DATABASE_MEMBERS[manifest.backend]] = _add(tar, DATABASE_MEMBERS[manifest.backend],
                                                                        snap.path, moved, mode=0o600)
            raw.flush()
            _hold_for_tests()
            for sha, path in files.items():
                member = _add(tar, evidence_name(sha), path, moved, mode=0o444)
                manifest.members[evidence_name(sha)] = member
                if member.sha256 != sha:
                    manifest.changed.append(sha)
            body = manifest.to_json()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(body), int(time.time()), 0o444
            tar.addfile(info, io.BytesIO(body))
        raw.flush()
        os.fsync(raw.fileno())


def _add(tar: tarfile.TarFile, name: str, path: Path, moved: Callable[[int], None], *, mode: int) -> Member:
    with path.open("rb") as fh:
        st = os.fstat(fh.fileno())
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = st.st_size, int(st.st_mtime), mode
        reader = HashingReader(fh, moved)
        tar.addfile(info, reader)  # anything with read() will do
    return Member(reader.hexdigest(), reader.size)


def _hold_for_tests() -> None:
    gate = os.environ.get(HOLD_ENV)
    if gate:
        while not Path(gate).exists():
            time.sleep(0.05)

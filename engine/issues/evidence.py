"""Evidence (佐证材料) in duban's own store.

Every door (the CLI's ``--evidence``, the workspace's upload, the API's) hands its files to one
``Staging``: each file is read once, hashed (SHA-256) and checked (not empty, not over
``[evidence] max_bytes``). A small one (up to ``inline_max_bytes``) is kept in the database row; a
larger one is written to a temporary file *in* the store folder. Only when the action the file
belongs to has been accepted does ``Staging.keep`` check the user's quota and move each temporary
file to its name, the SHA-256, with ``os.replace`` (atomic; the same bytes are kept once). Leaving
the ``with`` block removes every temporary file that was not kept, so a refused or failed action
leaves nothing in the store. The CLI copies the user's file in like the web does: deleting or
editing the original afterwards changes nothing.

Every download is checked against the hash recorded when the file was added: a changed file is
refused (``EvidenceChanged``, 409) and a missing one is reported (``EvidenceMissing``, 404), both
logged, never served. Rows written before the store existed (a CLI file kept by its own path
outside the store) are served while their bytes still match and are reported by
``duban evidence check``, which can also ``--adopt`` them (copy them in).

A full disk is ``NoSpace`` (HTTP 507, CLI exit 1): while writing (ENOSPC) or when less than
``[evidence] min_free_bytes`` would be left; ``/healthz`` reports the folder's free space.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, TypedDict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..config import Config
from ..errors import BadInput, NoSpace, NotFound, Refused
from ..store.models import Evidence

log = logging.getLogger("duban.evidence")

CHUNK = 1 << 20
STAGING_PREFIX = ".staging-"  # temporary files in the store folder; never a SHA-256 name
_SHA = re.compile(r"[0-9a-f]{64}")
_SYSTEM_TREES = ("/proc", "/sys", "/dev", "/run")  # not documents, whatever a link says
_FULL = (errno.ENOSPC, errno.EDQUOT)


@dataclass(frozen=True)
class EvidenceFile:
    """One accepted file: kept inline (``content``) or in the store (``path`` is its SHA-256)."""

    file_name: str
    sha256: str
    size: int
    content: bytes | None
    path: str | None


class EvidenceMissing(NotFound):
    """The stored file of an evidence row is gone."""


class EvidenceChanged(Refused):
    """The stored bytes no longer have the SHA-256 recorded when the file was added."""


MISSING, CHANGED = "missing", "changed"


class SpaceReport(TypedDict):
    """The evidence folder's disk, as the health report shows it."""

    folder: str
    free_bytes: int | None
    min_free_bytes: int
    ok: bool


@dataclass(frozen=True)
class Space:
    folder: Path
    free: int | None  # None: the folder's disk cannot be read
    min_free: int

    @property
    def ok(self) -> bool:
        return self.free is not None and self.free >= self.min_free

    def report(self) -> SpaceReport:
        return SpaceReport(folder=str(self.folder), free_bytes=self.free, min_free_bytes=self.min_free, ok=self.ok)


@dataclass
class CheckReport:
    """What ``EvidenceStore.check`` found; rows as (id, file name, where or what)."""

    space: Space
    rows: int = 0
    inline: int = 0
    stored: int = 0
    outside: list[tuple[int, str, str]] = field(default_factory=list)  # served while they match; --adopt
    adopted: list[tuple[int, str, str]] = field(default_factory=list)
    missing: list[tuple[int, str, str]] = field(default_factory=list)
    changed: list[tuple[int, str, str]] = field(default_factory=list)
    unreferenced: list[str] = field(default_factory=list)  # a commit that failed after its file was kept
    staging: list[str] = field(default_factory=list)  # temporary files of uploads still running (or killed)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.changed)


def _mb(n: int) -> str:
    return f"{n / 2**20:,.1f} MB" if n < 10 * 2**20 else f"{n / 2**20:,.0f} MB"


@dataclass(frozen=True)
class EvidenceStore:
    """The evidence folder and the limits of ``[evidence]``."""

    folder: Path
    inline_max_bytes: int = 5 * 1024 * 1024
    max_bytes: int = 100 * 1024 * 1024
    quota_bytes: int = 2 * 1024**3
    min_free_bytes: int = 512 * 1024**2

    @classmethod
    def of(cls, config: Config) -> EvidenceStore:
        e = config.evidence
        return cls(config.evidence_dir(), e.inline_max_bytes, e.max_bytes, e.quota_bytes, e.min_free_bytes)

    # -- space ------------------------------------------------------------------------------

    def space(self) -> Space:
        """Free space on the folder's disk (the nearest existing parent's, before the first file)."""
        where = self.folder
        while not where.exists() and where.parent != where:
            where = where.parent
        try:
            free: int | None = shutil.disk_usage(where).free
        except OSError:
            free = None
        return Space(self.folder, free, self.min_free_bytes)

    def require_room(self, incoming: int = 0) -> None:
        space = self.space()
        if space.free is None or space.free - incoming < self.min_free_bytes:
            free = "unknown" if space.free is None else _mb(space.free)
            log.error("evidence refused: %s free in %s, %s reserved ([evidence] min_free_bytes)",
                      free, self.folder, _mb(self.min_free_bytes))
            raise NoSpace(f"服务器存储空间不足，佐证材料暂不能保存，请联系管理员（server storage is full: {free} free, "
                          f"{_mb(self.min_free_bytes)} reserved by [evidence] min_free_bytes)")

    # -- staging ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def staging(self) -> Iterator[Staging]:
        """Files taken for one action; whatever was not kept is removed on leaving, error or not."""
        staged = Staging(self)
        try:
            yield staged
        finally:
            staged.discard()

    # -- reading back -----------------------------------------------------------------------

    def locate(self, row: Evidence) -> Path | None:
        """Where a row's bytes are: the store file named by its SHA-256 if present, else the path
        an older row recorded (a file outside the store, from before the store existed)."""
        if row.content is not None:
            return None
        own = self.folder / row.sha256
        if _SHA.fullmatch(row.sha256 or "") and own.is_file():
            return own
        if row.path and not _SHA.fullmatch(row.path):
            return Path(row.path)
        return own

    def outside(self, row: Evidence) -> bool:
        """A row whose bytes are kept by a path outside the store (see ``duban evidence check``)."""
        where = self.locate(row)
        return where is not None and where.parent.resolve() != self.folder.resolve()

    def open_verified(self, row: Evidence) -> bytes | BinaryIO:
        """The row's bytes (inline) or an open file positioned at 0, only if they still hash to the
        recorded SHA-256; the caller streams from that very file, so a later swap cannot slip in."""
        body, problem, detail = self._open_checked(row)
        if body is not None:
            return body
        log.error("evidence %s (%s): %s: refused", row.id, row.file_name, detail)
        if problem == CHANGED:
            raise EvidenceChanged(f"佐证材料「{row.file_name}」的存储文件已被改动（SHA-256 不符），不予下载，请联系管理员"
                                  f"（the stored file does not match its SHA-256）")
        raise EvidenceMissing(f"佐证材料「{row.file_name}」的存储文件已丢失或无法读取，请联系管理员（duban evidence check）"
                              f"（the stored file is missing）")

    def _open_checked(self, row: Evidence) -> tuple[bytes | BinaryIO | None, str, str]:
        """(the verified body, "", "") or (None, MISSING or CHANGED, what was found)."""
        if row.content is not None:
            if hashlib.sha256(row.content).hexdigest() != row.sha256:
                return None, CHANGED, f"the bytes in the database no longer match their SHA-256 {row.sha256}"
            return row.content, "", ""
        where = self.locate(row)
        assert where is not None
        try:
            fh: BinaryIO = where.open("rb")
        except OSError as exc:
            return None, MISSING, f"{where}: {exc.strerror or exc}"
        try:
            digest, size = _hash(fh)
        except OSError as exc:
            fh.close()
            return None, MISSING, f"{where}: {exc.strerror or exc}"
        if digest != row.sha256 or size != row.size:
            fh.close()
            return None, CHANGED, f"{where} has SHA-256 {digest} ({size} bytes), {row.sha256} ({row.size} bytes) was recorded"
        fh.seek(0)
        return fh, "", ""

    def check(self, session: Session, *, adopt: bool = False) -> CheckReport:
        """Every evidence row's bytes against its SHA-256, rows kept outside the store (copied in
        with ``adopt``), and files in the folder no row names (``duban evidence check``)."""
        report = CheckReport(self.space())
        named: set[str] = set()
        for row in session.scalars(select(Evidence).order_by(Evidence.id)).yield_per(200):
            report.rows += 1
            named.add(row.sha256)
            body, problem, detail = self._open_checked(row)
            if body is None:
                (report.changed if problem == CHANGED else report.missing).append((row.id, row.file_name, detail))
                continue
            if not isinstance(body, bytes):
                body.close()
            if row.content is not None:
                report.inline += 1
            elif not self.outside(row):
                report.stored += 1
            elif adopt and self.adopt(row):
                report.adopted.append((row.id, row.file_name, str(self.locate(row))))
            else:
                report.outside.append((row.id, row.file_name, str(self.locate(row))))
        if self.folder.is_dir():
            for entry in sorted(self.folder.iterdir()):
                if entry.name.startswith(STAGING_PREFIX):
                    report.staging.append(entry.name)
                elif entry.name not in named:
                    report.unreferenced.append(entry.name)
        return report

    def adopt(self, row: Evidence) -> bool:
        """Copy a row's outside file into the store if its bytes still match; True when done."""
        where = self.locate(row)
        if where is None or not self.outside(row):
            return False
        try:
            with where.open("rb") as fh, self.staging() as staged:
                item = staged.take(row.file_name, fh, inline=False)
                if item.sha256 != row.sha256:
                    return False
                staged.promote()
        except (OSError, BadInput):
            return False
        row.path = row.sha256
        return True


def _hash(fh: IO[bytes]) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: fh.read(CHUNK), b""):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


@dataclass
class Staging:
    """The files one action brings; see the module docstring."""

    store: EvidenceStore
    files: list[EvidenceFile] = field(default_factory=list)
    _temps: list[tuple[Path, str]] = field(default_factory=list)  # (temporary file, its SHA-256)

    def take(self, name: str, fh: IO[bytes], *, inline: bool = True) -> EvidenceFile:
        """Read one file from ``fh`` in chunks: hashed, checked, inline or written to a temp file."""
        store = self.store
        store.require_room()
        inline_max = store.inline_max_bytes if inline else -1
        digest, size, head = hashlib.sha256(), 0, bytearray()
        temp: Path | None = None
        out: IO[bytes] | None = None
        try:
            while chunk := fh.read(CHUNK):
                size += len(chunk)
                if size > store.max_bytes:
                    raise BadInput(f"{name}: more than the evidence limit of {_mb(store.max_bytes)} "
                                   f"([evidence] max_bytes)（超过佐证材料大小上限）")
                digest.update(chunk)
                if out is None:
                    head += chunk
                    if len(head) <= inline_max:
                        continue
                    out, temp = self._temp()
                    chunk, head = bytes(head), bytearray()
                _write(out, chunk)
            if out is not None:
                _write(out, b"", flush=True)
        finally:
            if out is not None:
                with contextlib.suppress(OSError):  # flushed and synced already when all went well
                    out.close()
        if size == 0:
            raise BadInput(f"{name}: 文件为空（0 字节），佐证材料不能是空文件 (the file is empty)")
        sha = digest.hexdigest()
        if temp is not None:
            self._temps = [(t, sha if t == temp else s) for t, s in self._temps]
            store.require_room()  # what was just written may have eaten into the reserve
        item = EvidenceFile(name, sha, size, bytes(head) if temp is None else None, sha if temp is not None else None)
        self.files.append(item)
        return item

    def _temp(self) -> tuple[IO[bytes], Path]:
        self.store.folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.store.folder, prefix=STAGING_PREFIX)
        path = Path(name)
        self._temps.append((path, ""))  # removed on discard even if the write fails half-way
        return os.fdopen(fd, "wb"), path

    def keep(self, session: Session, *, by: str) -> None:
        """The action was accepted and has added its rows: check ``by``'s quota, then move the
        staged files to their names. Call inside the action's transaction, before it commits."""
        if not self.files:
            return
        session.flush()
        total = session.scalar(select(func.coalesce(func.sum(Evidence.size), 0))
                               .where(Evidence.added_by == by)) or 0
        new = sum(f.size for f in self.files)
        if total > self.store.quota_bytes:
            raise Refused(f"{by} 的佐证材料已用 {_mb(total - new)}，加上本次 {_mb(new)} 超过每人 "
                          f"{_mb(self.store.quota_bytes)} 的配额，未保存；请联系管理员（over the evidence quota, "
                          f"[evidence] quota_bytes）")
        self.promote()

    def promote(self) -> None:
        folder = self.store.folder
        for temp, sha in self._temps:
            if sha:
                os.chmod(temp, 0o444)  # never edited in place: a new version is a new file
                os.replace(temp, folder / sha)
        self._temps = []
        sync_dir(folder)

    def discard(self) -> None:
        for temp, _ in self._temps:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        self._temps = []


def _write(out: IO[bytes], chunk: bytes, *, flush: bool = False) -> None:
    try:
        if chunk:
            out.write(chunk)
        if flush:
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        if exc.errno in _FULL:
            log.error("evidence refused: the disk is full (%s)", exc.strerror)
            raise NoSpace("服务器存储空间已满，佐证材料未能保存，请联系管理员（no space left on the evidence disk）") from None
        raise


def sync_dir(folder: Path) -> None:
    # the renames survive a power cut only once the directory itself is on disk
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_evidence(paths: Iterable[Path], staged: Staging) -> list[EvidenceFile]:
    """Evidence named on the command line: regular files only, read before anything is written,
    so a missing or empty one refuses the whole command early; copied into the store."""
    out = []
    store = staged.store
    for path in paths:
        real = path.resolve()
        if not path.exists():
            raise BadInput(f"{path}: evidence file not found（找不到佐证材料文件）")
        if path.is_dir():
            raise BadInput(f"{path}: is a folder; give the evidence files themselves")
        if not real.is_file() or str(real).startswith(tuple(t + "/" for t in _SYSTEM_TREES)):
            raise BadInput(f"{path}: not a regular file (evidence is a document: PDF, Word, a photo…)")
        size = real.stat().st_size
        if size > store.max_bytes:
            raise BadInput(f"{path}: {size / 2**20:,.0f} MB is more than the evidence limit of "
                           f"{store.max_bytes / 2**20:,.0f} MB ([evidence] max_bytes)")
        if size == 0:
            raise BadInput(f"{path}: 文件为空（0 字节），佐证材料不能是空文件 (the file is empty)")
        store.require_room(size)
        with real.open("rb") as fh:
            out.append(staged.take(path.name, fh))
    return out


def upload_name(raw: object) -> str:
    """A browser's file name, without any folder it names (``..\\x``, ``/etc/x``)."""
    return Path(str(raw or "file").replace("\\", "/")).name[:200] or "file"


def add_occurrence_evidence(session: Session, occurrence_id: int, files: Iterable[EvidenceFile], *, by: str,
                            now: dt.datetime) -> None:
    """Record files (read and staged already) as the evidence of a duty occurrence."""
    for f in files:
        session.add(Evidence(occurrence_id=occurrence_id, file_name=f.file_name, sha256=f.sha256, size=f.size,
                             content=f.content, path=f.path, added_at=now, added_by=by))

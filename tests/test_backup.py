"""``duban backup`` and ``duban restore`` (issue #19), on a real SQLite file and the real PostgreSQL.

The backup runs as its own process while a real daemon (``duban run``) serves API writes (progress
notes and evidence uploads) from a thread; the archive is restored into a new database and a new
evidence folder, and everything is compared through duban's own readers. A test-only hold
(``DUBAN_TEST_BACKUP_HOLD``) stops a backup once its database is in the partial archive, so the
writes provably overlap it and a ``kill -9`` lands mid-way, without a sleep.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import create_engine, select, text

from engine.backup.archive import HOLD_ENV

from .conftest import PG_ADMIN_URL, ROOT, WORKFLOWS, run_cli
from .test_daemon import DaemonProc, wait_until

EXAMPLE = ROOT / "examples" / "2026-区审计局.csv"
LEDGER = "2026-区审计局"
T0 = "2026-12-01T09:00"
DUBAN = [sys.executable, "-c", "from engine.app.cli.main import entry; entry()"]
INLINE_MAX = 64  # evidence over 64 bytes goes to the store folder


# -- installations --------------------------------------------------------------------------------

@contextlib.contextmanager
def extra_pg_database() -> Iterator[str]:
    """One more empty PostgreSQL database (the pg_url fixture gives one per test)."""
    name = f"duban_r_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def second_url(db_url, tmp_path) -> Iterator[str]:
    """An empty database of the same kind as ``db_url``, to restore into."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored' / 'data' / 'duban.db'}"
    else:
        with extra_pg_database() as url:
            yield url


def make_site(folder: Path, url: str) -> Path:
    """A project folder on ``url`` with its own evidence folder and workflows; returns config.toml."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "workflows").exists():
        import shutil

        shutil.copytree(WORKFLOWS, folder / "workflows")
    config = folder / "config.toml"
    config.write_text("\n".join([
        "[database]", f"url = {json.dumps(url)}", "[workflows]", 'paths = ["workflows"]',
        "[evidence]", f"inline_max_bytes = {INLINE_MAX}", 'folder = "evidence-files"',
        "[daemon]", "sweep_every = 2", "deliver_every = 1", 'listen = ""', "stop_timeout = 8"]) + "\n",
        encoding="utf-8")
    return config


def duban(config: Path, *args: str):
    result = run_cli("--config", config, *args)
    assert "Traceback" not in result.err, result.err
    return result


def installed(folder: Path, url: str) -> Path:
    """The example ledger, two issues submitted with evidence (in the store and inline), an API token."""
    config = make_site(folder, url)
    assert duban(config, "init", "--at", T0).code == 0
    made = duban(config, "ledger", "import", EXAMPLE, "--feedback-date", "2026-11-02", "--at", T0)
    assert made.code == 0, made.err
    big, small = folder / "纪要.pdf", folder / "签字.txt"
    big.write_bytes(os.urandom(300_000))
    small.write_bytes(b"signed")
    for ref, files in (("7", [big, small]), ("5", [big])):
        evidence = [w for f in files for w in ("--evidence", f)]
        moved = duban(config, "issue", "transition", f"{LEDGER}/{ref}", "submit", "--by", "admin", *evidence,
                      "--at", "2026-12-02T10:00")
        assert moved.code == 0, moved.err
    return config


def evidence_bytes(config: Path) -> dict[int, bytes]:
    """Every evidence row's bytes, read through the store's verified open (as a download is)."""
    from engine.app.cli.context import App
    from engine.issues.evidence import EvidenceStore
    from engine.store.models import Evidence

    app = App(str(config))
    store = EvidenceStore.of(app.config)
    out = {}
    try:
        with app.reading() as session:
            for row in session.scalars(select(Evidence).order_by(Evidence.id)):
                body = store.open_verified(row)
                if isinstance(body, bytes):
                    out[row.id] = body
                else:
                    with body:
                        out[row.id] = body.read()
    finally:
        app.db_engine.dispose()
    return out


def rows(config_url: str, sql: str) -> list[tuple]:
    engine = create_engine(config_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def manifest_of(archive: Path) -> dict:
    with tarfile.open(archive) as tar:
        fh = tar.extractfile("MANIFEST.json")
        assert fh is not None
        return json.loads(fh.read())


def start_backup(config: Path, archive: Path, gate: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """``duban backup`` as its own process, held once its database is in the partial archive."""
    proc = subprocess.Popen([*DUBAN, "--config", str(config), "backup", str(archive)],
                            env={**os.environ, HOLD_ENV: str(gate)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def partial() -> Path | None:
        if proc.poll() is not None:
            raise AssertionError(f"backup ended early: {proc.communicate()}")
        found = [p for p in archive.parent.glob(f".{archive.name}.{proc.pid}.partial/archive.tar")
                 if p.stat().st_size > 0]
        return found[0] if found else None

    return proc, wait_until(partial, 60, "the partial archive with the database in it")


class Writer(threading.Thread):
    """API writes through the daemon, one after another, until stopped: progress notes, and evidence."""

    def __init__(self, base: str, token: str):
        super().__init__(daemon=True)
        self.base, self.token = base, token
        self.stop = threading.Event()
        self.done = 0
        self.failures: list[str] = []

    def run(self) -> None:
        auth = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.base, headers=auth, timeout=30) as web:
            n = 0
            while not self.stop.is_set():
                n += 1
                path = f"/api/v1/issues/{quote(LEDGER)}/{1 + n % 8}"
                if n % 3:
                    answer = web.post(f"{path}/progress", json={"note": f"进展 {n}"})
                else:
                    answer = web.post(f"{path}/evidence", files={"file": (f"照片{n}.jpg", os.urandom(5000), "image/jpeg")})
                if answer.status_code == 201:
                    self.done += 1
                else:
                    self.failures.append(f"{answer.status_code} {answer.text[:200]}")


# -- backup while the daemon writes, then restore ---------------------------------------------------

def test_backup_while_the_daemon_writes_then_restore_gives_the_same_installation(db_url, second_url, tmp_path):
    config = installed(tmp_path / "live", db_url)
    token = duban(config, "user", "token", "admin").out.strip().splitlines()[-1]
    archive = tmp_path / "backups" / "duban.tar"
    archive.parent.mkdir()
    with DaemonProc(config) as daemon:
        daemon.started()
        writer = Writer(f"http://127.0.0.1:{daemon.port}", token)
        writer.start()
        try:
            wait_until(lambda: writer.done >= 5, 60, "the first API writes")
            history_before = rows(db_url, "SELECT count(*) FROM history")[0][0]
            proc, _ = start_backup(config, archive, tmp_path / "go")
            held_at = writer.done
            wait_until(lambda: writer.done >= held_at + 5, 60, "API writes while the backup is half-way")
            (tmp_path / "go").touch()
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err.decode()
        finally:
            writer.stop.set()
            writer.join(60)
        assert daemon.stop() == 0, daemon.output()
    assert not writer.failures, writer.failures[:3]
    assert "backup written to" in out.decode()
    assert not list(archive.parent.glob(".*.partial"))  # the work folder is gone

    manifest = manifest_of(archive)
    assert manifest["schema_revision"] == rows(db_url, "SELECT version_num FROM alembic_version")[0][0]
    assert manifest["created_at"].endswith("+08:00") and manifest["duban_version"]
    assert history_before <= manifest["counts"]["history"] < rows(db_url, "SELECT count(*) FROM history")[0][0]
    with tarfile.open(archive) as tar:  # every member hashes to what the manifest says
        for info in tar.getmembers():
            if info.name != "MANIFEST.json":
                fh = tar.extractfile(info)
                assert fh is not None
                assert hashlib.sha256(fh.read()).hexdigest() == manifest["members"][info.name]["sha256"], info.name

    target = make_site(tmp_path / "restored", second_url)
    restored = duban(target, "restore", archive)
    assert restored.code == 0, restored.err
    assert "every SHA-256 checked" in restored.out

    live_status = duban(config, "status", "--json").json
    assert duban(target, "status", "--json").json == live_status
    assert rows(second_url, "SELECT count(*) FROM issues") == rows(db_url, "SELECT count(*) FROM issues") == [(8,)]
    # the restored history is the live one as it stood at one instant: a prefix of it, nothing torn
    copied = rows(second_url, "SELECT id, at, by, trigger, note FROM history ORDER BY id")
    live = rows(db_url, "SELECT id, at, by, trigger, note FROM history ORDER BY id")
    assert len(copied) == manifest["counts"]["history"] and copied == live[:len(copied)]
    restored_files, live_files = evidence_bytes(target), evidence_bytes(config)
    assert len(restored_files) == manifest["counts"]["evidence_rows"] >= 3
    assert all(live_files[i] == body for i, body in restored_files.items())
    stored = list((tmp_path / "restored" / "evidence-files").iterdir())
    assert len(stored) >= 2 and all(p.stat().st_size > INLINE_MAX for p in stored)
    check = duban(target, "evidence", "check")
    assert check.code == 0, check.out
    verified = duban(target, "audit", "verify", "--json")  # every chain and evidence hash holds in the copy
    assert verified.code == 0 and verified.json["ok"] and verified.json["evidence"] >= 3, verified.out
    log = duban(target, "ledger", "log", "--json").json
    assert log[0]["action"] == "restore" and log[0]["subject"] == "duban.tar"


# -- a backup killed mid-way ------------------------------------------------------------------------

def test_kill_9_during_a_backup_leaves_the_previous_archive_as_it_was(db_url, tmp_path):
    config = installed(tmp_path / "live", db_url)
    archive = tmp_path / "duban.tar"
    assert duban(config, "backup", archive).code == 0
    previous = archive.read_bytes()
    more = tmp_path / "补充材料.pdf"
    more.write_bytes(os.urandom(200_000))
    assert duban(config, "issue", "transition", f"{LEDGER}/4", "submit", "--by", "admin", "--evidence", more,
                 "--at", "2026-12-03T10:00").code == 0

    proc, partial = start_backup(config, archive, tmp_path / "never")
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert archive.read_bytes() == previous
    assert partial.exists()  # what the killed process left, beside the archive

    again = duban(config, "backup", archive)
    assert again.code == 0, again.err
    assert not partial.parent.exists()  # removed by the next backup: its process is gone
    sha = hashlib.sha256(more.read_bytes()).hexdigest()
    assert f"evidence/{sha}" in manifest_of(archive)["members"]


# -- restore refuses ----------------------------------------------------------------------------------

def tampered(archive: Path, member: str, dest: Path) -> Path:
    """A copy of ``archive`` with one byte of ``member``'s data changed."""
    data = bytearray(archive.read_bytes())
    with tarfile.open(archive) as tar:
        at = tar.getmember(member).offset_data + 100
    data[at] ^= 0xFF
    dest.write_bytes(bytes(data))
    return dest


def nothing_restored(config: Path, url: str) -> None:
    folder = config.parent / "evidence-files"
    assert not folder.exists() or not any(folder.iterdir())
    assert not [p for p in config.parent.rglob("*") if ".restoring" in p.name]
    if url.startswith("sqlite"):
        db_file = Path(url.removeprefix("sqlite:///"))
        assert not db_file.exists() or not rows(url, "SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        assert not rows(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")


def test_restore_refuses_a_target_not_empty_and_a_damaged_archive(db_url, second_url, tmp_path):
    config = installed(tmp_path / "live", db_url)
    archive = tmp_path / "duban.tar"
    assert duban(config, "backup", archive).code == 0
    target = make_site(tmp_path / "restored", second_url)
    database = manifest_of(archive)["members"]
    evidence = next(n for n in database if n.startswith("evidence/"))
    db_member = next(n for n in database if n.startswith("database/"))

    # damaged: a changed byte (named), cut short, not a tar, a member no backup has
    for broken, named in ((tampered(archive, evidence, tmp_path / "t1.tar"), evidence),
                          (tampered(archive, db_member, tmp_path / "t2.tar"), db_member)):
        refused = duban(target, "restore", broken)
        assert refused.code == 2, refused.err
        assert named in refused.err and "nothing was restored" in refused.err
        nothing_restored(target, second_url)
    cut = tmp_path / "cut.tar"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    not_tar = tmp_path / "notes.tar"
    not_tar.write_text("not an archive", encoding="utf-8")
    hostile = tmp_path / "hostile.tar"
    hostile.write_bytes(archive.read_bytes())
    with tarfile.open(hostile, "a") as tar:
        info = tarfile.TarInfo("../../etc/cron.d/x")
        info.size = 4
        tar.addfile(info, fileobj=io.BytesIO(b"boom"))
    for broken, named in ((cut, ""), (not_tar, "not a duban backup"), (hostile, "../../etc/cron.d/x")):
        refused = duban(target, "restore", broken)
        assert refused.code == 2, (broken, refused.err)
        assert named in refused.err
        nothing_restored(target, second_url)

    # not empty: an evidence folder with a file in it; a database with tables
    folder = target.parent / "evidence-files"
    folder.mkdir()
    (folder / "README").write_text("someone's file", encoding="utf-8")
    refused = duban(target, "restore", archive)
    assert refused.code == 1 and "evidence folder" in refused.err and "not empty" in refused.err
    (folder / "README").unlink()
    nothing_restored(target, second_url)
    assert duban(target, "db", "upgrade", "--revision", "0001").code == 0
    refused = duban(target, "restore", archive)
    assert refused.code == 1 and "database is not empty" in refused.err
    assert not any(folder.iterdir())


def test_an_older_archive_is_upgraded_to_this_schema(tmp_path):
    old = make_site(tmp_path / "old", f"sqlite:///{tmp_path / 'old' / 'duban.db'}")
    assert duban(old, "db", "upgrade", "--revision", "0013").code == 0
    archive = tmp_path / "old.tar"
    assert duban(old, "backup", archive).code == 0
    assert manifest_of(archive)["schema_revision"] == "0013"
    target = make_site(tmp_path / "new", f"sqlite:///{tmp_path / 'new' / 'duban.db'}")
    restored = duban(target, "restore", archive)
    assert restored.code == 0, restored.err
    current = duban(target, "db", "status").out
    assert "0013 upgraded to" in restored.out and f"database: {current.split()[-1]}" in current

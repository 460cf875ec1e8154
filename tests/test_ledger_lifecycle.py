"""A ledger archived when its rectification is over, reopened, and a test ledger deleted (issue #19).

On a real SQLite file and the real PostgreSQL: the CLI in-process, the API through the real
uvicorn on 127.0.0.1, the typed confirmation of ``ledger delete`` through a real pseudo-terminal.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import create_engine, text

from .conftest import ROOT, serving, site_for

EXAMPLE = ROOT / "examples" / "2026-区审计局.csv"
LEDGER = "2026-区审计局"
TEST_LEDGER = "测试台账"
T0 = "2026-12-01T09:00"
ARCHIVED = "台账已归档，只读"
DUBAN = [sys.executable, "-c", "from engine.app.cli.main import entry; entry()"]


def scalar(url: str, sql: str, **params) -> int:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).scalar_one()
    finally:
        engine.dispose()


def ledger_id(url: str, name: str) -> int:
    return scalar(url, "SELECT id FROM ledgers WHERE name = :n", n=name)


def reminders_of(url: str, name: str) -> int:
    return scalar(url, "SELECT count(*) FROM reminders r JOIN ledgers l ON l.id = r.ledger_id WHERE l.name = :n", n=name)


@pytest.fixture
def installed(project, cli, db_url, monkeypatch):
    """The example ledger imported on this backend; evidence over 16 bytes goes to the store folder."""
    monkeypatch.setenv("DUBAN_DATABASE_URL", db_url)
    config = project / "config.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n[evidence]\ninline_max_bytes = 16\n", encoding="utf-8")
    assert cli("init", "--at", T0).code == 0
    made = cli("ledger", "import", EXAMPLE, "--feedback-date", "2026-11-02", "--at", T0)
    assert made.code == 0, made.err
    return project, db_url


def test_an_archived_ledger_is_read_only_unreminded_and_still_reported(installed, cli, tmp_path):
    from engine.accounts.users import actor_for
    from engine.app.cli.context import App
    from engine.issues.worklists import unit_rows

    project, url = installed
    token = cli("user", "token", "办公室", "--at", T0).out.strip().splitlines()[-1]
    minutes = tmp_path / "纪要.txt"
    minutes.write_bytes("整改会议纪要：已落实。".encode() * 10)
    history = scalar(url, "SELECT count(*) FROM history")

    archived = cli("ledger", "archive", LEDGER, "--by", "admin", "--note", "整改工作结束", "--at", "2026-12-02T09:00")
    assert archived.code == 0, archived.err
    assert scalar(url, "SELECT count(*) FROM issues WHERE next_remind_at IS NOT NULL") == 0
    assert cli("ledger", "archive", LEDGER, "--by", "admin").code == 1  # once is enough

    # every write through the CLI is refused with the same words, nothing of it kept
    for args in (("issue", "transition", f"{LEDGER}/7", "submit", "--by", "办公室", "--evidence", minutes),
                 ("issue", "transition", f"{LEDGER}/2", "plan", "--by", "admin"),
                 ("issue", "edit", f"{LEDGER}/4", "--deadline", "2027-01-29", "--note", "延期", "--by", "admin"),
                 ("issue", "checkin", f"{LEDGER}/8", "--by", "admin"),
                 ("ledger", "import", EXAMPLE),
                 ("ledger", "milestone", "done", LEDGER, "rectification-report", "--on", "2026-12-01", "--by", "admin")):
        refused = cli(*args, "--at", "2026-12-03T10:00")
        assert refused.code == 1, (args, refused.out, refused.err)
        assert ARCHIVED in refused.err and "Traceback" not in refused.err, args
    assert scalar(url, "SELECT count(*) FROM history") == history
    assert scalar(url, "SELECT count(*) FROM evidence") == 0
    assert not (project / "evidence-files").exists() or not any((project / "evidence-files").iterdir())

    # … and through the API (403), while reading still works and every step says why it is closed
    with serving(create_app_for(project, "2026-12-03T10:00")) as base:
        auth = {"Authorization": f"Bearer {token}"}
        path = f"{base}/api/v1/issues/{quote(LEDGER)}/7"
        answers = [httpx.post(f"{path}/progress", json={"note": "已召开专题会"}, headers=auth),
                   httpx.post(f"{path}/evidence", files={"file": ("纪要.txt", minutes.read_bytes(), "text/plain")},
                              headers=auth),
                   httpx.post(f"{path}/actions", json={"trigger": "submit"}, headers=auth)]
        for answer in answers:
            assert answer.status_code == 403, answer.text
            assert ARCHIVED in answer.json()["detail"]
        shown = httpx.get(path, headers=auth)
        assert shown.status_code == 200
        assert shown.json()["steps"] and all(s["blocked"] == ARCHIVED for s in shown.json()["steps"])
    assert scalar(url, "SELECT count(*) FROM history") == history

    # no reminder about it, however late it gets; other subjects (the calendar) still are swept
    swept = cli("sweep", "--at", "2027-02-01T10:00")
    assert swept.code == 0, swept.err
    assert reminders_of(url, LEDGER) == 0
    preview = cli("remind", "preview", "--at", "2027-02-01T10:00", "--until", "2027-06-30", "--json")
    assert not [r for r in preview.json if str(r["subject"]).startswith(LEDGER)]

    # still in the report, the status board and the overview
    report = cli("report", "--ledger", LEDGER, "--format", "md", "-o", project / "r.md")
    assert report.code == 0, report.err
    assert "4个方面共8个具体问题" in (project / "r.md").read_text(encoding="utf-8")
    assert f"台账 {LEDGER}（已归档）：4个方面共8个具体问题" in cli("status", "--ledger", LEDGER).out
    app = App(str(project / "config.toml"))
    with app.reading() as session:
        rows = unit_rows(session, app.runtime, actor_for(session, "admin", "web"), app.runtime.calendar.local_date(
            app.now("2027-02-01T10:00")))
    assert sum(r["issues"] for r in rows) == 8

    # reopened: planned from now, reminded again, writable again
    reopened = cli("ledger", "unarchive", LEDGER, "--by", "admin", "--note", "问题反弹", "--at", "2027-02-01T10:00")
    assert reopened.code == 0, reopened.err
    assert cli("sweep", "--at", "2027-02-02T10:00").code == 0
    assert reminders_of(url, LEDGER) > 0
    moved = cli("issue", "transition", f"{LEDGER}/2", "plan", "--by", "admin", "--at", "2027-02-02T11:00")
    assert moved.code == 0, moved.err

    log = cli("ledger", "log", LEDGER, "--json").json
    assert [(e["action"], e["by"], e["door"], e["note"]) for e in log] == [
        ("ledger.unarchive", "admin", "cli", "问题反弹"), ("ledger.archive", "admin", "cli", "整改工作结束")]
    assert log[1]["at"] == "2026-12-02T09:00:00+08:00" and log[1]["details"]["issues"] == 8


def create_app_for(project: Path, at: str):
    from engine.app.http.app import create_app

    return create_app(site_for(project / "config.toml", at=at))


def _typed(project: Path, name: str, typed: str) -> subprocess.CompletedProcess[bytes]:
    """``duban ledger delete NAME --by admin`` with ``typed`` entered at its prompt on a real terminal."""
    leader, follower = os.openpty()
    try:
        proc = subprocess.Popen([*DUBAN, "--config", str(project / "config.toml"), "ledger", "delete", name,
                                 "--by", "admin"], stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                cwd=project)
        os.write(leader, typed.encode() + b"\n")  # the terminal keeps the line until the prompt reads it
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(leader)
        os.close(follower)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_deleting_a_test_ledger_needs_its_name_typed_and_leaves_a_log_entry(installed, cli, tmp_path):
    project, url = installed
    assert cli("ledger", "import", EXAMPLE, "--ledger", TEST_LEDGER, "--feedback-date", "2026-11-02",
               "--at", T0).code == 0
    shared, own = tmp_path / "会议纪要.txt", tmp_path / "测试照片.txt"
    shared.write_bytes("两本台账共用的同一份材料".encode() * 10)
    own.write_bytes("只属于测试台账的材料".encode() * 10)
    for name, files in ((LEDGER, [shared]), (TEST_LEDGER, [shared, own])):
        evidence = [w for f in files for w in ("--evidence", f)]
        done = cli("issue", "transition", f"{name}/7", "submit", "--by", "办公室", *evidence, "--at", "2026-12-02T10:00")
        assert done.code == 0, done.err
    assert cli("sweep", "--at", "2027-01-20T10:00").code == 0
    gone_id = ledger_id(url, TEST_LEDGER)
    issue_ids = f"SELECT id FROM issues WHERE ledger_id = {gone_id}"
    before = {"issues": 8, "history": scalar(url, f"SELECT count(*) FROM history WHERE issue_id IN ({issue_ids})"),
              "reminders": reminders_of(url, TEST_LEDGER)}
    assert before["history"] > 0 and before["reminders"] > 0
    store = project / "evidence-files"
    shared_sha, own_sha = (scalar(url, "SELECT sha256 FROM evidence WHERE file_name = :f LIMIT 1", f=f.name)
                           for f in (shared, own))
    assert {p.name for p in store.iterdir()} == {shared_sha, own_sha}

    # refused, nothing deleted: not an administrator; no terminal and no --confirm; the wrong name
    assert cli("ledger", "delete", TEST_LEDGER, "--by", "办公室", "--confirm", TEST_LEDGER).code == 1
    no_tty = cli("ledger", "delete", TEST_LEDGER, "--by", "admin")
    assert no_tty.code == 2 and "--confirm" in no_tty.err
    assert cli("ledger", "delete", TEST_LEDGER, "--by", "admin", "--confirm", LEDGER).code == 1
    mistyped = _typed(project, TEST_LEDGER, "测试")
    assert mistyped.returncode == 1, mistyped.stderr.decode()
    assert "不符" in mistyped.stderr.decode() and "8 issue(s)" in mistyped.stderr.decode()  # shown before the prompt
    assert ledger_id(url, TEST_LEDGER) == gone_id

    typed = _typed(project, TEST_LEDGER, TEST_LEDGER)
    assert typed.returncode == 0, typed.stderr.decode()
    assert "已删除" in typed.stdout.decode()

    # everything of it is gone; the other ledger and the file it shares are not
    assert scalar(url, "SELECT count(*) FROM ledgers WHERE name = :n", n=TEST_LEDGER) == 0
    for table, column in (("issues", "ledger_id"), ("reminders", "ledger_id"), ("duties", "ledger_id"),
                          ("duty_occurrences", "ledger_id"), ("ledger_imports", "ledger_id")):
        assert scalar(url, f"SELECT count(*) FROM {table} WHERE {column} = {gone_id}") == 0, table
    assert scalar(url, "SELECT count(*) FROM history h LEFT JOIN issues i ON i.id = h.issue_id WHERE i.id IS NULL") == 0
    assert scalar(url, "SELECT count(*) FROM evidence WHERE sha256 = :s", s=own_sha) == 0
    assert scalar(url, "SELECT count(*) FROM evidence WHERE sha256 = :s", s=shared_sha) == 1
    assert {p.name for p in store.iterdir()} == {shared_sha}
    assert scalar(url, "SELECT count(*) FROM issues") == 8
    check = cli("evidence", "check")
    assert check.code == 0 and "no row names" not in check.out

    log = cli("ledger", "log", "--json").json
    assert log[0]["action"] == "ledger.delete" and log[0]["subject"] == TEST_LEDGER and log[0]["by"] == "admin"
    assert log[0]["details"]["issues"] == 8 and log[0]["details"]["history"] == before["history"]
    assert log[0]["details"]["store_files_removed"] == 1

    # an archived ledger is evidence: reopened first, or not deleted at all
    assert cli("ledger", "archive", LEDGER, "--by", "admin").code == 0
    kept = cli("ledger", "delete", LEDGER, "--by", "admin", "--confirm", LEDGER)
    assert kept.code == 1 and "已归档" in kept.err
    assert scalar(url, "SELECT count(*) FROM issues") == 8

"""Evidence in duban's own store (issue #18): copied in at every door, kept by SHA-256, checked on
every download, refused when empty, over the quota or when the disk is full, and never left behind
by a refused upload.

Runs the real application on uvicorn (127.0.0.1) over the shipped example ledger; issue 7 is
办公室's (整改中), issue 4 is 财务室's. ``inline_max_bytes`` is 16 so the test files go to the store.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from .conftest import ROOT
from .test_workspace import _csrf, _link, _signed_in, workspace

EXAMPLE = ROOT / "examples" / "2026-区审计局.csv"
LEDGER = "2026-区审计局"
T0 = "2026-12-01T09:00"
NOW = "2026-12-24T10:00"
PROOF = b"%PDF-1.4 rectification minutes, page one of one"  # 47 bytes: kept in the store
SHA = hashlib.sha256(PROOF).hexdigest()


def _setup(project: Path, cli, **evidence: int) -> Path:
    """The example ledger imported, 办公室 and an observer with API tokens; returns the store folder."""
    settings = {"inline_max_bytes": 16, **evidence}
    config = project / "config.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n[evidence]\n"
                      + "".join(f"{k} = {v}\n" for k, v in settings.items()), encoding="utf-8")
    assert cli("init", "--at", T0).code == 0
    assert cli("ledger", "import", EXAMPLE, "--at", T0).code == 0
    assert cli("user", "add", "观察员", "--role", "observer").code == 0
    return project / "evidence-files"


def _token(cli, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {cli('user', 'token', name, '--at', NOW).out.strip()}"}


def _in_store(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _evidence(cli, ref: str = "7") -> list[dict]:
    return cli("issue", "show", f"{LEDGER}/{ref}", "--json").json["evidence"]


def test_cli_evidence_is_copied_in_and_survives_deleting_or_replacing_the_original(project, cli):
    folder = _setup(project, cli)
    proof = project / "纪要.pdf"
    proof.write_bytes(PROOF)
    assert cli("issue", "transition", f"{LEDGER}/7", "submit", "--by", "办公室", "--evidence", proof,
               "--at", "2026-12-23T10:00").code == 0
    assert _in_store(folder) == [SHA] and (folder / SHA).read_bytes() == PROOF
    # the same bytes for another issue are kept once
    copy = project / "副本.pdf"
    copy.write_bytes(PROOF)
    assert cli("issue", "transition", f"{LEDGER}/3", "start", "--by", "办公室", "--evidence", copy,
               "--at", "2026-12-23T11:00").code == 0
    assert _in_store(folder) == [SHA]
    evidence_id = _evidence(cli)[0]["id"]
    proof.unlink()
    with workspace(project) as base:
        got = httpx.get(f"{base}/api/v1/evidence/{evidence_id}", headers=_token(cli, "办公室"))
        assert got.status_code == 200 and got.content == PROOF
        proof.write_bytes(b"%PDF-1.4 a different document altogether")  # the same name, new content
        got = httpx.get(f"{base}/api/v1/evidence/{evidence_id}", headers=_token(cli, "办公室"))
        assert got.status_code == 200 and got.content == PROOF
        assert "纪要.pdf" in got.headers["content-disposition"] or "%E7%BA%AA" in got.headers["content-disposition"]
    checked = cli("evidence", "check", "--json")
    assert checked.code == 0 and checked.json["stored"] == 2 and checked.json["unreferenced"] == []


def test_a_changed_or_missing_store_file_is_refused_on_download(project, cli, caplog):
    folder = _setup(project, cli)
    proof = project / "纪要.pdf"
    proof.write_bytes(PROOF)
    assert cli("issue", "transition", f"{LEDGER}/7", "submit", "--by", "办公室", "--evidence", proof,
               "--at", "2026-12-23T10:00").code == 0
    evidence_id = _evidence(cli)[0]["id"]
    stored = folder / SHA
    stored.chmod(0o644)
    stored.write_bytes(PROOF.replace(b"one of one", b"TAMPERED!!"))  # same size, other bytes
    caplog.set_level(logging.ERROR, logger="duban.evidence")
    with workspace(project) as base:
        api = httpx.get(f"{base}/api/v1/evidence/{evidence_id}", headers=_token(cli, "办公室"))
        assert api.status_code == 409 and "已被改动" in api.json()["detail"]
        assert b"TAMPERED" not in api.content
        web = _signed_in(base, _link(cli, "办公室").replace("/w/", f"{base}/w/", 1))
        page = web.get(f"/ws/evidence/{evidence_id}")
        assert page.status_code == 409 and "已被改动" in page.text and "TAMPERED" not in page.text
        assert f"evidence {evidence_id}" in caplog.text and "refused" in caplog.text
        changed = cli("evidence", "check")
        assert changed.code == 1 and "changed (SHA-256 differs)" in changed.out
        stored.unlink()
        api = httpx.get(f"{base}/api/v1/evidence/{evidence_id}", headers=_token(cli, "办公室"))
        assert api.status_code == 404 and "已丢失" in api.json()["detail"]
        assert web.get(f"/ws/evidence/{evidence_id}").status_code == 404
    missing = cli("evidence", "check")
    assert missing.code == 1 and f"missing: #{evidence_id}" in missing.out


def test_an_empty_file_is_refused_at_every_door(project, cli):
    folder = _setup(project, cli)
    empty = project / "空.pdf"
    empty.write_bytes(b"")
    moved = cli("issue", "transition", f"{LEDGER}/7", "submit", "--by", "办公室", "--evidence", empty)
    assert moved.code == 2 and "文件为空" in moved.err
    duties = cli("duty", "list", "--json", "--at", NOW).json
    assert duties, "the shipped duties have occurrences"
    done = cli("duty", "done", duties[0]["duty"], "--period", duties[0]["period"], "--by", "admin",
               "--evidence", empty, "--at", NOW)
    assert done.code == 2 and "文件为空" in done.err
    with workspace(project) as base:
        api = httpx.post(f"{base}/api/v1/issues/{LEDGER}/7/evidence", headers=_token(cli, "办公室"),
                         files={"file": ("空.pdf", b"", "application/pdf")})
        assert api.status_code == 400 and "文件为空" in api.json()["detail"]
        web = _signed_in(base, _link(cli, "办公室").replace("/w/", f"{base}/w/", 1))
        csrf = _csrf(web.get(f"/ws/issues/{LEDGER}/7").text)
        page = web.post(f"/ws/issues/{LEDGER}/7/evidence", params={"csrf": csrf}, data={"csrf": csrf},
                        files={"file": ("空.pdf", b"", "application/pdf")})
        assert page.status_code == 400 and "文件为空" in page.text
    assert _evidence(cli) == [] and _in_store(folder) == []


def test_a_refused_upload_leaves_nothing_in_the_store(project, cli):
    folder = _setup(project, cli)
    big = PROOF * 4000  # 188 KB: written to a temporary file in the store before the refusal
    with workspace(project) as base:
        for who in ("观察员", "财务室"):  # read-only, and another department's issue
            api = httpx.post(f"{base}/api/v1/issues/{LEDGER}/7/evidence", headers=_token(cli, who),
                             files={"file": ("纪要.pdf", big, "application/pdf")})
            assert api.status_code == 403, api.text
        finance = _signed_in(base, _link(cli, "财务室").replace("/w/", f"{base}/w/", 1))
        csrf = _csrf(finance.get(f"/ws/issues/{LEDGER}/4").text)
        page = finance.post(f"/ws/issues/{LEDGER}/7/evidence", params={"csrf": csrf}, data={"csrf": csrf},
                            files={"file": ("纪要.pdf", big, "application/pdf")})
        assert page.status_code == 403
        # its own issue, but a step the workflow does not have from 整改中
        page = finance.post(f"/ws/issues/{LEDGER}/4/step", params={"csrf": csrf}, data={"csrf": csrf, "trigger": "approve"},
                            files={"file": ("纪要.pdf", big, "application/pdf")})
        assert page.status_code in (403, 409)
        assert _in_store(folder) == []
        # accepted: kept under its SHA-256, no temporary file left
        ok = finance.post(f"/ws/issues/{LEDGER}/4/evidence", params={"csrf": csrf}, data={"csrf": csrf},
                          files={"file": ("对账单.pdf", big, "application/pdf")})
        assert ok.status_code == 200 and "对账单.pdf" in ok.text
        assert _in_store(folder) == [hashlib.sha256(big).hexdigest()]
    refused = cli("issue", "transition", f"{LEDGER}/4", "approve", "--by", "财务室", "--evidence",
                  _write(project / "证明.pdf", PROOF))
    assert refused.code == 1 and _in_store(folder) == [hashlib.sha256(big).hexdigest()]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_each_user_has_a_quota(project, cli):
    folder = _setup(project, cli, quota_bytes=60)
    first, second = PROOF + b"-1", PROOF + b"-2"  # 49 bytes each: a second one passes 60 in all
    with workspace(project) as base:
        office = _token(cli, "办公室")
        assert httpx.post(f"{base}/api/v1/issues/{LEDGER}/7/evidence", headers=office,
                          files={"file": ("一.pdf", first)}).status_code == 201
        over = httpx.post(f"{base}/api/v1/issues/{LEDGER}/7/evidence", headers=office,
                          files={"file": ("二.pdf", second)})
        assert over.status_code == 409 and "配额" in over.json()["detail"]
        # another user has a quota of their own
        assert httpx.post(f"{base}/api/v1/issues/{LEDGER}/4/evidence", headers=_token(cli, "财务室"),
                          files={"file": ("二.pdf", second)}).status_code == 201
    cli_over = cli("issue", "transition", f"{LEDGER}/7", "submit", "--by", "办公室", "--evidence",
                   _write(project / "三.pdf", PROOF + b"-3"))
    assert cli_over.code == 1 and "配额" in cli_over.err
    assert [e["file_name"] for e in _evidence(cli)] == ["一.pdf"]
    assert _in_store(folder) == sorted(hashlib.sha256(b).hexdigest() for b in (first, second))


def test_a_full_disk_is_507_and_healthz_says_so(project, cli):
    folder = _setup(project, cli, min_free_bytes=2**62)  # more than any disk: "full"
    with workspace(project) as base:
        api = httpx.post(f"{base}/api/v1/issues/{LEDGER}/7/evidence", headers=_token(cli, "办公室"),
                         files={"file": ("纪要.pdf", PROOF)})
        assert api.status_code == 507 and "存储空间不足" in api.json()["detail"]
        web = _signed_in(base, _link(cli, "办公室").replace("/w/", f"{base}/w/", 1))
        csrf = _csrf(web.get(f"/ws/issues/{LEDGER}/7").text)
        page = web.post(f"/ws/issues/{LEDGER}/7/evidence", params={"csrf": csrf}, data={"csrf": csrf},
                        files={"file": ("纪要.pdf", PROOF)})
        assert page.status_code == 507 and "存储空间不足" in page.text
        health = httpx.get(f"{base}/healthz")
        assert health.status_code == 503 and health.json()["status"] == "degraded"
        assert health.json()["evidence"]["ok"] is False and health.json()["evidence"]["free_bytes"] > 0
    full = cli("issue", "transition", f"{LEDGER}/7", "submit", "--by", "办公室", "--evidence",
               _write(project / "纪要.pdf", PROOF))
    assert full.code == 1 and "存储空间不足" in full.err and "Traceback" not in full.err
    assert _evidence(cli) == [] and _in_store(folder) == []
    config = project / "config.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("min_free_bytes = 4611686018427387904",
                                                                 "min_free_bytes = 1"), encoding="utf-8")
    with workspace(project) as base:
        health = httpx.get(f"{base}/healthz").json()
        assert health["status"] == "ok" and health["evidence"]["ok"] is True
        assert health["evidence"]["folder"] == str(folder.resolve())


def test_disk_full_while_writing_is_no_space():
    """ENOSPC from the disk itself (/dev/full answers every write with it)."""
    from engine.errors import NoSpace
    from engine.issues.evidence import _write as write

    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    with open("/dev/full", "wb", buffering=0) as full, pytest.raises(NoSpace, match="存储空间已满"):
        write(full, b"x" * 4096, flush=True)


def test_rows_kept_outside_the_store_still_work_and_are_adopted(project, cli):
    """A row from before the store: CLI evidence recorded by the user's own path."""
    folder = _setup(project, cli)
    outside = _write(project / "旧的佐证.pdf", PROOF)
    assert cli("issue", "transition", f"{LEDGER}/7", "submit", "--by", "办公室", "--evidence", outside,
               "--at", "2026-12-23T10:00").code == 0
    (folder / SHA).unlink()
    engine = create_engine(f"sqlite:///{project / 'duban.db'}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE evidence SET path = :p"), {"p": str(outside)})
    engine.dispose()
    evidence_id = _evidence(cli)[0]["id"]
    checked = cli("evidence", "check", "--json")
    assert checked.code == 0 and [e["id"] for e in checked.json["outside"]] == [evidence_id]
    with workspace(project) as base:
        got = httpx.get(f"{base}/api/v1/evidence/{evidence_id}", headers=_token(cli, "办公室"))
        assert got.status_code == 200 and got.content == PROOF
    adopted = cli("evidence", "check", "--adopt")
    assert adopted.code == 0 and "1 adopted" in adopted.out
    outside.unlink()
    assert _in_store(folder) == [SHA]
    with workspace(project) as base:
        got = httpx.get(f"{base}/api/v1/evidence/{evidence_id}", headers=_token(cli, "办公室"))
        assert got.status_code == 200 and got.content == PROOF


def test_the_migration_names_web_uploads_by_their_sha(db_url, project, monkeypatch):
    """0013: a row of the old ``evidence-files/SHA`` kind now names the store file by its SHA alone."""
    from engine.store import db

    monkeypatch.setenv("DUBAN_DATABASE_URL", db_url)
    engine = db.make_engine(db_url)
    db.upgrade(engine, "0012")
    old = f"{project}/evidence-files/{SHA}"
    with engine.begin() as conn:
        for path in (old, "/home/someone/纪要.pdf"):
            conn.execute(text("INSERT INTO evidence (file_name, sha256, size, content, path, added_at, added_by) "
                              "VALUES ('纪要.pdf', :sha, 47, NULL, :path, :at, 'x')"),
                         {"sha": SHA, "path": path, "at": "2026-12-01 00:00:00"})
    db.upgrade(engine)
    with engine.connect() as conn:
        paths = [r[0] for r in conn.execute(text("SELECT path FROM evidence ORDER BY id"))]
    assert paths == [SHA, "/home/someone/纪要.pdf"]
    _downgrade(engine, "0012")  # and back: the old relative path, the outside one untouched
    with engine.connect() as conn:
        paths = [r[0] for r in conn.execute(text("SELECT path FROM evidence ORDER BY id"))]
    assert paths == [f"evidence-files/{SHA}", "/home/someone/纪要.pdf"]
    engine.dispose()


def _downgrade(engine, revision: str) -> None:
    from alembic import command

    from engine.store import db

    cfg = db.alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)

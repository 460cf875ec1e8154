"""A record a discipline body can trust (issue #19): the history as a hash chain per issue.

A ledger worked through every door verifies; then each kind of tampering, done with raw SQL behind
duban's back, is found and named: a note changed, an entry deleted, a forged entry inserted, an
evidence file's hash changed — on SQLite and PostgreSQL. A head taken earlier (an export's) still
verifies after honest work, and fails once the past was rewritten and re-hashed. Three daemons and
twenty clients writing at once on PostgreSQL leave chains that verify.
"""

from __future__ import annotations

import json
import re
import threading

import httpx
import pytest
from sqlalchemy import create_engine, text

from .conftest import ROOT, serving, site_for

EXAMPLE = ROOT / "examples" / "2026-区审计局.csv"
EVIDENCE = ROOT / "examples" / "evidence" / "整改会议纪要.txt"
LEDGER = "2026-区审计局"
UNIT = "区审计局"
AT = "2026-12-10T10:00"


def _token(cli, name: str) -> str:
    found = re.search(r"dbn_[\w\-]+", cli("user", "token", name).out)
    assert found
    return found.group(0)


@pytest.fixture
def worked(project, cli, db_url, monkeypatch):
    """The example ledger worked through every door: import, CLI steps with evidence, an API note,
    an extension asked and refused, a hand-over, a sheet edit re-imported."""
    monkeypatch.setenv("DUBAN_DATABASE_URL", db_url)
    assert cli("init").code == 0
    assert cli("ledger", "import", EXAMPLE, "--unit", UNIT, "--at", "2026-12-01T09:00").code == 0
    assert cli("user", "add", "巡察办", "--role", "reviewer").code == 0
    office = f"{UNIT}/办公室"
    assert cli("issue", "transition", f"{LEDGER}/7", "submit", "--by", office, "--evidence", EVIDENCE,
               "--at", AT).code == 0
    assert cli("issue", "transition", f"{LEDGER}/7", "return", "--by", "巡察办", "--note", "材料不足",
               "--deadline", "2027-01-15", "--at", AT).code == 0
    assert cli("issue", "edit", f"{LEDGER}/4", "--leader", "党组书记", "--by", "巡察办", "--note", "调整",
               "--at", AT).code == 0
    from engine.app.http.app import create_app

    with serving(create_app(site_for(project / "config.toml", at=AT))) as base, httpx.Client(base_url=base) as http:
        bearer = {"Authorization": f"Bearer {_token(cli, office)}"}
        assert http.post(f"/api/v1/issues/{LEDGER}/1/progress", headers=bearer, json={"note": "已制定计划"}).status_code == 201
    edited = project / f"{LEDGER}.csv"  # the office edits its export, as offices do
    assert cli("ledger", "export", edited, "--ledger", LEDGER).code == 0
    sheet = edited.read_text(encoding="utf-8-sig")
    assert "2026-12-31,待整改" in sheet
    edited.write_text(sheet.replace("2026-12-31,待整改", "2027-01-31,待整改", 1), encoding="utf-8")
    dry = cli("ledger", "import", edited, "--ledger", LEDGER, "--dry-run", "--at", AT)
    assert dry.code == 0 and "整改时限: '2026-12-31' → '2027-01-31'" in dry.out, dry.out + dry.err
    assert cli("ledger", "import", edited, "--ledger", LEDGER, "--at", AT).code == 0
    return project, db_url


def _verify(cli, *more: str):
    result = cli("audit", "verify", "--json", *more)
    return result.code, result.json if result.out.strip().startswith("{") else {}, result.err


def _sql(url: str, statement: str, **params) -> list:
    engine = create_engine(url.replace("sqlite:///", "sqlite:///") if url.startswith("sqlite") else url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


@pytest.mark.parametrize("db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_every_door_writes_its_entry_and_each_tampering_is_named(worked, cli):
    project, url = worked
    code, report, err = _verify(cli)
    assert code == 0 and report["ok"] and report["breaks"] == [], err
    assert report["entries"] >= report["issues"] + 5 and report["evidence"] == 1
    shown = {r: cli("issue", "show", f"{LEDGER}/{r}", "--json").json for r in ("1", "4", "7")}
    first = shown["7"]["history"][0]
    assert (first["trigger"], first["door"], first["note"]) == ("import", "import", f"导入 {EXAMPLE.name} 第8行")
    assert [h["trigger"] for h in shown["7"]["history"]] == ["import", "submit", "return"]
    assert ("progress", "api") in {(h["trigger"], h["door"]) for h in shown["1"]["history"]}
    assert {"field": "leader", "before": "分管副局长", "after": "党组书记"} in shown["4"]["history"][1]["changes"]
    sheet_edit = next(h for h in shown["1"]["history"] if h["trigger"] == "edit")
    assert sheet_edit["door"] == "import" and {"field": "deadline", "before": "2026-12-31",
                                               "after": "2027-01-31"} in sheet_edit["changes"]
    assert {"file": f"{LEDGER}.csv", "row": 2} in sheet_edit["changes"]

    # 1. a note changed behind duban's back
    entry_id, note = _sql(url, "SELECT id, note FROM history WHERE trigger = 'return'")[0]
    _sql(url, "UPDATE history SET note = :n WHERE id = :i", n="材料齐全", i=entry_id)
    code, report, err = _verify(cli)
    assert code == 1 and f"{LEDGER}/7: entry {entry_id}: changed after it was written" in err, err
    _sql(url, "UPDATE history SET note = :n WHERE id = :i", n=note, i=entry_id)
    assert _verify(cli)[0] == 0

    # 2. an entry deleted: the one after it no longer links
    row = _sql(url, "SELECT * FROM history WHERE trigger = 'submit'")[0]._mapping
    _sql(url, "DELETE FROM history WHERE id = :i", i=row["id"])
    code, report, err = _verify(cli)
    nxt = _sql(url, "SELECT min(id) FROM history WHERE issue_id = :i AND id > :d", i=row["issue_id"], d=row["id"])[0][0]
    assert code == 1 and f"{LEDGER}/7: entry {nxt}: an entry before it was deleted" in err, err
    # the evidence it vouched for is now in no entry either
    assert "is in no history entry" in err
    columns = ", ".join(k for k in row if k != "changes")
    values = ", ".join(f":{k}" for k in row if k != "changes")
    _sql(url, f"INSERT INTO history ({columns}, changes) VALUES ({values}, :changes)",
         **{k: v for k, v in row.items() if k != "changes"},
         changes=row["changes"] if isinstance(row["changes"], str) else json.dumps(row["changes"]))
    assert _verify(cli)[0] == 0

    # 3. a forged entry inserted
    issue_id = _sql(url, "SELECT issue_id FROM history WHERE trigger = 'return'")[0][0]
    _sql(url, "INSERT INTO history (issue_id, at, by, door, trigger, from_state, to_state, note, round) "
              "VALUES (:i, '2026-12-11 02:00:00.000000', '巡察办', 'web', 'approve', 'awaiting_review', "
              "'completed', '', 2)", i=issue_id)
    code, report, err = _verify(cli)
    forged = _sql(url, "SELECT max(id) FROM history")[0][0]
    assert code == 1 and f"entry {forged}: written outside the chain" in err, err
    _sql(url, "DELETE FROM history WHERE id = :i", i=forged)
    assert _verify(cli)[0] == 0

    # 4. an evidence file's hash changed
    evidence_id = _sql(url, "SELECT id FROM evidence")[0][0]
    _sql(url, "UPDATE evidence SET sha256 = :s WHERE id = :i", s="0" * 64, i=evidence_id)
    code, report, err = _verify(cli)
    assert code == 1 and f"evidence file {evidence_id}: its SHA-256 is not the one the history recorded" in err, err


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_head_kept_from_an_export_holds_after_honest_work_not_after_a_rewritten_past(worked, cli, tmp_path):
    project, url = worked
    exported = cli("ledger", "export", tmp_path / "copy.xlsx", "--ledger", LEDGER)
    head = re.search(r"chain head (\S+)", exported.out).group(1)
    import openpyxl

    assert head in openpyxl.load_workbook(tmp_path / "copy.xlsx").properties.description
    report = cli("report", "--ledger", LEDGER, "--format", "md", "--at", "2026-12-11T10:00").out
    assert "台账校验值" in report
    assert cli("audit", "verify", "--ledger", LEDGER, "--head", head).code == 0
    # honest work afterwards: the head still holds (the history up to its instant is unchanged)
    assert cli("issue", "transition", f"{LEDGER}/7", "submit", "--by", f"{UNIT}/办公室",
               "--evidence", EVIDENCE).code == 0
    assert cli("audit", "verify", "--ledger", LEDGER, "--head", head).code == 0
    # someone rewrites a past note and re-hashes every chain so that each link holds again
    entry_id = _sql(url, "SELECT min(id) FROM history WHERE trigger = 'import'")[0][0]  # before the head's instant
    _sql(url, "UPDATE history SET note = '导入 另一个文件 第2行' WHERE id = :i", i=entry_id)
    _rehash(url)
    assert cli("audit", "verify", "--ledger", LEDGER).code == 0  # self-consistent again…
    refused = cli("audit", "verify", "--ledger", LEDGER, "--head", head)
    assert refused.code == 1 and "is not what it was" in refused.err  # …but not what the 纪检组 holds
    assert cli("audit", "verify", "--head", "nonsense").code == 2


@pytest.mark.parametrize("db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_the_reports_chain_head_is_the_one_verify_computes(worked):
    """Reports and exports read the head off the stored hashes (history.chain_head) instead of
    re-verifying every chain: the head verify computes at every instant, a broken chain's too."""
    import datetime as dt

    from engine.issues.history import chain_head, verify
    from engine.issues.queries import find_ledger
    from engine.store import db

    _, url = worked
    engine = db.make_engine(url)

    def both(at: dt.datetime | None) -> tuple[str, str]:
        with db.read_factory(engine)() as session:
            ledger = find_ledger(session, LEDGER)
            assert ledger is not None
            at = at or dt.datetime.now(dt.UTC)  # one instant for both
            return chain_head(session, ledger, at), verify(session, ledger, at=at).head

    instants = [dt.datetime(2026, 11, 30, tzinfo=dt.UTC),  # before the import: no entry counts
                dt.datetime.fromisoformat("2026-12-01T09:00+08:00"),  # the import's own instant
                dt.datetime.fromisoformat(AT + "+08:00"), dt.datetime(2027, 1, 1, tzinfo=dt.UTC), None]
    try:
        heads = [both(at) for at in instants]
        assert all(ours == theirs for ours, theirs in heads), heads
        assert len({ours.split("-")[1] for ours, _ in heads[:3]}) == 3  # the instants tell the heads apart
        # a chain broken behind duban's back: a note changed, an entry without a hash slipped in
        entry_id = _sql(url, "SELECT id FROM history WHERE trigger = 'return'")[0][0]
        _sql(url, "UPDATE history SET note = '材料齐全' WHERE id = :i", i=entry_id)
        issue_id = _sql(url, "SELECT issue_id FROM history WHERE trigger = 'return'")[0][0]
        _sql(url, "INSERT INTO history (issue_id, at, by, door, trigger, from_state, to_state, note, round) "
                  "VALUES (:i, '2026-12-11 02:00:00.000000', '巡察办', 'web', 'approve', 'awaiting_review', "
                  "'completed', '', 2)", i=issue_id)
        for at in instants:
            ours, theirs = both(at)
            assert ours == theirs
    finally:
        engine.dispose()


def _rehash(url: str) -> None:
    from engine.issues.history import entry_hash, genesis

    engine = create_engine(url)
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT id, issue_id, at, by, door, trigger, from_state, to_state, note, round, "
                                 "changes FROM history ORDER BY issue_id, id")).mappings().all()
        heads: dict[int, str] = {}
        conn.execute(text("UPDATE history SET prev_hash = NULL"))  # the unique link, re-made below
        for r in rows:
            import datetime as dt

            at = r["at"] if isinstance(r["at"], dt.datetime) else dt.datetime.fromisoformat(r["at"])
            changes = json.loads(r["changes"]) if isinstance(r["changes"], str) else r["changes"]
            prev = heads.get(r["issue_id"], genesis(r["issue_id"]))
            value = entry_hash(r["issue_id"], at.replace(tzinfo=dt.UTC), r["by"], r["door"], r["trigger"],
                               r["from_state"], r["to_state"], r["note"], r["round"], changes, prev)
            heads[r["issue_id"]] = value
            conn.execute(text("UPDATE history SET prev_hash = :p, hash = :h WHERE id = :i"),
                         {"p": prev, "h": value, "i": r["id"]})
    engine.dispose()


@pytest.mark.postgres
def test_three_daemons_and_twenty_clients_leave_chains_that_verify(project, pg_url):
    from .conftest import run_cli
    from .peers import KeyCounter, LoopbackHTTP
    from .test_daemon import DaemonProc, prepare

    with LoopbackHTTP(KeyCounter()) as hook:
        config = prepare(project, url=pg_url, hook=hook.url(), issues=5)
        token = re.search(r"dbn_[\w\-]+", run_cli("--config", config, "user", "token", "科室1").out).group(0)
        grant = run_cli("--config", config, "user", "add", "写手", "--role", "department:科室1", "--role",
                        "department:科室2", "--role", "department:科室3")
        assert grant.code == 0, grant.err
        token = re.search(r"dbn_[\w\-]+", run_cli("--config", config, "user", "token", "写手").out).group(0)
        daemons = [DaemonProc(config, name=f"pg{i}") for i in range(3)]
        failures: list[str] = []
        try:
            for d in daemons:
                d.started()

            def client(n: int) -> None:
                port = daemons[n % 3].port
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                                  headers={"Authorization": f"Bearer {token}"}) as http:
                    for k in range(10):
                        ref = 1 + (n + k) % 3  # three issues, every client on each: the chains contend
                        answer = http.post(f"/api/v1/issues/t/{ref}/progress", json={"note": f"客户{n}第{k}次"})
                        if answer.status_code != 201:
                            failures.append(f"{n}/{k}: {answer.status_code} {answer.text[:200]}")

            threads = [threading.Thread(target=client, args=(n,)) for n in range(20)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
        finally:
            for d in daemons:
                d.kill()
        assert not failures, failures[:5]
        result = run_cli("--config", config, "audit", "verify", "--json")
        assert result.code == 0, result.err
        notes = _sql(pg_url, "SELECT count(*) FROM history WHERE trigger = 'progress'")[0][0]
        assert notes == 200

"""Units are a boundary (issue #18): two units in one installation, both with 办公室 and 党组书记.

Each unit's accounts see, are reminded of and may act on their own unit's items only — through the
pages, the API, the CLI and e-mail (a real aiosmtpd server) — on SQLite and PostgreSQL; a district
reviewer over both sees both; a reviewer bound to one unit is reminded of that unit's items only.
"""

from __future__ import annotations

import re

import httpx
import pytest

from .conftest import ROOT, mail_settings, serving, site_for
from .peers import free_port, smtp_server_at

AUDIT = "区审计局"
EDU = "区教委"
EXAMPLE = ROOT / "examples" / "2026-区审计局.csv"
A_LEDGER, B_LEDGER = "2026-区审计局", "2026-区教委"
T0 = "2026-12-01T09:00"
NOW = "2026-12-24T10:00"

# Another unit's ledger, written the way an office writes one, naming the same 办公室 and 党组书记.
EDU_CSV = """序号,方面,问题类别,具体问题,整改措施,责任领导,责任科室,整改时限,整改状态
1,落实全面从严治党主体责任方面,主体责任,教委党组研究部署全面从严治党工作不够,每季度专题研究一次,党组书记,办公室,2026-12-31,整改中
2,落实全面从严治党主体责任方面,财务管理,学校食堂经费管理不规范,开展食堂经费专项检查,分管副主任,财务科,2026-12-31,整改中
3,基层党组织建设方面,组织生活,支部组织生活会质量不高,制定组织生活会提纲,党组书记,办公室、财务科,2026-12-31,整改中
"""


def _token(result) -> str:
    found = re.search(r"dbn_[\w\-]+", result.out)
    assert found, result.out + result.err
    return found.group(0)


@pytest.fixture
def district(project, cli, db_url, monkeypatch, tmp_path):
    """Two units' ledgers in one installation, mail for everyone, a district and a unit reviewer."""
    monkeypatch.setenv("DUBAN_DATABASE_URL", db_url)
    smtp, port = free_port(), free_port()
    config = project / "config.toml"
    config.write_text(config.read_text(encoding="utf-8") + mail_settings(f"http://127.0.0.1:{port}", smtp),
                      encoding="utf-8")
    edu = tmp_path / f"{B_LEDGER}.csv"
    edu.write_text(EDU_CSV, encoding="utf-8")
    assert cli("init", "--at", T0).code == 0
    for path, unit in ((EXAMPLE, AUDIT), (edu, EDU)):
        result = cli("ledger", "import", path, "--unit", unit, "--at", T0)
        assert result.code == 0, result.err
    mail = {f"{AUDIT}/办公室": "a-bgs@example.org", f"{EDU}/办公室": "b-bgs@example.org",
            f"{AUDIT}/党组书记": "a-sj@example.org", f"{EDU}/党组书记": "b-sj@example.org",
            f"{EDU}/财务科": "b-cwk@example.org"}
    for name, address in mail.items():
        result = cli("user", "set", name, "--email", address)
        assert result.code == 0, result.err
    assert cli("user", "add", "巡察办", "--role", "reviewer", "--email", "xcb@example.org").code == 0
    assert cli("user", "add", "教委审核", "--unit", EDU, "--role", "reviewer", "--email", "jwsh@example.org").code == 0
    return project, port, smtp


@pytest.mark.parametrize("db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_two_units_each_see_are_reminded_of_and_act_on_their_own_items(district, cli):
    project, port, smtp = district
    users = {u["name"]: u for u in cli("user", "list", "--json").json}
    # two 办公室, two 党组书记: one account each per unit, shown as the name people use
    for unit in (AUDIT, EDU):
        for name in ("办公室", "党组书记"):
            account = users[f"{unit}/{name}"]
            assert (account["unit"], account["display_name"]) == (unit, name)
    assert "办公室" not in users

    # -- the CLI: the other unit's items are not theirs to act on; a bare name that two units use is refused
    foreign = cli("issue", "transition", f"{A_LEDGER}/7", "submit", "--by", f"{EDU}/办公室",
                  "--evidence", ROOT / "examples" / "evidence" / "整改会议纪要.txt")
    assert foreign.code == 1 and "无权查看" in foreign.err
    ambiguous = cli("issue", "transition", f"{B_LEDGER}/1", "submit", "--by", "办公室")
    assert ambiguous.code == 2 and f"{AUDIT}/办公室" in ambiguous.err and f"{EDU}/办公室" in ambiguous.err
    evidence = ROOT / "examples" / "evidence" / "整改会议纪要.txt"
    for ref, by in ((f"{A_LEDGER}/7", f"{AUDIT}/办公室"), (f"{B_LEDGER}/1", f"{EDU}/办公室")):
        moved = cli("issue", "transition", ref, "submit", "--by", by, "--evidence", evidence, "--at", "2026-12-02T10:00")
        assert moved.code == 0, moved.err

    # -- e-mail: each 办公室 hears of its own unit's items; the unit reviewer of its unit's sign-off only
    with smtp_server_at(smtp) as (_, sink):
        swept = cli("sweep", "--at", "2026-12-24T09:30")
        assert swept.code == 0, swept.err
    mails: dict[str, str] = {}
    for envelope in sink.received:
        body = envelope.parsed().get_body(("plain",)).get_content()
        for to in envelope.rcpt_tos:
            mails[to] = mails.get(to, "") + body
    assert A_LEDGER in mails["a-bgs@example.org"] and B_LEDGER not in mails["a-bgs@example.org"]
    assert B_LEDGER in mails["b-bgs@example.org"] and A_LEDGER not in mails["b-bgs@example.org"]
    assert "支部组织生活会" in mails["b-bgs@example.org"]  # item 1 waits on sign-off: the reviewers' now
    assert mails["b-bgs@example.org"].startswith("办公室：")  # the name people use, not the login name
    # a cell naming two departments reminds both (办公室、财务科)
    assert "支部组织生活会" in mails["b-cwk@example.org"]
    assert A_LEDGER not in mails.get("b-sj@example.org", "") and B_LEDGER not in mails.get("a-sj@example.org", "")
    assert B_LEDGER in mails["jwsh@example.org"] and A_LEDGER not in mails["jwsh@example.org"]
    assert A_LEDGER in mails["xcb@example.org"] and B_LEDGER in mails["xcb@example.org"]

    # -- the API: the token acts as its unit's 办公室 only
    from engine.app.http.app import create_app

    app = create_app(site_for(project / "config.toml", at=NOW))
    b_token = _token(cli("user", "token", f"{EDU}/办公室"))
    reviewer = _token(cli("user", "token", "巡察办"))
    with serving(app) as base, httpx.Client(base_url=base, timeout=30) as http:
        b = {"Authorization": f"Bearer {b_token}"}
        listed = http.get("/api/v1/issues", headers=b).json()
        assert {i["ledger"] for i in listed["items"]} == {B_LEDGER}
        assert {i["ref"] for i in listed["items"]} == {"1", "3"}
        todo = http.get("/api/v1/todo", headers=b).json()
        assert todo and {t["ledger"] for t in todo} == {B_LEDGER}
        # another unit's issue is answered as a missing one, word for word: a 403 would tell 区教委's
        # account which refs exist in a unit it has no grant over
        other = http.get(f"/api/v1/issues/{A_LEDGER}/7", headers=b)
        missing = http.get(f"/api/v1/issues/{A_LEDGER}/999", headers=b)
        assert other.status_code == missing.status_code == 404
        assert other.json()["detail"].replace("/7", "/999") == missing.json()["detail"]
        assert http.post(f"/api/v1/issues/{A_LEDGER}/1/progress", headers=b, json={"note": "越权"}).status_code == 404
        own = http.post(f"/api/v1/issues/{B_LEDGER}/3/progress", headers=b, json={"note": "已召开专题会"})
        assert own.status_code == 201, own.text
        # the answer is the issue's history with the note in it (read in the write's transaction on
        # PostgreSQL, after its commit on SQLite), and the same as reading it afterwards
        assert own.json()[-1]["note"] == "已召开专题会" and own.json()[-1]["door"] == "api"
        assert own.json() == http.get(f"/api/v1/issues/{B_LEDGER}/3/history", headers=b).json()
        a_evidence = http.get(f"/api/v1/issues/{A_LEDGER}/7/evidence",
                              headers={"Authorization": f"Bearer {reviewer}"}).json()
        assert a_evidence
        foreign = http.get(f"/api/v1/evidence/{a_evidence[0]['id']}", headers=b)
        assert foreign.status_code == 404, foreign.text
        assert foreign.json()["detail"] == f"no evidence file {a_evidence[0]['id']}"
        district_view = http.get("/api/v1/issues", headers={"Authorization": f"Bearer {reviewer}"}).json()
        assert {i["ledger"] for i in district_view["items"]} == {A_LEDGER, B_LEDGER}

        # -- the pages: 区教委's 办公室 signs in with its link and sees its unit's items only
        link = cli("user", "link", f"{EDU}/办公室", "--at", NOW).out.strip().splitlines()[-1]
        path = link.split(f":{port}", 1)[1]
        with httpx.Client(base_url=base, timeout=30, follow_redirects=True) as web:
            todo_page = web.get(path)
            assert todo_page.status_code == 200 and "我的待办" in todo_page.text
            assert B_LEDGER in todo_page.text and A_LEDGER not in todo_page.text
            issues_page = web.get("/ws/issues")
            assert B_LEDGER in issues_page.text and A_LEDGER not in issues_page.text
            other_page, missing_page = web.get(f"/ws/issues/{A_LEDGER}/1"), web.get(f"/ws/issues/{A_LEDGER}/999")
            assert other_page.status_code == missing_page.status_code == 404
            assert other_page.text.replace(f"{A_LEDGER}/1&#39;", f"{A_LEDGER}/999&#39;") == missing_page.text
            assert web.get(f"/ws/issues/{B_LEDGER}/1").status_code == 200


def test_a_unit_reviewer_is_reminded_of_its_own_unit_only(project, cli, monkeypatch, tmp_path):
    """Without mail: the reminders' recipients as stored, and the policy's reviewers per ledger."""
    edu = tmp_path / f"{B_LEDGER}.csv"
    edu.write_text(EDU_CSV, encoding="utf-8")
    assert cli("init", "--at", T0).code == 0
    for path, unit in ((EXAMPLE, AUDIT), (edu, EDU)):
        assert cli("ledger", "import", path, "--unit", unit, "--at", T0).code == 0
    assert cli("user", "add", "教委审核", "--unit", EDU, "--role", "reviewer").code == 0
    assert cli("user", "add", "审计审核", "--unit", AUDIT, "--role", "reviewer").code == 0
    evidence = ROOT / "examples" / "evidence" / "整改会议纪要.txt"
    for ref, by in ((f"{A_LEDGER}/7", f"{AUDIT}/办公室"), (f"{B_LEDGER}/1", f"{EDU}/办公室")):
        assert cli("issue", "transition", ref, "submit", "--by", by, "--evidence", evidence,
                   "--at", "2026-12-02T10:00").code == 0
    assert cli("sweep", "--at", "2026-12-24T09:30").code == 0
    waiting = [r for r in cli("remind", "list", "--json").json if r.get("state") == "awaiting_review"
               or r["subject"] in (f"{A_LEDGER}/7", f"{B_LEDGER}/1")]
    by_subject = {r["subject"]: set(r["recipients"]) for r in waiting}
    assert "教委审核" in by_subject[f"{B_LEDGER}/1"] and "审计审核" not in by_subject[f"{B_LEDGER}/1"]
    assert "审计审核" in by_subject[f"{A_LEDGER}/7"] and "教委审核" not in by_subject[f"{A_LEDGER}/7"]


def test_a_one_unit_installation_keeps_its_bare_names(seeded):
    """One unit: `--by 办公室` still names its one 办公室 (no new step for an existing installation)."""
    cli = seeded
    users = {u["name"]: u for u in cli("user", "list", "--json").json}
    office = next(name for name in users if name.endswith("/办公室"))
    assert users[office]["display_name"] == "办公室"
    assert cli("issue", "transition", "bishan-keji-2022/1", "reopen", "--by", "党组书记", "--note", "反弹").code in (0, 1)
    shown = cli("issue", "show", "bishan-keji-2022/1", "--json").json
    assert all("/" in h["by"] or h["by"] in ("admin", "duban") for h in shown["history"] if h["door"] == "cli")


def test_existing_accounts_move_into_their_units_keeping_their_history(tmp_path, monkeypatch):
    """The migration: a pre-unit 办公室 account used by two units becomes one account per unit, each
    keeping the history it wrote; an account of a ledger of no unit stays as it was."""
    import datetime as dt

    from sqlalchemy import create_engine, text

    from engine.store import db

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    db.upgrade(engine, "0010")
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC).replace(tzinfo=None)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO workflows (id, name, content_hash, title, source_path, source, definition, "
                          "created_at) VALUES (1, 'wf', 'h', '', '', '', '{}', :t)"), {"t": now})
        for lid, name, unit in ((1, "A", AUDIT), (2, "B", EDU), (3, "C", "")):
            conn.execute(text("INSERT INTO ledgers (id, name, workflow_name, unit, headers, created_at, updated_at) "
                              "VALUES (:i, :n, 'wf', :u, '[]', :t, :t)"), {"i": lid, "n": name, "u": unit, "t": now})
        for iid, lid, dept in ((1, 1, "办公室"), (2, 2, "办公室"), (3, 3, "财务科")):
            conn.execute(text(
                "INSERT INTO issues (id, ledger_id, ref, position, area, category, title, measures, leader, department, "
                "state, state_since, workflow_id, round, created_at, updated_at, extra) VALUES "
                "(:i, :l, :r, :i, 'a', 'c', 't', 'm', '书记', :d, 'in_progress', :t, 1, 1, :t, :t, '{}')"),
                {"i": iid, "l": lid, "r": str(iid), "d": dept, "t": now})
            conn.execute(text("INSERT INTO issue_departments (issue_id, department, ledger_id) VALUES (:i, :d, :l)"),
                         {"i": iid, "d": dept, "l": lid})
            conn.execute(text("INSERT INTO history (issue_id, at, by, trigger, from_state, to_state, note, door) "
                              "VALUES (:i, :t, :d, 'progress', 'in_progress', 'in_progress', 'x', 'web')"),
                         {"i": iid, "t": now, "d": dept})
        for uid, name in ((1, "办公室"), (2, "财务科")):
            conn.execute(text("INSERT INTO users (id, name, display_name, unit, email, phone, im, disabled, "
                              "failed_logins, session_epoch, created_at, updated_at) VALUES "
                              "(:i, :n, '', '', :e, '', '{}', false, 0, 3, :t, :t)"),
                         {"i": uid, "n": name, "e": f"{uid}@example.org", "t": now})
            conn.execute(text("INSERT INTO user_roles (user_id, role, scope) VALUES (:i, 'department', '')"),
                         {"i": uid})
    db.upgrade(engine)
    with engine.connect() as conn:
        users = {r.name: r for r in conn.execute(text("SELECT id, name, unit, display_name, email, session_epoch "
                                                       "FROM users"))}
        history = dict(conn.execute(text("SELECT issue_id, by FROM history")).all())
    assert users[f"{AUDIT}/办公室"].id == 1 and users[f"{AUDIT}/办公室"].session_epoch == 3  # the same account
    assert users[f"{EDU}/办公室"].unit == EDU and users[f"{EDU}/办公室"].email == "1@example.org"
    assert users["财务科"].unit == ""  # a ledger of no unit: unchanged
    assert "办公室" not in users
    assert history == {1: f"{AUDIT}/办公室", 2: f"{EDU}/办公室", 3: "财务科"}
    engine.dispose()

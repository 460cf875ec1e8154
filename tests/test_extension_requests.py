"""A 延期申请 waits on someone (issue #19): its deciders' 我的待办 and digest, a refusal's reason for
the requester, every door; and a resubmission after 退回 needs evidence of its own round.

Runs the real application on uvicorn (127.0.0.1) over the shipped example ledger, with real mail
through aiosmtpd; the dates are the working days of December 2026 (the 14th is a Monday).
"""

from __future__ import annotations

import json
import re

import httpx
import pytest

from engine.errors import WorkflowError
from engine.workflow.loader import load_workflow_text

from .conftest import WORKFLOWS
from .peers import smtp_server_at
from .test_workspace import LEDGER, UNIT, _action, _csrf, _link, _text, workspace
from .test_workspace import office as workspace_office  # noqa: F401 - a fixture, by this name

ISSUE = f"{LEDGER}/4"  # 分管副局长 · 财务室, 整改中, 整改时限 2026-12-15
ASKED = "2026-12-14T10:00"  # a Monday: the decision is due 3 working days later, the 17th
LEADER = f"{UNIT}/分管副局长"
LEADER_MAIL = "fgfjz@example.org"
REASON = "审计组进场，往来款项需逐笔函证"


@pytest.fixture
def desk(request):
    """test_workspace's ``office``: the example ledger, two reviewers, mail for 办公室 and 财务室."""
    return request.getfixturevalue("workspace_office")


def _token(cli, name: str) -> dict[str, str]:
    made = cli("user", "token", name, "--at", ASKED)
    assert made.code == 0, made.err
    return {"Authorization": f"Bearer {made.out.strip().splitlines()[-1]}"}


def _mail_to(sink, address: str) -> list[str]:
    return [e.parsed().get_body(("plain",)).get_content() for e in sink.received if e.rcpt_tos == [address]]


def _ask(cli) -> None:
    asked = cli("issue", "extension", "request", ISSUE, "--by", "财务室", "--to", "2027-01-29", "--reason", REASON,
                "--at", ASKED)
    assert asked.code == 0, asked.err


def test_a_request_waits_in_the_deciders_todo_and_digest_until_decided(desk, cli):
    project, port, smtp = desk
    assert cli("user", "set", LEADER, "--email", LEADER_MAIL).code == 0
    _ask(cli)
    leader_api, finance_api = _token(cli, LEADER), _token(cli, "财务室")
    with workspace(project, at="2026-12-14T11:00") as base:
        # the leader's 我的待办, through the API and the page: the request first, with its own rule's due date
        todo = httpx.get(f"{base}/api/v1/todo", headers=leader_api).json()
        assert todo[0]["kind"] == "extension" and todo[0]["ref"] == "4" and todo[0]["what"] == "审批延期申请"
        assert todo[0]["due"] == "2026-12-17" and todo[0]["extension"]["to"] == "2027-01-29"
        assert todo[0]["extension"]["reason"] == REASON and todo[0]["extension"]["state"] == "pending"
        leader = httpx.Client(base_url=base, timeout=30, follow_redirects=True)
        page = leader.get(_link(cli, LEADER, at="2026-12-14T11:00").replace(f"http://127.0.0.1:{port}", base))
        assert page.status_code == 200
        shown = _text(page.text)
        assert "审批延期申请" in shown and "申请延期至 2027年1月29日" in shown and REASON in shown
        # a reviewer over the ledger decides too; the requester waits on nobody's answer of their own
        reviewer = httpx.get(f"{base}/api/v1/todo", headers=_token(cli, "纪检组长")).json()
        assert [t["ref"] for t in reviewer if t["kind"] == "extension"] == ["4"]
        mine = httpx.get(f"{base}/api/v1/todo", headers=finance_api).json()
        assert not [t for t in mine if t["kind"] == "extension"]
        detail = httpx.get(f"{base}/api/v1/issues/{ISSUE}", headers=finance_api).json()
        assert detail["extension"]["to"] == "2027-01-29" and detail["extension_decided"] is None
        leader.close()

    with smtp_server_at(smtp) as (_, sink):
        assert cli("sweep", "--at", "2026-12-14T18:00").code == 0  # the day it was asked: not yet
        assert not [m for m in _mail_to(sink, LEADER_MAIL) if "延期申请" in m]
        assert cli("sweep", "--at", "2026-12-15T09:30").code == 0  # 2 working days before it is due
        mails = [m for m in _mail_to(sink, LEADER_MAIL) if "延期申请" in m]
        assert len(mails) == 1, _mail_to(sink, LEADER_MAIL)
        assert f"{LEDGER} 第4项】延期申请：财务室申请将整改时限延至2027年1月29日，理由：{REASON}" in mails[0]
        assert "审批延期申请时限2026年12月17日" in mails[0] and "下一步：同意延期" in mails[0]
        # the reviewer with an address hears it as well; the requester does not
        assert any("延期申请" in m for m in _mail_to(sink, "xczg@example.org"))
        assert not any("延期申请" in m for m in _mail_to(sink, "cws@example.org"))

    refused_without = "a refusal needs its reason"
    cli_refusal = cli("issue", "extension", "decide", ISSUE, "--by", LEADER, "--refuse", "--at", "2026-12-15T10:00")
    assert cli_refusal.code == 2 and refused_without in cli_refusal.err
    with workspace(project, at="2026-12-15T10:00") as base:
        api = httpx.post(f"{base}/api/v1/issues/{ISSUE}/extension/decide", headers=leader_api,
                         json={"approve": False, "note": "   "})
        assert api.status_code == 400 and refused_without in api.json()["detail"]
        # the requester cannot decide (the policy), nor can another department's account
        assert httpx.post(f"{base}/api/v1/issues/{ISSUE}/extension/decide", headers=finance_api,
                          json={"approve": True}).status_code == 403
        assert httpx.post(f"{base}/api/v1/issues/{ISSUE}/extension/decide", headers=_token(cli, "办公室"),
                          json={"approve": True}).status_code == 403
        leader = httpx.Client(base_url=base, timeout=30, follow_redirects=True)
        leader.get(_link(cli, LEADER, at="2026-12-15T10:00").replace(f"http://127.0.0.1:{port}", base))
        issue_page = leader.get(f"/ws/issues/{ISSUE}")
        assert "不同意的理由" in issue_page.text
        action = _action(issue_page.text, "extension-refuse")
        blank = leader.post(action, data={"csrf": _csrf(issue_page.text), "approve": "no", "note": ""})
        # the page says it in Chinese, the CLI and the API in the domain's words
        assert blank.status_code == 400 and "不同意延期须写明理由：申请人可以看到" in blank.text, blank.text[-400:]
        done = leader.post(action, data={"csrf": _csrf(issue_page.text), "approve": "no",
                                         "note": "往来款项清理可先行，请按原时限完成"})
        assert done.status_code == 200 and "理由已告知申请人" in done.text
        assert "往来款项清理可先行" in done.text and "延期申请未获同意" in done.text
        # decided: out of the deciders' 我的待办; the answer and its reason in the requester's
        assert not [t for t in httpx.get(f"{base}/api/v1/todo", headers=leader_api).json() if t["kind"] == "extension"]
        answers = [t for t in httpx.get(f"{base}/api/v1/todo", headers=finance_api).json()
                   if t["kind"] == "extension_answer"]
        assert len(answers) == 1 and answers[0]["extension"]["state"] == "refused"
        assert answers[0]["extension"]["note"] == "往来款项清理可先行，请按原时限完成"
        finance = httpx.Client(base_url=base, timeout=30, follow_redirects=True)
        own = finance.get(_link(cli, "财务室", at="2026-12-15T10:00").replace(f"http://127.0.0.1:{port}", base))
        assert "未获同意" in _text(own.text) and "往来款项清理可先行，请按原时限完成" in own.text
        detail = httpx.get(f"{base}/api/v1/issues/{ISSUE}", headers=finance_api).json()
        assert detail["extension"] is None and detail["extension_decided"]["note"].startswith("往来款项清理可先行")
        leader.close()
        finance.close()
    with smtp_server_at(smtp) as (_, sink):
        assert cli("sweep", "--at", "2026-12-16T09:30").code == 0
        assert cli("sweep", "--at", "2026-12-17T09:30").code == 0
        assert not [m for m in _mail_to(sink, LEADER_MAIL) if "延期申请" in m]  # deciding ended it
    history = cli("issue", "show", ISSUE, "--json").json["history"]
    steps = [(h["trigger"], h["door"]) for h in history if h["trigger"] != "import"]
    assert steps == [("extension_request", "cli"), ("extension_refused", "web")]
    assert history[-1]["note"] == "不同意延期至 2027-01-29：往来款项清理可先行，请按原时限完成"


def test_the_api_asks_and_a_reviewer_approves(desk, cli):
    project = desk[0]
    finance_api = _token(cli, "财务室")
    with workspace(project, at=ASKED) as base:
        early = httpx.post(f"{base}/api/v1/issues/{ISSUE}/extension", headers=finance_api,
                           json={"to": "2026-12-10", "reason": REASON})
        assert early.status_code == 400 and "not after the current one" in early.json()["detail"]
        assert httpx.post(f"{base}/api/v1/issues/{ISSUE}/extension", headers=finance_api,
                          json={"to": "2027-01-29", "reason": " "}).status_code == 400
        asked = httpx.post(f"{base}/api/v1/issues/{ISSUE}/extension", headers=finance_api,
                           json={"to": "2027-01-29", "reason": REASON})
        assert asked.status_code == 201 and asked.json()["state"] == "pending"
        again = httpx.post(f"{base}/api/v1/issues/{ISSUE}/extension", headers=finance_api,
                           json={"to": "2027-02-26", "reason": REASON})
        assert again.status_code == 409 and "already waiting" in again.json()["detail"]
        # another department may neither ask on this issue nor see it
        assert httpx.post(f"{base}/api/v1/issues/{ISSUE}/extension", headers=_token(cli, "办公室"),
                          json={"to": "2027-02-26", "reason": REASON}).status_code == 403
        approved = httpx.post(f"{base}/api/v1/issues/{ISSUE}/extension/decide", headers=_token(cli, "纪检组长"),
                              json={"approve": True})
        assert approved.status_code == 200 and approved.json()["state"] == "approved"
        assert approved.json()["decided_by"] == "纪检组长"
        assert httpx.post(f"{base}/api/v1/issues/{ISSUE}/extension/decide", headers=_token(cli, "纪检组长"),
                          json={"approve": True}).status_code == 409  # nothing waits any more
        detail = httpx.get(f"{base}/api/v1/issues/{ISSUE}", headers=finance_api).json()
        assert detail["deadline"] == "2027-01-29" and detail["history"][-1]["trigger"] == "extend"
        answers = [t for t in httpx.get(f"{base}/api/v1/todo", headers=finance_api).json()
                   if t["kind"] == "extension_answer"]
        assert answers and answers[0]["what"] == "延期申请已同意"
    # the answer leaves the requester's 我的待办 after its days
    with workspace(project, at="2026-12-22T10:00") as base:
        assert not [t for t in httpx.get(f"{base}/api/v1/todo", headers=finance_api).json()
                    if t["kind"] == "extension_answer"]


def test_handover_through_the_api_as_on_the_page(desk, cli):
    project = desk[0]
    with workspace(project, at=ASKED) as base:
        url = f"{base}/api/v1/issues/{ISSUE}/handover"
        assert httpx.post(url, headers=_token(cli, "财务室"), json={"department": "办公室"}).status_code == 403
        reviewer = _token(cli, "纪检组长")
        assert httpx.post(url, headers=reviewer, json={"department": " "}).status_code == 400
        assert httpx.post(url, headers=reviewer, json={}).status_code == 400
        nobody = httpx.post(url, headers=reviewer, json={"leader": "无此人"})
        assert nobody.status_code == 409 and "no account can act for 无此人" in nobody.json()["detail"]
        moved = httpx.post(url, headers=reviewer, json={"department": "办公室", "note": "职能调整"})
        assert moved.status_code == 200 and moved.json()["changes"] == ["责任科室: 财务室 → 办公室"]
        assert httpx.get(f"{base}/api/v1/issues/{ISSUE}", headers=_token(cli, "办公室")).status_code == 200


def test_a_resubmission_after_a_return_needs_evidence_of_its_round(desk, cli):
    project = desk[0]
    proof = project / "对账单.pdf"
    proof.write_bytes(b"%PDF-1.4 reconciliation")
    submit = ("issue", "transition", ISSUE, "submit", "--by", "财务室")
    assert cli(*submit, "--at", "2026-12-14T10:00").code == 1  # round one needs evidence too
    assert cli(*submit, "--evidence", proof, "--at", "2026-12-14T10:00").code == 0
    assert cli("issue", "transition", ISSUE, "return", "--by", "纪检组长", "--note", "缺少函证材料",
               "--deadline", "2027-01-15", "--at", "2026-12-15T10:00").code == 0
    again = cli(*submit, "--at", "2026-12-16T10:00")
    assert again.code == 1 and "需上传本轮佐证材料" in again.err
    with workspace(project, at="2026-12-16T10:00") as base:
        finance = _token(cli, "财务室")
        steps = {s["trigger"]: s for s in httpx.get(f"{base}/api/v1/issues/{ISSUE}", headers=finance).json()["steps"]}
        assert steps["submit"]["needs"] == ["需上传本轮佐证材料"]
        refused = httpx.post(f"{base}/api/v1/issues/{ISSUE}/actions", headers=finance, json={"trigger": "submit"})
        assert refused.status_code == 409 and "需上传本轮佐证材料" in refused.json()["detail"]
        uploaded = httpx.post(f"{base}/api/v1/issues/{ISSUE}/evidence", headers=finance,
                              files={"file": ("函证回函.pdf", b"%PDF-1.4 replies", "application/pdf")})
        assert uploaded.status_code == 201
        steps = {s["trigger"]: s for s in httpx.get(f"{base}/api/v1/issues/{ISSUE}", headers=finance).json()["steps"]}
        assert steps["submit"]["needs"] == []
        moved = httpx.post(f"{base}/api/v1/issues/{ISSUE}/actions", headers=finance, json={"trigger": "submit"})
        assert moved.status_code == 200 and moved.json()["to_state"] == "awaiting_review"


SHIPPED = (WORKFLOWS / "inspection-rectification.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize(("rule", "message"), [
    ("extension_requests:\n  working_day: 3\n", "unknown key 'working_day'"),
    ("extension_requests:\n  working_days: -1\n", "cannot be due before it is made"),
    ("extension_requests:\n  title: 审批延期申请\n", "say when the decision is due"),
    ("extension_requests:\n  working_days: 3\n  months: 1\n", "give one of days, working_days or months"),
    ("extension_requests:\n  working_days: 3\n  reminders:\n    before_working_days: [0]\n", "at least 1"),
])
def test_the_loader_reports_a_bad_extension_rule_where_it_is(rule, message):
    text = re.sub(r"(?ms)^extension_requests:\n(  .*\n)+", rule, SHIPPED)
    assert text != SHIPPED
    with pytest.raises(WorkflowError) as info:
        load_workflow_text(text, "wf.yaml")
    line = text.splitlines().index("extension_requests:") + 1
    assert any(d.startswith(f"wf.yaml:{n}:") and message in d for d in info.value.details
               for n in range(line, line + 5)), info.value.details


def test_a_workflow_without_the_rule_keeps_its_hash_and_decides_in_three_working_days():
    from engine.workflow.loader import content_hash

    text = re.sub(r"(?ms)^extension_requests:\n(  .*\n)+", "", SHIPPED)
    bare = load_workflow_text(text, "wf.yaml").definition
    assert bare.extension_requests is None and bare.extension_rule.working_days == 3
    assert "extension_requests" not in str(content_hash(bare)) and content_hash(bare) == content_hash(
        load_workflow_text(text + "\n# a comment\n", "wf.yaml").definition)
    shipped = load_workflow_text(SHIPPED, "wf.yaml").definition
    assert shipped.extension_rule.title == "审批延期申请" and shipped.extension_rule.reminders.before_working_days == (2,)


def test_a_request_waiting_before_the_upgrade_moves_to_its_table(db_url, project, monkeypatch):
    """Revision 0016: the 延期申请 an issue kept in its extra columns becomes a pending row, dated by
    the history entry that asked for it, and the first sweep reminds its decider; each evidence file
    gets the round it was added in. Downgrading puts the request back."""
    import datetime as dt

    from alembic import command
    from sqlalchemy import text

    from engine.config import load_config
    from engine.reminders.sweep import Sweeper
    from engine.runtime import Runtime
    from engine.store import db

    engine = db.make_engine(db_url)
    db.upgrade(engine, "0015")
    utc = dt.UTC

    def at(day: int, hour: int) -> dt.datetime:  # naive UTC, as the store keeps instants
        return dt.datetime(2026, 12, day, hour, tzinfo=utc).replace(tzinfo=None)

    asked = '{"备注": "见附件", "extension": {"to": "2027-01-29", "by": "财务室", "reason": "审计进场"}}'
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO workflows (id, name, content_hash, title, source_path, source, definition, "
                          "created_at) VALUES (1, 'inspection-rectification', 'h', '', '', :s, '{}', :t)"),
                     {"s": SHIPPED, "t": at(1, 1)})
        conn.execute(text("INSERT INTO ledgers (id, name, workflow_name, unit, headers, created_at, updated_at) "
                          "VALUES (1, 'L', 'inspection-rectification', '', '[]', :t, :t)"), {"t": at(1, 1)})
        conn.execute(text(
            "INSERT INTO issues (id, ledger_id, ref, position, area, category, title, measures, leader, department, "
            "deadline, state, state_since, workflow_id, round, created_at, updated_at, extra) VALUES "
            "(1, 1, '4', 1, 'a', 'c', '往来款项长期挂账未清理', 'm', '分管副局长', '财务室', '2026-12-15', "
            "'in_progress', :t, 1, 2, :t, :u, :x)"), {"t": at(1, 1), "u": at(14, 5), "x": asked})
        for trigger, day, round_ in (("submit", 3, 1), ("return", 4, 2), ("extension_request", 14, 2)):
            conn.execute(text("INSERT INTO history (issue_id, at, by, trigger, from_state, to_state, note, door, round) "
                              "VALUES (1, :t, '财务室', :g, 'in_progress', 'in_progress', '', 'web', :r)"),
                         {"t": at(day, 2), "g": trigger, "r": round_})
        for name, day in (("一轮.pdf", 2), ("二轮.pdf", 8)):
            conn.execute(text("INSERT INTO evidence (issue_id, file_name, sha256, size, added_at, added_by) "
                              "VALUES (1, :n, 'x', 1, :t, '财务室')"), {"n": name, "t": at(day, 2)})
    db.upgrade(engine)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT requested_to, requested_by, reason, state, round, requested_at, "
                                "next_remind_at FROM extension_requests")).one()
        extra = conn.execute(text("SELECT extra FROM issues")).scalar_one()
        rounds = dict(conn.execute(text("SELECT file_name, round FROM evidence")).all())
    assert (str(row.requested_to), row.requested_by, row.reason, row.state, row.round) == (
        "2027-01-29", "财务室", "审计进场", "pending", 2)
    assert str(row.requested_at)[:16] == str(row.next_remind_at)[:16] == "2026-12-14 02:00"
    assert (extra if isinstance(extra, dict) else json.loads(extra)) == {"备注": "见附件"}
    assert rounds == {"一轮.pdf": 1, "二轮.pdf": 2}

    monkeypatch.setenv("DUBAN_DATABASE_URL", db_url)
    runtime = Runtime(load_config(project / "config.toml"))
    sessions = db.session_factory(engine)
    Sweeper(runtime, sessions).sweep(dt.datetime(2026, 12, 15, 1, 30, tzinfo=utc))  # 09:30 local
    with engine.connect() as conn:
        written = conn.execute(text("SELECT recipients, details FROM reminders WHERE dedupe_key LIKE '%extension-%'")
                               ).all()
        due_on = conn.execute(text("SELECT due_on FROM extension_requests")).scalar_one()
    assert len(written) == 1 and str(due_on) == "2026-12-17"
    recipients, details = (v if not isinstance(v, str) else json.loads(v) for v in written[0])
    assert recipients == ["分管副局长"] and details["title"].startswith("延期申请：财务室申请将整改时限延至2027年1月29日")

    with engine.begin() as conn:
        config = db.alembic_config(engine)
        config.attributes["connection"] = conn
        command.downgrade(config, "0015")
    with engine.connect() as conn:
        extra = conn.execute(text("SELECT extra FROM issues")).scalar_one()
    extra = extra if isinstance(extra, dict) else json.loads(extra)
    assert extra["extension"] == {"to": "2027-01-29", "by": "财务室", "reason": "审计进场"}
    engine.dispose()

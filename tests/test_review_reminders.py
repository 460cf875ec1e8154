"""What waits on the supervising side reaches it: 待审核销号 reminds the reviewers over the ledger (issue #12)."""

from __future__ import annotations

from pathlib import Path

from .conftest import add_reviewer

HEADERS = "序号,方面,问题类别,具体问题,整改措施,责任领导,责任科室,整改时限,整改状态"
ROWS = ["1,作风建设方面,服务意识,窗口服务不规范,制定服务规范,局长,办公室,2026-12-31,整改中",
        "2,作风建设方面,服务意识,办事流程繁琐,精简流程,副局长,审批科,2026-12-31,整改中"]


def ledger(cli, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.csv"
    path.write_text("\n".join([HEADERS, *ROWS]) + "\n", encoding="utf-8")
    assert cli("ledger", "import", path, "--feedback-date", "2026-11-02", "--at", "2026-11-02T10:00").code == 0


def submitted(cli, tmp_path: Path, ref: str, by: str) -> None:
    proof = tmp_path / "proof.pdf"
    proof.write_bytes(b"%PDF-1.4")
    result = cli("issue", "transition", ref, "submit", "--by", by, "--evidence", proof, "--at", "2026-11-16T10:00")
    assert result.code == 0, result.err


def waiting(cli, ref: str) -> list[dict]:
    rows = cli("remind", "preview", "--at", "2026-11-16T10:00", "--until", "2026-12-15T23:00", "--json").json
    return [r for r in rows if r["subject"] == ref]


def test_awaiting_sign_off_reminds_the_reviewers_over_that_ledger_only(cli, tmp_path):
    assert cli("init", "--at", "2026-11-02T10:00").code == 0
    ledger(cli, tmp_path, "县市场监管局")
    ledger(cli, tmp_path, "县审计局")
    add_reviewer(cli, "监管局整改办", "ledger:县市场监管局")
    add_reviewer(cli, "区巡察办")  # over every ledger
    add_reviewer(cli, "审计局整改办", "ledger:县审计局")
    submitted(cli, tmp_path, "县市场监管局/1", "办公室")
    rows = waiting(cli, "县市场监管局/1")
    # the 审核销号时限: 10 working days after the submission (2026-11-30), before/on/after it
    assert rows
    assert {tuple(r["recipients"]) for r in rows if r["kind"] != "escalation"} == {("区巡察办", "监管局整改办")}
    assert any(r["at"].startswith("2026-11-30") and r["kind"] == "due" for r in rows)
    # the department that submitted hears nothing more of it while it waits on the reviewers
    assert all("办公室" not in r["recipients"] for r in rows if r["kind"] != "escalation")
    # the issue still in progress keeps reminding its own leader and department
    other = [r for r in cli("remind", "preview", "--at", "2026-11-16T10:00", "--until", "2026-12-31T23:00",
                            "--json").json if r["subject"] == "县市场监管局/2"]
    assert other and all(r["recipients"][:2] == ["副局长", "审批科"] for r in other)


def test_with_no_reviewer_the_administrators_hear_of_it(cli, tmp_path):
    assert cli("init", "--at", "2026-11-02T10:00").code == 0
    ledger(cli, tmp_path, "县市场监管局")
    submitted(cli, tmp_path, "县市场监管局/1", "办公室")
    rows = [r for r in waiting(cli, "县市场监管局/1") if r["kind"] != "escalation"]
    assert rows and {tuple(r["recipients"]) for r in rows} == {("admin",)}
    add_reviewer(cli, "区巡察办")
    assert cli("user", "disable", "区巡察办").code == 0  # a disabled reviewer is nobody's reader
    rows = [r for r in waiting(cli, "县市场监管局/1") if r["kind"] != "escalation"]
    assert {tuple(r["recipients"]) for r in rows} == {("admin",)}


def test_an_accounts_email_and_im_ids_are_its_addresses():
    from notifications.settings import Notify, NotifySettings

    channels = {"mail": {"kind": "email"}, "ding": {"kind": "dingtalk"}, "wx": {"kind": "wecom_app"},
                "console": {"kind": "console"}}
    notify = Notify(NotifySettings(), channels, {"局长": {"console": ""}}, Path("."), [])
    # the configured table wins; the account adds its e-mail and its own platform's app id, never a robot
    assert notify.addresses("局长", "juzhang@example.gov.cn", {"wecom": "zhangsan", "dingtalk": "ding-1"}) == {
        "console": "", "mail": "juzhang@example.gov.cn", "wx": "zhangsan"}
    assert notify.addresses("nobody") == {}

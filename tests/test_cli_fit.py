"""The CLI as people meet it (issue #10): times with their offset, states by name or label, edits."""

from __future__ import annotations

from pathlib import Path

from .conftest import add_reviewer

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "2026-区审计局.csv"


def audit(cli):
    assert cli("init", "--at", "2026-11-30T10:00").code == 0
    result = cli("ledger", "import", EXAMPLE, "--feedback-date", "2026-11-02", "--at", "2026-11-30T10:00")
    assert result.code == 0, result.err
    return cli


def test_times_print_in_the_configured_zone_with_the_offset(cli):
    audit(cli)
    assert cli("issue", "transition", "2026-区审计局/3", "start", "--by", "分管副局长", "--at", "2026-12-03T10:00").code == 0
    shown = cli("issue", "show", "2026-区审计局/3")
    assert "since 2026-12-03T10:00:00+08:00" in shown.out
    data = cli("issue", "show", "2026-区审计局/3", "--json").json
    assert data["history"][-1]["at"] == "2026-12-03T10:00:00+08:00"
    assert "sweep at 2026-12-04T09:30:00+08:00" in cli("sweep", "--at", "2026-12-04T09:30").out


def test_state_by_name_or_label_and_unknown_ones_refused(cli):
    audit(cli)
    by_label = cli("issue", "list", "--state", "整改中", "--json").json
    by_name = cli("issue", "list", "--state", "in_progress", "--json").json
    assert by_label == by_name and len(by_name) == 3
    bogus = cli("issue", "list", "--state", "bogus")
    assert bogus.code == 2 and "--state 'bogus' is not a state" in bogus.err and "in_progress (整改中)" in bogus.err


def test_edit_records_each_change_and_an_extension_needs_a_reason(cli):
    audit(cli)
    refused = cli("issue", "edit", "2026-区审计局/4", "--deadline", "2027-01-29", "--by", "分管副局长")
    assert refused.code == 2 and "延期" in refused.err
    # the department asks for an extension; the leader or a reviewer decides it
    department = cli("issue", "edit", "2026-区审计局/4", "--deadline", "2027-01-29", "--note", "延期", "--by", "财务室")
    assert department.code == 1 and "财务室" in department.err
    add_reviewer(cli, "巡察办")
    assert cli("issue", "show", "2026-区审计局/4", "--json").json["deadline"] == "2026-12-15"
    handed = ("--leader", "王副局长", "--by", "巡察办", "--note", "人员调整")
    nobody = cli("issue", "edit", "2026-区审计局/4", *handed)  # nobody could act for the new leader
    assert nobody.code == 1 and "no account can act for 王副局长" in nobody.err and "duban user add" in nobody.err
    unit = "中共重庆市璧山区审计局党组"
    assert cli("user", "add", f"{unit}/王副局长", "--unit", unit, "--display-name", "王副局长",
               "--role", "leader:王副局长").code == 0
    done = cli("issue", "edit", "2026-区审计局/4", "--deadline", "2027-01-29", "--note", "审计进场，延期", "--measures",
               "开展往来款项专项清理，按周对账", "--leader", "王副局长", "--by", "巡察办", "--at", "2026-12-05T10:00")
    assert done.code == 0, done.err
    shown = cli("issue", "show", "2026-区审计局/4", "--json").json
    assert (shown["deadline"], shown["measures"], shown["leader"], shown["state"]) == (
        "2027-01-29", "开展往来款项专项清理，按周对账", "王副局长", "in_progress")
    assert [(h["trigger"], h["note"]) for h in shown["history"] if h["trigger"] != "import"] == [
        ("edit", "整改措施: 开展往来款项专项清理，按月对账 → 开展往来款项专项清理，按周对账；审计进场，延期"),
        ("extend", "整改时限: 2026-12-15 → 2027-01-29；审计进场，延期"),
        ("handover", "责任领导: 分管副局长 → 王副局长；审计进场，延期")]
    # reminders follow the new deadline and the new leader
    preview = cli("remind", "preview", "--at", "2026-12-05T10:00", "--until", "2027-01-31T23:00", "--json").json
    four = [r for r in preview if r["subject"] == "2026-区审计局/4"]
    assert four and four[-1]["at"].startswith("2027-01-29") and all("王副局长" in r["recipients"] for r in four)
    assert not [r for r in four if r["at"] < "2026-12-16"]  # nothing on the old deadline

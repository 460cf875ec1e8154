"""Workflow versions move on purpose (issue #19): a ledger runs one version, its re-imports stay on
it, and `duban workflow migrate` moves it as a recorded step."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

LEDGER = "区科技局2026"
WF = "inspection-rectification"
HEADERS = ["序号", "方面", "问题类别", "具体问题", "整改措施", "责任领导", "责任科室", "整改时限", "整改状态"]
ROWS = [
    ["1", "党的建设", "组织建设", "支部“三会一课”记录不全", "补齐记录", "张副局长", "机关党支部", "2026-12-31", "待整改"],
    ["2", "党的建设", "作风建设", "公务接待审批单填写不规范", "", "李副局长", "办公室", "2026-12-31", "已制定方案"],
    ["3", "业务工作", "资金管理", "科技项目资金拨付滞后", "建立台账", "王局长", "财务室", "2026-12-31", "整改中"],
    ["4", "业务工作", "项目管理", "项目验收把关不严", "建立验收清单", "王局长", "科技管理科", "2026-12-31", "长期坚持"],
]
NEW_ROW = ["5", "业务工作", "项目管理", "项目档案不全", "补齐档案", "王局长", "科技管理科", "2026-12-31", "待整改"]
# row 1 claims 已完成: the forward path stops at 提交销号申请 (no evidence), a transition the warning names
CLAIM = [[*r[:8], "已完成"] if r[0] == "1" else r for r in ROWS]


def write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADERS)
        out.writerows(rows)
    return path


def second_version(project: Path) -> None:
    """The shipped workflow edited: 长期坚持 gone, a plan due within 20 working days of feedback (not
    15), and 提交销号申请 relabelled."""
    wf = project / "workflows" / f"{WF}.yaml"
    body = wf.read_text(encoding="utf-8")
    for gone in ("""  - name: long_term_sustained
    label: 长期坚持
    label_en: Sustained long-term
    description: 已整改，措施需长期坚持并定期回头看
""", """  - trigger: sustain
    source: completed
    dest: long_term_sustained
    label: 转入长期坚持
    label_en: Sustain
    roles: [reviewer, leader]
""", """  - trigger: approve_long_term
    source: awaiting_review
    dest: long_term_sustained
    label: 销号，转入长期坚持
    label_en: Sign off, keep up long-term
    conditions: [not_submitter]
    roles: [reviewer]
""", "  long_term_sustained: [长期坚持, 持续整改, 长期整改]\n"):
        assert gone in body
        body = body.replace(gone, "")
    body = body.replace("source: [completed, long_term_sustained]", "source: [completed]")
    body = body[:body.index("checkins:")] + body[body.index("milestones:"):]
    body = body.replace("    anchor: feedback\n    working_days: 15", "    anchor: feedback\n    working_days: 20")
    body = body.replace("label: 提交销号申请", "label: 申请销号")
    wf.write_text(body, encoding="utf-8")


@pytest.fixture
def moved_on(project, cli, db_url, monkeypatch, tmp_path):
    """A ledger imported on the shipped workflow, then the workflow changed and synced: (v1, v2, sheet)."""
    monkeypatch.setenv("DUBAN_DATABASE_URL", db_url)
    assert cli("init").code == 0
    sheet = write(tmp_path / f"{LEDGER}.csv", ROWS)
    result = cli("ledger", "import", sheet, "--feedback-date", "2026-11-02", "--unit", "区科技局",
                 "--at", "2026-11-03T10:00")
    assert result.code == 0, result.err
    second_version(project)
    synced = cli("workflow", "sync", "--at", "2026-11-04T10:00")
    assert synced.code == 0, synced.err
    v1, v2 = (v["version"] for v in cli("workflow", "list", "--json").json)
    assert f"ledger {LEDGER}: 1 issue(s) in long_term_sustained, a state @{v2} does not have" in synced.err
    return v1, v2, sheet


def counts(cli) -> list[int]:
    return [v["issues"] for v in cli("workflow", "list", "--json").json]


def show(cli, ref: str) -> dict:
    result = cli("issue", "show", f"{LEDGER}/{ref}", "--json")
    assert result.code == 0, result.err
    return result.json


def plan_dues(cli, ref: str) -> set[str]:
    rows = cli("remind", "preview", "--at", "2026-11-04T10:00", "--until", "2027-01-31", "--ledger", LEDGER,
               "--json").json
    return {r["due"] for r in rows if r["subject"] == f"{LEDGER}/{ref}"}


@pytest.mark.parametrize("db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_a_reimport_stays_on_the_ledgers_version_and_says_so(moved_on, cli, tmp_path):
    v1, v2, sheet = moved_on
    result = cli("ledger", "import", write(sheet, [*CLAIM, NEW_ROW]), "--at", "2026-11-05T10:00")
    assert result.code == 0, result.err
    assert (f"workflow {WF} has a newer version @{v2}; this ledger stays on @{v1}: "
            f"duban workflow migrate {LEDGER} --to {v2}") in result.err
    assert f"({WF}@{v1}): 1 new" in result.out
    assert show(cli, "5")["workflow"] == f"{WF}@{v1}"
    assert counts(cli) == [5, 0]
    # the claim is read by the ledger's own machine: its step is named as that version names it
    assert "not applied: 提交销号申请 (submit)" in result.err
    assert "申请销号" not in result.err
    assert show(cli, "1")["state"] == "identified"  # all the steps or none


@pytest.mark.parametrize("db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_migrate_maps_records_and_replans(moved_on, cli):
    v1, v2, sheet = moved_on
    before = {ref: show(cli, ref) for ref in "1234"}
    dues = plan_dues(cli, "1")
    assert "2026-11-23" in dues  # 15 working days after the feedback of 2026-11-02

    refused = cli("workflow", "migrate", LEDGER, "--to", v2, "--by", "admin", "--at", "2026-11-06T10:00")
    assert refused.code == 1
    assert f"{WF}@{v2} has no state for 1 issue(s); nothing was moved" in refused.err
    assert f"long_term_sustained (长期坚持) on @{v1}: 1 issue(s)" in refused.err
    assert "--map long_term_sustained=STATE" in refused.err
    assert "Traceback" not in refused.err
    assert counts(cli) == [4, 0] and {ref: show(cli, ref) for ref in "1234"} == before

    bad = cli("workflow", "migrate", LEDGER, "--to", v2, "--map", "long_term_sustained=archived", "--by", "admin")
    assert bad.code == 2 and "'archived' is not a state of" in bad.err
    unknown = cli("workflow", "migrate", LEDGER, "--to", "0000000", "--by", "admin")
    assert unknown.code == 2 and "has no version '0000000'" in unknown.err

    dry = cli("workflow", "migrate", LEDGER, "--to", "latest", "--map", "长期坚持=已完成", "--by", "admin", "--dry-run",
              "--at", "2026-11-06T10:00")
    assert dry.code == 0, dry.err
    assert f"@{v1} 长期坚持 (long_term_sustained) → @{v2} 已完成 (completed): 1 issue(s)" in dry.out
    assert f"@{v1} 待整改 (identified) → @{v2} 待整改 (identified): 1 issue(s)" in dry.out
    assert f"would move 4 issue(s) of ledger {LEDGER} to {WF}@{v2}" in dry.out and "nothing was written" in dry.out
    assert counts(cli) == [4, 0] and {ref: show(cli, ref) for ref in "1234"} == before
    assert plan_dues(cli, "1") == dues

    moved = cli("workflow", "migrate", LEDGER, "--to", v2, "--map", "long_term_sustained=completed", "--by", "admin",
                "--at", "2026-11-06T10:00")
    assert moved.code == 0, moved.err
    assert f"moved 4 issue(s) of ledger {LEDGER} to {WF}@{v2}" in moved.out
    assert counts(cli) == [0, 4]
    after = {ref: show(cli, ref) for ref in "1234"}
    assert [after[r]["state"] for r in "1234"] == ["identified", "planned", "in_progress", "completed"]
    assert {after[r]["workflow"] for r in "1234"} == {f"{WF}@{v2}"}
    assert after["3"]["state_since"] == before["3"]["state_since"]  # a move of version is no step
    for ref in "1234":
        assert len(after[ref]["history"]) == len(before[ref]["history"]) + 1
    last = after["4"]["history"][-1]
    assert {k: last[k] for k in ("by", "door", "trigger", "from", "to", "note")} == {
        "by": "admin", "door": "cli", "trigger": "migrate", "from": "long_term_sustained", "to": "completed",
        "note": f"工作流 {WF}@{v1} → @{v2}；状态 长期坚持 → 已完成"}
    assert after["2"]["history"][-1]["note"] == f"工作流 {WF}@{v1} → @{v2}；状态 已制定方案 → 已制定方案"
    # re-planned under the new version: a plan is due 20 working days after the feedback
    new_dues = plan_dues(cli, "1")
    assert "2026-11-30" in new_dues and "2026-11-23" not in new_dues

    again = cli("workflow", "migrate", LEDGER, "--to", v2, "--by", "admin")
    assert again.code == 0 and "already on" in again.out
    result = cli("ledger", "import", write(sheet, [*ROWS[:3], NEW_ROW]), "--at", "2026-11-07T10:00")
    assert result.code == 0, result.err
    assert "newer version" not in result.err and f"({WF}@{v2}): 1 new" in result.out
    assert counts(cli) == [0, 5]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_only_an_administrator_or_the_units_moves_a_ledger(moved_on, cli):
    v1, v2, _ = moved_on
    assert cli("user", "add", "巡察办", "--role", "reviewer").code == 0
    assert cli("user", "add", "科技局管理员", "--unit", "区科技局", "--role", "unit_admin").code == 0
    assert cli("user", "add", "教委管理员", "--unit", "区教委", "--role", "unit_admin").code == 0
    for who in ("巡察办", "教委管理员", "区科技局/王局长"):
        refused = cli("workflow", "migrate", LEDGER, "--to", v2, "--map", "长期坚持=已完成", "--by", who)
        assert refused.code == 1, (who, refused.out, refused.err)
        assert "may not move ledger" in refused.err
    assert counts(cli) == [4, 0]
    moved = cli("workflow", "migrate", LEDGER, "--to", v2, "--map", "长期坚持=已完成", "--by", "科技局管理员")
    assert moved.code == 0, moved.err
    assert show(cli, "4")["history"][-1]["by"] == "科技局管理员"
    assert counts(cli) == [0, 4]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_ledger_an_older_duban_mixed_is_reported_and_put_on_one_version(moved_on, cli, db_url):
    v1, v2, sheet = moved_on
    engine = create_engine(db_url)
    with engine.begin() as conn:  # what a re-import did before #19: new rows on the newest version
        conn.execute(text("UPDATE issues SET workflow_id = (SELECT max(id) FROM workflows) WHERE ref = '3'"))
    engine.dispose()
    claim = [[*r[:8], "已完成"] if r[0] == "3" else r for r in ROWS]
    result = cli("ledger", "import", write(sheet, claim), "--at", "2026-11-05T10:00")
    assert result.code == 0, result.err
    assert (f"issues are on 2 versions of {WF}: @{v1} (3 issue(s)), @{v2} (1 issue(s)); new rows follow @{v1}: "
            f"duban workflow migrate {LEDGER} --to {v1} puts them all on one") in result.err
    # row 3 is on the new version: its claim is read by that version's machine
    assert "row 4: 整改状态: sheet says 已完成, duban has 整改中; not applied: 申请销号 (submit)" in result.err
    moved = cli("workflow", "migrate", LEDGER, "--to", v2, "--map", "长期坚持=已完成", "--by", "admin")
    assert moved.code == 0, moved.err
    assert f"moved 3 issue(s) of ledger {LEDGER}" in moved.out
    assert counts(cli) == [0, 4]

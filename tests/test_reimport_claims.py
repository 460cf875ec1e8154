"""Re-import is a merge: the sheet's 整改状态 is a claim the workflow decides (issue #10)."""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl

HEADERS = ["序号", "方面", "问题类别", "具体问题", "整改措施", "责任领导", "责任科室", "整改时限", "整改状态"]
ROWS = [
    ["1", "党的建设", "组织建设", "支部“三会一课”记录不全", "补齐记录", "张副局长", "机关党支部", "2026-12-31", "待整改"],
    ["2", "党的建设", "作风建设", "公务接待审批单填写不规范", "", "李副局长", "办公室", "2026-12-31", "已制定方案"],
    ["3", "业务工作", "资金管理", "科技项目资金拨付滞后", "建立台账", "王局长", "财务室", "2026-12-31", "整改中"],
]


def write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADERS)
        out.writerows(rows)
    return path


def edited(rows: list[list[str]], ref: str, column: str, value: str) -> list[list[str]]:
    out = [list(r) for r in rows]
    for r in out:
        if r[0] == ref:
            r[HEADERS.index(column)] = value
    return out


def imported(cli, tmp_path):
    assert cli("init").code == 0
    path = write(tmp_path / "区科技局2026.csv", ROWS)
    result = cli("ledger", "import", path, "--feedback-date", "2026-11-02", "--at", "2026-11-03T10:00")
    assert result.code == 0, result.err
    return path


def state(cli, ref: str) -> str:
    return cli("issue", "show", f"区科技局2026/{ref}", "--json").json["state"]


def test_a_stale_sheet_does_not_undo_a_transition(cli, tmp_path):
    path = imported(cli, tmp_path)
    moved = cli("issue", "transition", "区科技局2026/2", "start", "--by", "李副局长", "--at", "2026-11-10T10:00")
    assert moved.code == 0, moved.err
    again = write(path, edited(ROWS, "3", "整改措施", "建立资金拨付台账，按月通报"))  # the sheet still says 已制定方案 for 2
    result = cli("ledger", "import", again, "--at", "2026-11-11T10:00")
    assert result.code == 0, result.err
    assert "0 new, 1 updated, 2 unchanged, 1 state claim(s) not applied" in result.out
    assert ("row 3: 整改状态: sheet says 已制定方案, duban has 整改中; not applied: "
            "a sheet cannot move an issue back") in result.err
    assert state(cli, "2") == "in_progress"
    assert cli("issue", "show", "区科技局2026/3", "--json").json["measures"] == "建立资金拨付台账，按月通报"


def test_a_blank_status_keeps_the_state(cli, tmp_path):
    path = imported(cli, tmp_path)
    result = cli("ledger", "import", write(path, edited(ROWS, "3", "整改状态", "")), "--at", "2026-11-11T10:00")
    assert result.code == 0, result.err
    assert "0 new, 0 updated, 3 unchanged" in result.out and "not applied" not in result.err
    assert state(cli, "3") == "in_progress"


def test_a_sheet_claiming_done_without_evidence_is_reported_not_applied(cli, tmp_path):
    path = imported(cli, tmp_path)
    result = cli("ledger", "import", write(path, edited(ROWS, "3", "整改状态", "已完成")), "--at", "2026-11-11T10:00")
    assert result.code == 0, result.err
    assert (f"{path}: row 4: 整改状态: sheet says 已完成, duban has 整改中; not applied: 提交销号申请 (submit): "
            "evidence is required for this round (需上传本轮佐证材料)") in result.err
    shown = cli("issue", "show", "区科技局2026/3", "--json").json
    assert shown["state"] == "in_progress" and [h["trigger"] for h in shown["history"]] == ["import"]


def test_a_forward_claim_goes_along_the_transitions_and_is_in_the_history(cli, tmp_path):
    path = imported(cli, tmp_path)
    result = cli("ledger", "import", write(path, edited(ROWS, "1", "整改状态", "整改中")), "--at", "2026-11-11T10:00")
    assert result.code == 0, result.err
    assert "1 moved along the workflow" in result.out
    shown = cli("issue", "show", "区科技局2026/1", "--json").json
    assert shown["state"] == "in_progress"
    assert [(h["trigger"], h["from"], h["to"], h["by"]) for h in shown["history"]] == [
        ("import", "identified", "identified", "admin"),  # the first import: the row it came from
        ("plan", "identified", "planned", "admin"), ("start", "planned", "in_progress", "admin")]
    assert {h["door"] for h in shown["history"]} == {"import"}
    assert shown["history"][0]["note"] == "导入 区科技局2026.csv 第2行"
    assert shown["history"][1]["note"] == "导入 区科技局2026.csv 第2行：整改状态为“整改中”"


def test_dry_run_prints_the_diff_and_writes_nothing(cli, tmp_path):
    path = imported(cli, tmp_path)
    rows = edited(edited(ROWS, "1", "整改状态", "已制定方案"), "2", "责任科室", "综合科")
    result = cli("ledger", "import", write(path, rows), "--dry-run", "--at", "2026-11-11T10:00")
    assert result.code == 0, result.err
    assert "区科技局2026.csv: row 3: 责任科室: '办公室' → '综合科'" in result.out
    assert "区科技局2026.csv: row 2: 整改状态: 待整改 → 已制定方案 (via 制定整改方案)" in result.out
    assert "dry run: nothing was written" in result.out
    assert state(cli, "1") == "identified"
    assert cli("issue", "show", "区科技局2026/2", "--json").json["department"] == "办公室"


def test_export_edit_one_cell_reimport_changes_only_that_cell(cli, tmp_path):
    imported(cli, tmp_path)
    assert cli("issue", "transition", "区科技局2026/1", "plan", "--by", "张副局长", "--at", "2026-11-05T10:00").code == 0
    before = {r: cli("issue", "show", f"区科技局2026/{r}", "--json").json for r in "123"}
    out = tmp_path / "export.xlsx"
    assert cli("ledger", "export", out, "--ledger", "区科技局2026").code == 0
    book = openpyxl.load_workbook(out)
    sheet = book.active
    header = [c.value for c in sheet[2]]  # under the export's title row
    sheet.cell(row=4, column=header.index("整改措施") + 1, value="完善公务接待审批单")
    book.save(out)
    result = cli("ledger", "import", out, "--ledger", "区科技局2026", "--at", "2026-11-11T10:00")
    assert result.code == 0, result.err
    assert "0 new, 1 updated, 2 unchanged" in result.out and "not applied" not in result.err
    after = {r: cli("issue", "show", f"区科技局2026/{r}", "--json").json for r in "123"}
    assert after["2"]["measures"] == "完善公务接待审批单"
    after["2"]["measures"] = before["2"]["measures"]
    # the sheet edit is in the history, with its file, row and the field before → after
    edit = after["2"]["history"].pop()
    assert (edit["trigger"], edit["door"]) == ("edit", "import")
    assert edit["note"].startswith("导入 export.xlsx 第4行：整改措施: ") and "完善公务接待审批单" in edit["note"]
    for r in "123":
        for volatile in ("updated_at", "next_remind_at"):
            before[r].pop(volatile, None)
            after[r].pop(volatile, None)
    assert after == before


def test_forward_paths_skip_states_a_sheet_may_never_set():
    from engine.ledger.claims import StateClaim, forward_path, why_not
    from engine.workflow.loader import load_workflow

    from .conftest import WORKFLOWS

    shipped = load_workflow(WORKFLOWS / "inspection-rectification.yaml").definition
    assert [t.trigger for t in forward_path(shipped, "identified", "long_term_sustained")] == [
        "plan", "start", "submit", "approve_long_term"]
    assert forward_path(shipped, "completed", "in_progress") is None  # reopen is a step back
    states = [s.model_copy(update={"import_": "never"}) if s.name == "completed" else s for s in shipped.states]
    guarded = shipped.model_copy(update={"states": states})
    assert forward_path(guarded, "in_progress", "completed") is None
    # the path around 已完成: submitted, then signed off straight into 长期坚持
    assert [t.trigger for t in forward_path(guarded, "in_progress", "long_term_sustained")] == [
        "submit", "approve_long_term"]
    claim = StateClaim(1, "1", 2, "已完成", "in_progress", "completed")
    assert why_not(guarded, claim) == "已完成 is reached only by a person's step in duban, never by a sheet"

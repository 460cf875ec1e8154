"""Ledgers as offices keep them (issue #20): title rows, two-row headers, the spellings offices use,
footers, numbering kept in cells, blank 方面, deadline phrases, a GBK CSV. The corpus is
tests/data/ledgers/ (CSV) and the workbooks built below; each imports with the right values, every
reading listed, or is refused at its row and column. A property closes it: no cell of a sheet is
dropped or changed without the import saying so."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import sqlite3
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from engine.workflow.loader import load_workflow

from .conftest import WORKFLOWS, examples

DATA = Path(__file__).parent / "data" / "ledgers"
A1 = "贯彻落实党的路线方针政策和党中央决策部署方面"
A2 = "全面从严治党主体责任落实方面"


def imported(cli, path: Path, *args: str):
    result = cli("ledger", "import", path, "--at", "2026-11-03T10:00", *args)
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    return result


def issues(cli, ledger: str) -> dict[str, dict]:
    return {i["number"]: i for i in cli("issue", "list", "--ledger", ledger, "--json").json}


def row_of(project: Path, sql: str, *args: object) -> tuple:
    with sqlite3.connect(project / "duban.db") as conn:
        return conn.execute(sql, args).fetchone()


def picked(found: dict[str, dict], *keys: str) -> dict[str, tuple]:
    return {n: tuple(i[k] for k in keys) for n, i in found.items()}


@pytest.fixture
def ready(cli):
    assert cli("init").code == 0
    return cli


# -- the workbooks of the corpus (built here: openpyxl writes what Excel and WPS save) ---------

def title_rows_workbook(path: Path) -> Path:
    """区民政局's ledger: a merged title, an information row, the office's spellings, 方面 merged over
    its problems, a date cell, an Excel serial left as a number, phrases, and a footer."""
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "整改台账"
    ws["A1"] = "区民政局巡察反馈问题整改台账"
    ws.merge_cells("A1:I1")
    ws["A2"], ws["F2"] = "填报单位：区民政局", "填报时间：2026年3月1日"
    ws.merge_cells("A2:E2")
    ws.merge_cells("F2:I2")
    ws.append(["序号", "方面", "问题类别", "问题表现", "整改措施", "牵头领导", "责任股室", "完成时限", "整改进度"])
    ws.append([1, A1, "理论学习", "中心组学习不够深入", "制定学习计划", "局长", "办公室", dt.datetime(2026, 12, 31), "整改中"])
    ws.append([2, None, "理论学习", "养老服务补贴审核不严", "逐户复核", "副局长", "社会福利股", 45199, "已完成"])
    ws.append([3, None, "意识形态", "阵地管理不规范", "建立阵地台账", "局长", "办公室", "2026年12月底前", "待整改"])
    ws.append([4, A2, "主体责任", "“一岗双责”落实不到位", "签订责任书", "副局长", "人事股", "立行立改", "整改中"])
    ws.merge_cells("B4:B6")
    ws.append(["合计", None, None, "4个问题"])
    ws.merge_cells("A8:C8")
    ws.append(["填表人：张三　审核人：李四"])
    ws.merge_cells("A9:I9")
    book.save(path)
    return path


def two_row_workbook(path: Path) -> Path:
    """区教委's ledger: a title, then a header of two rows — 责任主体 merged over 牵头领导 | 责任股室,
    the other headers merged down over both rows."""
    book = openpyxl.Workbook()
    ws = book.active
    ws["A1"] = "区教委巡察整改台账"
    ws.merge_cells("A1:I1")
    ws.append(["序号", "方面", "问题类别", "反馈问题", "整改措施", "责任主体", None, "完成时限", "整改状态"])
    ws.append([None, None, None, None, None, "牵头领导", "责任股室"])
    for col in "ABCDEHI":
        ws.merge_cells(f"{col}2:{col}3")
    ws.merge_cells("F2:G2")
    ws.append([1, A1, "理论学习", "中心组学习不够深入", "制定学习计划", "主任", "办公室", "2026.12.31", "整改中"])
    ws.append([2, A2, "主体责任", "校园食堂监管不到位", "开展专项检查", "副主任", "安全股", "2026年第三季度", "已完成"])
    book.save(path)
    return path


# -- the corpus ------------------------------------------------------------------------------

def test_a_merged_title_and_an_information_row_above_the_header(ready, project, tmp_path):
    path = title_rows_workbook(tmp_path / "区民政局.xlsx")
    result = imported(ready, path, "--feedback-date", "2026-11-02")
    got = issues(ready, "区民政局")
    assert picked(got, "area", "category", "title", "leader", "department", "deadline", "state") == {
        "1": (A1, "理论学习", "中心组学习不够深入", "局长", "办公室", "2026-12-31", "in_progress"),
        "2": (A1, "理论学习", "养老服务补贴审核不严", "副局长", "社会福利股", "2023-09-30", "completed"),
        "3": (A1, "意识形态", "阵地管理不规范", "局长", "办公室", "2026-12-31", "identified"),
        "4": (A2, "主体责任", "“一岗双责”落实不到位", "副局长", "人事股", "2026-11-09", "in_progress")}
    assert row_of(project, "select unit from ledgers where name = ?", "区民政局") == ("区民政局",)
    name = path.name
    for line in (f"{name}: row 1: above the header, skipped: 区民政局巡察反馈问题整改台账",
                 f"{name}: row 2: above the header, skipped: 填报单位：区民政局 | 填报时间：2026年3月1日",
                 f"{name}: row 2: 单位: 填报单位：区民政局 | 填报时间：2026年3月1日 → the ledger's unit: 区民政局",
                 f"{name}: row 5: 完成时限: 45199 → 2023-09-30 (an Excel date serial)",
                 f"{name}: row 6: 完成时限: 2026年12月底前 → 2026-12-31",
                 f"{name}: row 7: 完成时限: 立行立改 → 2026-11-09 (立行立改: the feedback date 2026-11-02 + 5 working days)",
                 f"{name}: row 8: a footer, skipped: 合计 | 4个问题",
                 f"{name}: row 9: a footer, skipped: 填表人：张三 审核人：李四"):
        assert line in result.out, result.out
    assert "row 4: 完成时限" not in result.out  # a date cell is a plain date: not listed
    assert "4 rows" in result.out


def test_a_two_row_header_is_read_as_one(ready, tmp_path):
    path = two_row_workbook(tmp_path / "区教委.xlsx")
    result = imported(ready, path)
    assert picked(issues(ready, "区教委"), "title", "leader", "department", "deadline", "state") == {
        "1": ("中心组学习不够深入", "主任", "办公室", "2026-12-31", "in_progress"),
        "2": ("校园食堂监管不到位", "副主任", "安全股", "2026-09-30", "completed")}
    assert ("区教委.xlsx: row 2: a header of 2 rows (2–3), read as one: 责任主体 / 牵头领导 → 牵头领导; "
            "责任主体 / 责任股室 → 责任股室") in result.out
    assert "区教委.xlsx: row 1: above the header, skipped: 区教委巡察整改台账" in result.out
    assert "区教委.xlsx: row 5: 完成时限: 2026年第三季度 → 2026-09-30" in result.out
    assert "2 rows" in result.out  # the header's second row is no problem


def test_a_two_row_header_in_a_csv(ready):
    result = imported(ready, DATA / "two-row-header.csv")
    assert picked(issues(ready, "two-row-header"), "measures", "leader", "department", "state") == {
        "1": ("制定年度学习计划", "局长", "办公室", "in_progress"), "2": ("签订责任书", "副局长", "人事股", "completed")}
    assert ("two-row-header.csv: row 1: a header of 2 rows (1–2), read as one: 整改情况 / 整改措施 → 整改措施; "
            "责任主体 / 牵头领导 → 牵头领导") in result.out


def test_the_spellings_offices_use_need_no_workflow_edit(ready, tmp_path):
    result = imported(ready, DATA / "synonyms.csv")
    assert "not a ledger field" not in result.err
    assert picked(issues(ready, "synonyms"), "category", "title", "measures", "leader", "department", "deadline",
                  "state") == {
        "1": ("理论学习", "中心组学习计划未按期制定", "制定年度学习计划", "局长", "办公室", "2026-12-31", "in_progress"),
        "2": ("理论学习", "专题研讨流于形式", "每季度开展专题研讨", "局长", "办公室", "2026-12-31", "identified"),
        "3": ("主体责任", "“一岗双责”落实不到位", "签订责任书", "副局长", "人事股", "2026-10-31", "completed")}
    out = tmp_path / "out.csv"  # and an export writes each column back under its own header
    assert ready("ledger", "export", out, "--ledger", "synonyms").code == 0
    assert out.read_text(encoding="utf-8-sig") == (DATA / "synonyms.csv").read_text(encoding="utf-8")


def test_the_workflow_columns_extend_and_override_the_built_in_spellings(ready, project, tmp_path):
    wf = project / "workflows" / "inspection-rectification.yaml"
    text = wf.read_text(encoding="utf-8")
    wf.write_text(text.replace("  area: [方面, 问题方面]", "  area: [方面, 问题方面, 巡察板块]")
                  .replace("  category: [问题类别, 类别]", "  category: [问题类别, 类别, 反馈问题]"), encoding="utf-8")
    path = tmp_path / "own.csv"
    path.write_text("序号,巡察板块,反馈问题,问题表现,完成时限\n1,党的建设,组织建设,支部活动不规范,2026-12-31\n",
                    encoding="utf-8")
    result = imported(ready, path)
    assert "not a ledger field" not in result.err
    one = issues(ready, "own")["1"]
    assert (one["area"], one["category"], one["title"]) == ("党的建设", "组织建设", "支部活动不规范")


def test_two_columns_of_one_field_the_first_spelling_wins_the_other_is_kept(ready, project, tmp_path):
    path = tmp_path / "both.csv"
    path.write_text("序号,反馈问题,问题表现,整改时限\n1,理论学习不深入,中心组学习不够深入,2026-12-31\n", encoding="utf-8")
    result = imported(ready, path)
    assert ("反馈问题: the column '问题表现' also fills 'title' and comes first; '反馈问题' is kept as an extra "
            "column") in result.err
    assert issues(ready, "both")["1"]["title"] == "中心组学习不够深入"
    assert json.loads(row_of(project, "select extra from issues where ref = '1'")[0]) == {"反馈问题": "理论学习不深入"}


def test_footer_rows_are_skipped_with_a_note(ready):
    result = imported(ready, DATA / "footer.csv")
    assert sorted(issues(ready, "footer")) == ["1", "2", "3"]
    assert "footer.csv: row 5: a footer, skipped: 合计 | 共3个问题" in result.out
    assert "footer.csv: row 6: a footer, skipped: 填表人：张三 | 审核人：李四 | 填表日期：2026年3月1日" in result.out
    assert "footer.csv: row 7: a footer, skipped: 备注：整改状态分为待整改、整改中、已完成。" in result.out


def test_numbering_moves_out_of_the_cells_and_back_on_export(ready, tmp_path):
    result = imported(ready, DATA / "numbering.csv")
    got = issues(ready, "numbering")
    assert picked(got, "area", "category", "title") == {
        "1": (A1, "理论学习不深入", "中心组学习不够深入"), "2": (A1, "理论学习不深入", "集体学习有漏项"),
        "3": (A2, "主体责任落实不到位", "关于“一岗双责”落实不到位"),
        "4": (A2, "主体责任落实不到位", "1、2号楼消防通道堵塞")}  # 1、2号楼 is text, not numbering
    assert "numbering.csv: row 3: 序号: (blank) → 2 (the numbering of its 具体问题)" in result.out
    assert f"numbering.csv: rows 2–3: 方面: 一、{A1} → {A1} (numbering 一、 moved out)" in result.out
    assert ("numbering.csv: row 4: 具体问题: （1）关于“一岗双责”落实不到位 → 关于“一岗双责”落实不到位 "
            "(numbering （1） moved out)") in result.out
    report = ready("report", "--ledger", "numbering", "--format", "md").out
    assert "（一）一、" not in report and "1．　（一）" not in report and "“1." not in report and "“（1）" not in report
    out = tmp_path / "out.csv"
    assert ready("ledger", "export", out, "--ledger", "numbering").code == 0
    written = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    source = list(csv.reader(io.StringIO((DATA / "numbering.csv").read_text(encoding="utf-8"))))
    source[2][0] = "2"  # the blank 序号 the numbering filled
    assert written == source
    again = imported(ready, out, "--ledger", "numbering")
    assert "0 new, 0 updated, 4 unchanged" in again.out


def test_section_heading_rows_give_the_rows_below_their_area_and_category(ready, tmp_path):
    result = imported(ready, DATA / "sections.csv")
    assert picked(issues(ready, "sections"), "area", "category", "title") == {
        "1": (A1, "理论学习不深入", "中心组学习不够深入"), "2": (A1, "理论学习不深入", "集体学习有漏项"),
        "3": (A2, "主体责任落实不到位", "“一岗双责”落实不到位")}
    for line in (f"sections.csv: row 2: a section heading, the 方面 of the rows below: 一 {A1}",
                 "sections.csv: row 3: a section heading, the 问题类别 of the rows below: （一） 理论学习不深入",
                 f"sections.csv: row 6: a section heading, the 方面 of the rows below: 二、{A2}"):
        assert line in result.out
    assert "3 rows" in result.out and "warning" not in result.err
    out = tmp_path / "out.csv"  # the export is flat: 方面 and 问题类别 become columns
    assert ready("ledger", "export", out, "--ledger", "sections").code == 0
    assert out.read_text(encoding="utf-8-sig").splitlines()[0] == ",".join(
        ["序号", "具体问题", "整改措施", "责任领导", "责任科室", "整改时限", "整改状态", "方面", "问题类别"])
    # one text across a row that no numbering places is refused, not imported as a problem
    odd = tmp_path / "odd.csv"
    odd.write_text("序号,具体问题,整改时限\n聚焦群众身边腐败问题,聚焦群众身边腐败问题,聚焦群众身边腐败问题\n1,问题,2026-12-31\n",
                   encoding="utf-8")
    refused = ready("ledger", "import", odd)
    assert refused.code == 2 and f"{odd}: row 2: 序号: one text across the row" in refused.err


def test_a_blank_area_is_carried_down_with_a_warning(ready):
    result = imported(ready, DATA / "blank-area.csv")
    assert picked(issues(ready, "blank-area"), "area", "category") == {
        "1": (A1, "理论学习"), "2": (A1, "理论学习"), "3": (A1, "意识形态"), "4": (A2, ""), "5": (A2, "")}
    status = ready("status", "--ledger", "blank-area", "--json").json
    assert (status["issues"], status["areas"]) == (5, 2)
    for line in (f"blank-area.csv: rows 3–4: 方面: (blank) → carried down from row 2: {A1}",
                 "blank-area.csv: row 3: 问题类别: (blank) → carried down from row 2: 理论学习",
                 "blank-area.csv: row 5: 问题类别: (blank) → left blank (the 方面 changed)",
                 f"blank-area.csv: row 6: 方面: (blank) → carried down from row 5: {A2}"):
        assert f"warning: {line}" in result.err, result.err


DEADLINES = {  # deadlines.csv: 序号 -> (整改时限 as read, state, listed as)
    "1": ("2026-12-31", "in_progress", "2026年12月底前 → 2026-12-31"),
    "2": ("2027-01-15", "in_progress", "2027年1月15日前 → 2027-01-15"),
    "3": ("2026-11-09", "in_progress", "立行立改 → 2026-11-09 (立行立改: the feedback date 2026-11-02 + 5 working days)"),
    "4": ("2023-09-30", "in_progress", "45199 → 2023-09-30 (an Excel date serial)"),
    "5": ("2022-09-30", "in_progress", "2022年9月底 → 2022-09-30"),
    "6": ("2026-12-31", "in_progress", None),  # 2026.12.31: a plain date
    "7": ("2026-12-31", "in_progress", "2026年底前 → 2026-12-31"),
    "8": ("2026-09-30", "in_progress", "2026年第三季度 → 2026-09-30"),
    "9": ("2026-06-30", "in_progress", "2026年上半年 → 2026-06-30"),
    "10": ("2026-12-31", "in_progress", "2026年下半年 → 2026-12-31"),
    "11": (None, "long_term_sustained",
           "长期坚持 → no deadline: a long-term item, claims 长期坚持 (a look-back every 3 month(s))"),
    "12": (None, "completed", "长期坚持 → no deadline (整改状态 已完成 decides: 已完成)"),
    "13": ("2027-03-31", "in_progress", "2027年3月 → 2027-03-31"),
    "14": ("2026-11-09", "in_progress", "立行立改，长期坚持 → 2026-11-09 (立行立改: the feedback date 2026-11-02 + 5 working "
                                        "days); then 长期坚持 (kept up long-term once done)"),
    "15": ("2026-12-31", "in_progress", "2026年6月至12月 → 2026-12-31"),
    "16": ("2026-12-31", "in_progress", "2026年12月底前完成 → 2026-12-31"),
}


def test_each_deadline_phrase_is_read_and_listed(ready):
    dry = ready("ledger", "import", DATA / "deadlines.csv", "--feedback-date", "2026-11-02", "--dry-run")
    assert dry.code == 0, dry.err
    result = imported(ready, DATA / "deadlines.csv", "--feedback-date", "2026-11-02")
    assert picked(issues(ready, "deadlines"), "deadline", "state") == {n: v[:2] for n, v in DEADLINES.items()}
    for number, (_, _, listed) in DEADLINES.items():
        line = f"deadlines.csv: row {int(number) + 1}: 整改时限: {listed}"
        if listed is None:
            assert f"row {int(number) + 1}: " not in dry.out
        else:
            assert line in dry.out and line in result.out, line
    assert "dry run: nothing was written" in dry.out


def test_immediate_is_refused_without_a_feedback_date_and_counts_the_workflows_days(ready, project):
    refused = ready("ledger", "import", DATA / "deadlines.csv")
    assert refused.code == 2 and "nothing was imported" in refused.err
    for row in (4, 15):
        assert (f"deadlines.csv: row {row}: 整改时限: '立行立改{'，长期坚持' if row == 15 else ''}' (立行立改) is due 5 "
                f"working day(s) after the feedback date, and the ledger has none: give --feedback-date") in refused.err
    assert ready("issue", "list", "--json").json == []
    wf = project / "workflows" / "inspection-rectification.yaml"
    wf.write_text(wf.read_text(encoding="utf-8").replace("initial: identified", "initial: identified\n"
                                                         "immediate_working_days: 10"), encoding="utf-8")
    imported(ready, DATA / "deadlines.csv", "--feedback-date", "2026-11-02")
    assert issues(ready, "deadlines")["3"]["deadline"] == "2026-11-16"


def test_what_cannot_be_understood_is_refused_at_its_row_and_column(ready):
    path = DATA / "deadlines-refused.csv"
    result = ready("ledger", "import", path, "--feedback-date", "2026-11-02")
    assert result.code == 2 and "Traceback" not in result.err
    assert f"{path}: 4 problem(s); nothing was imported" in result.err
    assert (f"{path}: row 2: 整改时限: '2026年12月前' may mean before that period or by its end: write 2026年12月底前, "
            "or a date") in result.err
    assert f"{path}: row 3: 整改时限: '12月底前' has no year" in result.err
    assert f"{path}: row 4: 整改时限: '明年' is not a date" in result.err
    assert (f"{path}: row 5: 整改时限: '长期坚持' is a long-term item, but 整改状态 says 整改中, which is due by its "
            "整改时限: give the date it is to be rectified by, or set 整改状态 to 长期坚持") in result.err
    assert ready("issue", "list", "--json").json == []


def test_long_term_on_a_reimport_claims_or_is_refused(ready, tmp_path):
    rows = [["序号", "具体问题", "整改时限", "整改状态"], ["1", "问题一", "2026-12-31", "已完成"],
            ["2", "问题二", "2026-12-31", "整改中"]]
    path = tmp_path / "lt.csv"

    def write() -> Path:
        with path.open("w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows(rows)
        return path

    imported(ready, write(), "--feedback-date", "2026-11-02")
    rows[1][2:] = ["长期坚持", ""]  # done, and now kept up: the deadline claims 长期坚持
    rows[2][2:] = ["长期坚持", ""]  # still being worked towards its date: it cannot lose it
    refused = ready("ledger", "import", write())
    assert refused.code == 2
    assert (f"{path}: row 3: 整改时限: '长期坚持' is a long-term item, but in duban the issue is 整改中, which is due by "
            "its 整改时限") in refused.err
    rows.pop()
    dry = ready("ledger", "import", write(), "--dry-run")
    assert "lt.csv: row 2: 整改状态: 已完成 → 长期坚持 (via 转入长期坚持)" in dry.out, dry.out
    result = imported(ready, write())
    assert "lt.csv: row 2: 整改时限: 长期坚持 → no deadline: a long-term item, claims 长期坚持" in result.out
    one = issues(ready, "lt")["1"]
    assert (one["state"], one["deadline"]) == ("long_term_sustained", None)


def test_a_gbk_csv_with_a_title_the_unit_and_a_footer(ready, project):
    path = DATA / "gbk.csv"
    path.read_bytes().decode("gbk")  # as Excel on a Chinese Windows saves it
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    result = imported(ready, path)
    assert picked(issues(ready, "gbk"), "title", "leader", "department", "deadline", "state") == {
        "1": ("中心组学习不够深入", "主任", "办公室", "2026-12-31", "in_progress"),
        "2": ("医疗机构监管不到位", "副主任", "医政医管科", "2027-01-15", "identified")}
    assert row_of(project, "select unit from ledgers where name = 'gbk'") == ("区卫生健康委员会",)
    assert "gbk.csv: row 6: a footer, skipped: 填表人：王五" in result.out


def test_immediate_working_days_is_checked_where_it_is_written(ready, tmp_path):
    text = (WORKFLOWS / "inspection-rectification.yaml").read_text(encoding="utf-8")
    path = tmp_path / "wf.yaml"
    path.write_text(text.replace("initial: identified", "initial: identified\nimmediate_working_days: 五"),
                    encoding="utf-8")
    result = ready("workflow", "validate", path)
    line = text.split("\n").index("initial: identified") + 2
    assert result.code == 2
    assert (f"{path}:{line}:25: immediate_working_days: the working days after the feedback date a 立行立改 item is "
            "due: a whole number from 0 to 60, not '五'") in result.err


# -- the property: no cell dropped or changed unseen ------------------------------------------

SPELLINGS = {"ref": ["序号", "编号"], "area": ["方面", "问题方面"], "category": ["问题类别", "问题类型"],
             "title": ["具体问题", "反馈问题", "问题表现"], "measures": ["整改措施", "整改举措"],
             "leader": ["责任领导", "牵头领导"], "department": ["责任科室", "责任股室"],
             "deadline": ["整改时限", "完成时限"], "status": ["整改状态", "整改进度"], "unit": ["单位"]}
WORDS = ["", "待整改", "整改中", "已完成", "长期坚持", "已制定方案"]
PHRASES = ["", "2026-12-31", "2026/9/30", "2026.12.31", "2026年12月底前", "2027年1月15日前", "2026年底前", "2026年第二季度",
           "2026年上半年", "45199", "2022年9月底", "立行立改", "长期坚持", "2026年12月前", "明年"]
TEXT = st.text(alphabet="党建整改学习制度落实问题科室局长 一二、（）1.，：", min_size=0, max_size=12)
TITLE = st.text(alphabet="党建整改学习制度落实问题科室局长一二、（）1.，：", min_size=1, max_size=12)
NUMBERED = st.sampled_from(["", "一、", "（二）", "3.", "（4）", "5、"])
FOOTERS = ["合计", "填表人：张三", "备注：以上为初稿", "审核人：李四"]
WORDS_TO_STATE = load_workflow(WORKFLOWS / "inspection-rectification.yaml").definition.word_to_state()


@st.composite
def sheets(draw):
    """A sheet as an office might write it: title rows, a header of one or two rows in any order
    and spelling, rows, footers; returns (rows of cells, the header's (first) row index, data row
    indexes, footer row indexes)."""
    optional = ["area", "category", "measures", "leader", "department", "deadline", "status", "unit"]
    fields = ["ref", "title", *draw(st.lists(st.sampled_from(optional), unique=True))]
    fields = draw(st.permutations(fields))
    extra = draw(st.booleans())
    header = [draw(st.sampled_from(SPELLINGS[f])) for f in fields] + (["备注"] if extra else [])
    titles = draw(st.lists(st.sampled_from(["区民政局巡察整改台账", "填报单位：区民政局", "填报时间：2026年3月1日"]),
                           max_size=2, unique=True))
    out: list[list[str]] = [[t] + [""] * (len(header) - 1) for t in titles]
    pairs = [i for i in range(len(fields) - 1) if {fields[i], fields[i + 1]}.isdisjoint({"ref", "title"})]
    if pairs and draw(st.booleans()):  # a two-row header: a group over two columns, as a CSV keeps it
        i = draw(st.sampled_from(pairs))
        top, bottom = list(header), [""] * len(header)
        top[i], top[i + 1] = draw(st.sampled_from(["责任主体", "整改情况"])), ""
        bottom[i], bottom[i + 1] = header[i], header[i + 1]
        out += [top, bottom]
        header_at = len(out) - 2
    else:
        out.append(header)
        header_at = len(out) - 1
    data, footers = [], []
    for i in range(draw(st.integers(1, 6))):
        row = []
        for f in fields:
            if f == "ref":
                row.append(str(i + 1) if draw(st.integers(0, 5)) else "")
            elif f == "title":
                row.append(draw(NUMBERED) + draw(TITLE))
            elif f in ("area", "category"):
                row.append(draw(st.sampled_from(["", ""])) if draw(st.booleans()) else draw(NUMBERED) + draw(TEXT))
            elif f == "deadline":
                row.append(draw(st.sampled_from(PHRASES)))
            elif f == "status":
                row.append(draw(st.sampled_from(WORDS)))
            elif f == "unit":
                row.append(draw(st.sampled_from(["", "区民政局", "区教委"])))
            else:
                row.append(draw(TEXT))
        if extra:
            row.append(draw(TEXT))
        data.append(len(out))
        out.append(row)
    for footer in draw(st.lists(st.sampled_from(FOOTERS), max_size=2)):
        footers.append(len(out))
        out.append([footer] + [""] * (len(header) - 1))
    return out, header_at, data, footers


@pytest.fixture
def db_url(tmp_path):
    """SQLite only: the property is about reading sheets, not about the backend."""
    return f"sqlite:///{tmp_path / 'store.db'}"


class _Rollback(Exception):
    pass


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", examples(300))), deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(sheet=sheets(), workbook=st.booleans())
def test_no_cell_is_dropped_or_changed_unseen(store, tmp_path_factory, sheet, workbook):
    from sqlalchemy import select

    from engine.errors import LedgerError
    from engine.ledger.cells import parse_deadline, text
    from engine.ledger.importer import import_ledger
    from engine.store import db
    from engine.store.models import Issue, Ledger

    cells, header_at, data, footers = sheet
    path = tmp_path_factory.mktemp("prop") / ("ledger.xlsx" if workbook else "ledger.csv")
    if workbook:
        book = openpyxl.Workbook()
        for row in cells:
            book.active.append([c or None for c in row])
        book.save(path)
    else:
        with path.open("w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows(cells)
    sessions, runtime = store.sessions, store.runtime
    seen: dict = {}
    try:
        with db.transaction(sessions) as session:
            result = import_ledger(session, runtime, path, now=dt.datetime(2026, 11, 3, 2, tzinfo=dt.UTC),
                                   workflow_name="inspection-rectification", ledger_name="prop",
                                   feedback_date=dt.date(2026, 11, 2))
            seen["issues"] = {i.ref: i for i in session.scalars(select(Issue))}
            seen["unit"] = session.scalar(select(Ledger.unit))
            for issue in seen["issues"].values():
                session.expunge(issue)
            raise _Rollback
    except _Rollback:
        pass
    except LedgerError as exc:
        # refused: every problem names its row and its column, and nothing is kept
        assert all(f"{path}: row " in line for line in exc.details) or exc.details == [
            f"{path}: the file has headers but no rows"], exc.details
        event("refused")
        return
    event("imported")
    header = [b or t for t, b in zip(cells[header_at], cells[header_at + 1], strict=True)] if (
        header_at + 1 < len(cells) and header_at + 1 not in data) else cells[header_at]
    readings = result.readings.items
    warnings = "\n".join(result.warnings)

    def read(number: int, column: str, raw: str) -> bool:
        return any(r.first <= number <= r.last and r.column == column and r.raw == raw for r in readings)

    def warned(number: int, column: str, raw: str) -> bool:
        return any(int(m[1]) <= number <= int(m[2] or m[1])
                   for m in re.finditer(rf"rows? (\d+)(?:–(\d+))?: {re.escape(column)}: {re.escape(raw)} →", warnings))

    for index in range(header_at):  # above the header: skipped, and said
        assert any(r.first == index + 1 and r.column == "" and text(cells[index][0]) in r.raw for r in readings)
    for index in footers:
        assert any(r.first == index + 1 and "footer" in r.meaning and cells[index][0] in r.raw for r in readings)
    ref_col = next(i for i, h in enumerate(header) if h in SPELLINGS["ref"])
    headings = {r.first for r in readings if r.column == "" and "section heading" in r.meaning}
    assert len(seen["issues"]) == len(data) - len(headings)
    for index in data:
        row, number = cells[index], index + 1
        if number in headings:  # a row of one text: a heading for the rows below, said so
            assert all(text(c) in next(r.raw for r in readings if r.first == number) for c in row)
            continue
        ref = text(row[ref_col]) or next(r.meaning.split(" ")[0] for r in readings
                                         if r.first == number and r.column == header[ref_col])
        issue = seen["issues"][ref]
        numbering = (issue.extra or {}).get("numbering", {})
        for col, name in enumerate(header):
            raw = text(row[col])
            if not raw or col in (ref_col,):
                continue
            fld = next((f for f, names in SPELLINGS.items() if name in names), None)
            if fld in ("area", "category", "title"):
                # as written, or its numbering moved out (kept, and said)
                assert getattr(issue, fld) == raw or (numbering.get(fld, "") + getattr(issue, fld) == raw
                                                      and read(number, name, raw)), (fld, raw)
            elif fld in ("measures", "leader", "department"):
                assert getattr(issue, fld) == raw
            elif fld == "deadline":
                plain = parse_deadline(raw).kind == "date"
                assert (plain and issue.deadline == parse_deadline(raw).day) or read(number, name, raw), raw
            elif fld == "status":
                assert issue.state == WORDS_TO_STATE[raw] or read(number, name, raw)
            elif fld == "unit":
                assert raw == seen["unit"] or warned(number, name, raw)
            else:
                assert issue.extra.get(name) == raw


def test_a_reimport_keeps_what_duban_itself_keeps_in_an_issue(store):
    """A pending 延期 request lives with the issue (``extra["extension"]``), not in the sheet: a
    re-import of the same sheet changes nothing and keeps it."""
    from sqlalchemy import select

    from engine.ledger.importer import import_ledger
    from engine.store import db
    from engine.store.models import Issue

    now = dt.datetime(2026, 11, 3, 2, tzinfo=dt.UTC)

    def run():
        with db.transaction(store.sessions) as session:
            return import_ledger(session, store.runtime, DATA / "numbering.csv", now=now,
                                 workflow_name="inspection-rectification")

    run()
    asked = {"to": "2027-01-31", "by": "办公室", "reason": "需要时间"}
    with db.transaction(store.sessions) as session:
        issue = session.scalars(select(Issue).where(Issue.ref == "1")).one()
        issue.extra = {**issue.extra, "extension": asked}
    again = run()
    assert (again.updated, again.unchanged) == (0, 4)
    with store.sessions() as session:
        extra = session.scalars(select(Issue.extra).where(Issue.ref == "1")).one()
    assert extra["extension"] == asked and extra["numbering"] == {"area": "一、", "category": "（一）", "title": "1."}


def test_a_plan_is_due_no_later_than_the_problem_it_is_for(ready, tmp_path):
    """The shipped workflow gives a plan (制定整改方案) 15 working days after the feedback, but never
    past the issue's own 整改时限: a 立行立改 problem (5 working days) or one dated sooner would
    otherwise be reminded of its plan ten days after it was itself due, and not be overdue meanwhile."""
    path = tmp_path / "soon.csv"
    path.write_text("序号,具体问题,整改时限\n1,招聘公告发布渠道单一,立行立改\n2,接待审批不严,2026-11-13\n"
                    "3,学习流于形式,2027-03-31\n", encoding="utf-8")
    imported(ready, path, "--feedback-date", "2026-11-02")
    preview = ready("remind", "preview", "--at", "2026-11-03T10:00", "--until", "2026-12-31", "--json").json
    due = {r["subject"]: r["due"] for r in preview if r["kind"] == "due"}
    # 立行立改: 5 working days after 11-02; a date before the 15 days; the 15 days (11-23) otherwise
    assert due == {"soon/1": "2026-11-09", "soon/2": "2026-11-13", "soon/3": "2026-11-23"}, due
    overdue = {r["subject"] for r in preview if r["kind"] == "overdue" and r["at"].startswith("2026-11-10")}
    assert overdue == {"soon/1"}


def test_a_sheet_without_areas_is_counted_without_naming_none(ready, tmp_path):
    path = tmp_path / "flat.csv"
    path.write_text("序号,具体问题,整改时限\n1,招聘公告发布渠道单一,2027-03-31\n2,接待审批不严,2027-03-31\n", encoding="utf-8")
    imported(ready, path, "--feedback-date", "2026-11-02")
    shown = ready("status", "--ledger", "flat").out
    report = ready("report", "--ledger", "flat", "--format", "md", "--at", "2026-11-03T10:00").out
    assert "共2个具体问题，待整改2个" in shown and "0个方面" not in shown, shown
    assert "共2个具体问题，已整改完成0个" in report and "0个方面" not in report, report

"""``duban ledger draft``: from the feedback document to a draft ledger (issue #20, item 1).

The seed report (tests/data/seed-report.txt) is the real report of the 26 problems the example ledger
examples/bishan-keji-2022.csv holds; the other documents are written here, in other shapes."""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import openpyxl
import pytest
from docx import Document
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.ledger.draft import TO_FILL, UNPLACED_SHEET, parse, read_document

from .conftest import SEED_CSV, examples, run_cli

DATA = Path(__file__).resolve().parent / "data"
SEED_REPORT = DATA / "seed-report.txt"
UNIT = "中共重庆市璧山区科学技术局党组"
YELLOW = "00FFF2CC"


def ledger_rows(path: Path, sheet: str = "台账") -> list[dict[str, object]]:
    book = openpyxl.load_workbook(path)
    ws = book[sheet]
    rows = list(ws.iter_rows(values_only=True))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def draft(*args: object) -> tuple[int, str, str]:
    result = run_cli("ledger", "draft", *map(str, args))
    assert "Traceback" not in result.err
    return result.code, result.out, result.err


# --- the seed report ---------------------------------------------------------------------------


def test_the_seed_report_gives_its_26_problems_in_4_areas_and_10_categories(tmp_path):
    out = tmp_path / "draft.xlsx"
    code, said, err = draft(SEED_REPORT, "-o", out, "--unit", UNIT)
    assert code == 0, err
    assert f"drafted 26 具体问题 in 4 方面 and 10 问题类别 from {SEED_REPORT}" in said
    rows = ledger_rows(out)
    assert len(rows) == 26
    assert [r["序号"] for r in rows] == list(range(1, 27))
    assert len({r["方面"] for r in rows}) == 4 and len({r["问题类别"] for r in rows}) == 10
    assert {r["单位"] for r in rows} == {UNIT}

    # the titles as the document writes them: （N）关于“TITLE”问题的整改情况。
    lines = SEED_REPORT.read_text(encoding="utf-8").splitlines()
    written = [m.group(1) for line in lines if (m := re.match(r"^（\d+）关于“(.+)”问题的整改情况。$", line))]
    assert len(written) == 26
    assert [r["具体问题"] for r in rows] == written

    # the example ledger holds the same problems in the same order; where its wording differs,
    # the document is the truth (the ledger's writer changed ‘’ into “” and shortened one title)
    seed = list(csv.DictReader(SEED_CSV.open(encoding="utf-8-sig")))
    differ = [(int(s["序号"]), s["具体问题"], r["具体问题"]) for s, r in zip(seed, rows, strict=True)
              if s["具体问题"] != r["具体问题"]]
    assert [n for n, *_ in differ] == [9, 10, 20, 21]
    assert differ[1][2] == "区纪委监委派驻区财政局纪检监察组落实监督责任不够扎实"
    for s, r in zip(seed, rows, strict=True):
        assert s["问题类别"].split("．", 1)[1] == r["问题类别"]  # the ledger keeps the number; the draft does not
        assert str(r["方面"]).startswith(s["方面"])  # "…方面" in the ledger, "…方面存在的问题" in the document
    assert rows[0]["方面"] == "聚焦贯彻落实党的路线方针政策和党中央决策部署方面存在的问题"
    assert rows[0]["原文表述"].startswith("严格落实中心组学习制度。规范制定中心组学习计划")

    # what is not a problem is listed with its line: the title block, the chapters 一、 二、 三、
    unplaced = ledger_rows(out, UNPLACED_SHEET)
    by_line = {r["行号"]: r for r in unplaced}
    assert {1, 3, 5, 7, 9, 15, 151, 153} <= set(by_line)
    assert by_line[9]["原文"] == "一、高度重视，精心组织，认真落实整改责任"
    assert f"{SEED_REPORT}: line 151: 未归类" in said


def test_every_line_of_the_seed_report_is_in_a_row_or_listed():
    paragraphs, where = read_document(SEED_REPORT)
    result = parse(SEED_REPORT, paragraphs, where)
    placed = {u.number for u in result.unplaced}
    held = "\n".join(f"{p.area}\n{p.category}\n{p.title}\n{p.description}" for p in result.problems)
    for para in paragraphs:
        if para.number in placed:
            continue
        body = re.sub(r"^[（(]?[\d一二三四五六七八九十]+[）)]?[、．.]?\s*", "", para.text)
        assert body.rstrip("。") in held or re.search(r"关于“(.+)”问题", body).group(1) in held, para


def test_the_seed_report_as_a_docx_gives_the_same_rows(tmp_path):
    """Word's paragraphs in place of lines: the same rows, the unplaced counted by paragraph."""
    doc = Document()
    for line in SEED_REPORT.read_text(encoding="utf-8").splitlines():
        doc.add_paragraph(line)
    source = tmp_path / "seed.docx"
    doc.save(str(source))
    from_text = parse(SEED_REPORT, *read_document(SEED_REPORT))
    from_docx = parse(source, *read_document(source))
    assert from_docx.where == "paragraph" and len(from_docx.problems) == 26
    assert [(p.area, p.category, p.title, p.description) for p in from_docx.problems] == [
        (p.area, p.category, p.title, p.description) for p in from_text.problems]
    assert [(u.number, u.text) for u in from_docx.unplaced] == [(u.number, u.text) for u in from_text.unplaced]


def test_the_columns_to_fill_are_marked_and_explained(tmp_path):
    out = tmp_path / "draft.xlsx"
    assert draft(SEED_REPORT, "-o", out)[0] == 0
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["台账", UNPLACED_SHEET, "说明"]
    ws = book["台账"]
    header = {c.value: c for c in ws[1]}
    for name in (*TO_FILL, "单位"):  # no --unit: the unit is to fill too
        assert header[name].fill.fgColor.rgb == YELLOW, name
        assert ws.cell(row=2, column=header[name].column).fill.fgColor.rgb == YELLOW
        assert ws.cell(row=2, column=header[name].column).value is None
    for name in ("整改措施", "责任领导", "责任科室", "整改时限"):
        assert header[name].comment is not None and "待填写" in header[name].comment.text
    for name in ("序号", "方面", "问题类别", "具体问题"):
        assert header[name].fill.fgColor.rgb != YELLOW
    notes = "\n".join(str(r[0]) for r in book["说明"].iter_rows(values_only=True))
    assert "黄色的列待填写：整改措施、责任领导、责任科室、整改时限" in notes
    assert "duban ledger import" in notes


# --- a document of another shape ----------------------------------------------------------------


def feedback_docx(path: Path) -> dict[str, int]:
    """A 反馈意见 as a .docx: 一、/（一）/1． (half- and full-width) with 关于"…"问题 titles, a
    description in the title's paragraph and after it, a table, a stray paragraph, a signature.
    Returns the paragraph number of the paragraphs the test looks for."""
    doc = Document()
    numbers: dict[str, int] = {}

    def para(text: str, key: str | None = None) -> None:
        doc.add_paragraph(text)
        if key:
            numbers[key] = len(doc.paragraphs)

    para("区委第二巡察组关于巡察区民政局党组的反馈意见")
    para("")
    para("根据区委统一部署，区委第二巡察组对区民政局党组开展了常规巡察。现将巡察发现的问题反馈如下：")
    para("一、贯彻落实党的理论和路线方针政策方面")
    para("以下问题请逐条对照整改。", "stray")
    para("（一）学习贯彻习近平新时代中国特色社会主义思想不够深入")
    para('1．关于"理论学习中心组学习流于形式"问题。2025年中心组集体学习8次，其中3次只读文件。', "first")
    para("研讨发言照稿念，联系民政工作实际不够。", "first-more")
    para("2.关于“意识形态工作责任制落实不到位”问题")
    para("未按要求每半年专题研究意识形态工作。")
    para("(二)落实民生保障政策有偏差")
    para("1、关于“低保动态管理不及时”问题")
    para("抽查发现12户已不符合条件的家庭仍在享受低保，涉及资金6.3万元。")
    table = doc.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "街道"
    table.cell(0, 1).text = "户数"
    para("二、全面从严治党方面")
    para("（一）党组主体责任落实不到位")
    para("1．关于“‘一岗双责’落实不到位”问题。班子成员对分管科室廉政风险提醒不够。", "quoted")
    para("（二）作风建设还有短板")
    para("１．关于“服务对象反映办事难”问题。")
    para("窗口服务群众评价满意率较低。")
    para("区委第二巡察组", "signature")
    para("2026年11月2日", "date")
    doc.save(str(path))
    # the table's two cells are paragraphs of the document too (numbered in reading order)
    return {k: v + 2 if v > 13 else v for k, v in numbers.items()}


def test_a_docx_feedback_document_of_another_shape(tmp_path):
    source = tmp_path / "反馈意见.docx"
    numbers = feedback_docx(source)
    out = tmp_path / "draft.xlsx"
    code, said, err = draft(source, "-o", out, "--unit", "中共区民政局党组")
    assert code == 0, err
    assert "drafted 5 具体问题 in 2 方面 and 4 问题类别" in said
    rows = ledger_rows(out)
    area, study = "贯彻落实党的理论和路线方针政策方面", "学习贯彻习近平新时代中国特色社会主义思想不够深入"
    assert [(r["方面"], r["问题类别"], r["具体问题"]) for r in rows] == [
        (area, study, "理论学习中心组学习流于形式"),
        (area, study, "意识形态工作责任制落实不到位"),
        (area, "落实民生保障政策有偏差", "低保动态管理不及时"),
        ("全面从严治党方面", "党组主体责任落实不到位", "‘一岗双责’落实不到位"),
        ("全面从严治党方面", "作风建设还有短板", "服务对象反映办事难"),
    ]
    assert rows[0]["原文表述"] == "2025年中心组集体学习8次，其中3次只读文件。\n研讨发言照稿念，联系民政工作实际不够。"
    assert rows[2]["原文表述"] == "抽查发现12户已不符合条件的家庭仍在享受低保，涉及资金6.3万元。\n街道\n户数"
    assert rows[3]["原文表述"] == "班子成员对分管科室廉政风险提醒不够。"
    assert rows[4]["原文表述"] == "窗口服务群众评价满意率较低。"  # the signature is not part of it

    unplaced = {r["段号"]: r for r in ledger_rows(out, UNPLACED_SHEET)}
    assert unplaced[numbers["stray"]]["原文"] == "以下问题请逐条对照整改。"
    assert f"{source}: paragraph {numbers['stray']}: 未归类" in said
    assert unplaced[numbers["signature"]]["原文"] == "区委第二巡察组"
    assert unplaced[numbers["date"]]["原文"] == "2026年11月2日"
    assert unplaced[1]["原文"] == "区委第二巡察组关于巡察区民政局党组的反馈意见"
    assert 2 not in unplaced  # a blank paragraph is counted, not listed


def test_words_numbering_is_read_as_the_number_word_shows(tmp_path):
    """A list style's number is not in the paragraph's text: the draft counts it as Word does."""
    doc = Document()
    doc.add_paragraph("一、组织建设方面")
    doc.add_paragraph("（一）基层组织建设薄弱")
    doc.add_paragraph("关于“支部书记培训不够”问题。今年未组织培训。", style="List Number")  # Word shows 1.
    doc.add_paragraph("关于“党员发展程序不规范”问题。", style="List Number")  # 2.
    doc.add_paragraph("发展对象公示期不足7天。")
    source = tmp_path / "auto.docx"
    doc.save(str(source))
    paragraphs, _ = read_document(source)
    assert [p.text for p in paragraphs][2:4] == ["1.关于“支部书记培训不够”问题。今年未组织培训。",
                                                 "2.关于“党员发展程序不规范”问题。"]
    result = parse(source, paragraphs, "paragraph")
    assert [(p.category, p.title, p.description) for p in result.problems] == [
        ("基层组织建设薄弱", "支部书记培训不够", "今年未组织培训。"),
        ("基层组织建设薄弱", "党员发展程序不规范", "发展对象公示期不足7天。"),
    ]


MARKDOWN = """\
# 关于区审计局党组的巡察反馈意见

## 一、政治建设方面

### (一)贯彻落实上级决策部署有差距

1. 重大事项请示报告不及时。2026年有2项重大事项未按时报告。
   - 其中1项延误超过一个月。
2. 研究部署审计工作的会议记录不全：部分会议未形成纪要。

### (二)政治生态建设不够有力

⑴关于“干部担当作为不足”问题

个别干部遇到难题推诿。

## 二、队伍建设方面

（一）干部教育培训不够系统

１．培训计划执行率低。全年计划6期，实际开展3期。
"""


def test_a_markdown_document_without_about_titles(tmp_path):
    """No 关于 titles in most places: a problem is its first sentence; ⑴ is (1); full-width １．."""
    source = tmp_path / "意见.md"
    source.write_text(MARKDOWN, encoding="utf-8")
    paragraphs, where = read_document(source)
    result = parse(source, paragraphs, where)
    assert [(p.number, p.area, p.title, p.description) for p in result.problems] == [
        (7, "政治建设方面", "重大事项请示报告不及时", "2026年有2项重大事项未按时报告。\n其中1项延误超过一个月。"),
        (9, "政治建设方面", "研究部署审计工作的会议记录不全", "部分会议未形成纪要。"),
        (13, "政治建设方面", "干部担当作为不足", "个别干部遇到难题推诿。"),
        (21, "队伍建设方面", "培训计划执行率低", "全年计划6期，实际开展3期。"),
    ]
    assert [p.category for p in result.problems] == ["贯彻落实上级决策部署有差距"] * 2 + [
        "政治生态建设不够有力", "干部教育培训不够系统"]
    assert [(u.number, u.text) for u in result.unplaced] == [(1, "关于区审计局党组的巡察反馈意见")]


def test_sub_points_stay_with_their_problem():
    """（1）（2） under some 1．, none under others: they are a problem's sub-points, not problems."""
    text = ("一、方面甲\n（一）类别甲\n1．问题一。表现如下：\n（1）第一点。\n（2）第二点。\n2．问题二。\n"
            "二、方面乙\n（一）类别乙\n1．问题三。\n")
    from engine.ledger.draft import Paragraph

    paragraphs = [Paragraph(i, t) for i, t in enumerate(text.splitlines(), start=1)]
    result = parse(Path("x.txt"), paragraphs, "line")
    assert [(p.title, p.description) for p in result.problems] == [
        ("问题一", "表现如下：\n（1）第一点。\n（2）第二点。"), ("问题二", ""), ("问题三", "")]
    assert result.unplaced == []


def test_a_problem_whose_document_skips_the_category_is_named(tmp_path):
    """Under 一、 a 1． straight away, then （一） with its own: the first has no 问题类别, and says so."""
    source = tmp_path / "skip.txt"
    source.write_text("一、方面甲\n1．问题甲。\n（一）类别乙\n1．问题乙。\n2．问题丙。\n", encoding="utf-8")
    out = tmp_path / "d.xlsx"
    code, said, err = draft(source, "-o", out)
    assert code == 0, err
    assert [(r["方面"], r["问题类别"], r["具体问题"]) for r in ledger_rows(out)] == [
        ("方面甲", None, "问题甲"), ("方面甲", "类别乙", "问题乙"), ("方面甲", "类别乙", "问题丙")]
    assert f"{source}: line 2: 问题甲: no 问题类别 above it in the document; left blank" in said


def test_problems_under_one_chapter_take_its_sections_as_areas():
    """一、巡察发现的主要问题 over everything: a chapter; its （一）…方面 are the 方面, no 问题类别."""
    from engine.ledger.draft import Paragraph

    text = ("区委第一巡察组关于巡察区科技局党组的反馈意见\n一、巡察发现的主要问题\n"
            "（一）贯彻落实党中央决策部署方面\n1．理论学习不深入。中心组学习走过场。\n2．调查研究不够。\n"
            "（二）全面从严治党方面\n1．主体责任落实不到位。\n二、整改意见\n（一）提高政治站位。\n（二）强化责任落实。\n")
    paragraphs = [Paragraph(i, t) for i, t in enumerate(text.splitlines(), start=1)]
    result = parse(Path("x.txt"), paragraphs, "line")
    assert [(p.area, p.category, p.title, p.description) for p in result.problems] == [
        ("贯彻落实党中央决策部署方面", "", "理论学习不深入", "中心组学习走过场。"),
        ("贯彻落实党中央决策部署方面", "", "调查研究不够", ""),
        ("全面从严治党方面", "", "主体责任落实不到位", ""),
    ]
    assert result.gaps == []
    assert [u.number for u in result.unplaced] == [1, 2, 8, 9, 10]


def test_a_gbk_text_file_reads(tmp_path):
    source = tmp_path / "gbk.txt"
    source.write_bytes("一、方面\n（一）类别\n1．关于“某某”问题\n说明。\n".encode("gbk"))
    out = tmp_path / "d.xlsx"
    code, said, err = draft(source, "-o", out)
    assert code == 0, err
    assert [r["具体问题"] for r in ledger_rows(out)] == ["某某"]


# --- the draft, filled in, imports -------------------------------------------------------------


def test_the_filled_draft_imports_and_status_counts_it(cli, tmp_path):
    out = tmp_path / "draft.xlsx"
    assert draft(SEED_REPORT, "-o", out, "--unit", UNIT)[0] == 0
    book = openpyxl.load_workbook(out)
    ws = book["台账"]
    column = {c.value: c.column for c in ws[1]}
    for row in range(2, ws.max_row + 1):
        ws.cell(row=row, column=column["整改措施"], value=f"整改措施{row - 1}")
        ws.cell(row=row, column=column["责任领导"], value="党组书记" if row % 2 else "分管副局长")
        ws.cell(row=row, column=column["责任科室"], value="办公室")
        ws.cell(row=row, column=column["整改时限"], value=dt.date(2022, 9, 30))
    filled = tmp_path / "台账.xlsx"
    book.save(filled)

    assert cli("init").code == 0
    result = cli("ledger", "import", filled, "--feedback-date", "2022-07-15", "--at", "2022-07-20T10:00")
    assert result.code == 0, result.err
    assert "imported 26 rows into ledger 台账" in result.out and "26 new" in result.out
    status = cli("status", "--json")
    assert status.code == 0, status.err
    assert status.json["issues"] == 26 and status.json["areas"] == 4 and status.json["categories"] == 10
    assert "4个方面共26个具体问题" in cli("status").out
    shown = cli("issue", "show", "台账/10", "--json")
    assert shown.code == 0, shown.err
    assert shown.json["title"] == "区纪委监委派驻区财政局纪检监察组落实监督责任不够扎实"
    assert shown.json["leader"] == "党组书记" and shown.json["deadline"] == "2022-09-30"


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("bad.txt", "一、方面\n".encode() + b"\xff\xfe\xfa\n", "bad.txt: line 2: not UTF-8 text"),
    ("ctl.txt", "一、方面\n\x01\n".encode(), "ctl.txt: line 2: a control character (U+0001)"),
    ("old.doc", b"\xd0\xcf\x11\xe0", "old.doc: unsupported file type .doc"),
    ("broken.docx", b"PK\x03\x04 not a zip", "broken.docx: not a readable .docx"),
    ("empty.txt", b"", "empty.txt: no problem found"),
    ("prose.md", "这是一段没有编号的文字。\n".encode(), "prose.md: no problem found"),
])
def test_a_bad_document_is_refused_with_its_name_and_nothing_written(tmp_path, name, content, expected):
    source = tmp_path / name
    source.write_bytes(content)
    out = tmp_path / "draft.xlsx"
    code, _, err = draft(source, "-o", out)
    assert code == 2 and expected in err, err
    assert not out.exists() and not list(tmp_path.glob(".draft-*"))


def test_a_missing_file_or_a_wrong_output_is_refused(tmp_path):
    code, _, err = draft(tmp_path / "missing.txt", "-o", tmp_path / "d.xlsx")
    assert code == 2 and "missing.txt: file not found" in err
    code, _, err = draft(SEED_REPORT, "-o", tmp_path / "d.csv")
    assert code == 2 and "d.csv: the draft is written as .xlsx" in err
    code, _, err = draft(SEED_REPORT, "-o", tmp_path / "no" / "such" / "d.xlsx")
    assert code == 2 and "No such file" in err


# --- nothing is dropped ------------------------------------------------------------------------

_PIECES = ["一、", "二、", "（一）", "(二)", "1．", "2.", "3、", "（1）", "⑵", "1）", "①", "关于“", "”问题", "。",
           "：", "“", "”", "2026年1月2日", "附件：", "区委巡察组", "问题", "整改", " ", "　", "十", "="]


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=6)), max_size=6).map("".join),
                max_size=25))
def test_every_paragraph_is_in_a_row_or_listed(lines):
    """Whatever the document, parsing never fails and each paragraph is held by a row or listed."""
    from engine.ledger.draft import Paragraph

    paragraphs = [Paragraph(i, t.strip()) for i, t in enumerate(lines, start=1) if t.strip()]
    result = parse(Path("x.txt"), paragraphs, "line")
    accounted = {u.number for u in result.unplaced} | {n for p in result.problems for n in p.holds}
    assert {p.number for p in paragraphs} <= accounted
    for problem in result.problems:
        assert problem.title.strip() and problem.title == problem.title.strip()  # the import needs one

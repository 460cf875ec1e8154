"""The report as a Word document laid out by GB/T 9704-2012 (党政机关公文格式).

A4 paper; margins top 37 mm, bottom 35 mm, left 28 mm, right 26 mm (a 156 × 225 mm text block);
title in 小标宋 二号 (22 pt) centred; body 仿宋_GB2312 三号 (16 pt), 22 lines a page (28.95 pt exact
line spacing) with a two-character first-line indent; level-1 headings 黑体, level-2 楷体_GB2312,
level-3 仿宋 bold; page numbers "— 1 —" in 宋体 四号 below the text block, odd pages right and even
pages left, one character in from the edge.

Chinese fonts are named in ``w:rFonts/@w:eastAsia``: Word and LibreOffice choose the font for CJK
characters from that attribute alone, so setting only the run's font name (which python-docx writes
to ``w:ascii``/``w:hAnsi``) would leave every Chinese character in the default font. Machines
without these fonts substitute their own; the layout (sizes, spacing, margins) still holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docx import Document
from docx.document import Document as DocxDocument
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Length, Mm, Pt
from docx.styles.style import ParagraphStyle
from docx.text.paragraph import Paragraph

from ..wording import cn_date
from .model import Report

TITLE_FONT = "方正小标宋简体"
BODY_FONT = "仿宋_GB2312"
HEADING1_FONT = "黑体"
HEADING2_FONT = "楷体_GB2312"
PAGE_FONT = "宋体"
LINE = Pt(28.95)  # 225 mm text block / 22 lines
BODY_SIZE = Pt(16)  # 三号
INDENT = Pt(32)  # two characters of 三号


def set_fonts(element: Any, name: str, size: Length | None = None, *, bold: bool | None = None) -> None:
    """Name ``name`` for Latin and East Asian text on a style's or run's ``w:rPr``.

    Children are added through python-docx's ordered ``get_or_add_*`` so the XML keeps the
    schema's element order, which Word (unlike LibreOffice) insists on.
    """
    rpr = element.get_or_add_rPr()
    fonts = rpr.get_or_add_rFonts()
    for attr in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(attr), name)
    # A theme font would override the explicit names in Word; drop any the template carried.
    for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
        fonts.attrib.pop(qn(attr), None)
    if size is not None:
        half_points = str(round(size.pt * 2))
        sz = rpr.get_or_add_sz()
        sz.set(qn("w:val"), half_points)
        sz_cs = rpr.find(qn("w:szCs"))
        if sz_cs is None:
            sz_cs = OxmlElement("w:szCs")
            sz.addnext(sz_cs)
        sz_cs.set(qn("w:val"), half_points)
    if bold is not None:
        rpr.get_or_add_b().set(qn("w:val"), "1" if bold else "0")


def _indent_chars(element: Any, chars: int) -> None:
    """``w:firstLineChars``: the indent in characters, so it follows the font size as Word's does;
    ``w:firstLine`` carries the same in twips for readers that ignore character units."""
    ind = element.get_or_add_pPr().get_or_add_ind()
    ind.set(qn("w:firstLineChars"), str(chars * 100))
    ind.set(qn("w:firstLine"), str(int(INDENT.pt * 20 * chars / 2)))


def _style(doc: DocxDocument, name: str, font: str, size: Length, *, bold: bool = False, indent: bool = True,
           align: Any = None, outline: int | None = None) -> ParagraphStyle:
    existing = {s.name for s in doc.styles}
    style = doc.styles[name] if name in existing else doc.styles.add_style(name, WD_STYLE_TYPE.PARAGRAPH)
    assert isinstance(style, ParagraphStyle)
    if name != "Normal":
        style.base_style = doc.styles["Normal"]
    set_fonts(style.element, font, size, bold=bold)
    pf = style.paragraph_format
    pf.line_spacing = LINE  # a Length means "exactly"
    pf.space_before = pf.space_after = Pt(0)
    pf.widow_control = False  # the grid of 22 lines a page matters more than orphans
    if indent:
        _indent_chars(style.element, 2)
    else:
        pf.first_line_indent = Pt(0)
    if align is not None:
        pf.alignment = align
    if outline is not None:  # shows in the navigation pane and a generated table of contents
        style.element.get_or_add_pPr().get_or_add_outlineLvl().set(qn("w:val"), str(outline))
    return style


def _page_setup(doc: DocxDocument) -> None:
    section = doc.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin, section.bottom_margin = Mm(37), Mm(35)
    section.left_margin, section.right_margin = Mm(28), Mm(26)
    section.header_distance = Mm(15)
    section.footer_distance = Mm(21)  # puts the page number about 7 mm below the text block
    grid = section._sectPr.find(qn("w:docGrid"))
    if grid is None:
        grid = OxmlElement("w:docGrid")
        section._sectPr.append(grid)
    grid.set(qn("w:type"), "lines")
    grid.set(qn("w:linePitch"), str(int(LINE.pt * 20)))
    doc.settings.odd_and_even_pages_header_footer = True
    _page_number(section.footer.paragraphs[0], WD_ALIGN_PARAGRAPH.RIGHT)
    _page_number(section.even_page_footer.paragraphs[0], WD_ALIGN_PARAGRAPH.LEFT)


def _field_run(paragraph: Paragraph, kind: str, text: str = "") -> None:
    run = paragraph.add_run()
    set_fonts(run._r, PAGE_FONT, Pt(14))
    if kind == "instr":
        el = OxmlElement("w:instrText")
        el.set(qn("xml:space"), "preserve")
        el.text = text
    else:
        el = OxmlElement("w:fldChar")
        el.set(qn("w:fldCharType"), kind)
    run._r.append(el)


def _page_number(paragraph: Paragraph, align: Any) -> None:
    """"— N —" with a PAGE field; one character (14 pt) in from the outer edge."""
    paragraph.alignment = align
    fmt = paragraph.paragraph_format
    fmt.first_line_indent = Pt(0)
    if align == WD_ALIGN_PARAGRAPH.RIGHT:
        fmt.right_indent = Pt(14)
    else:
        fmt.left_indent = Pt(14)
    set_fonts(paragraph.add_run("— ")._r, PAGE_FONT, Pt(14))
    _field_run(paragraph, "begin")
    _field_run(paragraph, "instr", " PAGE ")
    _field_run(paragraph, "separate")
    set_fonts(paragraph.add_run("1")._r, PAGE_FONT, Pt(14))  # shown until the reader updates fields
    _field_run(paragraph, "end")
    set_fonts(paragraph.add_run(" —")._r, PAGE_FONT, Pt(14))


def build_docx(report: Report) -> DocxDocument:
    """The report as a python-docx ``Document``."""
    doc = Document()
    _page_setup(doc)
    _style(doc, "Normal", BODY_FONT, BODY_SIZE)
    rpr = doc.styles["Normal"].element.get_or_add_rPr()
    lang = rpr.find(qn("w:lang"))
    if lang is None:  # w:lang is among the last children of w:rPr; Normal carries none after it
        lang = OxmlElement("w:lang")
        rpr.append(lang)
    lang.set(qn("w:eastAsia"), "zh-CN")  # line breaking and punctuation by Chinese rules
    title = _style(doc, "公文标题", TITLE_FONT, Pt(22), indent=False, align=WD_ALIGN_PARAGRAPH.CENTER)
    title.paragraph_format.line_spacing = Pt(35)  # 二号 glyphs need more than the body's 28.95 pt
    h1 = _style(doc, "一级标题", HEADING1_FONT, BODY_SIZE, outline=0)
    h2 = _style(doc, "二级标题", HEADING2_FONT, BODY_SIZE, outline=1)
    h3 = _style(doc, "三级标题", BODY_FONT, BODY_SIZE, bold=True, outline=2)
    h4 = _style(doc, "四级标题", BODY_FONT, BODY_SIZE, outline=3)
    status = _style(doc, "整改状态", HEADING2_FONT, BODY_SIZE)
    right = _style(doc, "署名", BODY_FONT, BODY_SIZE, indent=False, align=WD_ALIGN_PARAGRAPH.RIGHT)
    table_text = _style(doc, "表格文字", BODY_FONT, Pt(12), indent=False, align=WD_ALIGN_PARAGRAPH.CENTER)
    table_text.paragraph_format.line_spacing = Pt(18)
    no_grid = OxmlElement("w:snapToGrid")  # table text keeps its own spacing, off the page's line grid
    no_grid.set(qn("w:val"), "0")
    table_text.element.get_or_add_pPr().insert_element_before(
        no_grid, "w:spacing", "w:ind", "w:contextualSpacing", "w:jc", "w:outlineLvl", "w:rPr")

    for line in report.title_lines:
        doc.add_paragraph(line, style=title)
    doc.add_paragraph("", style="Normal")  # one blank line between title and body, as GB/T 9704 asks
    for text in report.intro:
        doc.add_paragraph(text)
    doc.add_paragraph(report.parts[0], style=h1)
    for text in report.part1:
        doc.add_paragraph(text)
    doc.add_paragraph(report.parts[1], style=h1)
    doc.add_paragraph(report.overview_paragraph)
    for area in report.areas:
        doc.add_paragraph(f"（{area.number}）{area.heading}", style=h2)
        for category in area.categories:
            if category.heading:
                doc.add_paragraph(category.heading, style=h3)
            for p in category.problems:
                doc.add_paragraph(p.heading, style=h4)
                if p.paragraph:
                    doc.add_paragraph(p.paragraph)
                if report.show_details:  # None (the default) is off in the docx
                    doc.add_paragraph(p.status_line, style=status)
    closing = doc.add_paragraph(report.parts[2], style=h1)
    for text in report.part3:
        closing = doc.add_paragraph(text)
    if report.show_signature:
        # The signature and date never stand alone on a page: the closing paragraph goes with them
        # (GB/T 9704-2012 7.3.5: a page with the 署名 must carry body text).
        block = [closing, doc.add_paragraph("", style="Normal")]
        signer = doc.add_paragraph(report.unit, style=right)
        signer.paragraph_format.right_indent = INDENT
        dated = doc.add_paragraph(cn_date(report.date), style=right)
        dated.paragraph_format.right_indent = Pt(64)  # 成文日期右空四字
        for paragraph in (*block, signer, dated):
            paragraph.paragraph_format.keep_together = True
            if paragraph is not dated:
                paragraph.paragraph_format.keep_with_next = True
    if report.show_duties:
        _attachment(doc, report, title, table_text)
    if report.chain_head:  # in the document's properties: the page keeps the official layout
        doc.core_properties.comments = f"台账校验值（办理记录链）：{report.chain_head}"
    return doc


def _attachment(doc: DocxDocument, report: Report, title: ParagraphStyle, cell_style: ParagraphStyle) -> None:
    """附件: the recurring duties, on a new page, headed 附件 in 黑体 flush left."""
    label = doc.add_paragraph("附件", style="Normal")
    label.paragraph_format.page_break_before = True
    label.paragraph_format.first_line_indent = Pt(0)
    set_fonts(label.runs[0]._r, HEADING1_FONT, BODY_SIZE)
    doc.add_paragraph("", style="Normal")
    doc.add_paragraph("经常性工作落实情况", style=title)
    since = doc.add_paragraph(f"（{cn_date(report.duties_since)}至{cn_date(report.date)}）", style=cell_style)
    since.paragraph_format.line_spacing = LINE
    headers = ("序号", "工作事项", "责任", "已完成（次）", "逾期未完成（次）", "下次到期")
    table = doc.add_table(rows=1, cols=len(headers))
    table.style = doc.styles["Table Grid"]
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    for cell, text in zip(table.rows[0].cells, headers, strict=True):
        cell.paragraphs[0].style = cell_style
        set_fonts(cell.paragraphs[0].add_run(text)._r, HEADING1_FONT, Pt(12))
    for n, d in enumerate(report.duties, 1):
        values = (str(n), d.title, d.owners, str(d.done), str(d.overdue), cn_date(d.next_due) or "—")
        for cell, text in zip(table.add_row().cells, values, strict=True):
            cell.paragraphs[0].style = cell_style
            cell.paragraphs[0].add_run(text)
        table.rows[-1].cells[1].paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.LEFT
    widths = (Mm(14), Mm(50), Mm(25), Mm(19), Mm(20), Mm(28))  # 156 mm: the text block
    table.autofit = False
    for column, width in zip(table.columns, widths, strict=True):
        column.width = width  # w:gridCol, which LibreOffice reads
    for i, row in enumerate(table.rows):
        for cell, width in zip(row.cells, widths, strict=True):
            cell.width = width  # w:tcW, which Word reads
        trpr = row._tr.get_or_add_trPr()
        flags = ("w:cantSplit", "w:tblHeader") if i == 0 else ("w:cantSplit",)  # header repeats on each page
        for tag in flags:
            trpr.append(OxmlElement(tag))
    if report.duties_recorded_from:
        note = doc.add_paragraph(f"注：经常性工作自{cn_date(report.duties_recorded_from)}起纳入督办记录，"
                                 "此前的落实情况未计入。", style=cell_style)
        note.alignment = WD_ALIGN_PARAGRAPH.LEFT


def write_docx(report: Report, path: Path) -> Path:
    """Write the report to ``path`` (a .docx file) and return it."""
    build_docx(report).save(str(path))
    return path


"""An exported ledger that prints (issue #20, item 4): the XLSX's layout read back with openpyxl, and
the sheet printed by LibreOffice to PDF: no "###", one page wide, the header on every page, no text
cut off; and the export imports again unchanged."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from collections import Counter

import openpyxl
import pytest

from .conftest import SEED_CSV
from .test_report import require_tools

TITLE = "中共重庆市璧山区科学技术局党组巡察整改台账"


@pytest.fixture
def exported(seeded, tmp_path):
    out = tmp_path / "台账.xlsx"
    result = seeded("ledger", "export", out)
    assert result.code == 0, result.err
    return out


def test_the_export_is_laid_out_for_paper(exported):
    from engine.ledger.printable import DATE_FORMAT, display_width

    book = openpyxl.load_workbook(exported)
    ws = book.active
    assert ws["A1"].value == TITLE and ws["A1"].font.b and [str(r) for r in ws.merged_cells.ranges] == ["A1:J1"]
    header = [c.value for c in ws[2]]
    assert header == SEED_CSV.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert all(c.font.b for c in ws[2]) and ws.freeze_panes == "A3" and ws.print_title_rows == "$2:$2"
    setup = ws.page_setup
    assert (setup.orientation, int(setup.paperSize), int(setup.fitToWidth), int(setup.fitToHeight)) == (
        "landscape", 9, 1, 0)
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert book.properties.description.startswith("台账校验值（办理记录链）：")  # the chain head is kept
    deadline = header.index("整改时限")
    cells = list(ws.iter_rows(min_row=3))
    assert len(cells) == 26
    for row in cells:
        assert isinstance(row[deadline].value, dt.datetime) and row[deadline].number_format == DATE_FORMAT
        assert all(c.alignment.wrap_text for c in row)
    # every column as wide as its header and its short values (a CJK character counts two)
    for col, name in enumerate(header):
        width = ws.column_dimensions[chr(ord("A") + col)].width
        assert width >= display_width(name) + 1, name
        if name in ("序号", "责任领导", "责任科室", "整改时限", "整改状态"):
            assert all(width >= display_width(row[col].value) + 1 for row in cells), name
    assert display_width("2022年10月31日") == 14 and display_width("ab\n中文字") == 6


def test_the_export_prints_one_page_wide_without_hashes(exported, tmp_path):
    require_tools("soffice", "pdftotext", "pdfinfo")
    done = subprocess.run(["soffice", f"-env:UserInstallation=file://{tmp_path / 'lo-profile'}", "--headless",
                           "--convert-to", "pdf", "--outdir", str(tmp_path / "pdf"), str(exported)],
                          capture_output=True, text=True, timeout=240)
    pdf = tmp_path / "pdf" / "台账.pdf"
    assert pdf.is_file(), done.stdout + done.stderr
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    width, height = (float(v) for v in re.search(r"Page size:\s+([\d.]+) x ([\d.]+)", info).groups())
    assert (round(width), round(height)) == (842, 595)  # A4 landscape
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "###" not in text
    pages = [re.sub(r"\s+", "", page) for page in text.split("\f") if page.strip()]
    assert len(pages) >= 2
    header = SEED_CSV.read_text(encoding="utf-8").splitlines()[0].split(",")
    for n, page in enumerate(pages, 1):
        # the header on every page, all of it: no column went onto a page of its own
        assert all(name in page for name in header), (n, page[:200])
    assert TITLE in pages[0]
    flat = "".join(pages)
    # every cell shown whole: a row too low for its wrapped text cuts lines off, and their characters
    # are missing from the PDF (cells wrap side by side, so the text is compared character by character)
    rows = [line.split(",") for line in SEED_CSV.read_text(encoding="utf-8").splitlines()[1:]]
    shown = Counter(flat)
    wanted = Counter("".join(re.sub(r"\s+", "", cell) for row in rows for cell in row[1:7]))
    assert not wanted - shown, wanted - shown
    assert "2022年9月30日" in flat and "2022-09-30" not in flat  # dates in the Chinese format


def test_the_export_imports_again_unchanged(seeded, exported):
    result = seeded("ledger", "import", exported, "--ledger", "bishan-keji-2022", "--at", "2022-10-20T11:00")
    assert result.code == 0, result.err
    assert "0 new, 0 updated, 26 unchanged" in result.out
    again = seeded("ledger", "import", exported, "--ledger", "copy", "--dry-run")
    assert again.code == 0 and "row 3:" not in again.err  # the title row is no problem row


def test_widths_narrow_long_text_to_the_page_and_keep_short_values_whole():
    from engine.ledger.printable import PAGE_UNITS, column_widths, row_height

    headers = ["序号", "具体问题", "整改措施", "整改时限"]
    rows = [[1, "问" * 30, "措" * 120, dt.date(2026, 12, 31)]]
    widths, long_text = column_widths(headers, rows)
    assert long_text == [False, True, True, False]
    assert widths[0] >= 6 and widths[3] >= 16  # 序号 and the date keep their content: no "###"
    assert sum(widths) <= PAGE_UNITS + 0.5 and widths[2] > widths[1] > 12  # the longer text keeps more
    assert row_height(rows[0], widths, long_text) >= 16 * (240 / widths[2])  # every wrapped line shows
    assert row_height([2, "短", "短", None], widths, long_text) is None

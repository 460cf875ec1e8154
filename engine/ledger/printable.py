"""An exported ledger that prints: the layout of the XLSX ``duban ledger export`` writes.

Offices print the 台账 and hand it round, so the sheet is laid out for paper as they would lay it
out by hand: a title row (…巡察整改台账) over a bold header, the header frozen on screen and repeated
on every printed page, each column as wide as its content, long text wrapped, dates shown as dates
(2026年12月31日), A4 landscape, scaled to one page wide.

Widths are counted in Excel's unit (the width of one "0" of the default font): a CJK character is
about two of them. Columns of short values (序号, dates, names) get their whole content, so nothing
shows "###"; when the whole is wider than a landscape page, the long-text columns are narrowed
(they wrap) until it fits, down to a floor, and fit-to-width scales whatever is left.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Any

from ..wording import cn_date

DATE_FORMAT = 'yyyy"年"m"月"d"日"'
# An A4 landscape page holds about 150 width units at 100 % with narrow margins; up to this much is
# scaled down to fit (11 pt shrinks to about 9.5 pt), which keeps long text on fewer lines.
PAGE_UNITS = 170
MAX_WIDTH = 80
MIN_TEXT = 12  # a wrapped column is never narrowed below this
PAD = 2


def display_width(value: Any) -> int:
    """How wide ``value`` shows, in width units: its longest line, a CJK character counting two."""
    if value is None:
        return 0
    text = cn_date(value) if isinstance(value, dt.date) else str(value)
    return max((sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)
                for line in text.splitlines() or [""]), default=0)


def column_widths(headers: list[str], rows: list[list[Any]]) -> tuple[list[float], list[bool]]:
    """Each column's width (the header and every cell fit; text columns narrowed to fit the page)
    and whether it holds long text (wrapped, left-aligned) rather than short values (centred)."""
    natural = [display_width(h) + PAD for h in headers]
    wraps = [False] * len(headers)
    for row in rows:
        for i, value in enumerate(row[:len(headers)]):
            natural[i] = max(natural[i], display_width(value) + PAD)
            if isinstance(value, str) and (display_width(value) > 24 or "\n" in value):
                wraps[i] = True
    # a wrapped column may be narrowed to its header or MIN_TEXT; the others keep their content
    floors = [min(max(display_width(h) + PAD, MIN_TEXT), width) if wrap else width
              for h, width, wrap in zip(headers, natural, wraps, strict=True)]
    widths = [float(min(w, MAX_WIDTH)) for w in natural]
    spare = sum(w - f for w, f in zip(widths, floors, strict=True))
    over = sum(widths) - PAGE_UNITS
    if over > 0 and spare > 0:  # each text column gives up the same share of what it has above its floor
        keep = max(0.0, 1 - over / spare)
        widths = [round(f + (w - f) * keep, 1) for w, f in zip(widths, floors, strict=True)]
    return widths, wraps


LINE_POINTS = 16  # one wrapped line of 11 pt CJK text, leading included
GLYPH = 1.05  # a CJK glyph is a little wider than two width units: count lines on the safe side


def row_height(row: list[Any], widths: list[float], long_text: list[bool]) -> float | None:
    """The height (points) that shows every wrapped line of ``row``; ``None`` for one line.

    Set explicitly because neither LibreOffice nor every Excel fits a row to wrapped text written
    by a program: a row left at its default height shows one line and cuts the rest off.
    """
    lines = 1
    for value, width, wraps in zip(row, widths, long_text, strict=False):
        if value is None or isinstance(value, (int, float, dt.date)):
            continue
        usable = max((width - 1) / GLYPH, 1)
        text = str(value)
        count = sum(max(1, -(-display_width(line) // int(usable))) for line in text.splitlines() or [""])
        lines = max(lines, count if wraps or "\n" in text else 1)
    return None if lines == 1 else lines * LINE_POINTS + 4


def lay_out(ws: Any, headers: list[str], widths: list[float], *, heading: str) -> None:
    """Widths, frozen header, print titles and page setup on a (write-only) worksheet, before its
    rows are written. The header is row 2 under a title row when ``heading`` is given, else row 1."""
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.properties import PageSetupProperties

    for i, width in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(i)].width = width
    header_row = 2 if heading else 1
    if heading and len(headers) > 1:
        ws.merged_cells.add(f"A1:{get_column_letter(len(headers))}1")
        ws.row_dimensions[1].height = 32
    ws.freeze_panes = f"A{header_row + 1}"
    ws.print_title_rows = f"{header_row}:{header_row}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = 9  # A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0  # as many pages down as it takes
    ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top, ws.page_margins.bottom = 0.6, 0.7
    ws.oddFooter.center.text = "第 &P 页，共 &N 页"


class Styles:
    """The cell styles of the sheet, made once (each cell refers to them)."""

    def __init__(self) -> None:
        from openpyxl.styles import Alignment, Border, Font, PatternFill, Side

        thin = Side(style="thin", color="000000")
        self.border = Border(left=thin, right=thin, top=thin, bottom=thin)
        self.title_font = Font(bold=True, size=16)
        self.title_align = Alignment(horizontal="center", vertical="center")
        self.header_font = Font(bold=True)
        self.header_fill = PatternFill("solid", fgColor="D9D9D9")
        self.header_align = Alignment(horizontal="center", vertical="center", wrap_text=True)
        self.text_align = Alignment(vertical="center", wrap_text=True)
        self.short_align = Alignment(horizontal="center", vertical="center", wrap_text=True)

    def title(self, cell: Any) -> Any:
        cell.font, cell.alignment = self.title_font, self.title_align
        return cell

    def header(self, cell: Any) -> Any:
        cell.font, cell.fill, cell.alignment, cell.border = (self.header_font, self.header_fill, self.header_align,
                                                             self.border)
        return cell

    def body(self, cell: Any, long_text: bool) -> Any:
        if isinstance(cell.value, dt.date):
            cell.number_format = DATE_FORMAT
        cell.alignment = self.text_align if long_text else self.short_align
        cell.border = self.border
        return cell

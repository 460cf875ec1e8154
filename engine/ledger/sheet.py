"""Reading and writing ledger spreadsheets: CSV and XLSX.

Rows are numbered as a person sees them in Excel (the first row of the file is row 1). The header
need not be row 1: ``engine.ledger.layout`` finds it below a title and information rows, and joins a
two-row header. CSV is read as UTF-8 (with or without BOM) and, failing that, as GB18030, since Excel
on a Chinese Windows saves CSV in the local code page.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from ..errors import LedgerError
from .layout import Header, locate

Cell = str | int | float | dt.date | dt.datetime | None
FieldOf = Callable[[str], str | None]


@dataclass
class Sheet:
    path: Path
    headers: list[str]
    rows: Iterator[tuple[int, list[Cell]]]  # (row number, cells)
    size: int  # progress units in total (bytes for CSV, rows for XLSX)
    position: Callable[[], int]  # progress units consumed so far
    header_rows: list[int] = field(default_factory=lambda: [1])  # the rows the header takes
    skipped: list[tuple[int, str]] = field(default_factory=list)  # rows above the header, with their text
    joined: list[str] = field(default_factory=list)  # how a header of several rows was read


def _no_fields(header: str) -> str | None:
    return None


def open_sheet(path: Path, *, sheet: str | None = None, field_of: FieldOf = _no_fields) -> Sheet:
    """Open a ledger file; ``field_of`` (a header -> the field it fills) finds the header row."""
    if not path.is_file():
        raise LedgerError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _open_xlsx(path, sheet, field_of)
    if suffix in (".csv", ".txt"):
        return _open_csv(path, field_of)
    raise LedgerError(f"{path}: unsupported file type {suffix or '(none)'}", hint="use .csv or .xlsx")


def _detect_encoding(path: Path) -> str:
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as fh:
        try:
            while chunk := fh.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
            return "utf-8-sig"
        except UnicodeDecodeError:
            return "gb18030"


MAX_CELL = 32_767  # Excel's own limit on the characters of one cell


def _column(headers: list[str], col: int) -> str:
    return headers[col] if col < len(headers) and headers[col] else f"column {col + 1}"


def _checked(path: Path, headers: list[str], rows: Iterator[tuple[int, list[Cell]]]) -> Iterator[tuple[int, list[Cell]]]:
    """The rows, each refused at its row and column when a cell exceeds what Excel holds."""
    for number, cells in rows:
        for col, cell in enumerate(cells):
            if isinstance(cell, str) and len(cell) > MAX_CELL:
                raise LedgerError(f"{path}: row {number}: {_column(headers, col)}: a cell of {len(cell):,} "
                                  f"characters (Excel holds at most {MAX_CELL:,})")
        yield number, cells


def _with_header(path: Path, found: tuple[Header, Iterator[tuple[int, list[Cell]]]], size: int,
                 position: Callable[[], int]) -> Sheet:
    header, rest = found
    headers = [h.strip() for h in header.names]
    return Sheet(path, headers, _checked(path, headers, rest), size, position, header.rows, header.skipped,
                 header.joined)


def _open_csv(path: Path, field_of: FieldOf) -> Sheet:
    encoding = _detect_encoding(path)
    size = path.stat().st_size
    raw = path.open("rb")  # its position is the progress: bytes read so far
    fh = io.TextIOWrapper(raw, encoding=encoding, newline="")
    reader = csv.reader(fh)

    def rows() -> Iterator[tuple[int, list[Cell]]]:
        try:
            for cells in reader:
                if any(c.strip() for c in cells):
                    # a cell an export wrote as text ('=…) reads back as what was written
                    yield reader.line_num, [unquote(c) if c[:1] == "'" else c for c in cells]
        except (csv.Error, UnicodeDecodeError) as exc:
            raise LedgerError(f"{path}: row {reader.line_num + 1}: cannot read the row ({exc})") from None
        finally:
            fh.close()

    found = locate(rows(), field_of)
    if found is None:
        fh.close()
        raise LedgerError(f"{path}: the file is empty", hint="the first row must hold the column headers")
    return _with_header(path, found, size, lambda: raw.tell() if not fh.closed else size)


MAX_EXPANDED = 200 * 1024 * 1024  # bytes a workbook's parts may expand to (a zip bomb is refused)
# Workbooks whose parts expand to at most this are read whole, so merged cells fill their range; a
# whole workbook in memory costs ~10× its XML, so bigger ones stream (and merges read as Excel's
# top-left cell only).
MERGED_UP_TO = 20 * 1024 * 1024


def _check_zip(path: Path) -> int:
    """Refuse what is not a workbook, or one that would expand beyond MAX_EXPANDED, before parsing."""
    try:
        with zipfile.ZipFile(path) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise LedgerError(f"{path}: not a readable XLSX workbook ({exc or type(exc).__name__})",
                          hint="save it from Excel or WPS as .xlsx, or export it as CSV") from None
    if expanded > MAX_EXPANDED:
        raise LedgerError(f"{path}: the workbook expands to {expanded / 2**20:,.0f} MB "
                          f"(at most {MAX_EXPANDED // 2**20} MB): not a ledger")
    return expanded


# What a damaged workbook raises from inside openpyxl while it is being read.
# (NotImplementedError: a compression method zipfile lacks; RuntimeError: an encrypted part.)
_DAMAGED = (zipfile.BadZipFile, KeyError, ValueError, TypeError, IndexError, AttributeError, EOFError, OSError,
            zlib.error, ElementTree.ParseError, NotImplementedError, RuntimeError)


def _open_xlsx(path: Path, sheet: str | None, field_of: FieldOf) -> Sheet:
    # imported here: openpyxl costs ~0.2 s and CSV users never need it
    from openpyxl.reader.excel import ExcelReader
    from openpyxl.utils.exceptions import InvalidFileException

    whole = _check_zip(path) <= MERGED_UP_TO
    try:
        # Small workbooks are read whole, which keeps their merged ranges; big ones stream.
        # (ExcelReader is load_workbook's own reader; through it we learn each sheet's part.)
        reader = ExcelReader(path, read_only=not whole, data_only=True)
        reader.read()
        book = reader.wb
        parts = {ws_def.name: rel.target for ws_def, rel in reader.parser.find_sheets()}
    except (InvalidFileException, *_DAMAGED) as exc:
        raise LedgerError(f"{path}: not a readable XLSX workbook ({exc or type(exc).__name__})") from None
    if sheet is not None and sheet not in book.sheetnames:
        raise LedgerError(f"{path}: no sheet named {sheet!r}", hint=f"sheets: {', '.join(book.sheetnames)}")
    ws = book[sheet] if sheet else book.worksheets[0]
    merged = _merged_values(ws) if whole else {}
    done = [0]

    def rows() -> Iterator[tuple[int, list[Cell]]]:
        number = 0
        try:
            for number, cells in enumerate(ws.iter_rows(values_only=True), start=1):
                done[0] = number
                row = list(cells)
                if merged:
                    for col, value in merged.get(number, {}).items():
                        while len(row) <= col:
                            row.append(None)
                        if row[col] is None:
                            row[col] = value
                if any(c is not None and str(c).strip() for c in row):
                    yield number, row
        except _DAMAGED as exc:
            raise LedgerError(f"{path}: row {number + 1}: the workbook is damaged ({exc or type(exc).__name__})") from None
        finally:
            book.close()

    found = locate(rows(), field_of)
    if found is None:
        book.close()
        raise LedgerError(f"{path}: the sheet {ws.title!r} is empty", hint="the sheet must hold the column headers")
    opened = _with_header(path, found, max(ws.max_row or 1, 1), lambda: done[0])
    if ws.title in parts:
        _refuse_uncalculated(path, parts[ws.title], opened.headers, after=opened.header_rows[-1])
    return opened


# A cell holding a formula and no saved result: <c r="B2"><f>…</f></c>, or an empty <v> on a cell that
# is not a string result (an empty string result is <c t="str"><f>…</f><v></v></c>).
_P = rb"(?:[A-Za-z_][\w.-]*:)?"
_FORMULA = re.compile(rb"<" + _P + rb"f[\s>/]")
_UNCALCULATED = re.compile(
    rb"<" + _P + rb"c\b([^>]*)>\s*<" + _P + rb"f\b[^>]*?(?:/>|>[^<]*</" + _P + rb"f>)\s*"
    rb"(<" + _P + rb"v\s*/>|<" + _P + rb"v>\s*</" + _P + rb"v>)?\s*</" + _P + rb"c>")
_REF = re.compile(rb'\br="([A-Z]{1,3})(\d+)"')
_STR = re.compile(rb'\bt="str"')


def _refuse_uncalculated(path: Path, part: str, headers: list[str], *, after: int) -> None:
    """Refuse a sheet with formulas but no saved results (written by a script, or by a program that
    does not calculate): openpyxl would read those cells as empty where Excel shows a value.
    One streaming pass over the sheet's XML; a sheet without formulas costs a decompression.
    Only the rows below the header (row ``after``) count."""
    found: list[tuple[int, int]] = []
    try:
        with zipfile.ZipFile(path) as archive, archive.open(part) as fh:
            tail = b""
            while chunk := fh.read(1 << 20):
                buffer = tail + chunk
                cut = buffer.rfind(b"</row>")  # only whole rows are searched; the rest waits
                if cut < 0:
                    tail = buffer
                    continue
                cut += len(b"</row>")
                _uncalculated_in(buffer[:cut], found)
                tail = buffer[cut:]
            _uncalculated_in(tail, found)
    except _DAMAGED as exc:
        raise LedgerError(f"{path}: the workbook is damaged ({exc or type(exc).__name__})") from None
    named = [(row, col) for row, col in found if row > after and col < len(headers) and headers[col]]
    if named:
        row, col = named[0]
        more = f" (and {len(named) - 1:,} more cell(s))" if len(named) > 1 else ""
        raise LedgerError(
            f"{path}: row {row}: {headers[col]}: a formula with no saved value{more}: duban reads what Excel "
            f"shows, and this file was saved without calculating",
            hint="open it in Excel or WPS and save it again (or paste the column as values)")


def _uncalculated_in(xml: bytes, found: list[tuple[int, int]]) -> None:
    from openpyxl.utils import column_index_from_string

    if not _FORMULA.search(xml):
        return
    for match in _UNCALCULATED.finditer(xml):
        attrs = match.group(1)
        if match.group(2) is not None and _STR.search(attrs):
            continue  # a formula whose result is the empty string
        ref = _REF.search(attrs)
        if ref:
            found.append((int(ref.group(2)), column_index_from_string(ref.group(1).decode()) - 1))


def _merged_values(ws: Any) -> dict[int, dict[int, Any]]:
    """Row -> {column index: value} for every cell a merged range covers, as Excel shows it: the
    range's top-left value (offices merge 方面 and 问题类别 over their problems' rows)."""
    out: dict[int, dict[int, Any]] = {}
    for rng in (getattr(ws, "merged_cells", None) and ws.merged_cells.ranges) or ():
        value = ws.cell(row=rng.min_row, column=rng.min_col).value
        for r in range(rng.min_row, rng.max_row + 1):
            for c in range(rng.min_col, rng.max_col + 1):
                out.setdefault(r, {})[c - 1] = value
    return out


# A cell a spreadsheet would run as a formula (OWASP "CSV injection"); exports write it as text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _as_text(value: Any) -> Any:
    """For CSV: a leading apostrophe makes Excel and WPS show the cell as text, never run it."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def unquote(value: str) -> str:
    """The inverse of ``_as_text`` for an imported CSV cell (a round trip keeps the text)."""
    if value.startswith("'") and value[1:2] in _FORMULA_START:
        return value[1:]
    return value


def write_csv(path: Path, headers: list[str], rows: Iterable[list[Any]]) -> None:
    # BOM so that Excel opens the Chinese text correctly by double-click.
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(headers)
        for row in rows:
            writer.writerow(["" if v is None else v.isoformat() if isinstance(v, dt.date) else _as_text(v) for v in row])


def write_xlsx(path: Path, headers: list[str], rows: Iterable[list[Any]], *, title: str = "台账",
               description: str = "", heading: str = "") -> None:
    """The sheet as XLSX, laid out to print (engine.ledger.printable); ``heading`` is the title row
    above the header (none when empty), ``title`` the sheet's name, ``description`` goes to the
    document properties. Cells that look like formulas are written as text."""
    import openpyxl
    from openpyxl.cell import WriteOnlyCell

    from .printable import Styles, column_widths, lay_out, row_height

    table = [list(row) for row in rows]  # widths need every cell before the first row is written
    widths, long_text = column_widths(headers, table)
    book = openpyxl.Workbook(write_only=True)
    if description:
        book.properties.description = description
    ws = book.create_sheet(title=title[:31] or "台账")
    lay_out(ws, headers, widths, heading=heading)
    styles = Styles()
    if heading:
        ws.append([styles.title(WriteOnlyCell(ws, value=heading))])
    ws.append([styles.header(WriteOnlyCell(ws, value=h)) for h in headers])
    for number, row in enumerate(table, start=3 if heading else 2):
        height = row_height(row, widths, long_text)
        if height:
            ws.row_dimensions[number].height = height
        out = []
        for i, value in enumerate(row):
            cell = WriteOnlyCell(ws, value=value)
            if isinstance(value, str) and value.startswith(_FORMULA_START):
                cell.data_type = "s"  # text, never a formula, whatever it starts with
            out.append(styles.body(cell, i < len(long_text) and long_text[i]))
        ws.append(out)
    book.save(path)

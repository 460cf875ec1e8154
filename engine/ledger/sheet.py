"""Reading and writing ledger spreadsheets: CSV and XLSX.

Rows are numbered as a person sees them in Excel: the header is row 1, the first problem row 2.
CSV is read as UTF-8 (with or without BOM) and, failing that, as GB18030, since Excel on a Chinese
Windows saves CSV in the local code page.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import LedgerError

Cell = str | int | float | dt.date | dt.datetime | None


@dataclass
class Sheet:
    path: Path
    headers: list[str]
    rows: Iterator[tuple[int, list[Cell]]]  # (row number, cells)
    size: int  # progress units in total (bytes for CSV, rows for XLSX)
    position: Callable[[], int]  # progress units consumed so far


def open_sheet(path: Path, *, sheet: str | None = None) -> Sheet:
    if not path.is_file():
        raise LedgerError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _open_xlsx(path, sheet)
    if suffix in (".csv", ".txt"):
        return _open_csv(path)
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


def _open_csv(path: Path) -> Sheet:
    encoding = _detect_encoding(path)
    size = path.stat().st_size
    raw = path.open("rb")  # its position is the progress: bytes read so far
    fh = io.TextIOWrapper(raw, encoding=encoding, newline="")
    try:
        reader = csv.reader(fh)
        headers = next(reader, None)
    except (UnicodeDecodeError, csv.Error) as exc:
        fh.close()
        raise LedgerError(f"{path}: row 1: cannot read the header ({exc})") from None
    if not headers:
        fh.close()
        raise LedgerError(f"{path}: the file is empty", hint="the first row must hold the column headers")

    def rows() -> Iterator[tuple[int, list[Cell]]]:
        try:
            for cells in reader:
                if any(c.strip() for c in cells):
                    yield reader.line_num, list(cells)
        except csv.Error as exc:
            raise LedgerError(f"{path}: row {reader.line_num}: {exc}") from None
        finally:
            fh.close()

    return Sheet(path, [h.strip() for h in headers], rows(), size, lambda: raw.tell() if not fh.closed else size)


def _open_xlsx(path: Path, sheet: str | None) -> Sheet:
    import openpyxl  # imported here: it costs ~0.2 s and CSV users never need it
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, OSError, KeyError, ValueError) as exc:
        raise LedgerError(f"{path}: not a readable XLSX workbook ({exc})") from None
    if sheet is not None and sheet not in book.sheetnames:
        raise LedgerError(f"{path}: no sheet named {sheet!r}", hint=f"sheets: {', '.join(book.sheetnames)}")
    ws = book[sheet] if sheet else book.worksheets[0]
    it = ws.iter_rows(values_only=True)
    first = next(it, None)
    if not first or not any(c is not None for c in first):
        book.close()
        raise LedgerError(f"{path}: the sheet {ws.title!r} is empty", hint="row 1 must hold the column headers")
    headers = ["" if c is None else str(c).strip() for c in first]
    while headers and not headers[-1]:
        headers.pop()
    done = [1]

    def rows() -> Iterator[tuple[int, list[Cell]]]:
        try:
            for number, cells in enumerate(it, start=2):
                done[0] = number
                if any(c is not None and str(c).strip() for c in cells):
                    yield number, list(cells)
        finally:
            book.close()

    return Sheet(path, headers, rows(), max(ws.max_row or 1, 1), lambda: done[0])


def write_csv(path: Path, headers: list[str], rows: Iterable[list[Any]]) -> None:
    # BOM so that Excel opens the Chinese text correctly by double-click.
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(headers)
        for row in rows:
            writer.writerow(["" if v is None else v.isoformat() if isinstance(v, dt.date) else v for v in row])


def write_xlsx(path: Path, headers: list[str], rows: Iterable[list[Any]], *, title: str = "台账") -> None:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    ws = book.create_sheet(title=title[:31] or "台账")
    ws.append(headers)
    for row in rows:
        ws.append(row)
    book.save(path)

"""Where a ledger's header and its problems are on the sheet, as offices lay them out.

An office's 台账 rarely starts at row 1 with its header: a title ("区民政局巡察反馈问题整改台账",
merged across the sheet) and an information row ("填报单位：…  填报时间：…") come first, a header
may take two rows (a group such as 责任主体 over 牵头领导 | 责任股室, merged in Excel, or left blank
beside the group name in a CSV), a row of column numbers (1 2 3 …) may follow it, and the sheet
ends with footer rows (合计, 填表人：…, 备注：…).

* **The header** is the first of the top ``HEADER_SCAN`` rows that names the 序号 or the 具体问题
  column and at least one other known column (``engine.ledger.columns``). The rows above it are
  skipped and listed. A row just above it that names a column where the header is blank, and rows
  just below it each of whose cells names a column or repeats the cell above, are the same header:
  each column takes the lowest name a known spelling matches, else its lowest name. Without such a
  row, the first non-empty row is the header (and the import says which column is missing there).
* **A row of column numbers** right under the header (1, 2, 3 … in column order) is skipped.
* **A footer row** is one whose 序号 cell starts a footer (合计, 总计, 小计, 共计, 填表人, 填报人,
  制表人, 审核人, 负责人, 联系人, 联系电话, 填表日期 …, 备注：, 注：, 说明：), or whose 序号 is blank,
  whose first cell starts one and whose 具体问题 is blank or the same text. It is skipped and listed;
  a row with a 序号 of its own is never a footer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from .cells import text

HEADER_SCAN = 20  # rows searched for the header: the title and information rows above it are few

Rows = Iterator[tuple[int, list[Any]]]


@dataclass
class Header:
    names: list[str]  # per column, "" where a column has no header
    rows: list[int]  # the sheet rows the header takes
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (row, its text): above the header
    joined: list[str] = field(default_factory=list)  # "责任主体 / 牵头领导 → 牵头领导", per joined column


def row_text(cells: list[Any]) -> str:
    """A row as one line: its non-empty cells, a merged cell's value once."""
    out: list[str] = []
    for cell in cells:
        t = text(cell)
        if t and (not out or out[-1] != t):
            out.append(t)
    return " | ".join(out)


def locate(rows: Rows, field_of: Callable[[str], str | None]) -> tuple[Header, Rows] | None:
    """The header of ``rows`` (non-empty rows, numbered as in the sheet) and the rows after it;
    None when there are no rows."""
    buffer: list[tuple[int, list[Any]]] = []
    for item in rows:
        buffer.append(item)
        if len(buffer) >= HEADER_SCAN:
            break
    if not buffer:
        return None

    def fields(cells: list[Any]) -> set[str]:
        return {f for c in cells if (t := text(c)) and (f := field_of(t)) is not None}

    found = next((i for i, (_, cells) in enumerate(buffer)
                  if len(f := fields(cells)) >= 2 and f & {"ref", "title"}), None)
    if found is None:
        number, cells = buffer[0]
        return Header(_plain(cells), [number]), chain(buffer[1:], rows)
    top = found
    if top > 0 and _names_above(buffer[top - 1], buffer[top], field_of):
        top -= 1
    bottom = found
    while bottom + 1 < len(buffer) and bottom - top < 2 and _continues(buffer[top:bottom + 1], buffer[bottom + 1],
                                                                         field_of):
        bottom += 1
    names, joined = _join([cells for _, cells in buffer[top:bottom + 1]], field_of)
    header = Header(names, [number for number, _ in buffer[top:bottom + 1]],
                    [(number, row_text(cells)) for number, cells in buffer[:top]], joined)
    rest = buffer[bottom + 1:]
    if rest and _column_numbers(rest[0][1]):
        header.skipped.append((rest[0][0], "(column numbers) " + row_text(rest[0][1])))
        rest = rest[1:]
    return header, chain(rest, rows)


def _plain(cells: list[Any]) -> list[str]:
    names = [text(c) for c in cells]
    while names and not names[-1]:
        names.pop()
    return names


def _names_above(above: tuple[int, list[Any]], header: tuple[int, list[Any]],
                 field_of: Callable[[str], str | None]) -> bool:
    """The row just above the header names a column the header leaves blank (a CSV of a two-row
    header whose 序号 was merged down)."""
    (number, cells), (at, names) = above, header
    if number != at - 1:
        return False
    below = {field_of(text(c)) for c in names if text(c)}
    return any(field_of(t) not in below and field_of(t) is not None and (i >= len(names) or not text(names[i]))
               for i, c in enumerate(cells) if (t := text(c)))


def _continues(block: list[tuple[int, list[Any]]], nxt: tuple[int, list[Any]],
               field_of: Callable[[str], str | None]) -> bool:
    """``nxt`` goes on the header (a second header row): it names a column the row above does not,
    and each of its cells is a column's name or the cell above (a header merged down)."""
    number, cells = nxt
    if number != block[-1][0] + 1:
        return False
    above = block[-1][1]
    new = False
    for i, cell in enumerate(cells):
        t = text(cell)
        if not t or t == (text(above[i]) if i < len(above) else ""):
            continue
        if field_of(t) is None:
            return False  # a cell of a problem: data
        new = True
    return new


def _join(block: list[list[Any]], field_of: Callable[[str], str | None]) -> tuple[list[str], list[str]]:
    """One name per column of a header block, and how each column of several names was read."""
    width = max(len(cells) for cells in block)
    names: list[str] = []
    joined: list[str] = []
    for col in range(width):
        stack = [t for cells in block if (t := text(cells[col]) if col < len(cells) else "")]
        distinct = list(dict.fromkeys(stack))
        known = [t for t in stack if field_of(t) is not None]
        name = known[-1] if known else (stack[-1] if stack else "")
        if len(distinct) > 1:
            joined.append(f"{' / '.join(distinct)} → {name}")
        names.append(name)
    _disambiguate(names, block)
    while names and not names[-1]:
        names.pop()
    return names, joined


def _disambiguate(names: list[str], block: list[list[Any]]) -> None:
    """Two columns of one name (两个"备注"; 配合单位 under two groups): the later ones take their
    group's name in front, else their column letter, so no column's cells overwrite another's."""
    seen: set[str] = set()
    for col, name in enumerate(names):
        if not name:
            continue
        if name in seen:
            group = next((t for cells in block if (t := text(cells[col]) if col < len(cells) else "") and t != name), "")
            candidate = f"{group}·{name}" if group else ""
            if not candidate or candidate in seen:
                candidate = f"{name}（{_letter(col)}列）"
            names[col] = candidate
        seen.add(names[col])


def _letter(col: int) -> str:
    out = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        out = chr(65 + rem) + out
    return out


def _column_numbers(cells: list[Any]) -> bool:
    """1, 2, 3 … (or 一, 二, 三 …) in column order: a template's column index row, not a problem."""
    values = [text(c) for c in cells if text(c)]
    if len(values) < 3:
        return False
    return values == [str(i) for i in range(1, len(values) + 1)] or values == list("一二三四五六七八九十")[:len(values)]


FOOTER = re.compile(r"^(?:合计|总计|小计|共计|填表人|填报人|制表人|审核人|审批人|负责人|联系人|联系电话|"
                    r"填表日期|填报日期|填表时间|填报时间|制表日期|制表时间|(?:备注|注|说明)\s*[:：])")


def footer(cells: list[Any], ref: int | None, title: int | None) -> str | None:
    """The text of a footer row (合计, 填表人：…, 备注：…), or None for a row of the ledger."""
    first = next((t for c in cells if (t := text(c))), "")
    ref_text = text(cells[ref]) if ref is not None and ref < len(cells) else ""
    if ref_text:
        return row_text(cells) if FOOTER.match(ref_text) else None
    if not FOOTER.match(first):
        return None
    title_text = text(cells[title]) if title is not None and title < len(cells) else ""
    if title_text and title_text != first and not FOOTER.match(title_text):
        return None
    return row_text(cells)

"""Turning spreadsheet cells into issue fields: the small, strict parsers the importer uses."""

from __future__ import annotations

import datetime as dt
import re

# The years a deadline may fall in: 9999-12-31 is a typo, and counting working days up to it would
# take pages down.
from ..clock import FIRST_YEAR, LAST_YEAR

# Deadlines that are not dates but are common in real ledgers: no fixed date, keep at it.
NO_DEADLINE_WORDS = frozenset({"长期", "长期坚持", "持续推进", "长期推进"})

_DATE_RE = re.compile(r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*$")
_COMPACT_RE = re.compile(r"^\s*(\d{4})(\d{2})(\d{2})\s*$")


def text(cell: object) -> str:
    if type(cell) is str:  # the common case (every CSV cell): keep it first and cheap
        return cell.strip()
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()




def parse_deadline(cell: object) -> dt.date | None:
    """A deadline cell: a real date, ``2022-09-30``, ``2022/9/30``, ``2022年9月30日``, or empty.

    Raises ``ValueError`` with a message meant for the person who typed it.
    """
    day = _parse_deadline(cell)
    if day is not None and not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ValueError(f"{day.isoformat()} is outside the supported years {FIRST_YEAR}–{LAST_YEAR}")
    return day


def _parse_deadline(cell: object) -> dt.date | None:
    if cell is None:
        return None
    if isinstance(cell, dt.datetime):
        return cell.date()
    if isinstance(cell, dt.date):
        return cell
    raw = text(cell)
    if not raw or raw in NO_DEADLINE_WORDS:
        return None
    match = _DATE_RE.match(raw) or _COMPACT_RE.match(raw)
    if match:
        year, month, day = (int(g) for g in match.groups())
        try:
            return dt.date(year, month, day)
        except ValueError:
            raise ValueError(f"{raw!r} is not a real date") from None
    raise ValueError(f"{raw!r} is not a date (use YYYY-MM-DD, e.g. 2022-09-30)")

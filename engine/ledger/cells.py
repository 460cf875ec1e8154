"""Turning spreadsheet cells into issue fields: the small, strict parsers the importer uses.

Deadlines (整改时限) are written as offices write them. A plain date (a date cell, ``2026-12-31``,
``2026/12/31``, ``2026.12.31``, ``2026年12月31日``, ``20261231``) is read as it is; every other
form below is read as stated here and listed by the import, row by row:

* ``2026年12月底前``, ``2026年12月底``, ``2026年12月``, ``2026.12`` → the month's last day;
  ``上旬`` → the 10th, ``中旬`` → the 20th, ``下旬`` → the last day;
* ``2027年1月15日前`` (日前, 以前, 之前) → that day;
* ``2026年底前``, ``2026年年底``, ``2026年内``, ``2026年度``, ``2026年`` → 31 December;
* ``2026年第三季度`` (第3季度, 三季度, …末, …底) → the quarter's last day;
* ``2026年上半年`` → 30 June, ``2026年下半年`` → 31 December;
* an Excel date serial (``45199``: a date column saved as a number) → that day (1899-12-30 + N);
* ``2026年6月至12月`` (至, 到, ~, —) → the end of the range;
* a leading 截至/截止/于 and a trailing 完成/完成整改/整改到位/办结 are words around the date;
  ``…，并长期坚持`` after one of the above keeps its date (the item goes on long-term once done).

Words with a meaning of their own:

* ``立行立改`` (立即整改, 立查立改, 即知即改, 马上就改) is *immediate*: due the ledger's feedback date
  plus the workflow's ``immediate_working_days`` (default 5) working days; the importer counts them.
* ``长期坚持`` (长期, 持续推进, 长期推进, 持续整改, 常态化推进 …) is a *long-term* item: no deadline;
  the importer puts it on the workflow's long-term track (see ``engine.ledger.importer``).

Refused, with the reason: ``2026年12月前`` and the like (before December, or by its end?), a date
without a year (``12月底前``), a bare number that is no Excel date, anything else.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

# The years a deadline may fall in: 9999-12-31 is a typo, and counting working days up to it would
# take pages down.
from ..clock import FIRST_YEAR, LAST_YEAR

LONG_TERM_WORDS = frozenset({"长期", "长期坚持", "持续推进", "长期推进", "持续整改", "长期整改", "常态化推进", "常态化",
                             "长期执行", "持续开展", "长期开展", "持续", "长效", "常态长效", "长期坚持整改"})
IMMEDIATE_WORDS = frozenset({"立行立改", "立即整改", "立查立改", "即知即改", "立知立改", "马上就改", "立改立行", "立即",
                             "立行立改已整改"})

DEFAULT_IMMEDIATE_WORKING_DAYS = 5  # a workflow's `immediate_working_days` when it gives none

_DATE_RE = re.compile(r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*$")
_COMPACT_RE = re.compile(r"^\s*(\d{4})(\d{2})(\d{2})\s*$")
EXCEL_EPOCH = dt.date(1899, 12, 30)  # serial 1 is 1900-01-01 (Excel's 1900 leap-year bug left aside)


def text(cell: object) -> str:
    if type(cell) is str:  # the common case (every CSV cell): keep it first and cheap
        return cell.strip()
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


@dataclass(frozen=True)
class Deadline:
    """A deadline cell as read. ``kind``: ``blank``, ``date`` (a plain date), ``read`` (a phrase or
    serial read as ``day``), ``immediate`` (立行立改: the day is counted by the importer) or
    ``long_term`` (长期坚持: no day). ``meaning`` says how a cell that is not a plain date was read."""

    day: dt.date | None
    kind: str
    meaning: str = ""


BLANK = Deadline(None, "blank")


def parse_deadline(cell: object) -> Deadline:
    """Read a deadline cell (see the module's docstring). Raises ``ValueError`` with a message meant
    for the person who typed it."""
    found = _parse(cell)
    day = found.day
    if day is not None and not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ValueError(f"{day.isoformat()} is outside the supported years {FIRST_YEAR}–{LAST_YEAR}")
    return found


def _parse(cell: object) -> Deadline:
    if cell is None:
        return BLANK
    if isinstance(cell, dt.datetime):
        return Deadline(cell.date(), "date")
    if isinstance(cell, dt.date):
        return Deadline(cell, "date")
    if isinstance(cell, bool):
        raise ValueError(f"{cell!r} is not a date (use YYYY-MM-DD, e.g. 2022-09-30)")
    if isinstance(cell, int | float):
        return _number(cell)
    raw = text(cell)
    if not raw:
        return BLANK
    match = _DATE_RE.match(raw) or _COMPACT_RE.match(raw)
    if match:
        return Deadline(_day(raw, *(int(g) for g in match.groups())), "date")
    return _phrase(raw)


def _number(value: int | float) -> Deadline:
    """A number cell: an Excel date serial (five digits, a time of day left aside); a float such as
    2026.1 is refused, since Excel has dropped the zero of 2026.10."""
    if isinstance(value, float) and not value.is_integer() and not 10000 <= value < 100000:
        raise ValueError(f"the number {value!r} is not a date: write the date as text or as a date cell "
                         f"(e.g. 2026-10-31)")
    return _serial(int(value), text(value))


def _serial(n: int, raw: str) -> Deadline:
    if not 10000 <= n < 100000:
        raise ValueError(f"{raw!r} is a number, not a date (use YYYY-MM-DD, e.g. 2022-09-30)")
    day = EXCEL_EPOCH + dt.timedelta(days=n)
    return Deadline(day, "read", f"{day.isoformat()} (an Excel date serial)")


def _day(raw: str, year: int, month: int, day: int) -> dt.date:
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise ValueError(f"{raw!r} is not a real date") from None


_CN = {"一": 1, "二": 2, "三": 3, "四": 4, "1": 1, "2": 2, "3": 3, "4": 4}
_PREFIX = re.compile(r"^(?:截至|截止|至迟|最迟|计划|预计|于|在)")
_SUFFIX = re.compile(r"(?:完成整改|整改完成|整改到位|全部完成|完成|办结|到位)$")
_BEFORE = r"(?P<before>前|以前|之前)?"
_Y = r"(?P<y>\d{4})"
_FULL = re.compile(_Y + r"[-/.年](?P<m>\d{1,2})[-/.月](?P<d>\d{1,2})日?" + _BEFORE + "$")
_MONTH = re.compile(_Y + r"(?:[-/.]|年)(?P<m>\d{1,2})月?(?P<end>底|末|份|上旬|中旬|下旬)?" + _BEFORE + "$")
_YEAR = re.compile(_Y + r"(?:年|年度)(?P<end>年底|年末|底|末|内|全年)?" + _BEFORE + "$")
_QUARTER = re.compile(_Y + r"年?第?(?P<q>[1-4一二三四])季度(?P<end>末|底|内)?" + _BEFORE + "$")
_HALF = re.compile(_Y + r"年?(?P<h>上|下)半年(?P<end>末|底|内)?" + _BEFORE + "$")
_RANGE = re.compile(r"(?:至|到|~|—|–)")
_PARTS = re.compile(r"[,;、]|并且|并|且")


def _phrase(raw: str) -> Deadline:
    norm = re.sub(r"\s+", "", unicodedata.normalize("NFKC", raw)).rstrip("。.")
    if norm in LONG_TERM_WORDS:
        return Deadline(None, "long_term", "no deadline: a long-term item (长期坚持)")
    if norm in IMMEDIATE_WORDS:
        return Deadline(None, "immediate")
    if re.fullmatch(r"\d{5}", norm):
        return _serial(int(norm), raw)
    parts = [p for p in _PARTS.split(norm) if p]
    if len(parts) > 1:
        dated = [p for p in parts if p not in LONG_TERM_WORDS]
        if len(dated) == 1 and len(dated) < len(parts):
            found = _phrase(dated[0])
            then = "; then 长期坚持 (kept up long-term once done)"
            if found.kind == "immediate":
                return Deadline(None, "immediate", then)
            assert found.day is not None
            return Deadline(found.day, "read", found.day.isoformat() + then)
        raise ValueError(f"{raw!r} is not one deadline (use YYYY-MM-DD, e.g. 2022-09-30)")
    day = _period(norm, raw)
    return Deadline(day, "read", day.isoformat())


def _period(norm: str, raw: str) -> dt.date:
    bare = _SUFFIX.sub("", _PREFIX.sub("", norm))
    if _RANGE.search(bare):
        first, last = _RANGE.split(bare, maxsplit=1)
        written = re.match(r"\d{4}", first)
        if written and not re.match(r"\d{4}", last):
            last = written.group(0) + "年" + last  # 2026年6月至12月: the year is written once
        return _period(last, raw)
    m = _FULL.match(bare)
    if m:
        return _day(raw, int(m["y"]), int(m["m"]), int(m["d"]))
    m = _MONTH.match(bare)
    if m:
        year, month = int(m["y"]), int(m["m"])
        if not 1 <= month <= 12:
            raise ValueError(f"{raw!r} is not a real date")
        end = m["end"]
        if m["before"] and end not in ("底", "末"):
            raise _ambiguous(raw, f"{year}年{month}月底前")
        last = calendar.monthrange(year, month)[1]
        return dt.date(year, month, {"上旬": 10, "中旬": 20}.get(end or "", last))
    m = _YEAR.match(bare)
    if m:
        if m["before"] and m["end"] not in ("年底", "年末", "底", "末"):
            raise _ambiguous(raw, f"{m['y']}年底前")
        return dt.date(int(m["y"]), 12, 31)
    m = _QUARTER.match(bare)
    if m:
        if m["before"] and not m["end"]:
            raise _ambiguous(raw, f"{m['y']}年第{m['q']}季度末前")
        month = _CN[m["q"]] * 3
        return dt.date(int(m["y"]), month, calendar.monthrange(int(m["y"]), month)[1])
    m = _HALF.match(bare)
    if m:
        if m["before"] and not m["end"]:
            raise _ambiguous(raw, f"{m['y']}年{m['h']}半年末前")
        return dt.date(int(m["y"]), 6, 30) if m["h"] == "上" else dt.date(int(m["y"]), 12, 31)
    if re.search(r"\d{1,2}月|季度|半年|年底|年内", bare) and not re.search(r"\d{4}", bare):
        raise ValueError(f"{raw!r} has no year: write it with one (e.g. 2026年12月底前, or 2026-12-31)")
    raise ValueError(f"{raw!r} is not a date (use YYYY-MM-DD, e.g. 2022-09-30)")


def _ambiguous(raw: str, instead: str) -> ValueError:
    return ValueError(f"{raw!r} may mean before that period or by its end: write {instead}, or a date "
                      f"(e.g. 2026-12-31)")


# Numbering an office keeps in its cells: 一、 （一） 1. 1、 1． （1） 1） ① ⑴ — the report numbers areas,
# categories and problems itself. A digit followed by another (1.5万元, 1、2号楼) is text, not numbering.
_CN_DIGITS = "一二三四五六七八九十百零〇两"
NUMBERING = re.compile(
    r"^\s*(?:"
    rf"[（(]\s*[{_CN_DIGITS}]+\s*[)）]\s*[、.．]?"
    rf"|[{_CN_DIGITS}]+\s*[、.．](?![{_CN_DIGITS}\d])"
    r"|[（(]\s*(?P<p>\d{1,3})\s*[)）]\s*[、.．]?"
    r"|(?P<d>\d{1,3})\s*(?:[、.．]|[)）])(?!\d)"
    r"|[①-⑳⑴-⒇⒈-⒛]\s*[、.．]?"
    r")\s*")
_NUMBER_STARTS = frozenset(_CN_DIGITS + "（(0123456789①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳⑴⑵⑶⑷⑸⑹⑺⑻⑼⑽⑾⑿⒀⒁⒂⒃⒄⒅⒆⒇"
                           "⒈⒉⒊⒋⒌⒍⒎⒏⒐⒑⒒⒓⒔⒕⒖⒗⒘⒙⒚⒛ \u3000")


def split_numbering(value: str) -> tuple[str, str, str]:
    """(numbering, the text without it, the number when it is arabic) of a cell such as
    ``"1．政治理论学习…"`` → ``("1．", "政治理论学习…", "1")``; ``("", value, "")`` when it has none, or
    when nothing but numbering is in it."""
    if not value or value[0] not in _NUMBER_STARTS:
        return "", value, ""
    m = NUMBERING.match(value)
    if m is None or m.end() >= len(value):
        return "", value, ""
    return value[:m.end()], value[m.end():], m["d"] or m["p"] or ""

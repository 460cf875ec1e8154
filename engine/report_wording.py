"""The report's wording: Chinese numbers and dates, and the headings of areas, categories and problems.

Used to build the report (``engine.report``), as filters of its templates (``engine.report_render``),
in the Word document (``engine.report_docx``) and the calendar feed (``engine.icsfeed``).
"""

from __future__ import annotations

import datetime as dt
import re

_DIGITS = "零一二三四五六七八九"


def cn_number(n: int) -> str:
    """一, 二 … 十, 十一 … 九十九 (area and part numbers)."""
    if n <= 0 or n >= 100:
        return str(n)
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else _DIGITS[tens] + "十")
    return head + (_DIGITS[ones] if ones else "") if tens else _DIGITS[ones]


def cn_date(d: dt.date | None) -> str:
    """2022年9月30日: GB/T 9704-2012 writes dates in full with Arabic numerals."""
    return "" if d is None else f"{d.year}年{d.month}月{d.day}日"


def area_heading(text: str) -> str:
    """"聚焦…方面" → "聚焦…方面存在的问题。" as the seed words area headings."""
    t = text.strip().rstrip("。")
    return (t + "存在的问题" if t.endswith("方面") else t) + "。"


_NUMBERED = re.compile(r"^\s*(\d+)\s*[.．、]\s*(.*?)\s*$")


def category_heading(text: str, fallback: int) -> tuple[str, str]:
    """(number, heading): the ledger's own number ("1．政治理论…") kept; unnumbered ones counted."""
    m = _NUMBERED.match(text or "")
    number, rest = (m.group(1), m.group(2)) if m else (str(fallback), (text or "").strip())
    return number, f"{number}．\u3000{rest.rstrip('。')}。"


def problem_heading(number: int, title: str) -> str:
    """（1）关于“…”问题的整改情况。 Quotes inside the title become single quotes, as in the seed."""
    inner = title.strip().rstrip("。").replace("“", "‘").replace("”", "’")
    return f"（{number}）关于“{inner}”问题的整改情况。"


def fill(text: str, values: dict[str, str]) -> str:
    """``text`` with each ``{key}`` replaced literally by its value (see ``ReportSettings``)."""
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text

"""The report's wording: the headings of areas, categories and problems, and its placeholders."""

from __future__ import annotations

import re


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

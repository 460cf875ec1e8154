"""The report's wording: the headings of areas, categories and problems, each problem's paragraph
of what was done, and the placeholders of the settings.

Numbering belongs to the report. Ledgers often keep their own in the cells ("一、贯彻落实…",
"1．政治理论…", "（1）关于…", "1.养老…"); it is taken off before the report numbers the line, so
nothing reads "（一）一、…" or "（1）关于“1.养老…”". A category's own number is kept as the
category's number (the seed numbers categories 1．… across the whole report, as ledgers do).
"""

from __future__ import annotations

import datetime as dt
import re

from ..issues.work import SUBMIT
from ..wording import cn_date

_CN = "零〇一二三四五六七八九十百"
_PREFIX = re.compile(
    r"^\s*(?:"
    rf"[（(]\s*(?P<paren>[{_CN}]+|\d+)\s*[)）]"  # （一） （1） (1)
    rf"|(?P<cn>[{_CN}]+)\s*[、.．]"  # 一、 一．
    r"|(?P<num>\d+)\s*(?:[、．]|\.(?!\d))"  # 1． 1、 1. (but not 1.5亿元)
    r")\s*")
_ABOUT = re.compile(r"^关于\s*[“\"「](?P<inner>.+)[”\"」]\s*(?:的)?问题$")


def cn_to_int(text: str) -> int | None:
    """一 → 1, 十二 → 12, 二十 → 20, 一百 → 100; ``None`` for what is not a Chinese numeral."""
    digits = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0}
    total, current = 0, 0
    for ch in text:
        if ch in digits:
            current = digits[ch]
        elif ch == "十":
            total += (current or 1) * 10
            current = 0
        elif ch == "百":
            total += (current or 1) * 100
            current = 0
        else:
            return None
    return total + current or None


def split_number(text: str) -> tuple[int | None, str]:
    """(the number a cell starts with, the text after it): "1．政治理论" → (1, "政治理论")."""
    raw = (text or "").strip()
    m = _PREFIX.match(raw)
    if not m:
        return None, raw
    token = m.group("paren") or m.group("cn") or m.group("num")
    number = int(token) if token.isdigit() else cn_to_int(token)
    return number, raw[m.end():].strip()


def area_heading(text: str) -> str:
    """"聚焦…方面" → "聚焦…方面存在的问题。" as the seed words area headings."""
    t = split_number(text)[1].rstrip("。")
    return (t + "存在的问题" if t.endswith("方面") else t) + "。"


def category_heading(text: str, fallback: int) -> tuple[str, str]:
    """(number, heading): the ledger's own number ("1．政治理论…", "（一）…") kept; unnumbered ones
    counted. A blank category has no heading: its problems stand under the area."""
    number, rest = split_number(text)
    shown = str(number if number is not None else fallback)
    rest = rest.rstrip("。")
    return shown, f"{shown}．\u3000{rest}。" if rest else ""


def problem_heading(number: int, title: str) -> str:
    """（1）关于“…”问题的整改情况。 Quotes inside the title become single quotes, as in the seed."""
    inner = split_number(title)[1].rstrip("。")
    about = _ABOUT.match(inner)  # a title already worded 关于“…”问题 is not wrapped twice
    if about:
        inner = about.group("inner").strip()
    inner = inner.replace("“", "‘").replace("”", "’")
    return f"（{number}）关于“{inner}”问题的整改情况。"


_CLOSED = "。！？!?"
# Unicode's control characters (category Cc: U+0000–U+001F, U+007F–U+009F), the tab excepted
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def sentence(text: str) -> str:
    """``text`` as sentences that end with "。" (a trailing comma, semicolon or full stop fixed).

    Control characters go: a note typed in a browser may carry them, and a Word document cannot."""
    parts = []
    for line in (text or "").splitlines():
        line = _CONTROL.sub("", line)
        t = line.strip().rstrip("；;，,、：: \t")
        if t.endswith(".") and not t.endswith(".."):
            t = t[:-1]
        if not t:
            continue
        closed = t[-1] in _CLOSED or (len(t) > 1 and t[-1] in "”’）)」" and t[-2] in _CLOSED)
        parts.append(t if closed else t + "。")
    return "".join(parts)


def work_done(notes: list[tuple[dt.date, str, str]]) -> str:
    """What the department recorded, newest first, each dated: "2026年12月20日，已召开…。"."""
    out = []
    for day, kind, note in notes:
        lead = f"{cn_date(day)}提交整改完成情况：" if kind == SUBMIT else f"{cn_date(day)}，"
        out.append(lead + sentence(note))
    return "".join(out)


def unfinished(target: dt.date | None, today: dt.date, days_overdue: int, *, awaiting: bool) -> str:
    """Plain words for a problem that is not finished."""
    if awaiting:
        return "目前待审核销号。"
    if target is None:
        return "正在整改。"
    if target < today:
        late = f"已逾期{days_overdue}个工作日" if days_overdue else "现已逾期"
        return f"正在整改，原计划于{cn_date(target)}前完成，{late}。"
    return f"正在整改，计划于{cn_date(target)}前完成。"


def problem_paragraph(notes: list[tuple[dt.date, str, str]], measures: str, *, open_: bool, status: str) -> str:
    """A problem's paragraph: the recorded work (else the measures), then for an unfinished
    problem where it stands. The measures of an unfinished problem are a plan and say so."""
    done = work_done(notes)
    if not done and measures.strip():
        done = ("整改措施：" if open_ else "") + sentence(measures)
    return done + (status if open_ else "")


def fill(text: str, values: dict[str, str]) -> str:
    """``text`` with each ``{key}`` replaced literally by its value (see ``ReportSettings``)."""
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text

"""Chinese numbers and dates as official documents write them (report, board, ICS, reminders)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

_DIGITS = "零一二三四五六七八九"


def cn_number(n: int) -> str:
    """一, 二 … 十, 十一 … 九十九 (area and part numbers)."""
    if n <= 0 or n >= 100:
        return str(n)
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else _DIGITS[tens] + "十")
    return head + (_DIGITS[ones] if ones else "") if tens else _DIGITS[ones]


@lru_cache(maxsize=8192)  # a list of thousands of items names a few hundred dates
def cn_date(d: dt.date | None) -> str:
    """2022年9月30日: GB/T 9704-2012 writes dates in full with Arabic numerals."""
    return "" if d is None else f"{d.year}年{d.month}月{d.day}日"

"""China's statutory public holidays by rule (全国年节及纪念日放假办法, as revised on 2024-11-10).

The law fixes which days are holidays; only the 调休 arrangement around them (which weekends are
make-up working days, which bridge days are off) waits for the State Council's notice each
winter. For a year whose notice is not out, these days are the best knowledge there is: a
deadline must not fall on 元旦 or 春节 because the notice is late.

Article 2 (effective 2025-01-01): 元旦 1 day (1 January); 春节 4 days (除夕 to 正月初三); 清明节
1 day (the day of the 清明 solar term); 劳动节 2 days (1–2 May); 端午节 1 day (五月初五); 中秋节
1 day (八月十五); 国庆节 3 days (1–3 October). From 2014 to 2024 the 2013 text was in force: 春节
3 days (正月初一 to 初三) and 劳动节 1 day; those years are published, and are kept here only so
the rule below can be checked against eleven years of notices (tests/test_calendar.py).

Article 6: 全体公民放假的假日，如果适逢星期六、星期日，应当在工作日补假 — a holiday of Article 2
that falls on a Saturday or Sunday is made up on a working day. The law does not name the day;
every notice gives the first working days after the festival (2022-01-03 for a Saturday 元旦,
2026-04-06 for a Sunday 清明, 2026-10-05 for a Saturday 国庆), so that is the rule here: each
weekend holiday, in date order, takes the first Monday-to-Friday day after it that is neither a
holiday of the law nor already given. A day two festivals share (中秋 on 1–3 October, as in 2028)
is one day for two holidays; the notices of such years (2009, 2020) gave the second day as well,
so it is made up the same way. Article 7 (统一放假调休: moving weekends to make longer breaks)
is the notice's to decide and is not guessed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache

import chinese_calendar
from lunardate import LunarDate  # type: ignore[import-untyped]  # ships no type hints

FIRST_YEAR = 2014  # the 2013 revision's first year (all published; kept to check the rule against)
REVISED_2024 = 2025  # the 2024 revision's first year: 春节 from 除夕, 劳动节 two days
LAST_YEAR = 2099  # the lunar tables' last year

FESTIVAL = 2  # Article 2: the festival's own day
MAKE_UP = 6  # Article 6: a working day given for a festival day on a weekend (补假)


@dataclass(frozen=True)
class LawDay:
    """A holiday by law: a festival's own day (Article 2) or a day given for one (Article 6)."""

    festival: str  # 春节, 国庆节…
    article: int  # FESTIVAL or MAKE_UP

    @property
    def name(self) -> str:
        return self.festival if self.article == FESTIVAL else f"{self.festival}补假"


def _lunar(year: int, month: int, day: int) -> dt.date:
    solar: dt.date = LunarDate(year, month, day).to_solar_date()
    return solar


def _qingming(year: int) -> dt.date:
    terms = chinese_calendar.get_solar_terms(dt.date(year, 4, 1), dt.date(year, 4, 10))
    return next(day for day, name in terms if name == "清明")


@cache
def _festival_days(year: int) -> tuple[tuple[dt.date, str], ...]:
    """Article 2's days of ``year`` in date order, a day two festivals share listed twice."""
    if not FIRST_YEAR <= year <= LAST_YEAR:
        return ()
    revised = year >= REVISED_2024
    new_year = _lunar(year, 1, 1)
    days = [(dt.date(year, 1, 1), "元旦")]
    for offset in range(-1 if revised else 0, 3):  # (除夕) 正月初一 … 初三
        day = new_year + dt.timedelta(days=offset)
        if day.year == year:
            days.append((day, "春节"))
    # a 除夕 on 31 December belongs to this year
    eve_next = _lunar(year + 1, 1, 1) - dt.timedelta(days=1) if year < LAST_YEAR else new_year
    if revised and eve_next.year == year:
        days.append((eve_next, "春节"))
    days += [(_qingming(year), "清明节"), (dt.date(year, 5, 1), "劳动节")]
    if revised:
        days.append((dt.date(year, 5, 2), "劳动节"))
    days += [(_lunar(year, 5, 5), "端午节"), *((dt.date(year, 10, day), "国庆节") for day in (1, 2, 3))]
    days.append((_lunar(year, 8, 15), "中秋节"))
    return tuple(sorted(days, key=lambda pair: pair[0]))  # stable: 国庆 before 中秋 on a shared day


@cache
def statutory_holidays(year: int) -> dict[dt.date, str]:
    """Article 2: the year's festival days, each with its festival's name (none outside the law's years)."""
    days: dict[dt.date, str] = {}
    for day, name in _festival_days(year):
        days.setdefault(day, name)  # a shared day is named by 国庆节; 中秋节 has its make-up day
    return days


@cache
def law_days(year: int) -> dict[dt.date, LawDay]:
    """Every holiday the law gives in ``year``: Article 2's days and Article 6's make-up days, by date."""
    # A make-up day can fall in the year after its festival (a Saturday 除夕 on 31 December), and
    # must skip every festival day around it: the festivals of the years on either side are read.
    around = [pair for y in (year - 1, year, year + 1) for pair in _festival_days(y)]
    festival = {day for day, _ in around}
    given: set[dt.date] = set()
    out: dict[dt.date, LawDay] = {day: LawDay(name, FESTIVAL) for day, name in statutory_holidays(year).items()}
    seen: set[dt.date] = set()
    for day, name in around:
        if day.year > year:
            break
        if day.weekday() >= 5 or day in seen:
            made_up = day + dt.timedelta(days=1)
            while made_up.weekday() >= 5 or made_up in festival or made_up in given:
                made_up += dt.timedelta(days=1)
            given.add(made_up)
            if made_up.year == year:
                out[made_up] = LawDay(name, MAKE_UP)
        seen.add(day)
    return dict(sorted(out.items()))

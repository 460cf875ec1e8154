"""China's statutory public holidays by rule (全国年节及纪念日放假办法, 2024 revision).

The law fixes which days are holidays; only the 调休 arrangement around them (which weekends are
make-up working days, which bridge days are off) waits for the State Council's notice each
winter. For a year whose notice is not out, these days are the best knowledge there is: a
deadline must not fall on 元旦 or 春节 because the notice is late.

The law (effective 2025-01-01): 元旦 1 day (1 January); 春节 4 days (除夕 to 正月初三); 清明节
1 day (the day of the 清明 solar term); 劳动节 2 days (1–2 May); 端午节 1 day (五月初五);
中秋节 1 day (八月十五); 国庆节 3 days (1–3 October).
"""

from __future__ import annotations

import datetime as dt
from functools import cache

import chinese_calendar
from lunardate import LunarDate  # type: ignore[import-untyped]  # ships no type hints

FIRST_YEAR = 2025  # the 2024 revision's first year; earlier years are all published
LAST_YEAR = 2099  # the lunar tables' last year


def _lunar(year: int, month: int, day: int) -> dt.date:
    solar: dt.date = LunarDate(year, month, day).to_solar_date()
    return solar


def _qingming(year: int) -> dt.date:
    terms = chinese_calendar.get_solar_terms(dt.date(year, 4, 1), dt.date(year, 4, 10))
    return next(day for day, name in terms if name == "清明")


@cache
def statutory_holidays(year: int) -> dict[dt.date, str]:
    """The year's statutory holidays, each with its festival's name (none outside the law's years)."""
    if not FIRST_YEAR <= year <= LAST_YEAR:
        return {}
    new_year = _lunar(year, 1, 1)
    days = {dt.date(year, 1, 1): "元旦"}
    for offset in range(-1, 3):  # 除夕 … 正月初三
        day = new_year + dt.timedelta(days=offset)
        if day.year == year:
            days[day] = "春节"
    # a 除夕 on 31 December belongs to this year
    eve_next = _lunar(year + 1, 1, 1) - dt.timedelta(days=1) if year < LAST_YEAR else new_year
    if eve_next.year == year:
        days[eve_next] = "春节"
    days[_qingming(year)] = "清明节"
    days[dt.date(year, 5, 1)] = "劳动节"
    days[dt.date(year, 5, 2)] = "劳动节"
    days[_lunar(year, 5, 5)] = "端午节"
    days[_lunar(year, 8, 15)] = "中秋节"
    for october in (1, 2, 3):
        days[dt.date(year, 10, october)] = "国庆节"
    return dict(sorted(days.items()))

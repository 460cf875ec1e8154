"""WorkCalendar against chinese_calendar's real 2026 schedule and the fallback beyond it.

The 2026 official schedule (国务院办公厅 2026 年部分节假日安排), as shipped in chinesecalendar 1.11:
New Year 01-01..03 (make-up Sun 01-04), Spring Festival 02-15..23 (make-up Sat 02-14 and
Sat 02-28), Labour Day 05-01..05 (make-up Sat 05-09), National Day 10-01..07 (make-up Sun 09-20
and Sat 10-10).
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.calendar import ChineseCalendarData, WorkCalendar, forget_warnings

from .conftest import examples

SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = dt.UTC
D = dt.date

# The official data as these tests mean it: published up to 2026, whatever a later chinesecalendar
# ships, so the fallback tests for 2027 keep their meaning.
PUBLISHED = ChineseCalendarData(until=2026)


@pytest.fixture
def cal() -> WorkCalendar:
    return WorkCalendar(SHANGHAI, official=PUBLISHED)


def fallback_warnings(caplog: pytest.LogCaptureFixture, year: int) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "duban.calendar" and r.levelno == logging.WARNING and str(year) in r.getMessage()
    ]


# -- the official 2026 schedule -----------------------------------------------------------------


def test_national_day_five_workdays_after_sept_30(cal: WorkCalendar) -> None:
    assert all(cal.is_holiday(D(2026, 10, day)) for day in range(1, 8))
    assert cal.is_workday(D(2026, 10, 10))  # Saturday, make-up day
    assert cal.is_workday(D(2026, 9, 20))  # Sunday, make-up day
    # 10-08 Thu, 10-09 Fri, 10-10 Sat (make-up), 10-12 Mon, 10-13 Tue
    assert cal.add_workdays(D(2026, 9, 30), 5) == D(2026, 10, 13)


def test_spring_festival_2026(cal: WorkCalendar) -> None:
    assert all(cal.is_holiday(D(2026, 2, day)) for day in range(15, 24))
    assert D(2026, 2, 14).weekday() == 5 and cal.is_workday(D(2026, 2, 14))
    assert D(2026, 2, 28).weekday() == 5 and cal.is_workday(D(2026, 2, 28))
    assert cal.is_holiday(D(2026, 3, 1))  # an ordinary Sunday stays a rest day
    # From Thursday 02-12: Fri 02-13, Sat 02-14 (make-up), then nine days off, Tue 02-24.
    assert cal.add_workdays(D(2026, 2, 12), 3) == D(2026, 2, 24)
    assert cal.add_workdays(D(2026, 2, 13), 1) == D(2026, 2, 14)
    # Ten working days after the eve of the holiday: 02-14, 24, 25, 26, 27, 28 (Sat), 03-02 .. 03-05.
    assert cal.add_workdays(D(2026, 2, 13), 10) == D(2026, 3, 5)


def test_new_year_make_up_sunday(cal: WorkCalendar) -> None:
    assert cal.is_holiday(D(2026, 1, 1)) and cal.is_holiday(D(2026, 1, 2))
    assert D(2026, 1, 4).weekday() == 6 and cal.is_workday(D(2026, 1, 4))


def test_add_workdays_backwards(cal: WorkCalendar) -> None:
    assert cal.add_workdays(D(2026, 2, 24), -1) == D(2026, 2, 14)
    assert cal.add_workdays(D(2026, 2, 24), -2) == D(2026, 2, 13)
    assert cal.add_workdays(D(2026, 10, 8), -1) == D(2026, 9, 30)
    assert cal.add_workdays(D(2026, 10, 20), -10) == D(2026, 9, 30)


def test_add_zero_workdays_is_the_day_itself(cal: WorkCalendar) -> None:
    assert cal.add_workdays(D(2026, 10, 1), 0) == D(2026, 10, 1)


def test_next_workday(cal: WorkCalendar) -> None:
    assert cal.next_workday(D(2026, 10, 1)) == D(2026, 10, 8)
    assert cal.next_workday(D(2026, 10, 9)) == D(2026, 10, 9)
    assert cal.next_workday(D(2026, 10, 9), include=False) == D(2026, 10, 10)


def test_workdays_between(cal: WorkCalendar) -> None:
    assert cal.workdays_between(D(2026, 9, 30), D(2026, 10, 13)) == 5
    assert cal.workdays_between(D(2026, 10, 13), D(2026, 9, 30)) == -5
    assert cal.workdays_between(D(2026, 10, 13), D(2026, 10, 13)) == 0
    assert cal.workdays_between(D(2026, 2, 13), D(2026, 2, 28)) == 6
    # (start, end]: the start day is not counted, the end day is.
    assert cal.workdays_between(D(2026, 10, 12), D(2026, 10, 13)) == 1


def test_admin_lists_override_official_data() -> None:
    cal = WorkCalendar(SHANGHAI, extra_holidays=[D(2026, 10, 9)], extra_workdays=["2026-10-03"])
    assert cal.is_holiday(D(2026, 10, 9))
    assert cal.is_workday(D(2026, 10, 3))


def test_covers(cal: WorkCalendar) -> None:
    assert cal.covers(2026)
    assert not cal.covers(2030)
    assert not cal.covers(2003)


# -- beyond the data --------------------------------------------------------------------------


def test_2027_follows_the_holidays_by_law(cal: WorkCalendar, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(D(2027, 1, 4))  # why the rule is needed
    caplog.set_level(logging.WARNING, logger="duban.calendar")
    assert not cal.covers(2027) and cal.provisional(2027)
    assert cal.is_holiday(D(2027, 1, 1))  # 元旦, a Friday
    assert cal.source(D(2027, 1, 1)) == "law" and cal.article(D(2027, 1, 1)) == 2
    assert cal.is_holiday(D(2027, 1, 2))  # Saturday
    assert [d for d in (D(2027, 2, 5), D(2027, 2, 8), D(2027, 4, 5), D(2027, 6, 9), D(2027, 9, 15), D(2027, 10, 1))
            if cal.is_workday(d)] == []  # 除夕, 初三, 清明, 端午, 中秋, 国庆 on weekdays
    # the Q4 2026 report, due 10 working days after the quarter: 2027-01-15, not 01-14
    assert cal.add_workdays(D(2026, 12, 31), 10) == D(2027, 1, 15)
    # 261 weekdays less the 7 festival days on them (Article 2) and the 6 days made up for
    # festival days on a weekend (Article 6)
    assert cal.workdays_between(D(2027, 1, 1), D(2027, 12, 31)) == 248
    [record] = fallback_warnings(caplog, 2027)
    assert "provisional" in record.getMessage() and "duban calendar show 2027" in record.getMessage()
    assert "duban calendar confirm 2027" in record.getMessage()


# 2027: 初一 and 初二 (02-06, 02-07), 劳动节 (05-01, 05-02) and 国庆 10-02, 10-03 fall on weekends
ARTICLE_6_2027 = {D(2027, 2, 9): "春节补假", D(2027, 2, 10): "春节补假", D(2027, 5, 3): "劳动节补假",
                  D(2027, 5, 4): "劳动节补假", D(2027, 10, 4): "国庆节补假", D(2027, 10, 5): "国庆节补假"}


def test_article_6_makes_up_weekend_festival_days_in_2027(cal: WorkCalendar) -> None:
    for day, name in ARTICLE_6_2027.items():
        assert day.weekday() < 5 and cal.is_holiday(day), day
        assert (cal.source(day), cal.article(day), cal.holiday_name(day)) == ("law", 6, name)
    assert cal.is_workday(D(2027, 2, 11)) and cal.source(D(2027, 2, 11)) == "weekday rule"
    assert cal.is_workday(D(2027, 10, 6))
    # a plan due 15 working days after feedback on 2027-01-25: 02-19, not 02-17 (02-09 and 02-10
    # are the 春节's make-up days, 02-05 除夕 and 02-08 初三 festival days)
    assert cal.add_workdays(D(2027, 1, 25), 15) == D(2027, 2, 19)


def test_article_6_across_the_years() -> None:
    from engine.statutory import law_days

    made_up = {d: v.name for d, v in law_days(2028).items() if v.article == 6}
    # 元旦 on a Saturday; 端午 on a Sunday; 国庆 1 October a Sunday and 中秋 on 3 October, one day
    # for two festivals (the notices of 2009 and 2020 gave the second day as well)
    assert made_up == {D(2028, 1, 3): "元旦补假", D(2028, 5, 29): "端午节补假", D(2028, 10, 4): "国庆节补假",
                       D(2028, 10, 5): "中秋节补假"}
    assert not any(v.article == 6 for v in law_days(2029).values() if v.festival == "春节")  # 2029 春节 on weekdays
    assert law_days(2099) and law_days(2100) == {} and law_days(2013) == {}


def test_the_law_agrees_with_eleven_years_of_notices() -> None:
    """Articles 2 and 6 as this module reads them (the 2013 text for 2014–2024): every day the law
    gives is a holiday in the State Council's schedule for that year, but one. The 2015 notice gave
    no working day for 中秋 on Sunday 27 September (国庆 followed it within the week)."""
    from engine.statutory import law_days

    given = {(d, v.article) for y in range(2014, 2027) for d, v in law_days(y).items()}
    assert len([d for d, a in given if a == 6]) == 42
    assert [d for d, _ in sorted(given) if chinese_calendar.is_workday(d)] == [D(2015, 9, 28)]


def test_the_statutory_rule_agrees_with_the_published_years() -> None:
    """Every day the law makes a holiday is one in the State Council's 2025 and 2026 schedules."""
    from engine.statutory import statutory_holidays

    for year in (2025, 2026):
        days = statutory_holidays(year)
        assert len(days) == 13  # 1 + 4 + 1 + 2 + 1 + 1 + 3
        assert [d for d in days if chinese_calendar.is_workday(d)] == []
    # and the days Article 6 gives: 端午 2025 on a Saturday; 清明, 劳动节 and 国庆 2026 on weekends
    from engine.statutory import law_days

    assert [d for y in (2025, 2026) for d, v in law_days(y).items() if v.article == 6] == [
        D(2025, 6, 2), D(2026, 4, 6), D(2026, 5, 4), D(2026, 10, 5)]
    assert statutory_holidays(2026)[D(2026, 2, 16)] == "春节"  # 除夕
    assert statutory_holidays(2025)[D(2025, 4, 4)] == "清明节"


def test_look_ahead_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="duban.calendar")
    cal = WorkCalendar(SHANGHAI, official=PUBLISHED)
    with cal.quietly():
        cal.add_workdays(D(2026, 12, 1), 300)  # storing a duty's occurrences a year ahead
    assert fallback_warnings(caplog, 2027) == []
    cal.is_workday(D(2027, 3, 1))  # a question about 2027 itself
    assert len(fallback_warnings(caplog, 2027)) == 1


def test_one_warning_per_year(cal: WorkCalendar, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="duban.calendar")
    for day in range(1, 29):
        cal.is_workday(D(2030, 2, day))
    cal.add_workdays(D(2030, 6, 1), 40)
    assert len(fallback_warnings(caplog, 2030)) == 1
    assert cal.is_workday(D(2031, 1, 2))  # Thursday (1 January is 元旦 by rule)
    assert len(fallback_warnings(caplog, 2031)) == 1
    # Once per process: a second calendar (a command's, a daemon's after a reload) does not repeat it.
    WorkCalendar(SHANGHAI).is_workday(D(2030, 2, 1))
    assert len(fallback_warnings(caplog, 2030)) == 1


def test_2027_admin_overrides(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="duban.calendar")
    cal = WorkCalendar(SHANGHAI, extra_holidays=["2027-01-01"], extra_workdays=[D(2027, 1, 9)], official=PUBLISHED)
    assert cal.is_holiday(D(2027, 1, 1))
    assert D(2027, 1, 9).weekday() == 5 and cal.is_workday(D(2027, 1, 9))
    assert cal.is_workday(D(2027, 1, 4))  # other days still follow Monday-Friday
    assert cal.add_workdays(D(2026, 12, 31), 1) == D(2027, 1, 4)
    # One date is not the year's schedule: 2027 stays provisional and its warning stands.
    assert not cal.covers(2027) and cal.provisional(2027)
    assert len(fallback_warnings(caplog, 2027)) == 1


# 国务院办公厅 notice as an admin would enter it for 2027, were it out (its days are made up here):
# the ranges of holidays, weekends included, and two make-up working weekends.
NOTICE_2027 = {"holidays": ["2027-01-01", *(f"2027-02-{d:02d}" for d in range(5, 14)), "2027-04-05",
                            *(f"2027-05-{d:02d}" for d in range(1, 6)), "2027-06-09", "2027-09-15",
                            *(f"2027-10-{d:02d}" for d in range(1, 8))],
               "workdays": ["2027-02-14", "2027-09-26"]}


def test_the_year_entered_in_the_lists_or_confirmed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="duban.calendar")
    entered = WorkCalendar(SHANGHAI, NOTICE_2027["holidays"], NOTICE_2027["workdays"], official=PUBLISHED)
    assert entered.covers(2027) and entered.listed(2027) and not entered.provisional(2027)
    assert entered.is_workday(D(2027, 2, 14)) and entered.is_holiday(D(2027, 2, 12))
    assert fallback_warnings(caplog, 2027) == []
    # confirming ends the warning and changes no working day, hence not the fingerprint either
    cal = WorkCalendar(SHANGHAI, official=PUBLISHED)
    with cal.quietly():
        before = (cal.fingerprint(), cal.add_workdays(D(2027, 1, 25), 15))
    cal.confirm([2027])
    assert cal.covers(2027) and cal.confirmed(2027) and not cal.provisional(2027)
    assert (cal.fingerprint(), cal.add_workdays(D(2027, 1, 25), 15)) == before
    assert fallback_warnings(caplog, 2027) == []
    cal.confirm([])  # withdrawn
    assert cal.provisional(2027)
    cal.is_workday(D(2027, 3, 1))
    assert len(fallback_warnings(caplog, 2027)) == 1


def test_never_crashes_on_extreme_dates(cal: WorkCalendar) -> None:
    for day in (dt.date.min, D(2003, 12, 31), dt.date.max):
        assert cal.is_workday(day) == (day.weekday() < 5)
    assert not cal.covers(dt.date.min.year)


# -- bad input --------------------------------------------------------------------------------


def test_date_in_both_lists_is_refused() -> None:
    with pytest.raises(ValueError, match="2027-01-01"):
        WorkCalendar(SHANGHAI, extra_holidays=["2027-01-01"], extra_workdays=[D(2027, 1, 1)])


@pytest.mark.parametrize("bad", ["2027-13-01", "2027/01/01", "tomorrow", "20270101", 20270101])
def test_bad_admin_date_is_named(bad: object) -> None:
    with pytest.raises(ValueError, match=str(bad)):
        WorkCalendar(SHANGHAI, extra_holidays=[bad])  # type: ignore[list-item]


def test_instant_is_not_a_date(cal: WorkCalendar) -> None:
    with pytest.raises(TypeError, match="local_date"):
        cal.is_workday(dt.datetime(2026, 10, 12, 20, tzinfo=UTC))


# -- time zone --------------------------------------------------------------------------------


def test_local_date_across_the_offset(cal: WorkCalendar) -> None:
    assert cal.local_date(dt.datetime(2026, 10, 12, 20, 0, tzinfo=UTC)) == D(2026, 10, 13)
    assert cal.local_date(dt.datetime(2026, 10, 12, 15, 59, tzinfo=UTC)) == D(2026, 10, 12)
    with pytest.raises(ValueError, match="aware"):
        cal.local_date(dt.datetime(2026, 10, 12, 20, 0))


def test_at_local(cal: WorkCalendar) -> None:
    assert cal.at_local(D(2026, 10, 13), dt.time(9, 0)) == dt.datetime(2026, 10, 13, 1, 0, tzinfo=UTC)
    # Just after local midnight is still the previous day in UTC.
    assert cal.at_local(D(2026, 10, 13), dt.time(0, 30)) == dt.datetime(2026, 10, 12, 16, 30, tzinfo=UTC)
    assert cal.at_local(D(2026, 10, 13), dt.time(9, 0)).tzinfo == UTC


@freeze_time("2026-10-12T20:00:00Z")
def test_today_in_beijing_while_utc_is_still_yesterday(cal: WorkCalendar) -> None:
    today = cal.local_date(dt.datetime.now(UTC))
    assert today == D(2026, 10, 13)
    assert cal.is_workday(today)
    assert cal.at_local(today, dt.time(0, 0)) <= dt.datetime.now(UTC) < cal.at_local(today, dt.time(9, 0))


# -- pinned against the published schedules, day by day ---------------------------------------

# 国务院办公厅关于2025年部分节假日安排的通知 and …2026年部分节假日安排的通知: the holidays that fall on
# weekdays and the weekend days that are working days (调休). Every other day is a working day
# from Monday to Friday and a rest day on weekends.
PUBLISHED_SCHEDULES = {
    2025: {
        "holidays": ["2025-01-01", "2025-01-28", "2025-01-29", "2025-01-30", "2025-01-31", "2025-02-03",
                     "2025-02-04", "2025-04-04", "2025-05-01", "2025-05-02", "2025-05-05", "2025-06-02",
                     "2025-10-01", "2025-10-02", "2025-10-03", "2025-10-06", "2025-10-07", "2025-10-08"],
        "workdays": ["2025-01-26", "2025-02-08", "2025-04-27", "2025-09-28", "2025-10-11"],
    },
    2026: {
        "holidays": ["2026-01-01", "2026-01-02", "2026-02-16", "2026-02-17", "2026-02-18", "2026-02-19",
                     "2026-02-20", "2026-02-23", "2026-04-06", "2026-05-01", "2026-05-04", "2026-05-05",
                     "2026-06-19", "2026-09-25", "2026-10-01", "2026-10-02", "2026-10-05", "2026-10-06",
                     "2026-10-07"],
        "workdays": ["2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"],
    },
}


@pytest.mark.parametrize("year", sorted(PUBLISHED_SCHEDULES))
def test_every_day_of_the_published_schedule(cal: WorkCalendar, year: int) -> None:
    holidays = {D.fromisoformat(d) for d in PUBLISHED_SCHEDULES[year]["holidays"]}
    workdays = {D.fromisoformat(d) for d in PUBLISHED_SCHEDULES[year]["workdays"]}
    day, wrong = D(year, 1, 1), []
    while day.year == year:
        expected = day in workdays or (day.weekday() < 5 and day not in holidays)
        if cal.is_workday(day) != expected:
            wrong.append(f"{day}: expected {'workday' if expected else 'rest day'}")
        day += dt.timedelta(days=1)
    assert wrong == []
    # and counting agrees with the day-by-day answer over the whole year
    days = [D(year, 1, 1) + dt.timedelta(days=n) for n in range(365)]
    assert cal.workdays_between(D(year - 1, 12, 31), D(year, 12, 31)) == sum(map(cal.is_workday, days))


@given(start=st.dates(D(2024, 6, 1), D(2027, 6, 30)), n=st.integers(-400, 400))
@settings(max_examples=examples(300), deadline=None)
def test_counting_agrees_with_stepping_day_by_day(start: D, n: int) -> None:
    """The index answers (bisect per year) what walking the days one by one would."""
    cal = WorkCalendar(SHANGHAI, official=PUBLISHED)
    day, left, step = start, abs(n), dt.timedelta(days=1 if n > 0 else -1)
    while left:
        day += step
        left -= cal.is_workday(day)
    assert cal.add_workdays(start, n) == day
    # counting is over (start, day]: backwards from a rest day, the rest day itself is not counted
    assert cal.workdays_between(start, day) == (n if n >= 0 or cal.is_workday(start) else n + 1)


# -- the calendar by law, through the CLI -----------------------------------------------------

LEDGER_HEAD = "序号,方面,问题类别,具体问题,整改措施,责任领导,责任科室,整改时限,整改状态"


def unpublished_after_2026(project) -> None:
    """The project's calendar treats 2027 as unpublished, whatever chinesecalendar release is installed."""
    config = project / "config.toml"
    config.write_text(config.read_text(encoding="utf-8") + "[calendar]\nofficial_until = 2026\n", encoding="utf-8")


def test_calendar_show_2027_lists_the_days_by_law(cli, project) -> None:
    unpublished_after_2026(project)
    assert cli("init").code == 0
    shown = cli("calendar", "show", "2027", "--json").json
    assert shown["provisional"] and shown["confirmed"] is None
    law = {D.fromisoformat(d["date"]): d for d in shown["days"]}
    for day, name in ARTICLE_6_2027.items():
        assert law[day] == {"date": day.isoformat(), "weekday": "一二三四五六日"[day.weekday()], "kind": "holiday",
                            "name": name, "source": "law", "article": 6, "provisional": True}
    assert [d for d, v in law.items() if v["article"] == 2] == [
        D(2027, 1, 1), D(2027, 2, 5), D(2027, 2, 8), D(2027, 4, 5), D(2027, 6, 9), D(2027, 9, 15), D(2027, 10, 1)]
    text = cli("calendar", "show", "2027").out
    assert "2027-02-09 周二 放假 春节补假 (law, article 6, provisional)" in text
    assert "2027-10-05 周二 放假 国庆节补假 (law, article 6, provisional)" in text
    assert "provisional" in text.splitlines()[0] and "duban calendar confirm 2027" in text


def test_plan_due_15_working_days_after_feedback_counts_article_6(cli, project, tmp_path) -> None:
    """Feedback on 2027-01-25: the plan (制定整改方案, 15 working days, the shipped rule) is due on
    02-19, as 除夕 02-05, 初三 02-08 and the make-up days 02-09 and 02-10 are off; no reminder
    falls on a day off by law."""
    unpublished_after_2026(project)
    path = tmp_path / "区民政局-2027.csv"
    path.write_text(f"{LEDGER_HEAD}\n1,作风建设方面,服务意识,窗口服务不规范,制定服务规范,局长,办公室,2027-06-30,待整改\n",
                    encoding="utf-8")
    assert cli("init", "--at", "2027-01-25T10:00").code == 0
    imported = cli("ledger", "import", path, "--feedback-date", "2027-01-25", "--at", "2027-01-25T10:00")
    assert imported.code == 0, imported.err
    rows = cli("remind", "preview", "--at", "2027-01-25T10:00", "--until", "2027-02-26T23:00", "--json").json
    mine = [r for r in rows if r["subject"] == "区民政局-2027/1"]
    assert {r["due"] for r in mine} == {"2027-02-19"}
    assert [(r["at"][:10], r["rule"]) for r in mine][:4] == [
        ("2027-02-12", "before-5"), ("2027-02-16", "before-3"), ("2027-02-18", "before-1"), ("2027-02-19", "due")]
    from engine.statutory import law_days

    assert not [r for r in rows if D.fromisoformat(r["at"][:10]) in law_days(2027)]


def test_the_warning_once_per_process_and_only_where_the_year_is_touched(cli, project, tmp_path, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="duban.calendar")
    unpublished_after_2026(project)
    shutil.rmtree(project / "workflows" / "duties")  # no duty looks a year ahead here
    path = tmp_path / "区民政局-2026.csv"
    path.write_text(f"{LEDGER_HEAD}\n1,作风建设方面,服务意识,窗口服务不规范,制定服务规范,局长,办公室,2026-11-20,整改中\n",
                    encoding="utf-8")
    assert cli("init", "--at", "2026-10-09T10:00").code == 0
    assert cli("ledger", "import", path, "--feedback-date", "2026-09-15", "--at", "2026-10-09T10:00").code == 0
    for args in (("status",), ("issue", "list"), ("issue", "show", "区民政局-2026/1"), ("user", "list"),
                 ("remind", "preview", "--at", "2026-10-09T10:00", "--until", "2026-11-30T23:00"),
                 ("calendar", "show", "2026")):
        assert cli(*args).code == 0, args
    assert fallback_warnings(caplog, 2027) == []
    # a window into 2027 touches it: one warning, however many commands this process runs
    assert cli("remind", "preview", "--at", "2026-12-01T10:00", "--until", "2027-01-31T23:00").code == 0
    assert cli("remind", "preview", "--at", "2026-12-01T10:00", "--until", "2027-02-28T23:00").code == 0
    [record] = fallback_warnings(caplog, 2027)
    assert "duban calendar confirm 2027" in record.getMessage()
    # a confirmed year is not provisional: a new process (the set forgotten) says nothing about it
    assert cli("calendar", "confirm", "2027", "--by", "admin").code == 0
    caplog.clear()
    forget_warnings()
    assert cli("remind", "preview", "--at", "2026-12-01T10:00", "--until", "2027-02-28T23:00").code == 0
    assert fallback_warnings(caplog, 2027) == []
    assert cli("calendar", "show", "2027", "--json").json["confirmed"]["by"] == "admin"


def test_calendar_confirm_refuses_bad_input(cli, project) -> None:
    unpublished_after_2026(project)
    assert cli("calendar", "confirm", "2027").code == 2  # no database yet: a clear error, no traceback
    assert cli("init").code == 0
    for bad in ("twenty", "1999", "2100"):
        result = cli("calendar", "confirm", bad)
        assert result.code == 2 and "Traceback" not in result.err, bad
    published = cli("calendar", "confirm", "2026")
    assert published.code == 0 and "nothing to confirm" in published.out
    assert cli("calendar", "show", "2027", "--json").json["confirmed"] is None
    first = cli("calendar", "confirm", "2027")
    assert first.code == 0 and "hold no date of 2027" in first.err
    assert "already confirmed" in cli("calendar", "confirm", "2027").out

"""Occurrences of recurring duties on the real 2026 calendar (see test_calendar.py for its dates)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from engine.calendar import ChineseCalendarData, WorkCalendar
from engine.duties.schedule import Occurrence, ScheduleSpec, occurrences, period_key

SHANGHAI = ZoneInfo("Asia/Shanghai")
D = dt.date
YEAR_2026 = (D(2026, 1, 1), D(2026, 12, 31))

QUARTERLY_REPORT = ScheduleSpec(
    rrule="FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=-1", dtstart=D(2026, 3, 31), due_workdays=10
)


@pytest.fixture
def cal() -> WorkCalendar:
    return WorkCalendar(SHANGHAI, official=ChineseCalendarData(until=2026))


def test_quarterly_report_due_ten_workdays_after_quarter_end(cal: WorkCalendar) -> None:
    got = occurrences(QUARTERLY_REPORT, *YEAR_2026, cal)
    assert [o.period for o in got] == ["2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"]
    assert [o.anchor for o in got] == [D(2026, 3, 31), D(2026, 6, 30), D(2026, 9, 30), D(2026, 12, 31)]
    # Q1: 04-04..06 Qingming off, so 04-01, 02, 03, 07 .. 10, 13, 14, 15.
    assert got[0].due == D(2026, 4, 15)
    # Q2: no holiday in early July.
    assert got[1].due == D(2026, 7, 14)
    # Q3: 10-01..07 off; 10-08, 09, 10 (make-up Sat), 12 .. 16, 19, 20.
    assert got[2].due == D(2026, 10, 20)


def test_q4_due_date_lands_in_the_uncovered_2027(cal: WorkCalendar) -> None:
    [q4] = occurrences(QUARTERLY_REPORT, D(2026, 10, 1), D(2026, 12, 31), cal)
    assert q4.due == D(2027, 1, 15)  # 元旦 is a holiday by law before the 2027 schedule exists
    # An admin's make-up working day (调休) on a weekend moves it back a day.
    with_makeup = WorkCalendar(SHANGHAI, extra_workdays=["2027-01-09"], official=ChineseCalendarData(until=2026))
    [q4] = occurrences(QUARTERLY_REPORT, D(2026, 10, 1), D(2026, 12, 31), with_makeup)
    assert q4.due == D(2027, 1, 14)


def test_cron_last_day_matches_the_rrule(cal: WorkCalendar) -> None:
    cron = ScheduleSpec(cron="0 9 last 3,6,9,12 *", due_workdays=10)
    assert occurrences(cron, *YEAR_2026, cal) == occurrences(QUARTERLY_REPORT, *YEAR_2026, cal)


def test_monthly_cron(cal: WorkCalendar) -> None:
    got = occurrences(ScheduleSpec(cron="0 9 1 * *", due_days=5), *YEAR_2026, cal)
    assert [o.period for o in got] == [f"2026-{m:02d}" for m in range(1, 13)]
    assert [o.anchor for o in got] == [D(2026, m, 1) for m in range(1, 13)]
    assert got[9] == Occurrence(period="2026-10", anchor=D(2026, 10, 1), due=D(2026, 10, 6))


def test_half_yearly_rule(cal: WorkCalendar) -> None:
    spec = ScheduleSpec(
        rrule="FREQ=MONTHLY;INTERVAL=6;BYMONTHDAY=-1", dtstart=D(2026, 6, 30), due_workdays=5
    )
    got = occurrences(spec, *YEAR_2026, cal)
    assert [(o.period, o.anchor) for o in got] == [
        ("2026-H1", D(2026, 6, 30)),
        ("2026-H2", D(2026, 12, 31)),
    ]
    assert got[0].due == D(2026, 7, 7)


def test_half_yearly_cron_due_on_next_workday(cal: WorkCalendar) -> None:
    # due_workdays=0: New Year's Day 2026 falls in a three-day holiday followed by a make-up Sunday.
    got = occurrences(ScheduleSpec(cron="0 9 1 jan,jul *", due_workdays=0), *YEAR_2026, cal)
    assert got == [
        Occurrence(period="2026-H1", anchor=D(2026, 1, 1), due=D(2026, 1, 4)),
        Occurrence(period="2026-H2", anchor=D(2026, 7, 1), due=D(2026, 7, 1)),
    ]


def test_yearly_rule(cal: WorkCalendar) -> None:
    spec = ScheduleSpec(rrule="RRULE:FREQ=YEARLY;BYMONTH=1;BYMONTHDAY=31", due_days=30)
    got = occurrences(spec, D(2024, 1, 1), D(2026, 12, 31), cal)
    assert [(o.period, o.anchor, o.due) for o in got] == [
        ("2024", D(2024, 1, 31), D(2024, 3, 1)),
        ("2025", D(2025, 1, 31), D(2025, 3, 2)),
        ("2026", D(2026, 1, 31), D(2026, 3, 2)),
    ]


def test_twelve_study_sessions(cal: WorkCalendar) -> None:
    got = occurrences(ScheduleSpec(rrule="FREQ=MONTHLY;BYMONTHDAY=15"), *YEAR_2026, cal)
    assert len(got) == 12 and got[0].period == "2026-01"


@pytest.mark.parametrize(
    ("spec", "period"),
    [
        (ScheduleSpec(rrule="FREQ=YEARLY"), "year"),
        (ScheduleSpec(rrule="FREQ=MONTHLY;INTERVAL=6"), "half"),
        (ScheduleSpec(rrule="FREQ=MONTHLY;INTERVAL=3"), "quarter"),
        (ScheduleSpec(rrule="FREQ=MONTHLY"), "month"),
        (ScheduleSpec(rrule="FREQ=MONTHLY;INTERVAL=2"), "month"),
        (ScheduleSpec(rrule="FREQ=WEEKLY;BYDAY=MO"), "week"),
        (ScheduleSpec(rrule="FREQ=DAILY"), "day"),
        (ScheduleSpec(cron="0 9 1 1 *"), "year"),
        (ScheduleSpec(cron="0 9 1 1,7 *"), "half"),
        (ScheduleSpec(cron="0 9 last 3,6,9,12 *"), "quarter"),
        (ScheduleSpec(cron="0 9 1 * *"), "month"),
        (ScheduleSpec(cron="0 9 * * mon"), "week"),
        (ScheduleSpec(cron="0 9 * * mon-fri"), "day"),
        (ScheduleSpec(cron="0 9 * * *"), "day"),
        (ScheduleSpec(rrule="FREQ=MONTHLY", period="day"), "day"),
    ],
)
def test_period_inference(spec: ScheduleSpec, period: str) -> None:
    assert spec.resolved_period() == period


def test_period_keys() -> None:
    day = D(2026, 10, 13)
    assert [period_key(day, p) for p in ("day", "week", "month", "quarter", "half", "year")] == [
        "2026-10-13",
        "2026-W42",
        "2026-10",
        "2026-Q4",
        "2026-H2",
        "2026",
    ]
    assert period_key(D(2026, 12, 31), "week") == "2026-W53"  # ISO week-year, not the calendar year
    assert period_key(D(2027, 1, 1), "week") == "2026-W53"


def test_cron_fires_in_the_calendar_time_zone(cal: WorkCalendar) -> None:
    # 00:00 in Beijing on 03-01 is still 02-28 in UTC; the anchor is the local date.
    got = occurrences(ScheduleSpec(cron="0 0 1 * *"), D(2026, 3, 1), D(2026, 3, 31), cal)
    assert [o.anchor for o in got] == [D(2026, 3, 1)]


def test_dtstart_bounds_a_cron(cal: WorkCalendar) -> None:
    got = occurrences(ScheduleSpec(cron="0 9 1 * *", dtstart=D(2026, 7, 15)), *YEAR_2026, cal)
    assert [o.period for o in got] == ["2026-08", "2026-09", "2026-10", "2026-11", "2026-12"]


def test_window_beyond_the_official_data(cal: WorkCalendar) -> None:
    month_end = ScheduleSpec(rrule="FREQ=MONTHLY;BYMONTHDAY=-1", due_workdays=10)
    got = occurrences(month_end, D(2026, 7, 1), D(2027, 12, 31), cal)
    assert len(got) == 18 and got[-1].period == "2027-12"
    assert all(cal.is_workday(o.due) and o.due > o.anchor for o in got)
    mondays = occurrences(ScheduleSpec(cron="0 9 * * mon", due_workdays=3), D(2026, 12, 1), D(2027, 3, 1), cal)
    assert len(mondays) == 13


def test_empty_window(cal: WorkCalendar) -> None:
    assert occurrences(QUARTERLY_REPORT, D(2026, 4, 1), D(2026, 6, 29), cal) == []
    assert occurrences(QUARTERLY_REPORT, D(2026, 12, 31), D(2026, 1, 1), cal) == []


# -- mistakes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (ScheduleSpec(rrule="FREQ=FOO"), r"invalid RRULE 'FREQ=FOO': .*FREQ"),
        (ScheduleSpec(rrule="FREQ=MONTHLY;FOO=1"), r"invalid RRULE .*FOO"),
        (ScheduleSpec(rrule="FREQ=MONTHLY;BYMONTHDAY=40"), r"never fires"),
        (ScheduleSpec(rrule="FREQ=MONTHLY;UNTIL=20270101T000000Z"), r"UNTIL must be a plain date"),
        (ScheduleSpec(rrule="DTSTART:20260101\nRRULE:FREQ=MONTHLY"), r"one RRULE line"),
        (ScheduleSpec(cron="0 9 * *"), r"invalid cron '0 9 \* \*': need 5 fields"),
        (ScheduleSpec(cron="61 9 * * *"), r"invalid cron '61 9 \* \* \*': .*61"),
        (ScheduleSpec(cron="0 9 L 3,6,9,12 *"), r'write "last"'),
        (ScheduleSpec(cron="0 9 * * 1"), r"weekday field with names"),
        (ScheduleSpec(cron="0 9 1-7 * mon"), r"not both"),
        (ScheduleSpec(), r"exactly one of 'cron' or 'rrule'"),
        (ScheduleSpec(cron="0 9 1 * *", rrule="FREQ=MONTHLY"), r"exactly one"),
        (ScheduleSpec(cron="0 9 1 * *", period="fortnight"), r"unknown period 'fortnight'"),
        (ScheduleSpec(cron="0 9 1 * *", due_days=3, due_workdays=3), r"not both"),
    ],
)
def test_invalid_specs_are_explained(spec: ScheduleSpec, message: str, cal: WorkCalendar) -> None:
    with pytest.raises(ValueError, match=message):
        spec.validate()
    with pytest.raises(ValueError, match=message):
        occurrences(spec, *YEAR_2026, cal)


def test_period_too_coarse(cal: WorkCalendar) -> None:
    clash = r"period 'month' is too coarse.*2026-01-01 and 2026-01-15.*\(week, day\)"
    with pytest.raises(ValueError, match=clash):
        occurrences(ScheduleSpec(rrule="FREQ=MONTHLY;BYMONTHDAY=1,15"), *YEAR_2026, cal)
    with pytest.raises(ValueError, match="period 'year' is too coarse"):
        occurrences(ScheduleSpec(rrule="FREQ=MONTHLY;INTERVAL=3", period="year"), *YEAR_2026, cal)


def test_more_than_once_a_day_is_refused(cal: WorkCalendar) -> None:
    with pytest.raises(ValueError, match="more than once on 2026-01-01"):
        occurrences(ScheduleSpec(cron="0 9,17 * * *"), *YEAR_2026, cal)
    with pytest.raises(ValueError, match="at most daily"):
        occurrences(ScheduleSpec(rrule="FREQ=MINUTELY"), *YEAR_2026, cal)
    with pytest.raises(ValueError, match="more than once on 2026-01-01"):
        occurrences(ScheduleSpec(rrule="FREQ=DAILY;BYHOUR=9,17"), *YEAR_2026, cal)

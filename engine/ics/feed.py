"""The calendar feed (RFC 5545): every open deadline and every open duty occurrence.

Every subject the reminder core follows becomes one all-day VEVENT on its effective due date, the
date the sweep reminds about: an issue in a state with a deadline rule (待整改: the plan;
已制定方案/整改中: its 整改时限), a long-term item's next check-in, and every open duty occurrence
(quarterly reports, monthly clearing, each long-term item's look-back, the report milestone).
Links point at ``[board] public_url`` when it is set; a feed without it has no links, since the
request's own Host header cannot be trusted to name this server.

UIDs are stable across fetches and databases: a hash of the ledger name, 序号 and state (an issue
that moves on gets a new event, the old one disappears) or of the duty key and period. Each event
has one alarm, where duban's first reminder of it falls: the earliest ``before_working_days``
counted on the working-day calendar (so a -P5D alarm never lands on a holiday), else the due day,
at the policy's time of day.

A feed lists at most ``MAX_EVENTS`` items, the earliest due first (a calendar of ten thousand
deadlines helps nobody, and the board lists the rest); when it is cut, the calendar's description
says so. icalendar takes about a millisecond to write an event, so each event is
written once per day and kept (``_written``): an event is a pure function of its fields, the day
included in its DTSTAMP, and a calendar program fetching the feed every hour then costs the query
and a lookup per event.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

from icalendar import Alarm, Calendar, Event
from sqlalchemy.orm import Session

from ..issues.queries import find_ledger
from ..reminders.agenda import DeadlineItem, DutyItem, duty_items, open_deadlines
from ..reminders.planner import Track
from ..runtime import Runtime
from ..wording import cn_date

log = logging.getLogger("duban.ics")
PRODID = "-//duban//督办 整改时限与经常性工作//ZH"
MAX_EVENTS = 2000


def _uid(*parts: str) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]
    return f"{digest}@duban"


@dataclass(frozen=True)
class EventSpec:
    """Everything one VEVENT says (hashable: events are written once and kept, see the docstring)."""

    uid: str
    due: dt.date
    summary: str
    description: str
    category: str
    stamp: dt.datetime  # the start of the day the feed is for
    url: str | None
    alarm_text: str
    alarm_trigger: dt.timedelta  # from the all-day event's start, local midnight


def first_alarm(runtime: Runtime, track: Track) -> tuple[str, dt.timedelta]:
    """Where duban reminds first: the earliest before-reminder, else the due day, at the policy's time."""
    first = runtime.planner.first_reminder(track)
    days = (runtime.calendar.local_date(first.at) - track.due).days
    local = first.at.astimezone(runtime.calendar.tz)
    text = f"还有{-first.k}个工作日到期" if first.k < 0 else "今天到期"
    return text, dt.timedelta(days=days, hours=local.hour, minutes=local.minute)


@lru_cache(maxsize=100_000)
def _written(spec: EventSpec) -> bytes:
    event = Event()
    event.add("uid", spec.uid)
    event.add("dtstamp", spec.stamp)
    event.add("dtstart", spec.due)
    event.add("dtend", spec.due + dt.timedelta(days=1))  # all-day: DTEND is exclusive
    event.add("summary", spec.summary)
    event.add("description", spec.description)
    event.add("categories", [spec.category])
    event.add("transp", "TRANSPARENT")  # a deadline does not make anyone busy
    event.add("status", "CONFIRMED")
    if spec.url:
        event.add("url", spec.url)
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", spec.alarm_text)
    alarm.add("trigger", spec.alarm_trigger)
    event.add_component(alarm)
    return bytes(event.to_ical())


def deadline_event(runtime: Runtime, item: DeadlineItem, stamp: dt.datetime, base_url: str | None) -> EventSpec:
    late = f"（已逾期{item.late.days_overdue}个工作日）" if item.late.overdue else ""
    lines = [f"台账：{item.ledger}", f"序号：{item.ref}", f"方面：{item.area}" if item.area else "",
             f"问题类别：{item.category}" if item.category else "", f"状态：{item.state_label}",
             f"{item.rule_title}：{cn_date(item.due)}",
             f"整改时限：{cn_date(item.deadline)}" if item.deadline else "",
             f"责任领导：{item.leader or '—'}", f"责任科室：{item.department or '—'}"]
    url = f"{base_url}/issues/{quote(item.ledger, safe='')}/{quote(item.ref, safe='')}" if base_url else None
    return EventSpec(_uid("issue", item.ledger, item.ref, item.state), item.due,
                     f"【{item.rule_title}】{item.title}{late}", "\n".join(line for line in lines if line), "整改时限",
                     stamp, url, *first_alarm(runtime, item.track))


def duty_event(runtime: Runtime, item: DutyItem, stamp: dt.datetime, base_url: str | None) -> EventSpec:
    assert item.track is not None  # open items only
    late = f"（已逾期{item.late.days_overdue}个工作日）" if item.late.overdue else ""
    period = "" if item.period == "once" else f"（{item.period}）"
    lines = [f"工作事项：{item.title}", f"周期：{item.period}" if period else "",
             f"责任：{'、'.join(item.owners) or '—'}", f"台账：{item.ledger}" if item.ledger else "",
             f"整改事项：{item.issue_ref}" if item.issue_ref else "",
             f"责任领导：{item.issue_leader or '—'}" if item.issue_ref else "",
             f"责任科室：{item.issue_department or '—'}" if item.issue_ref else "", f"到期：{cn_date(item.due)}"]
    url = f"{base_url}/duties" if base_url else None
    return EventSpec(_uid("duty", item.key, item.period), item.due, f"【经常性工作】{item.title}{period}{late}",
                     "\n".join(line for line in lines if line), "经常性工作", stamp, url,
                     *first_alarm(runtime, item.track))


def feed_events(session: Session, runtime: Runtime, now: dt.datetime, *, ledger_name: str | None = None,
                department: str | None = None, limit: int | None = None) -> tuple[list[EventSpec], bool]:
    """Up to ``limit`` events for open deadlines and open duty occurrences as of ``now``, the
    earliest due first; and whether there are more (they are not counted: a count would read every
    one of them, and a feed's cost is to follow what it lists)."""
    limit = limit or MAX_EVENTS
    today = runtime.calendar.local_date(now)
    stamp = runtime.calendar.at_local(today, dt.time(0))
    base_url = runtime.config.board.base_url or None
    ledger = find_ledger(session, ledger_name)
    deadlines = open_deadlines(session, runtime, today, limit=limit + 1, ledger=ledger, department=department)
    duties = duty_items(session, runtime, today, open_only=True, limit=limit + 1, ledger=ledger, department=department)
    chosen = sorted([(item.due, 0, n) for n, item in enumerate(deadlines)] +
                    [(occ.due, 1, n) for n, occ in enumerate(duties)])[:limit]
    events = [deadline_event(runtime, deadlines[n], stamp, base_url) if which == 0
              else duty_event(runtime, duties[n], stamp, base_url) for _, which, n in chosen]
    return events, len(deadlines) + len(duties) > limit


def ics_bytes(session: Session, runtime: Runtime, now: dt.datetime, *, ledger_name: str | None = None,
              department: str | None = None) -> tuple[bytes, int]:
    """The feed (RFC 5545) and how many events it holds."""
    events, more = feed_events(session, runtime, now, ledger_name=ledger_name, department=department)
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    # one line: a name from a query string may hold line breaks, which a content line cannot
    shown = " ".join((department or "").split())
    cal.add("x-wr-calname", "督办：整改时限与经常性工作" + (f"（{shown}）" if shown else ""))
    cal.add("x-wr-timezone", runtime.config.calendar.timezone)
    cal.add("refresh-interval", dt.timedelta(hours=1), parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT1H")
    if more:
        cal.add("x-wr-caldesc", f"只列出最早到期的{len(events)}项，其余请在督办看板查看")
    head, end = bytes(cal.to_ical()).rsplit(b"END:VCALENDAR", 1)
    # the events are written one by one (and kept), then put where icalendar would put them
    return b"".join([head, *map(_written, events), b"END:VCALENDAR", end]), len(events)

"""The calendar feed (RFC 5545): every open deadline and every open duty occurrence.

Every subject the reminder core follows becomes one all-day VEVENT on its effective due date, the
date the sweep reminds about: an issue in a state with a deadline rule (待整改: the plan;
已制定方案/整改中: its 整改时限), a long-term item's next check-in, and every open duty occurrence
(quarterly reports, monthly clearing, each long-term item's look-back, the report milestone).
Links point at ``[board] public_url`` when it is set; a feed without it has no links, since the
request's own Host header cannot be trusted to name this server.

UIDs are stable across fetches and databases: a hash of the ledger name, 序号 and state (an issue
that moves on gets a new event, the old one disappears) or of the duty key and period. Alarms
sit where duban's own reminders fall: ``before_working_days`` counted on the working-day
calendar, at the policy's time of day, so a -P5D alarm never lands on a holiday.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from typing import Any
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


def _uid(*parts: str) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]
    return f"{digest}@duban"


def alarms(runtime: Runtime, track: Track) -> list[Alarm]:
    """DISPLAY alarms at the instants duban reminds before (and on) the due date."""
    policy, out = track.policy, []
    at = dt.timedelta(hours=policy.at.hour, minutes=policy.at.minute)
    offsets = [(f"还有{n}个工作日到期", (runtime.calendar.add_workdays(track.due, -n) - track.due).days)
               for n in sorted(set(policy.before_working_days), reverse=True)]
    if policy.on_due:
        offsets.append(("今天到期", 0))
    for text, days in offsets:
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", text)
        # an all-day event starts at local midnight, so days + the reminder's time of day
        alarm.add("trigger", dt.timedelta(days=days) + at)
        out.append(alarm)
    return out


def _event(uid: str, due: dt.date, summary: str, lines: list[str], category: str, stamp: dt.datetime,
           url: str | None) -> Event:
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp)
    event.add("dtstart", due)
    event.add("dtend", due + dt.timedelta(days=1))  # all-day: DTEND is exclusive
    event.add("summary", summary)
    event.add("description", "\n".join(line for line in lines if line))
    event.add("categories", [category])
    event.add("transp", "TRANSPARENT")  # a deadline does not make anyone busy
    event.add("status", "CONFIRMED")
    if url:
        event.add("url", url)
    return event


def deadline_event(runtime: Runtime, item: DeadlineItem, stamp: dt.datetime, base_url: str | None) -> Event:
    late = f"（已逾期{item.late.days_overdue}个工作日）" if item.late.overdue else ""
    summary = f"【{item.rule_title}】{item.title}{late}"
    lines = [f"台账：{item.ledger}", f"序号：{item.ref}", f"方面：{item.area}" if item.area else "",
             f"问题类别：{item.category}" if item.category else "", f"状态：{item.state_label}",
             f"{item.rule_title}：{cn_date(item.due)}",
             f"整改时限：{cn_date(item.deadline)}" if item.deadline else "",
             f"责任领导：{item.leader or '—'}", f"责任科室：{item.department or '—'}"]
    url = f"{base_url}/issues/{quote(item.ledger, safe='')}/{quote(item.ref, safe='')}" if base_url else None
    event = _event(_uid("issue", item.ledger, item.ref, item.state), item.due, summary, lines, "整改时限", stamp, url)
    for alarm in alarms(runtime, item.track):
        event.add_component(alarm)
    return event


def duty_event(runtime: Runtime, item: DutyItem, stamp: dt.datetime, base_url: str | None) -> Event:
    late = f"（已逾期{item.late.days_overdue}个工作日）" if item.late.overdue else ""
    period = "" if item.period == "once" else f"（{item.period}）"
    summary = f"【经常性工作】{item.title}{period}{late}"
    lines = [f"工作事项：{item.title}", f"周期：{item.period}" if period else "",
             f"责任：{'、'.join(item.owners) or '—'}", f"台账：{item.ledger}" if item.ledger else "",
             f"整改事项：{item.issue_ref}" if item.issue_ref else "",
             f"责任领导：{item.issue_leader or '—'}" if item.issue_ref else "",
             f"责任科室：{item.issue_department or '—'}" if item.issue_ref else "", f"到期：{cn_date(item.due)}",
             f"完成后登记：duban duty done {item.key} --period '{item.period}' --by 责任人"]
    url = f"{base_url}/duties" if base_url else None
    event = _event(_uid("duty", item.key, item.period), item.due, summary, lines, "经常性工作", stamp, url)
    for alarm in alarms(runtime, item.track):
        event.add_component(alarm)
    return event


def build_calendar(session: Session, runtime: Runtime, now: dt.datetime, *, ledger_name: str | None = None,
                   department: str | None = None, base_url: str | None = None) -> Calendar:
    """The feed as an ``icalendar.Calendar``: one VEVENT per open deadline and open duty occurrence."""
    today = runtime.calendar.local_date(now)
    ledger = find_ledger(session, ledger_name)
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    name = "督办：整改时限与经常性工作" + (f"（{department}）" if department else "")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", runtime.config.calendar.timezone)
    cal.add("refresh-interval", dt.timedelta(hours=1), parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT1H")
    for item in open_deadlines(session, runtime.core, today, ledger=ledger, department=department):
        cal.add_component(deadline_event(runtime, item, now, base_url))
    for occ in duty_items(session, runtime.core, today, ledger=ledger, department=department, open_only=True):
        cal.add_component(duty_event(runtime, occ, now, base_url))
    return cal


def ics_bytes(session: Session, runtime: Runtime, now: dt.datetime, **filters: Any) -> bytes:
    return build_calendar(session, runtime, now, **filters).to_ical()

"""The preview predicts exactly what the sweep writes; the board and the ICS feed list what it follows.

Hypothesis generates a workflow's deadline rules, reminder policy, check-ins and milestone, a
ledger of issues in every state with deadlines over 2025–2026, a duty and a per-item look-back,
transitions fired at an instant ``t0``, look-backs recorded, the sheet re-imported with changed
deadlines, an admin's extra holiday added to the calendar, and a window of up to a month after it.
Then, on a real SQLite database:

* every row's stored plan is what the core says of it at ``t0`` (no door leaves one behind);

* ``preview(t0, end)`` is taken before anything else happens;
* the sweep runs at every day of the window (23:30 local, after every reminder time), storing duty
  occurrences ahead first, as the daemon's tick does;
* every reminder written must be one the preview predicted and the other way round: subject, kind,
  rule, recipients, instant and occurrence;
* on the last day, the board's overdue lists hold exactly the subjects the sweep reminded as
  overdue that day (when every policy reminds daily while overdue), and the ICS feed holds one
  event for exactly each subject the core follows.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from icalendar import Calendar
from sqlalchemy import select

from engine.accounts.actor import Actor
from engine.calendar import ChineseCalendarData, WorkCalendar
from engine.config import Config
from engine.duties.definitions import load_duty_dirs
from engine.ics.feed import _uid, ics_bytes
from engine.issues.service import EvidenceFile, checkin, transition
from engine.ledger.importer import import_ledger
from engine.reminders.agenda import duty_items, open_deadlines
from engine.reminders.preview import preview
from engine.reminders.replan import replan_if_calendar_changed
from engine.reminders.subjects import issue_query, occurrence_query
from engine.reminders.sweep import Sweeper
from engine.runtime import Runtime
from engine.store import db
from engine.store.models import Issue, Reminder

from .conftest import examples

TZ = ZoneInfo("Asia/Shanghai")
OFFICIAL = ChineseCalendarData(until=2026)
SHIPPED = Path(__file__).resolve().parent.parent / "workflows" / "inspection-rectification.yaml"
STATES = ["identified", "planned", "in_progress", "awaiting_review", "completed", "long_term_sustained"]
WORDS = {"identified": "待整改", "planned": "已制定方案", "in_progress": "整改中", "awaiting_review": "待审核销号",
         "completed": "已完成", "long_term_sustained": "长期坚持"}
TRIGGERS = ["plan", "start", "submit", "approve", "approve_long_term", "return", "sustain", "reopen"]
# two administrators: who submitted an item cannot sign it off, the other one can
ACTORS = {name: Actor(name, "cli", (("admin", ""),)) for name in ("admin", "审核人")}
LEADERS = ["党组书记", "分管副局长", ""]
DEPARTMENTS = ["办公室", "财务室", "科技管理科", "办公室、财务室", ""]
TICK = dt.time(23, 30)
_TEMPLATE: dict[str, Path] = {}


def _template() -> Path:
    """A migrated empty database, made once; each example starts from a copy."""
    if "db" not in _TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="duban-agree-"))
        engine = db.make_engine(f"sqlite:///{folder / 'template.db'}")
        db.upgrade(engine)
        engine.dispose()
        _TEMPLATE["db"] = folder / "template.db"
    return _TEMPLATE["db"]


dates = st.dates(dt.date(2025, 1, 1), dt.date(2026, 12, 31))
likely = st.sampled_from([True, True, True, False])


@st.composite
def policies(draw):
    escalations = []
    after = 0
    for n in range(draw(st.integers(0, 2))):
        after += draw(st.integers(1, 8))
        escalations.append({"name": f"escalate-{n}", "after_working_days": after,
                            "add": [draw(st.sampled_from(["第一责任人", "派驻纪检监察组"]))]})
    return {"at": f"{draw(st.integers(8, 10)):02d}:{draw(st.sampled_from([0, 30])):02d}",
            "before_working_days": draw(st.lists(st.integers(1, 6), max_size=3, unique=True)),
            "on_due": draw(st.booleans()), "overdue": draw(likely), "escalations": escalations}


@st.composite
def deadline_rules(draw):
    rules = {}
    for state in ("identified", "planned", "in_progress", "awaiting_review"):
        if not draw(likely):
            continue
        rule = {"anchor": draw(st.sampled_from(["feedback", "entered", "deadline"])), "title": f"{state}时限"}
        unit = draw(st.sampled_from(["working_days", "days", "months", None]))
        if unit is not None:
            rule[unit] = draw(st.integers(0, {"working_days": 20, "days": 40, "months": 3}[unit]))
        rules[state] = rule
    return rules


@st.composite
def scenarios(draw):
    workflow = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    workflow["deadlines"] = draw(deadline_rules())
    workflow["reminders"] = draw(policies())
    workflow["checkins"] = draw(st.one_of(st.none(), st.fixed_dictionaries({
        "state": st.just("long_term_sustained"), "every_months": st.integers(1, 3),
        "grace_working_days": st.integers(0, 10)})))
    if workflow["checkins"] is None:
        del workflow["checkins"]
    workflow["milestones"] = draw(st.lists(st.fixed_dictionaries({
        "name": st.just("report"), "title": st.just("报送整改情况报告"), "months": st.integers(1, 3),
        "recipients": st.just(["第一责任人"])}), max_size=1))
    t0 = dt.datetime.combine(draw(st.dates(dt.date(2025, 2, 1), dt.date(2026, 11, 30))),
                             dt.time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 15, 45]))), tzinfo=TZ)
    # deadlines mostly around t0 (a window sees reminders), some anywhere in 2025–2026
    near = st.integers(-60, 45).map(lambda n: t0.date() + dt.timedelta(days=n))
    issues = draw(st.lists(st.fixed_dictionaries({
        "state": st.sampled_from(STATES), "deadline": st.one_of(st.none(), near, near, dates),
        "leader": st.sampled_from(LEADERS), "department": st.sampled_from(DEPARTMENTS)}), min_size=1, max_size=10))
    feedback = draw(st.one_of(dates, st.integers(0, 90).map(lambda n: t0.date() - dt.timedelta(days=n))))
    moves = draw(st.lists(st.tuples(st.integers(0, len(issues) - 1), st.sampled_from(TRIGGERS),
                                    st.sampled_from(sorted(ACTORS))), max_size=6))
    duty = {"key": "monthly", "title": "每月工作", "owners": ["办公室"],
            "schedule": {"rrule": "FREQ=MONTHLY;BYMONTHDAY=-1", "dtstart": "2024-01-31"},
            "due": {"working_days": draw(st.integers(0, 10))}, "reminders": draw(policies())}
    lookback = {"key": "look-back", "title": "回头看", "owners": [], "for_each": {"state": "long_term_sustained"},
                "schedule": {"rrule": "FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=-1", "dtstart": "2024-03-31"},
                "due": {"working_days": 10}, "reminders": draw(policies())}
    # then, at t0: look-backs recorded, the sheet re-imported with some deadlines changed, the
    # calendar changed (an admin's extra holiday inside the window)
    checkins = draw(st.lists(st.integers(0, len(issues) - 1), max_size=3))
    reimport = draw(st.one_of(st.none(), st.lists(st.one_of(st.none(), near, dates), min_size=len(issues),
                                                   max_size=len(issues))))
    holiday = draw(st.one_of(st.none(), st.integers(0, 30).map(lambda n: t0.date() + dt.timedelta(days=n))))
    return {"workflow": workflow, "issues": issues, "feedback": feedback, "t0": t0, "moves": moves,
            "duties": [duty, lookback], "days": draw(st.integers(5, 30)), "checkins": checkins,
            "reimport": reimport, "holiday": holiday}


def _ledger_lines(scenario: dict, deadlines: list) -> list[str]:
    lines = ["序号,具体问题,责任领导,责任科室,整改时限,整改状态"]
    for n, (issue, deadline) in enumerate(zip(scenario["issues"], deadlines, strict=True), 1):
        lines.append(f"{n},问题{n},{issue['leader']},\"{issue['department']}\",{deadline or ''},"
                     f"{WORDS[issue['state']]}")
    return lines


def _write_project(folder: Path, scenario: dict) -> Config:
    (folder / "workflows" / "duties").mkdir(parents=True)
    (folder / "workflows" / "inspection-rectification.yaml").write_text(
        yaml.safe_dump(scenario["workflow"], allow_unicode=True), encoding="utf-8")
    (folder / "workflows" / "duties" / "d.yaml").write_text(
        yaml.safe_dump({"duties": scenario["duties"]}, allow_unicode=True), encoding="utf-8")
    lines = _ledger_lines(scenario, [i["deadline"] for i in scenario["issues"]])
    (folder / "ledger.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    shutil.copy(_template(), folder / "duban.db")
    return Config.model_validate({
        "database": {"url": f"sqlite:///{folder / 'duban.db'}"},
        "workflows": {"paths": [str(folder / "workflows")], "admins": ["admin"]},
        "duties": {"paths": [str(folder / "workflows" / "duties")]}})


def _key(row: dict) -> tuple:
    return (row["subject"], str(row["kind"]), row["rule"], tuple(row["recipients"]), row["at"], row["occurrence"])


@settings(max_examples=examples(200), deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(scenario=scenarios())
def test_preview_sweep_board_and_feed_agree(scenario: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = _write_project(folder, scenario)
        runtime = Runtime(config, calendar=WorkCalendar(TZ, official=OFFICIAL))
        engine = db.make_engine(config.database.url)
        sessions = db.session_factory(engine)
        try:
            _check(scenario, folder, runtime, sessions)
        finally:
            engine.dispose()


def _check(scenario: dict, folder: Path, runtime: Runtime, sessions) -> None:
    t0 = scenario["t0"].astimezone(dt.UTC)
    duties = load_duty_dirs(runtime.config.duty_dirs())
    with db.transaction(sessions) as s:
        runtime.registry.sync_all(s, t0)
        runtime.duty_book.sync(s, duties, t0)
        import_ledger(s, runtime, folder / "ledger.csv", now=t0, ledger_name="L", feedback_date=scenario["feedback"],
                      workflow_name="inspection-rectification")
    proof = EvidenceFile("proof.pdf", "0" * 64, 3, b"pdf", None)
    for index, trigger, who in scenario["moves"]:
        try:
            with db.transaction(sessions) as s:
                transition(s, runtime, f"L/{index + 1}", trigger, actor=ACTORS[who], now=t0, note="为何",
                           deadline=t0.date() + dt.timedelta(days=20), evidence=[proof])
        except Exception as exc:  # noqa: BLE001 - a refused step is part of the scenario
            assert type(exc).__name__ in ("Refused",), exc
    for index in scenario["checkins"]:
        try:
            with db.transaction(sessions) as s:
                checkin(s, runtime, f"L/{index + 1}", actor=ACTORS["admin"], now=t0, ok=True, note="回头看")
        except Exception as exc:  # noqa: BLE001 - a look-back of an item that is not long-term is refused
            assert type(exc).__name__ in ("Refused",), exc
    if scenario["reimport"] is not None:
        (folder / "again.csv").write_text("\n".join(_ledger_lines(scenario, scenario["reimport"])) + "\n",
                                          encoding="utf-8")
        with db.transaction(sessions) as s:
            import_ledger(s, runtime, folder / "again.csv", now=t0, ledger_name="L",
                          workflow_name="inspection-rectification")
    if scenario["holiday"] is not None:
        runtime = Runtime(runtime.config, calendar=WorkCalendar(TZ, [scenario["holiday"]], official=OFFICIAL))
        with db.transaction(sessions) as s:
            replan_if_calendar_changed(s, runtime, runtime.calendar, t0)
    # every row's stored plan is what the core says of it now: no door left one behind
    with sessions() as s:
        stored = {i.id: (i.next_remind_at, i.due_on, i.overdue_on) for i in s.scalars(select(Issue))}
        for subject in runtime.subjects.issues(s, issue_query()):
            plan = runtime.core.plan(subject, t0)
            assert stored[subject.id][1:] == (plan.due_on, plan.overdue_on), (subject.ref, stored[subject.id], plan)

    first = runtime.calendar.local_date(t0)
    last = first + dt.timedelta(days=scenario["days"])
    end = runtime.calendar.at_local(last, TICK)
    with sessions() as s:
        predicted = {_key(r) for r in preview(s, runtime, t0, end)}

    sweeper = Sweeper(runtime, sessions)
    day = first
    while day <= last:
        at = runtime.calendar.at_local(day, TICK)
        if at > t0:
            with db.transaction(sessions) as s:
                runtime.duty_book.sync(s, duties, at)
            assert sweeper.sweep(at).errors == []
        day += dt.timedelta(days=1)
    with sessions() as s:
        rows = [{c: getattr(r, c) for c in ("subject", "kind", "rule", "recipients", "at", "occurrence")}
                for r in s.scalars(select(Reminder))]
    written = {_key(r) for r in rows}
    event(f"reminders written: {'none' if not rows else '1-9' if len(rows) < 10 else '10+'}")
    event(f"kinds: {','.join(sorted({str(r['kind']) for r in rows})) or '-'}")
    assert written == predicted, (sorted(written - predicted)[:5], sorted(predicted - written)[:5])

    with sessions() as s:
        core = runtime.core
        issues = [i for i in runtime.subjects.issues(s, issue_query()) if core.track(i) is not None]
        occurrences = [o for o in runtime.subjects.occurrences(s, occurrence_query()) if core.track(o) is not None]
        # the board's overdue lists on the last day, against what the sweep reminded as overdue then
        policies_overdue = all(p["overdue"] for p in [scenario["workflow"]["reminders"],
                                                      *(d["reminders"] for d in scenario["duties"])])
        if policies_overdue and runtime.calendar.is_workday(last):
            board = {i.subject for i in open_deadlines(s, runtime, last, overdue=True)} | {
                (d.key, d.period) for d in duty_items(s, runtime, last, open_only=True, overdue=True)}
            reminded = {r["subject"] if "@" not in r["occurrence"] else (r["subject"], r["occurrence"].split("@")[0])
                        for r in rows if str(r["kind"]) in ("overdue", "escalation")
                        and r["at"].astimezone(TZ).date() == last}
            assert board == reminded
        # one ICS event for each subject the core follows, and nothing else
        feed, _ = ics_bytes(s, runtime, end)
        uids = {str(e["UID"]) for e in Calendar.from_ical(feed).walk("VEVENT")}
        expected = {_uid("issue", i.ledger, i.ref, i.state) for i in issues} | {
            _uid("duty", o.duty_key, o.period) for o in occurrences}
        assert uids == expected

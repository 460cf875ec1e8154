"""Recurring duties: occurrences stored ahead, due dates on the official calendar, done, re-dated."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from engine.ledger.importer import import_ledger
from engine.reminders.sweep import Sweeper
from engine.store import db
from engine.store.models import DutyOccurrence, Reminder

from .conftest import SEED_CSV

UTC = dt.UTC
KEJI = "中共重庆市璧山区科学技术局党组"
AUDIT = "中共重庆市璧山区审计局党组"
QUARTERLY = f"{KEJI}/quarterly-supervision-report"  # the shipped duty is the 科技局's own
MONTHLY = f"{KEJI}/monthly-accounts-clearing"


def keji(cli, at: str) -> None:
    """The 科技局 joins the installation (an account of its own), and the duties are stored at ``at``:
    the shipped duties bound to it exist once the installation has the unit."""
    assert cli("user", "add", f"{KEJI}/办公室", "--unit", KEJI, "--role", "department:办公室").code == 0
    assert cli("duty", "list", "--at", at).code == 0


def quarterly(cli, *args):
    rows = cli("duty", "list", *args, "--json").json
    return [(r["period"], r["due"], r["state"]) for r in rows if r["duty"] == QUARTERLY]


def shanghai_calendar():
    from zoneinfo import ZoneInfo

    from engine.calendar import WorkCalendar

    return WorkCalendar(ZoneInfo("Asia/Shanghai"))


def test_a_year_of_the_quarterly_report(cli):
    assert cli("init", "--at", "2025-12-31T10:00").code == 0
    keji(cli, "2025-12-31T10:00")
    got = quarterly(cli, "--from", "2026-03-01", "--until", "2027-01-31", "--at", "2026-02-01")
    # 10 working days after each quarter's end on the official 2026 schedule (Qingming, Dragon
    # Boat, National Day); Q4 runs into 2027, whose schedule depends on the installed data
    q4 = shanghai_calendar().add_workdays(dt.date(2026, 12, 31), 10).isoformat()
    assert got == [("2026-Q1", "2026-04-15", "open"), ("2026-Q2", "2026-07-14", "open"),
                   ("2026-Q3", "2026-10-20", "open"), ("2026-Q4", q4, "open")]
    overdue = quarterly(cli, "--from", "2026-03-01", "--until", "2026-12-31", "--at", "2026-11-25")
    assert overdue == [("2026-Q1", "2026-04-15", "overdue"), ("2026-Q2", "2026-07-14", "overdue"),
                       ("2026-Q3", "2026-10-20", "overdue")]


def test_done_stops_reminders_and_is_not_done_twice(cli, tmp_path):
    cli("init", "--at", "2026-09-01T08:00")
    keji(cli, "2026-09-01T08:00")
    assert cli("user", "add", "财务室", "--role", "department:财务室").code == 0
    preview = cli("remind", "preview", "--at", "2026-09-01T08:00", "--until", "2026-10-31", "--json").json
    q3 = [(r["at"][:10], r["kind"], r["rule"]) for r in preview if r["subject"] == QUARTERLY]
    assert q3 == [("2026-10-13", "duty", "before-5"), ("2026-10-19", "duty", "before-1"),
                  ("2026-10-20", "duty", "duty"), ("2026-10-21", "overdue", "overdue"),
                  ("2026-10-22", "overdue", "overdue"), ("2026-10-23", "overdue", "overdue"),
                  ("2026-10-26", "overdue", "overdue"), ("2026-10-27", "overdue", "overdue"),
                  ("2026-10-28", "overdue", "overdue"), ("2026-10-29", "overdue", "overdue"),
                  ("2026-10-30", "overdue", "overdue")]
    cli("sweep", "--at", "2026-10-13T09:05")
    assert cli("user", "add", "办公室", "--role", "department:办公室").code == 0
    report = tmp_path / "三季度明细.xlsx"
    report.write_bytes(b"PK")
    assert cli("duty", "done", "quarterly-supervision-report", "--period", "2026-Q3", "--by", "办公室",
               "--evidence", report, "--at", "2026-10-14T10:00").code == 0
    again = cli("duty", "done", "quarterly-supervision-report", "--period", "2026-Q3", "--by", "办公室")
    assert again.code == 1 and "already done by 办公室" in again.err
    cli("sweep", "--at", "2026-10-21T09:05")
    written = [r for r in cli("remind", "list", "--json").json if r["subject"] == QUARTERLY]
    assert [(r["rule"], r["occurrence"]) for r in written] == [("before-5", "2026-Q3@2026-10-13")]
    missing = cli("duty", "done", "quarterly-supervision-report", "--period", "2031-Q9", "--by", "办公室")
    assert missing.code == 2 and "has no period '2031-Q9'" in missing.err


def test_editing_a_schedule_regenerates_only_untouched_future_occurrences(project, cli):
    cli("init", "--at", "2026-09-01T08:00")
    keji(cli, "2026-09-01T08:00")
    assert cli("user", "add", "财务室", "--role", "department:财务室").code == 0
    assert cli("duty", "set-due", "monthly-accounts-clearing", "--period", "2026-11", "--due", "2026-12-04", "--by", "admin",
               "--at", "2026-09-01T09:00").code == 0
    assert cli("duty", "done", "monthly-accounts-clearing", "--period", "2026-10", "--by", "财务室",
               "--at", "2026-09-02T09:00").code == 0
    duties = project / "workflows" / "duties" / "party-duties.yaml"
    text = duties.read_text(encoding="utf-8")
    duties.write_text(text.replace("""      dtstart: 2022-01-31
      period: month
    due: {working_days: 0}
    reminders: {before_working_days: [3]}

  - key: central-group-study""", """      dtstart: 2022-01-31
      period: month
    due: {working_days: 5}
    reminders: {before_working_days: [3]}

  - key: central-group-study"""), encoding="utf-8")
    rows = {r["period"]: (r["due"], r["state"]) for r in cli("duty", "list", "--from", "2026-09-01", "--until",
                                                             "2027-02-28", "--at", "2026-09-10", "--json").json
            if r["duty"] == MONTHLY}
    assert rows["2026-10"] == ("2026-11-02", "done")  # touched: kept
    assert rows["2026-11"] == ("2026-12-04", "open")  # re-dated by hand: kept
    # regenerated: 5 working days after 12-31 (on whatever 2027 schedule is installed)
    assert rows["2026-12"] == (shanghai_calendar().add_workdays(dt.date(2026, 12, 31), 5).isoformat(), "open")
    assert rows["2026-09"] == ("2026-10-13", "open")  # anchor 09-30 is in the future: regenerated


def test_bad_duty_yaml_is_located(project, cli):
    duties = project / "workflows" / "duties" / "party-duties.yaml"
    duties.write_text(duties.read_text(encoding="utf-8").replace("FREQ=MONTHLY;BYMONTHDAY=-1", "FREQ=SOMETIMES", 1),
                      encoding="utf-8")
    result = cli("init")
    assert result.code == 2
    assert f"{duties}:37:7: invalid RRULE 'FREQ=SOMETIMES'" in result.err


def test_milestone_follows_the_feedback_date(cli):
    cli("init", "--at", "2026-09-01T08:00")
    assert cli("user", "add", "财务室", "--role", "department:财务室").code == 0
    cli("ledger", "import", SEED_CSV, "--feedback-date", "2026-08-20", "--at", "2026-09-01T08:00")
    rows = [r for r in cli("duty", "list", "--at", "2026-09-01", "--json").json if r["period"] == "once"]
    assert rows == [{"duty": "bishan-keji-2022:rectification-report", "title": "报送整改情况报告",
                     "period": "once", "due": "2026-10-20", "state": "open"}]
    cli("ledger", "import", SEED_CSV, "--feedback-date", "2026-09-01", "--at", "2026-09-02T08:00")
    rows = [r for r in cli("duty", "list", "--at", "2026-09-02", "--json").json if r["period"] == "once"]
    assert rows[0]["due"] == "2026-11-02"  # 2026-11-01 is a Sunday: the next working day


def test_look_back_for_each_long_term_item(cli):
    cli("init", "--at", "2026-09-01T08:00")
    assert cli("user", "add", "财务室", "--role", "department:财务室").code == 0
    cli("ledger", "import", SEED_CSV, "--at", "2026-09-01T08:00")
    rows = [r for r in cli("duty", "list", "--from", "2026-12-01", "--until", "2027-01-31", "--at", "2026-09-02",
                           "--json").json if r["duty"] == "long-term-look-back"]
    assert len(rows) == 9 and {r["period"] for r in rows} >= {"2026-H2 bishan-keji-2022/1", "2026-H2 bishan-keji-2022/26"}


def test_sweep_twice_and_after_a_crash_on_this_backend(store, tmp_path):
    _, sessions, runtime = store
    start = dt.datetime(2026, 9, 1, 0, 0, tzinfo=UTC)
    with db.transaction(sessions) as s:
        runtime.registry.sync_all(s, start)
        runtime.duty_book.sync(s, runtime.duty_definitions(), start)
        csv = tmp_path / "l.csv"
        csv.write_text(SEED_CSV.read_text(encoding="utf-8").replace("已完成", "整改中").replace("2022-", "2026-"),
                       encoding="utf-8")
        import_ledger(s, runtime, csv, now=start, workflow_name="inspection-rectification")
        runtime.duty_book.sync(s, runtime.duty_definitions(), start)  # the ledger's unit has its duties now

    class Crash(Exception):
        pass

    class CrashingSweeper(Sweeper):
        def _write(self, session, rows):  # the process dies after writing, before committing
            super()._write(session, rows)
            raise Crash

    at = dt.datetime(2026, 10, 9, 1, 30, tzinfo=UTC)
    with pytest.raises(Crash):
        CrashingSweeper(runtime, sessions).sweep(at)
    with db.transaction(sessions) as s:
        assert s.scalar(select(func.count()).select_from(Reminder)) == 0
    first = Sweeper(runtime, sessions).sweep(at)
    second = Sweeper(runtime, sessions).sweep(at)
    assert first.written > 17 and second.written == 0
    with db.transaction(sessions) as s:
        assert s.scalar(select(func.count()).select_from(Reminder)) == first.written
        keys = s.scalars(select(Reminder.dedupe_key)).all()
        assert len(keys) == len(set(keys))
        assert s.scalar(select(func.count()).select_from(DutyOccurrence)) > 0


def test_past_periods_since_the_duty_began_can_be_recorded_late_and_never_remind(cli):
    # the shipped quarterly report has `since: 2026-01-01`: this year's quarters exist from the start
    assert cli("init", "--at", "2026-12-01T10:00").code == 0
    keji(cli, "2026-12-01T10:00")
    assert cli("user", "add", "办公室", "--role", "department:办公室").code == 0
    listed = cli("duty", "list", "--from", "2026-01-01", "--until", "2027-01-31", "--json",
                 "--at", "2026-12-01T10:00").json
    quarters = [(r["period"], r["due"], r["state"]) for r in listed if r["duty"] == QUARTERLY]
    assert quarters == [("2026-Q1", "2026-04-15", "unrecorded"), ("2026-Q2", "2026-07-14", "unrecorded"),
                        ("2026-Q3", "2026-10-20", "unrecorded"), ("2026-Q4", "2027-01-15", "open")]
    late = cli("duty", "done", "quarterly-supervision-report", "--period", "2026-Q3", "--on", "2026-10-14",
               "--by", "办公室", "--at", "2026-12-01T10:30")
    assert late.code == 0, late.err
    future = cli("duty", "done", "quarterly-supervision-report", "--period", "2026-Q2", "--on", "2026-12-09",
                 "--by", "办公室", "--at", "2026-12-01T10:30")
    assert future.code == 2 and "in the future" in future.err
    assert cli("sweep", "--at", "2026-12-02T09:30").code == 0
    preview = cli("remind", "preview", "--at", "2026-12-02T09:30", "--until", "2027-01-15T23:00", "--json").json
    reminded = {r["key"] for r in [*cli("remind", "list", "--json").json, *preview]
                if r["subject"] == QUARTERLY}
    assert reminded and all("|2026-Q4@" in key for key in reminded)  # the past quarters are history: quiet
    states = {r["period"]: r["state"] for r in cli("duty", "list", "--from", "2026-01-01", "--until", "2026-12-31",
                                                   "--json", "--at", "2026-12-02T10:00").json
              if r["duty"] == QUARTERLY}
    assert states["2026-Q3"] == "done" and states["2026-Q2"] == "unrecorded"


# -- duties per unit --------------------------------------------------------------------------

AUDIT_CSV = SEED_CSV.parent / "2026-区审计局.csv"
MONTHLY_SCHEDULE = """    schedule: {rrule: "FREQ=MONTHLY;BYMONTHDAY=-1", dtstart: 2026-01-31, period: month}
    due: {working_days: 0}
    reminders: {before_working_days: [3]}
"""


def test_the_units_a_duty_binds_are_checked_at_their_line_and_column(tmp_path):
    from engine.duties.definitions import load_duties_text
    from engine.errors import WorkflowError

    text = f"""duties:
  - key: none-listed
    title: 无单位
    owners: [办公室]
    units: []
{MONTHLY_SCHEDULE}  - key: twice-and-district
    title: 重复
    owners: [办公室]
    units: [{AUDIT}, " ", {AUDIT}]
    district: true
{MONTHLY_SCHEDULE}  - key: not-district
    title: 非全区
    owners: [办公室]
    district: false
{MONTHLY_SCHEDULE}  - key: each-item
    title: 逐项
    for_each: {{state: long_term_sustained}}
    units: [{AUDIT}]
{MONTHLY_SCHEDULE}"""
    with pytest.raises(WorkflowError) as caught:
        load_duties_text(text, "d.yaml")
    assert caught.value.details == [
        "d.yaml:5:12: units: name at least one unit, or leave units out (district: true) for the whole installation",
        "d.yaml:13:15: district: true and units: say one: the whole installation, or the units listed",
        "d.yaml:12:28: units: ' ' is not a unit name (blank, or spaces around it)",
        f"d.yaml:12:33: units: '{AUDIT}' is listed twice",
        "d.yaml:20:15: district: false needs units: [the units it binds]",
        "d.yaml:27:12: units: a duty done for each issue (for_each) follows its issues' units; leave units out",
    ]
    # bound and district duties as the shipped file writes them load, one row per unit
    shipped = load_duties_text((SEED_CSV.parent.parent / "workflows" / "duties" / "party-duties.yaml")
                               .read_text(encoding="utf-8"), "party-duties.yaml")
    study = next(d.definition for d in shipped if d.definition.key == "central-group-study")
    assert [key for key, _ in study.rows()] == [f"{KEJI}/central-group-study", f"{AUDIT}/central-group-study"]
    look_back = next(d.definition for d in shipped if d.definition.key == "long-term-look-back")
    assert look_back.rows() == [("long-term-look-back", look_back)]


@pytest.fixture
def two_units(project, cli, tmp_path):
    """The 科技局 and the 审计局 in one installation; a duty of the 审计局's own and one of the
    installation's, both owned by 办公室; each unit's 办公室 has its own address (a file channel)."""
    folder = project / "workflows" / "duties"
    (folder / "party-duties.yaml").unlink()
    (folder / "units.yaml").write_text(f"""duties:
  - key: audit-study
    title: 审计局业务学习
    owners: [办公室]
    units: [{AUDIT}]
{MONTHLY_SCHEDULE}  - key: district-study
    title: 全区集中学习
    owners: [办公室]
{MONTHLY_SCHEDULE}""", encoding="utf-8")
    sent = tmp_path / "sent.jsonl"
    config = project / "config.toml"
    config.write_text(config.read_text(encoding="utf-8") + f"""
[notifications]
jitter_seconds = 0
[channels.out]
kind = "file"
path = "{sent}"
[recipients."{KEJI}/办公室"]
out = "kj"
[recipients."{AUDIT}/办公室"]
out = "sj"
""", encoding="utf-8")
    assert cli("init", "--at", "2026-10-09T10:00").code == 0
    for path, feedback in ((SEED_CSV, "2022-07-15"), (AUDIT_CSV, "2026-09-15")):
        result = cli("ledger", "import", path, "--feedback-date", feedback, "--at", "2026-10-09T10:00")
        assert result.code == 0, result.err
    assert cli("duty", "list", "--at", "2026-10-09T10:00").code == 0  # the units are here: their duties start
    return cli, sent


def test_a_units_duty_reminds_only_that_units_accounts(two_units):
    import json

    cli, sent = two_units
    assert cli("sweep", "--at", "2026-10-28T09:30").code == 0  # 3 working days before 11-02 (10-31 a Saturday)
    rows = {r["subject"]: r for r in cli("remind", "list", "--json").json if "study" in r["subject"]}
    assert set(rows) == {f"{AUDIT}/audit-study", "district-study"}
    assert rows[f"{AUDIT}/audit-study"]["recipients"] == ["办公室"]
    told = {}
    for line in sent.read_text(encoding="utf-8").splitlines():
        message = json.loads(line)
        told.setdefault(message["address"], []).append(message["text"])
    audit, keji = "\n".join(told["sj"]), "\n".join(told["kj"])
    assert "审计局业务学习" in audit and "全区集中学习" in audit
    assert "全区集中学习" in keji and "审计局业务学习" not in keji  # another unit's duty is not its business
    # the bare key is the actor's unit's own; another unit's 办公室 may not record it
    refused = cli("duty", "done", "audit-study", "--period", "2026-10", "--by", f"{KEJI}/办公室", "--at", "2026-10-28T10:00")
    assert refused.code == 1 and "Traceback" not in refused.err
    done = cli("duty", "done", "audit-study", "--period", "2026-10", "--by", f"{AUDIT}/办公室", "--at", "2026-10-28T10:00")
    assert done.code == 0, done.err


def test_a_units_duty_is_in_its_own_report_appendix_only(two_units):
    cli, _ = two_units
    audit = cli("report", "--ledger", "2026-区审计局", "--at", "2026-10-28T10:00")
    keji = cli("report", "--ledger", "bishan-keji-2022", "--at", "2026-10-28T10:00")
    assert audit.code == 0 and keji.code == 0, (audit.err, keji.err)
    assert "附件" in audit.out and "审计局业务学习" in audit.out and "全区集中学习" in audit.out
    assert "全区集中学习" in keji.out and "审计局业务学习" not in keji.out


def test_status_says_one_sentence_per_unit(two_units):
    cli, _ = two_units
    text = cli("status").out
    assert f"{KEJI}：4个方面共26个具体问题，已完成17个，长期坚持9个。" in text
    assert f"{AUDIT}：4个方面共8个具体问题" in text
    assert "8个方面" not in text and "34个具体问题" not in text  # never two units added into one sentence
    status = cli("status", "--json").json
    assert [(u["unit"], u["issues"], u["areas"]) for u in status["units"]] == [(KEJI, 26, 4), (AUDIT, 8, 4)]
    assert status["issues"] == 34  # the totals stay what they were
    one = cli("status", "--ledger", "2026-区审计局").out
    assert "台账 2026-区审计局：4个方面共8个具体问题" in one


def test_a_units_duty_waits_for_the_unit(cli):
    """A unit the installation does not have gets no occurrences (its reminders would reach nobody
    of it); the unit's first ledger starts its duties."""
    started = cli("init", "--at", "2026-10-09T10:00")
    assert started.code == 0 and f"not here yet (they start with the unit's first ledger or account): {AUDIT}, {KEJI}" \
        in started.out
    assert {r["duty"] for r in cli("duty", "list", "--at", "2026-10-09T10:00", "--json").json} <= {"long-term-look-back"}
    assert cli("ledger", "import", AUDIT_CSV, "--at", "2026-10-09T10:00").code == 0
    duties = {r["duty"] for r in cli("duty", "list", "--at", "2026-10-09T10:00", "--json").json}
    assert f"{AUDIT}/central-group-study" in duties and not [d for d in duties if d.startswith(KEJI)]


def test_the_api_lists_a_units_duty_to_its_own_accounts_only(two_units, project):
    import httpx

    from engine.app.http.app import create_app

    from .conftest import serving, site_for

    cli, _ = two_units

    tokens = {unit: cli("user", "token", f"{unit}/办公室", "--at", "2026-10-28T10:00").out.strip()
              for unit in (KEJI, AUDIT)}
    with serving(create_app(site_for(project / "config.toml", at="2026-10-28T10:00"))) as base:
        seen = {unit: {d["key"] for d in httpx.get(f"{base}/api/v1/duties", headers={
            "Authorization": f"Bearer {token}"}, timeout=30).json()} for unit, token in tokens.items()}
    assert f"{AUDIT}/audit-study" in seen[AUDIT] and "district-study" in seen[AUDIT]
    assert "district-study" in seen[KEJI] and f"{AUDIT}/audit-study" not in seen[KEJI]


def test_a_units_duties_are_chosen_before_the_page_is_cut(two_units, project):
    """/api/v1/duties' list: another unit's duties coming first never push an account's own off
    the page — for every page size, the page is the head of what the policy lets it see."""
    from engine.accounts.policy import DutyAction, may_duty
    from engine.accounts.users import actor_for
    from engine.app.cli.context import App
    from engine.duties.book import duty_subject
    from engine.issues.worklists import my_duties
    from engine.reminders.agenda import duty_items

    app = App(str(project / "config.toml"))
    today = app.runtime.calendar.local_date(app.now("2026-10-28T10:00"))
    with app.reading() as session:
        every = duty_items(session, app.runtime, today, end=today + dt.timedelta(days=90), open_only=True)
        for unit in (KEJI, AUDIT):
            actor = actor_for(session, f"{unit}/办公室", "web")
            visible = [d.occurrence_id for d in every if may_duty(actor, DutyAction.VIEW, duty_subject(
                session, session.get(DutyOccurrence, d.occurrence_id)))]
            others = [d.occurrence_id for d in every if d.occurrence_id not in visible]
            assert visible and others, unit  # both kinds, or the test shows nothing
            for limit in (1, 2, 3, len(visible) + 1):
                page = [d.occurrence_id for d in my_duties(session, app.runtime, actor, today, 90, limit)]
                assert page == visible[:limit], (unit, limit)

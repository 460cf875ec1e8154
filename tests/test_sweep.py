"""Deadlines, reminders and the sweep, from the CLI and the API, on real dates.

The ledger here is written for these tests around the 2026 National Day holiday
(10-01..07 off, Saturday 10-10 a make-up working day), not the shipped example.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil

import chinese_calendar
import pytest
from freezegun import freeze_time

from .conftest import add_reviewer

HEADERS = "序号,方面,问题类别,具体问题,整改措施,责任领导,责任科室,整改时限,整改状态"
ROWS = [
    "1,作风建设方面,1．服务意识不强,窗口服务不规范,制定服务规范,局长,办公室,2026-10-13,整改中",
    "2,作风建设方面,1．服务意识不强,办事流程繁琐,精简流程,副局长,审批科,2026-11-30,已制定方案",
    "3,财务管理方面,2．财务制度执行不严,报销审核不严,三级审核,副局长,财务科,,待整改",
    "4,财务管理方面,2．财务制度执行不严,资产台账不全,盘点资产,副局长,财务科,2026-08-31,已完成",
]


@pytest.fixture
def town(project, cli, tmp_path):
    """A county bureau's ledger (feedback 2026-09-15), imported at 2026-09-29 10:00, no duties."""
    shutil.rmtree(project / "workflows" / "duties")
    path = tmp_path / "县市场监管局-2026.csv"
    path.write_text("\n".join([HEADERS, *ROWS]) + "\n", encoding="utf-8")
    assert cli("init", "--at", "2026-09-29T10:00").code == 0
    assert cli("ledger", "import", path, "--feedback-date", "2026-09-15", "--at", "2026-09-29T10:00").code == 0
    # the ledger-level report milestone is not what these tests are about
    assert cli("duty", "done", "县市场监管局-2026:rectification-report", "--period", "once", "--by", "办公室",
               "--at", "2026-09-29T10:00").code == 0
    return cli


def of(rows: list[dict], subject: str) -> list[tuple[str, str, str]]:
    return [(r["at"][:10], r["kind"], r["rule"]) for r in rows if r["subject"] == subject]


def test_timeline_around_national_day(town):
    rows = town("remind", "preview", "--at", "2026-09-29T10:00", "--until", "2026-10-31T23:00", "--json").json
    assert of(rows, "县市场监管局-2026/1") == [
        ("2026-09-30", "before", "before-5"), ("2026-10-09", "before", "before-3"),
        ("2026-10-12", "before", "before-1"), ("2026-10-13", "due", "due"),
        ("2026-10-14", "overdue", "overdue"), ("2026-10-15", "overdue", "overdue"),
        *[(d, "escalation", "escalate-first-responsible") for d in
          ("2026-10-16", "2026-10-19", "2026-10-20", "2026-10-21", "2026-10-22", "2026-10-23", "2026-10-26")],
        *[(d, "escalation", "escalate-supervising-group") for d in
          ("2026-10-27", "2026-10-28", "2026-10-29", "2026-10-30")],
    ]
    for row in rows:  # never on a holiday, never on a weekend that is not a make-up day
        assert chinese_calendar.is_workday(dt.date.fromisoformat(row["at"][:10])), row
        assert row["at"].endswith("T09:00:00+08:00")
    first = next(r for r in rows if r["subject"] == "县市场监管局-2026/1")
    assert first["recipients"] == ["局长", "办公室"]
    last = [r for r in rows if r["subject"] == "县市场监管局-2026/1"][-1]
    assert last["recipients"] == ["局长", "办公室", "第一责任人", "派驻纪检监察组"]
    assert last["days_overdue"] == 13
    # the plan of issue 3 is due 15 working days after feedback (2026-09-15): 2026-10-12; its
    # before-5 fell on 09-29 09:00, before the import, so it is not in this window
    assert of(rows, "县市场监管局-2026/3")[:3] == [
        ("2026-10-08", "before", "before-3"), ("2026-10-10", "before", "before-1"), ("2026-10-12", "due", "due")]
    assert of(rows, "县市场监管局-2026/4") == []  # completed: nothing to follow


def test_sweep_writes_each_reminder_once(town):
    first = town("sweep", "--at", "2026-09-30T09:00")
    assert first.code == 0 and "1 reminder(s) written" in first.out
    assert "0 reminder(s) written" in town("sweep", "--at", "2026-09-30T09:00").out
    assert "0 reminder(s) written" in town("sweep", "--at", "2026-09-30T17:00").out
    assert "1 reminder(s) written" in town("sweep", "--at", "2026-10-08T09:00").out
    written = town("remind", "list", "--json").json
    assert [(r["subject"], r["rule"], r["at"]) for r in written] == [
        ("县市场监管局-2026/1", "before-5", "2026-09-30T09:00:00+08:00"),
        ("县市场监管局-2026/3", "before-3", "2026-10-08T09:00:00+08:00")]
    assert written[0]["key"] == "县市场监管局-2026/1|before-5|2026-09-30"


def test_catch_up_after_downtime_sends_one_per_subject(town):
    assert town("sweep", "--at", "2026-09-30T09:01").code == 0
    # down from 2026-09-30 to 2026-10-20 10:00: one reminder each, the most advanced one
    town("sweep", "--at", "2026-10-20T10:00")
    written = [r for r in town("remind", "list", "--json").json if r["at"] > "2026-10-01"]
    assert sorted((r["subject"], r["kind"], r["rule"], r["at"][:10]) for r in written) == [
        ("县市场监管局-2026/1", "escalation", "escalate-first-responsible", "2026-10-20"),
        ("县市场监管局-2026/3", "escalation", "escalate-first-responsible", "2026-10-20")]
    assert "0 reminder(s) written" in town("sweep", "--at", "2026-10-20T11:00").out
    assert "2 reminder(s) written" in town("sweep", "--at", "2026-10-21T09:00").out


def test_before_reminder_whose_deadline_passed_is_dropped(town):
    # never swept since import (09-29); first sweep on the due day itself: 'due', not 'before-1'
    town("sweep", "--at", "2026-10-13T09:30")
    rows = of(town("remind", "list", "--json").json, "县市场监管局-2026/1")
    assert rows == [("2026-10-13", "due", "due")]


def test_leaving_a_state_stops_its_reminders(town, tmp_path):
    town("sweep", "--at", "2026-10-09T09:00")
    proof = tmp_path / "整改报告.docx"
    proof.write_bytes(b"report")
    assert town("issue", "transition", "县市场监管局-2026/1", "submit", "--by", "办公室", "--evidence", proof,
                "--at", "2026-10-09T15:00").code == 0
    add_reviewer(town, "巡察办")
    assert town("issue", "transition", "县市场监管局-2026/1", "approve", "--by", "巡察办",
                "--at", "2026-10-09T15:30").code == 0
    town("sweep", "--at", "2026-10-30T09:00")
    rows = of(town("remind", "list", "--json").json, "县市场监管局-2026/1")
    assert rows == [("2026-10-09", "before", "before-3")]
    preview = town("remind", "preview", "--at", "2026-10-09T15:30", "--until", "2027-06-30", "--json").json
    assert of(preview, "县市场监管局-2026/1") == []


def test_planning_moves_to_the_issues_own_deadline(town):
    assert town("issue", "transition", "县市场监管局-2026/3", "plan", "--by", "副局长", "--deadline", "2026-12-31",
                "--at", "2026-10-09T16:00").code == 0
    rows = town("remind", "preview", "--at", "2026-10-09T16:00", "--until", "2027-01-01", "--json").json
    assert of(rows, "县市场监管局-2026/3") == [
        ("2026-12-24", "before", "before-5"), ("2026-12-28", "before", "before-3"),
        ("2026-12-30", "before", "before-1"), ("2026-12-31", "due", "due")]


def test_long_term_check_ins(town, tmp_path):
    cli = town
    proof = tmp_path / "整改材料.pdf"
    proof.write_bytes(b"x")
    assert cli("issue", "transition", "县市场监管局-2026/2", "start", "--by", "审批科", "--at", "2026-09-29T11:00").code == 0
    assert cli("issue", "transition", "县市场监管局-2026/2", "submit", "--by", "审批科", "--evidence", proof,
               "--at", "2026-09-29T11:00").code == 0
    add_reviewer(cli, "巡察办")
    assert cli("issue", "transition", "县市场监管局-2026/2", "approve_long_term", "--by", "巡察办",
               "--at", "2026-09-29T11:00").code == 0
    rows = cli("remind", "preview", "--at", "2026-09-29T11:00", "--until", "2027-01-31", "--json").json
    got = of(rows, "县市场监管局-2026/2")
    # next check-in three months on (2026-12-29), then overdue after a 10-working-day grace
    assert got[:4] == [("2026-12-22", "checkin", "before-5"), ("2026-12-24", "checkin", "before-3"),
                       ("2026-12-28", "checkin", "before-1"), ("2026-12-29", "checkin", "checkin")]
    assert got[4][1:] == ("overdue", "overdue")
    assert cli("issue", "checkin", "县市场监管局-2026/2", "--by", "副局长", "--at", "2026-12-20T10:00").code == 0
    rows = cli("remind", "preview", "--at", "2026-12-20T10:00", "--until", "2027-03-31", "--json").json
    assert ("2027-03-22", "checkin", "checkin") in of(rows, "县市场监管局-2026/2")
    refused = cli("issue", "checkin", "县市场监管局-2026/2", "--by", "副局长", "--failed", "--at", "2026-12-21T10:00")
    assert refused.code == 2 and "needs --note" in refused.err
    assert cli("issue", "checkin", "县市场监管局-2026/2", "--by", "副局长", "--failed", "--note", "流程又变复杂",
               "--at", "2026-12-21T10:00").code == 0
    shown = cli("issue", "show", "县市场监管局-2026/2", "--json").json
    assert shown["state"] == "in_progress"
    assert shown["history"][-1]["note"] == "回头看未通过：流程又变复杂"
    assert cli("issue", "checkin", "县市场监管局-2026/1", "--by", "admin", "--at", "2026-12-21T10:00").code == 1


def test_dates_past_the_calendar_data(town, project, caplog):
    # 2030 is beyond any chinese-calendar release for years to come: the fallback is what runs
    assert town("issue", "transition", "县市场监管局-2026/3", "plan", "--by", "副局长", "--deadline", "2030-03-18",
                "--at", "2026-10-09T16:00").code == 0
    result = town("remind", "preview", "--at", "2030-03-01", "--until", "2030-03-19", "--json")
    assert result.code == 0 and "Traceback" not in result.err
    assert "2030: the State Council's holiday schedule is not known yet" in caplog.text
    caplog.clear()
    assert of(result.json, "县市场监管局-2026/3")[-2:] == [("2030-03-15", "before", "before-1"),
                                                           ("2030-03-18", "due", "due")]
    config = project / "config.toml"
    config.write_text(config.read_text(encoding="utf-8")
                      + '[calendar]\nextra_holidays = ["2030-03-15"]\nextra_workdays = ["2030-03-16"]\n',
                      encoding="utf-8")
    result = town("remind", "preview", "--at", "2030-03-01", "--until", "2030-03-19", "--json")
    assert "2030: the State Council" not in caplog.text
    assert of(result.json, "县市场监管局-2026/3")[-2:] == [("2030-03-16", "before", "before-1"),
                                                           ("2030-03-18", "due", "due")]


def test_december_reminder_to_enter_next_years_schedule(town, project, tmp_path):
    # 2030's schedule is in no release: from December 2029 the administrators are reminded, each
    # working day, with the working days left, until someone confirms the year entered
    sent = tmp_path / "sent.jsonl"
    config = project / "config.toml"
    config.write_text(config.read_text(encoding="utf-8") + f"""
[notifications]
jitter_seconds = 0
[channels.out]
kind = "file"
path = {json.dumps(str(sent))}
[recipients."admin"]
out = "admin"
""", encoding="utf-8")

    def notes() -> list[tuple[str, str]]:
        return [(n["at"][:10], n["rule"]) for n in town("remind", "list", "--json").json
                if n["subject"] == "calendar:2030"]

    town("sweep", "--at", "2029-11-30T09:30")
    assert notes() == []
    town("sweep", "--at", "2029-12-03T09:30")  # 12-01 is a Saturday: the first working day of December
    town("sweep", "--at", "2029-12-03T10:30")
    [note] = [r for r in town("remind", "list", "--json").json if r["subject"] == "calendar:2030"]
    assert (note["at"], note["recipients"], note["kind"], note["due"]) == (
        "2029-12-03T09:00:00+08:00", ["admin"], "duty", "2029-12-31")
    [message] = [json.loads(line) for line in sent.read_text(encoding="utf-8").splitlines()]
    assert message["recipient"] == "admin"
    # 12-04 … 12-31: twenty working days left, not "今日到期"
    assert "截止日期2029年12月31日，还有20个工作日到期" in message["text"], message["text"]
    assert "duban calendar confirm 2030" in message["text"] and "今日到期" not in message["text"]
    # one date of 2030 entered is not its schedule: the reminder goes on
    config.write_text(config.read_text(encoding="utf-8") + '[calendar]\nextra_holidays = ["2030-01-01"]\n',
                      encoding="utf-8")
    town("sweep", "--at", "2029-12-04T09:30")
    assert notes() == [("2029-12-03", "before-20"), ("2029-12-04", "before-19")]
    # on the last working day it is due today
    last = town("remind", "preview", "--at", "2029-12-30T10:00", "--until", "2029-12-31T23:00", "--json").json
    assert [(r["at"][:10], r["rule"]) for r in last if r["subject"] == "calendar:2030"] == [
        ("2029-12-31", "official-schedule")]
    confirmed = town("calendar", "confirm", "2030", "--by", "admin", "--at", "2029-12-04T15:00")
    assert confirmed.code == 0 and "confirmed" in confirmed.out
    town("sweep", "--at", "2029-12-05T09:30")
    assert notes() == [("2029-12-03", "before-20"), ("2029-12-04", "before-19")]
    ahead = town("remind", "preview", "--at", "2029-12-05T10:00", "--until", "2029-12-31T23:00", "--json").json
    assert [r for r in ahead if r["subject"] == "calendar:2030"] == []
    # withdrawn (confirmed by mistake): the next sweep reminds again
    assert town("calendar", "confirm", "2030", "--withdraw").code == 0
    town("sweep", "--at", "2029-12-06T09:30")
    assert notes()[-1] == ("2029-12-06", "before-17")


def test_sweep_without_at_uses_the_frozen_clock(town):
    with freeze_time("2026-10-12T01:30:00Z"):  # 09:30 in Shanghai
        assert town("sweep").code == 0
    rules = of(town("remind", "list", "--json").json, "县市场监管局-2026/1")
    assert rules == [("2026-10-12", "before", "before-1")]

"""Adopting a ledger mid-way (issue #10): no reminder for windows before the import, escalations
count only the overdue working days duban has seen, milestones can be recorded as met."""

from __future__ import annotations

import shutil

from .conftest import SEED_CSV

HEADERS = "序号,方面,问题类别,具体问题,整改措施,责任领导,责任科室,整改时限,整改状态"
ROWS = [  # deadlines that passed last month
    "1,党的建设,组织建设,支部“三会一课”记录不全,补齐记录,张副局长,机关党支部,2026-10-30,整改中",
    "2,业务工作,资金管理,科技项目资金拨付滞后,建立台账,王局长,财务室,2026-10-20,整改中",
]


def adopted(project, cli, tmp_path, *extra: str):
    shutil.rmtree(project / "workflows" / "duties")
    path = tmp_path / "区科技局-2026.csv"
    path.write_text("\n".join([HEADERS, *ROWS]) + "\n", encoding="utf-8")
    assert cli("init", "--at", "2026-11-30T10:00").code == 0
    result = cli("ledger", "import", path, "--feedback-date", "2026-08-20", "--at", "2026-11-30T10:00", *extra)
    assert result.code == 0, result.err
    return cli


def test_adopting_an_overdue_ledger_sends_one_overdue_reminder_per_item_and_no_escalation(project, cli, tmp_path):
    adopted(project, cli, tmp_path, "--report-submitted", "2026-10-20")
    assert "0 reminder(s) written" in cli("sweep", "--at", "2026-11-30T10:05").out  # windows before the import
    assert cli("sweep", "--at", "2026-12-01T09:00").code == 0
    rows = [r for r in cli("remind", "list", "--json").json if r["subject"].startswith("区科技局-2026")]
    assert sorted((r["subject"], r["kind"], r["rule"]) for r in rows) == [
        ("区科技局-2026/1", "overdue", "overdue"), ("区科技局-2026/2", "overdue", "overdue")]
    assert all("派驻纪检监察组" not in r["recipients"] and "第一责任人" not in r["recipients"] for r in rows)
    # the facts stay true: overdue since the deadline, not since the import
    two = next(r for r in rows if r["subject"] == "区科技局-2026/2")
    assert two["days_overdue"] > 20
    # duban has seen it overdue since the import day (11-30): the first escalation after three
    # working days seen (11-30, 12-01, 12-02), the supervising group's after ten (… 12-11)
    later = cli("remind", "preview", "--at", "2026-12-01T09:00", "--until", "2026-12-14T23:00", "--json").json
    rules = [(r["at"][:10], r["rule"]) for r in later if r["subject"] == "区科技局-2026/2"]
    assert rules[:2] == [("2026-12-02", "escalate-first-responsible"), ("2026-12-03", "escalate-first-responsible")]
    first_group = next(d for d, rule in rules if rule == "escalate-supervising-group")
    assert first_group == "2026-12-11"


def test_a_milestone_recorded_as_met_sends_nothing(project, cli, tmp_path):
    adopted(project, cli, tmp_path)
    preview = cli("remind", "preview", "--at", "2026-11-30T10:00", "--until", "2026-12-01T23:00", "--json").json
    assert [r["subject"] for r in preview if r["subject"].startswith("duty:")] or any(
        "rectification-report" in r["subject"] for r in preview)
    done = cli("ledger", "milestone", "done", "区科技局-2026", "rectification-report", "--on", "2026-10-20",
               "--by", "财务室", "--at", "2026-11-30T10:30")
    assert done.code == 0, done.err
    preview = cli("remind", "preview", "--at", "2026-11-30T10:30", "--until", "2026-12-01T23:00", "--json").json
    assert not any("rectification-report" in r["subject"] for r in preview)
    unknown = cli("ledger", "milestone", "done", "区科技局-2026", "report", "--on", "2026-10-20", "--by", "财务室")
    assert unknown.code == 2 and "has no milestone 'report'" in unknown.err and "rectification-report" in unknown.err
    again = cli("ledger", "milestone", "done", "区科技局-2026", "rectification-report", "--on", "2026-10-20",
                "--by", "财务室")
    assert again.code == 1 and "already done" in again.err


def test_the_demo_ledger_adopted_as_met_sends_nothing_on_its_first_sweep(cli):
    assert cli("init", "--at", "2026-12-01T10:00").code == 0
    result = cli("ledger", "import", SEED_CSV, "--feedback-date", "2022-07-15", "--report-submitted", "2022-09-15",
                 "--at", "2026-12-01T10:00")
    assert result.code == 0, result.err
    swept = cli("sweep", "--at", "2026-12-02T09:30")
    assert swept.code == 0, swept.err
    written = [r for r in cli("remind", "list", "--json").json if r["subject"].startswith("bishan-keji-2022")]
    assert written == []


def test_the_demo_import_runs_again_unchanged_but_a_different_date_is_refused(cli):
    """`scripts/demo.sh` run twice: the same --report-submitted is no change; another day is a conflict."""
    args = ("ledger", "import", SEED_CSV, "--feedback-date", "2022-07-15", "--at", "2026-12-01T10:00")
    assert cli("init", "--at", "2026-12-01T10:00").code == 0
    assert cli(*args, "--report-submitted", "2022-09-15").code == 0
    again = cli(*args, "--report-submitted", "2022-09-15")
    assert again.code == 0, again.err
    assert "0 new, 0 updated, 26 unchanged" in again.out
    other = cli(*args, "--report-submitted", "2022-09-20")
    assert other.code == 1 and "already done" in other.err

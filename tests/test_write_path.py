"""One write path (issue #19): what every change leaves stored is what the reminder core says.

A re-import after a look-back plans with that look-back (it planned as if there had been none, so
the item showed overdue until a sweep repaired it); a calendar change re-plans stored deadlines by
itself at ``duban init``; and after any mix of doors the stored plans equal a fresh plan of every row.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import create_engine, text

from .conftest import SEED_CSV


def _plans(project) -> dict[str, tuple]:
    engine = create_engine(f"sqlite:///{project / 'duban.db'}")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT ledgers.name || '/' || issues.ref, issues.next_remind_at, issues.due_on, "
                                 "issues.overdue_on FROM issues JOIN ledgers ON ledgers.id = issues.ledger_id")).all()
    engine.dispose()
    return {r[0]: tuple(r[1:]) for r in rows}


def test_a_reimport_after_a_look_back_plans_with_it(seeded, project, tmp_path):
    cli = seeded
    ref = "bishan-keji-2022/1"  # 长期坚持: followed by quarterly look-backs
    assert cli("issue", "checkin", ref, "--by", "党组书记", "--at", "2022-12-20T10:00").code == 0
    after_checkin = _plans(project)[ref]
    rows = SEED_CSV.read_text(encoding="utf-8").splitlines()
    rows[1] = rows[1].replace("2022-09-30", "2022-10-31")  # the sheet moves item 1's 整改时限
    sheet = tmp_path / "bishan-keji-2022.csv"
    sheet.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert cli("ledger", "import", sheet, "--at", "2022-12-21T10:00").code == 0
    reimported = _plans(project)[ref]
    due = dt.date.fromisoformat(str(reimported[1])[:10])
    assert due > dt.date(2022, 12, 20), reimported  # the next look-back, not a date before the last one
    assert reimported[1] == after_checkin[1]  # the deadline of a long-term item does not move its look-backs
    # and what is stored is what a fresh plan says
    before = _plans(project)
    assert cli("db", "replan", "--at", "2022-12-21T10:00").code == 0
    assert _plans(project)[ref][1:] == before[ref][1:]


def test_a_calendar_change_replans_stored_deadlines_at_init(project, cli, tmp_path):
    sheet = tmp_path / "t.csv"
    sheet.write_text("序号,方面,问题类别,具体问题,整改措施,责任领导,责任科室,整改时限,整改状态\n"
                     "1,方面,类别,问题,措施,党组书记,办公室,2026-12-31,整改中\n", encoding="utf-8")
    assert cli("init", "--at", "2026-12-01T09:00").code == 0
    assert cli("ledger", "import", sheet, "--at", "2026-12-01T09:00").code == 0
    assert _plans(project)["t/1"][1] == "2026-12-31"
    again = cli("init", "--at", "2026-12-02T09:00")
    assert again.code == 0 and "the calendar changed" not in again.out  # nothing changed: nothing planned
    config = project / "config.toml"
    config.write_text(config.read_text(encoding="utf-8") + '\n[calendar]\nextra_holidays = ["2026-12-31"]\n',
                      encoding="utf-8")
    changed = cli("init", "--at", "2026-12-02T09:00")
    assert changed.code == 0 and "the calendar changed" in changed.out, changed.out
    assert _plans(project)["t/1"][1] == "2027-01-04"  # a deadline on a holiday moves to the next working day


def test_dry_run_lists_every_field_that_would_change_blank_to_value_included(project, cli, tmp_path):
    header = "序号,方面,问题类别,具体问题,整改措施,责任领导,责任科室,整改时限,整改状态\n"
    sheet = tmp_path / "t.csv"
    sheet.write_text(header + "1,方面,类别,问题,,党组书记,办公室,,待整改\n", encoding="utf-8")
    assert cli("init").code == 0
    assert cli("ledger", "import", sheet, "--at", "2026-12-01T09:00").code == 0
    sheet.write_text(header + "1,方面,类别,问题,制定方案,党组书记,办公室、财务科,2026-12-31,待整改\n", encoding="utf-8")
    dry = cli("ledger", "import", sheet, "--dry-run", "--at", "2026-12-02T09:00")
    assert dry.code == 0, dry.err
    for line in ("t.csv: row 2: 整改时限: (blank) → '2026-12-31'", "t.csv: row 2: 整改措施: (blank) → '制定方案'",
                 "t.csv: row 2: 责任科室: '办公室' → '办公室、财务科'"):
        assert line in dry.out, dry.out
    shown = cli("issue", "show", "t/1", "--json").json
    assert shown["deadline"] is None and [h["trigger"] for h in shown["history"]] == ["import"]  # nothing written
    assert cli("ledger", "import", sheet, "--at", "2026-12-02T09:00").code == 0
    edit = cli("issue", "show", "t/1", "--json").json["history"][-1]
    assert (edit["trigger"], edit["door"]) == ("edit", "import")
    assert {"field": "deadline", "before": None, "after": "2026-12-31"} in edit["changes"]
    assert {"file": "t.csv", "row": 2} in edit["changes"]

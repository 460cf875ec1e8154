"""The workspace's lists at a size where counting everything would show: counts stop at 1,000, pages
are read off an index in their order, ledger choices come from the grants' own indexes."""

from __future__ import annotations

import datetime as dt
import re

import httpx
from sqlalchemy import select, text

from engine.accounts.users import actor_for
from engine.app.http.app import create_app
from engine.issues import worklists
from engine.store.models import Issue, Ledger

from .conftest import run_cli, serving, site_for

TODAY = dt.date(2026, 12, 1)


def _ledger(path, name: str, rows: int, department: str) -> None:
    lines = ["序号,方面,问题类别,具体问题,整改措施,责任领导,责任科室,整改时限,整改状态"]
    for n in range(1, rows + 1):
        lines.append(f"{n},方面,类别,问题{n},措施{n},领导{n % 3},{department},2027-03-31,整改中")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_a_department_with_more_than_a_thousand_issues(db_url, project, monkeypatch):
    monkeypatch.setenv("DUBAN_DATABASE_URL", db_url)
    config = project / "config.toml"
    assert run_cli("--config", config, "init").code == 0
    _ledger(project / "big.csv", "big", 1050, "办公室")
    _ledger(project / "other.csv", "other", 5, "财务室")
    for name in ("big", "other"):
        r = run_cli("--config", config, "ledger", "import", project / f"{name}.csv", "--ledger", name,
                    "--at", "2026-11-02T10:00")
        assert r.code == 0, r.err
    from engine.app.cli.context import App

    app = App(str(config))
    with app.readers() as session:
        office = actor_for(session, "办公室", "web")
        first = worklists.issue_rows(session, app.runtime, office, TODAY, {}, 1)
        assert (first["total"], first["more"], first["last"], len(first["rows"])) == (1000, True, 2, 50)
        assert first["ledgers"] == ["big"]  # not "other", where 办公室 answers for nothing
        deep = worklists.issue_rows(session, app.runtime, office, TODAY, {}, 21)
        assert (len(deep["rows"]), deep["last"]) == (50, 21) and deep["rows"][-1]["ref"] == "1050"
        finance = actor_for(session, "财务室", "web")
        small = worklists.issue_rows(session, app.runtime, finance, TODAY, {}, 1)
        assert (small["total"], small["more"], small["last"], small["ledgers"]) == (5, False, 1, ["other"])
        todo, counted = worklists.my_todo(session, app.runtime, office, TODAY, 1)
        assert len(todo) == 50 and counted.more and counted.total == 1000
        if app.db_engine.dialect.name == "sqlite":  # a page is read off the index, not sorted
            stmt = (select(Issue.id).join(Ledger, Ledger.id == Issue.ledger_id).where(office.visible(probe=True))
                    .order_by(Ledger.name, Issue.position, Issue.id).limit(51))
            sql = str(stmt.compile(app.db_engine, compile_kwargs={"literal_binds": True}))
            plan = " ".join(row[3] for row in session.execute(text("EXPLAIN QUERY PLAN " + sql)))
            assert "ix_issues_ledger_position" in plan and "TEMP B-TREE" not in plan, plan
    app.db_engine.dispose()


def test_the_list_says_which_deadline_is_late(project, monkeypatch, tmp_path):
    """An issue still 待整改 weeks after the feedback is late for its plan (制定整改方案) while its
    整改时限 is months away: the list says so beside the 整改时限 it shows, not "逾期" alone; an issue
    late for its 整改时限 itself shows no second line."""
    monkeypatch.setenv("DUBAN_DATABASE_URL", f"sqlite:///{tmp_path / 'late.db'}")
    config = project / "config.toml"
    assert run_cli("--config", config, "init").code == 0
    sheet = project / "late.csv"
    sheet.write_text("序号,方面,问题类别,具体问题,整改措施,责任领导,责任科室,整改时限,整改状态\n"
                     "1,方面,类别,方案未定,制定方案,党组书记,办公室,2027-03-31,\n"
                     "2,方面,类别,逾期未改,整改,党组书记,办公室,2026-11-20,整改中\n", encoding="utf-8")
    r = run_cli("--config", config, "ledger", "import", sheet, "--ledger", "late", "--feedback-date", "2026-10-20",
                "--at", "2026-10-21T10:00")
    assert r.code == 0, r.err
    from engine.app.cli.context import App

    app = App(str(config))
    with app.readers() as session:
        office = actor_for(session, "办公室", "web")
        rows = {r["ref"]: r for r in worklists.issue_rows(session, app.runtime, office, TODAY, {}, 1)["rows"]}
    app.db_engine.dispose()
    plan, late = rows["1"], rows["2"]
    assert (plan["deadline"], plan["overdue"], plan["due_what"]) == ("2027-03-31", True, "制定整改方案")
    assert plan["due"] < TODAY.isoformat()  # the plan was due weeks ago
    assert (late["overdue"], late["due_what"], late["due"]) == (True, "整改时限", "2026-11-20")
    link = run_cli("--config", config, "user", "link", "办公室", "--at", "2026-12-01T10:00").out.strip().splitlines()[-1]
    with serving(create_app(site_for(config, at="2026-12-01T10:00"))) as base, \
            httpx.Client(base_url=base, follow_redirects=True, timeout=30) as web:
        assert "我的待办" in web.get(link[link.index("/w/"):]).text  # signed in by the link
        listed = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", web.get("/ws/issues").text))
    assert f"2027-03-31 逾期 制定整改方案：{plan['due']} 党组书记" in listed, listed
    assert "2026-11-20 逾期 党组书记" in listed, listed  # late for 整改时限 itself: nothing more to say

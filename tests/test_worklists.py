"""The workspace's lists at a size where counting everything would show: counts stop at 1,000, pages
are read off an index in their order, ledger choices come from the grants' own indexes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, text

from engine.accounts.users import actor_for
from engine.issues import worklists
from engine.store.models import Issue, Ledger

from .conftest import run_cli

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

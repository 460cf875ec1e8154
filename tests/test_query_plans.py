"""Every paged list is read off an index in its own order, on SQLite and on PostgreSQL (#22).

The database holds 30,000 issues in 40 ledgers, written in SQL (a second), half of them sharing one
overdue deadline as a ledger's feedback-date plan does; then ANALYZE. 30,000 rows is below what
PostgreSQL's ANALYZE samples (300 × default_statistics_target), so it reads every row and its
statistics, and with them the plans, are the same on every run. The lists are run as the workspace
and the API run them (我的待办, the issue list, the board's lists, a search), their statements
captured and explained with their own parameters: each page query must name its index and sort
nothing (SQLite: no "USE TEMP B-TREE FOR ORDER BY"; PostgreSQL: no Sort node), and a search for a
word found nowhere must be answered by the search index without reading the issues.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import event, select, text

from engine.accounts.actor import Actor
from engine.accounts.users import actor_for
from engine.issues import worklists
from engine.reminders.agenda import open_deadlines
from engine.store.models import Ledger

from .conftest import run_cli

TODAY = dt.date(2026, 12, 1)
REVIEWER = Actor("巡察办审核人", "web", (("reviewer", ""),), "", "巡察办审核人")
# a unit's 办公室: the unit 甲局 holds ledgers g2 … g4 (see _fill)
UNIT_OFFICE = Actor("甲局/办公室", "web", (("department", "办公室"),), "甲局", "办公室")
ISSUES = 30_000
LEDGERS = 40
DEPARTMENTS = ["办公室", "财务室", "人事组", "综合科", "法规科", "规划科", "审计科", "督查室", "宣传科", "统计科"]


def _fill(conn, dialect: str) -> None:
    """Ledgers and issues (with their departments and search rows) in a few INSERT … SELECT."""
    def run(sql: str) -> None:
        conn.execute(text(sql))

    if dialect == "sqlite":
        series = f"WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {ISSUES}) "
        day = "date('2026-06-01', '+' || (n % 400) || ' days')"
        learn = "'学 习 制 度 学习 习制 制度 title学 title习 title制 title度 title学习 title习制 title制度 '"
        other = "'整 改 落 实 整改 改落 落实 title整 title改 title落 title实 title整改 title改落 title落实 '"
        scope = ("'ledger' || ledger_id || ' leader' || lower(hex(leader)) || ' dept' || lower(hex(department))")
        ledger_series = f"WITH RECURSIVE g(n) AS (SELECT 2 UNION ALL SELECT n + 1 FROM g WHERE n < {LEDGERS}) "
    else:
        series = f"WITH g(n) AS (SELECT generate_series(1, {ISSUES})) "
        day = "(date '2026-06-01' + (n % 400))"
        learn = ("ARRAY['学', '习', '制', '度', '学习', '习制', '制度', 'title学', 'title习', 'title制', 'title度', "
                 "'title学习', 'title习制', 'title制度']")
        other = ("ARRAY['整', '改', '落', '实', '整改', '改落', '落实', 'title整', 'title改', 'title落', 'title实', "
                 "'title整改', 'title改落', 'title落实']")
        scope = ("ARRAY['ledger' || ledger_id, 'leader' || encode(convert_to(leader, 'UTF8'), 'hex'), "
                 "'dept' || encode(convert_to(department, 'UTF8'), 'hex')]")
        ledger_series = f"WITH g(n) AS (SELECT generate_series(2, {LEDGERS})) "
    run(
        ledger_series + "INSERT INTO ledgers (name, unit, feedback_date, workflow_name, headers, created_at, "
        "updated_at) SELECT 'g' || n, CASE WHEN n <= 4 THEN '甲局' ELSE '' END, feedback_date, workflow_name, "
        "headers, created_at, updated_at "
        "FROM g, ledgers WHERE ledgers.name = 'seed'")
    fixed = "'2026-11-01'" if dialect == "sqlite" else "date '2026-11-01'"
    departments = " ".join(f"WHEN {i} THEN '{d}'" for i, d in enumerate(DEPARTMENTS))
    run(
        series + "INSERT INTO issues (ledger_id, ref, position, area, category, title, measures, leader, department, "
        "deadline, state, workflow_id, state_since, extra, created_at, updated_at, round, due_on, overdue_on) "
        "SELECT l.id, 'g' || n, n, s.area, s.category, "
        "CASE WHEN n % 6 = 0 THEN '学习制度' ELSE '整改落实' END, s.measures, s.leader, "
        f"CASE n % 10 {departments} END, {day}, s.state, s.workflow_id, s.state_since, s.extra, s.created_at, "
        f"s.updated_at, 1, CASE WHEN n % 2 = 0 THEN {fixed} ELSE {day} END, "
        f"CASE WHEN n % 2 = 0 THEN {fixed} ELSE {day} END "
        f"FROM g JOIN ledgers l ON l.name = 'g' || (2 + n % {LEDGERS - 1}), "
        "(SELECT * FROM issues ORDER BY id LIMIT 1) s")
    run("INSERT INTO issue_departments (issue_id, department, ledger_id) "
                         "SELECT id, department, ledger_id FROM issues WHERE ref LIKE 'g%'")
    # the terms engine.issues.search writes: the title's characters and pairs, as they are and as the
    # title's, and the scope terms
    run("INSERT INTO issue_search (issue_id, title, body, terms) "
        f"SELECT id, title, ref, CASE WHEN title = '学习制度' THEN {learn} ELSE {other} END || {scope} "
        "FROM issues WHERE ref LIKE 'g%'")
    run("ANALYZE")


@pytest.fixture
def site(db_url, project, monkeypatch):
    monkeypatch.setenv("DUBAN_DATABASE_URL", db_url)
    config = project / "config.toml"
    assert run_cli("--config", config, "init").code == 0
    (project / "seed.csv").write_text("序号,方面,问题类别,具体问题,整改措施,责任领导,责任科室,整改时限,整改状态\n"
                                      "1,方面,类别,问题,措施,王建国,办公室,2027-03-31,整改中\n", encoding="utf-8")
    r = run_cli("--config", config, "ledger", "import", project / "seed.csv", "--ledger", "seed",
                "--at", "2026-11-02T10:00")
    assert r.code == 0, r.err
    from engine.app.cli.context import App

    app = App(str(config))
    with app.db_engine.begin() as conn:
        _fill(conn, app.db_engine.dialect.name)
    yield app
    app.db_engine.dispose()


def _captured(app, work) -> list[tuple[str, Any]]:
    """The page queries (ORDER BY … LIMIT) ``work`` sends, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def keep(_conn, _cursor, statement, parameters, _context, _many) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "ORDER BY" in statement and "LIMIT" in statement:
            seen.append((statement, parameters))

    event.listen(app.db_engine, "before_cursor_execute", keep)
    try:
        with app.readers() as session:
            work(session)
    finally:
        event.remove(app.db_engine, "before_cursor_execute", keep)
    assert seen, "no page query was sent"
    return seen


def _plan(app, statement: str, parameters: Any, *, no_seqscan: bool = False) -> str:
    with app.db_engine.connect() as conn:
        if no_seqscan:
            conn.exec_driver_sql("SET enable_seqscan = off")
        if app.db_engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            return " | ".join(row[3] for row in rows)
        return json.dumps(conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar(),
                          ensure_ascii=False)


def _seq_scans(node: Any) -> set[str]:
    """The tables a PostgreSQL plan reads whole."""
    if isinstance(node, list):
        return set().union(*(_seq_scans(n) for n in node))
    if not isinstance(node, dict):
        return set()
    own = {node["Relation Name"]} if node.get("Node Type") == "Seq Scan" else set()
    return own.union(*(_seq_scans(v) for v in node.values() if isinstance(v, (list, dict))))


def _sorts(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [s for n in node for s in _sorts(n)]
    if not isinstance(node, dict):
        return []
    own = [node] if node.get("Node Type") in ("Sort", "Incremental Sort") else []
    return own + [s for v in node.values() if isinstance(v, (list, dict)) for s in _sorts(v)]


def _sorted(app, plan: str) -> bool:
    """Whether the plan sorts more than one ledger's rows. PostgreSQL orders a join by the outer
    side's order only: the issue list, ledgers by name (their unique index) and then each ledger's
    page (a LATERAL read, worklists._in_list_order), is an Incremental Sort presorted on the
    ledger's name, each group at most a page. Inside a ledger's read the planner may walk
    ix_issues_ledger_position or, when the ledger is small, sort what the grant finds in it: a sort
    by (position, id) alone, which only one ledger's rows can be in."""
    if app.db_engine.dialect.name == "sqlite":
        return "TEMP B-TREE FOR ORDER BY" in plan
    within_a_ledger = ['issues."position"', "issues.id"]
    return any(s.get("Presorted Key") != ["ledgers.name"] and s.get("Sort Key") != within_a_ledger
               for s in _sorts(json.loads(plan)))


def _lists(app) -> dict[str, tuple[Any, str]]:
    """list name -> (what runs it, the index its page is read off)."""
    runtime = app.runtime
    # PostgreSQL reads the ledgers in name order and each one's issues (see ``_sorted``)
    by_ledger = "ix_issues_ledger_position" if app.db_engine.dialect.name == "sqlite" else "uq_ledgers_name"

    def as_user(name: str, run):
        return lambda session: run(session, actor_for(session, name, "web"))

    def board(session) -> None:
        open_deadlines(session, runtime, TODAY, overdue=True, limit=51)

    def ledger_board(session) -> None:
        ledger = session.scalar(select(Ledger).where(Ledger.name == "g7"))
        open_deadlines(session, runtime, TODAY, ledger=ledger, overdue=True, limit=51)

    return {
        "我的待办 (a department)": (as_user("办公室", lambda s, a: worklists.my_todo(s, runtime, a, TODAY, 3)),
                                 "ix_issues_overdue_due"),
        "我的待办 (an administrator)": (as_user("admin", lambda s, a: worklists.my_todo(s, runtime, a, TODAY, 1)),
                                    "ix_issues_overdue_due"),
        # the district's reviewer: the issues awaiting sign-off in every unit, most urgent first
        # each of their states' head read off its index in order, the heads merged (open_deadlines_in)
        "我的待办 (a reviewer)": (lambda s: worklists.my_todo(s, runtime, REVIEWER, TODAY, 1),
                               "ix_issues_state_overdue_due"),
        # a ledger's head at a time, the department probed per row, the heads merged
        "我的待办 (a unit's department)": (lambda s: worklists.my_todo(s, runtime, UNIT_OFFICE, TODAY, 1),
                                      "ix_issues_ledger_overdue_due"),
        "issue list (a department)": (as_user("办公室", lambda s, a: worklists.issue_rows(s, runtime, a, TODAY, {}, 2)),
                                      by_ledger),
        "issue list (an administrator)": (
            as_user("admin", lambda s, a: worklists.issue_rows(s, runtime, a, TODAY, {}, 1)), by_ledger),
        "board: overdue": (board, "ix_issues_overdue_due"),
        "a ledger's overdue": (ledger_board, "ix_issues_ledger_overdue_due"),
    }


LISTS = ["我的待办 (a department)", "我的待办 (an administrator)", "我的待办 (a reviewer)", "我的待办 (a unit's department)",
         "issue list (a department)",
         "issue list (an administrator)", "board: overdue", "a ledger's overdue"]


@pytest.mark.parametrize("name", LISTS)
def test_a_page_is_read_off_its_index_in_its_order(site, name):
    work, index = _lists(site)[name]
    for statement, parameters in _captured(site, work):
        if "FROM extension_requests" in statement or "issues" not in statement:
            continue  # the pending 延期申请 (a handful, read off their own partial index)
        plan = _plan(site, statement, parameters)
        assert index in plan, f"{name}: {plan}"
        if index in ("ix_issues_state_overdue_due", "ix_issues_ledger_overdue_due") and "UNION ALL" in statement:
            assert not _sorted_heads(site, plan), f"{name}: sorts a head: {plan}"
        else:
            assert not _sorted(site, plan), f"{name}: sorts: {plan}"
        if name.startswith("issue list") and site.db_engine.dialect.name == "postgresql":
            # each ledger's read stops at the page: a LIMIT inside the loop over the ledgers
            loops = [n for n in _nodes(json.loads(plan)) if n.get("Node Type") == "Nested Loop"]
            assert any(m.get("Node Type") == "Limit" for n in loops for m in _nodes(n.get("Plans", []))), plan


def _sorted_heads(app, plan: str) -> bool:
    """Whether a merge of heads (UNION ALL of LIMITed reads, each in the list's order) sorts inside
    a head; sorting the merged heads themselves (a page per state) is what merging them costs."""
    if app.db_engine.dialect.name == "sqlite":
        heads, _, merge = plan.rpartition("| SCAN anon_1 |")
        return not heads or "TEMP B-TREE" in heads
    appends = [n for n in _nodes(json.loads(plan)) if n.get("Node Type") in ("Append", "Merge Append")]
    return not appends or any(_sorts(a.get("Plans", [])) for a in appends)


def _nodes(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [s for n in node for s in _nodes(n)]
    if not isinstance(node, dict):
        return []
    return [node] + [s for v in node.values() if isinstance(v, (list, dict)) for s in _nodes(v)]


def test_a_word_found_nowhere_is_answered_by_the_search_index(site):
    runtime = site.runtime

    def searching(session) -> None:
        for who in ("admin", "办公室"):
            listing = worklists.issue_rows(session, runtime, actor_for(session, who, "web"), TODAY,
                                           {"q": "量子纠缠"}, 1)
            assert listing["rows"] == [] and listing["total"] == 0

    for statement, parameters in _captured(site, searching):
        if "issue_search" not in statement:
            continue  # the ledgers to choose from
        # PostgreSQL: these 30,000 rows' short term arrays (the real ones hold ~100 terms) make reading
        # the table whole look as cheap as the index, and the planner's pick between them unstable
        plan = _plan(site, statement, parameters, no_seqscan=site.db_engine.dialect.name == "postgresql")
        if site.db_engine.dialect.name == "sqlite":
            assert "issue_search_fts VIRTUAL TABLE INDEX" in plan, plan
            # the candidates drive: issues and issue_search are looked up by key, never scanned
            assert "SCAN issues" not in plan and "SCAN issue_search " not in plan + " ", plan
        else:
            assert "ix_issue_search_terms" in plan, plan
            assert not _seq_scans(json.loads(plan)) & {"issues", "issue_search"}, plan
    with site.readers() as session:  # the index really is there to be used: a common word finds its sixth
        listing = worklists.issue_rows(session, runtime, actor_for(session, "admin", "web"), TODAY, {"q": "学习"}, 1)
        assert listing["more"] and len(listing["rows"]) == 50
        assert session.scalar(text("SELECT count(*) FROM issue_search")) == ISSUES + 1


def test_a_common_words_page_is_read_in_order_off_the_index(site):
    """学习 is in a sixth of the titles: whoever sees every issue gets its first page read in the
    order of the issues, stopping at the page — never every match collected and sorted."""
    runtime = site.runtime

    def searching(session) -> None:
        listing = worklists.issue_rows(session, runtime, actor_for(session, "admin", "web"), TODAY, {"q": "学习"}, 1)
        assert len(listing["rows"]) == 50 and listing["more"]

    pages = [(st, p) for st, p in _captured(site, searching) if "issue_search" in st and "OFFSET" in st]
    assert pages, "no page of the search was read"
    for statement, parameters in pages:
        plan = _plan(site, statement, parameters)
        if site.db_engine.dialect.name == "sqlite":
            assert "TEMP B-TREE" not in plan, plan
        else:
            assert not _sorts(json.loads(plan)), plan


@pytest.mark.parametrize("walk_rows", [3, 20_000])
def test_a_walk_is_bounded_and_falls_back_to_the_index(site, monkeypatch, walk_rows):
    """PostgreSQL, a common word for whoever sees every issue: the page is walked in id order up to
    ``WALK_ROWS`` rows (an index range, no sort, no table read whole); when the walk does not fill
    the page (3 rows hold no 学习 title) the part is read with the index's condition instead."""
    if site.db_engine.dialect.name != "postgresql":
        pytest.skip("SQLite's FTS5 hands its matches over in order: no walk")
    from engine.issues import search

    monkeypatch.setattr(search, "WALK_ROWS", walk_rows)
    runtime = site.runtime

    def searching(session) -> None:
        listing = worklists.issue_rows(session, runtime, actor_for(session, "admin", "web"), TODAY, {"q": "学习"}, 1)
        assert len(listing["rows"]) == 50 and listing["more"]
        assert all(row["title"] == "学习制度" for row in listing["rows"])

    pages = [(st, p) for st, p in _captured(site, searching) if "issue_search" in st and "OFFSET" in st]
    walks = [(st, p) for st, p in pages if "LIKE" in st and "@>" not in st]  # not walk_bound's own
    fallbacks = [(st, p) for st, p in pages if "@>" in st]
    assert walks, "no walk was read"
    for statement, parameters in walks:
        plan = json.loads(_plan(site, statement, parameters))
        assert not _sorts(plan) and not _seq_scans(plan) & {"issues", "issue_search"}, plan
        bounded = [n for n in _nodes(plan) if n.get("Relation Name") == "issue_search" and "Index Cond" in n]
        assert bounded and "issue_id <=" in bounded[0]["Index Cond"], plan
    if walk_rows == 3:  # the walk came back short: the titles' page is read with the index's condition
        assert fallbacks, "the short walk did not fall back to the index"
        for statement, parameters in fallbacks:
            # which index serves it is the planner's pick on these short term arrays (see the
            # no-match test); at a million it is ix_issue_search_terms. Never a table read whole.
            plan = json.loads(_plan(site, statement, parameters, no_seqscan=True))
            assert not _seq_scans(plan) & {"issues", "issue_search"}, plan
    else:  # 20,000 rows hold the page: the index is not asked
        assert not fallbacks, [st for st, _ in fallbacks]


@pytest.mark.parametrize("who", ["admin", "办公室", "reviewer", "unit office"])
def test_the_list_read_ledger_by_ledger_is_the_list_in_its_order(site, who):
    """PostgreSQL's ledger-by-ledger page (worklists._in_list_order) is, page after page and filter
    by filter, the page of the one ordered query: ledgers by name, then 序号 order."""
    from engine.store.models import Issue as IssueRow

    runtime = site.runtime
    with site.readers() as session:
        actor = {"reviewer": REVIEWER, "unit office": UNIT_OFFICE}.get(who) or actor_for(session, who, "web")
        original = worklists._in_list_order

        def joined(session, actor, where, of_ledgers, stmt, page):
            return list(session.execute(stmt.order_by(Ledger.name, IssueRow.position, IssueRow.id)
                                        .limit(worklists.PAGE + 1).offset((page - 1) * worklists.PAGE)))

        for filters in ({}, {"state": "in_progress"}, {"ledger": "g7"}, {"unit": "甲局"}, {"department": "财务室"},
                        {"overdue": "1"}, {"ledger": "g3", "department": "办公室"}):
            for page in (1, 2, 7):
                ours = worklists.issue_rows(session, runtime, actor, TODAY, filters, page)
                worklists._in_list_order = joined
                try:
                    theirs = worklists.issue_rows(session, runtime, actor, TODAY, filters, page)
                finally:
                    worklists._in_list_order = original
                assert ours == theirs, (who, filters, page)
                assert len(ours["rows"]) == 50 or not ours["more"], (who, filters, page)


def test_a_units_department_finds_its_ledgers_and_its_count_off_its_index(site):
    """A unit's 办公室: the ledgers it may choose from are probed one by one in the department's
    index (not every 办公室 row of the district collected: 2.9 ms at a million issues), and the count
    with no filter is read off issue_departments alone (not each issue looked up as well) — and
    both say what is there."""
    from sqlalchemy import func

    from engine.store.models import ISSUE_DEPARTMENTS

    seen: list[tuple[str, Any]] = []

    def keep(_conn, _cursor, statement, parameters, _context, _many) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(site.db_engine, "before_cursor_execute", keep)
    try:
        with site.readers() as session:
            listing = worklists.issue_rows(session, site.runtime, UNIT_OFFICE, TODAY, {}, 1)
    finally:
        event.remove(site.db_engine, "before_cursor_execute", keep)
    d = ISSUE_DEPARTMENTS.c
    with site.readers() as session:
        theirs = select(Ledger.id).where(Ledger.unit == "甲局")
        total = session.scalar(select(func.count()).where(d.department == "办公室", d.ledger_id.in_(theirs)))
        names = list(session.scalars(select(Ledger.name).where(Ledger.id.in_(
            select(d.ledger_id).where(d.department == "办公室", d.ledger_id.in_(theirs)))).order_by(Ledger.name)))
    assert 50 < total < worklists.COUNT_CAP and names == ["g2", "g3", "g4"]
    assert (listing["total"], listing["more"], listing["ledgers"]) == (total, False, names)

    sqlite = site.db_engine.dialect.name == "sqlite"
    [(choices, parameters)] = [(st, p) for st, p in seen if st.lstrip().startswith("SELECT ledgers.name")]
    plan = _plan(site, choices, parameters)
    if sqlite:
        assert "ix_issue_departments_department_ledger (department=? AND ledger_id=?)" in plan, plan
    else:
        probes = [n for n in _nodes(json.loads(plan)) if n.get("Relation Name") == "issue_departments"]
        assert probes and all("ledger_id" in n.get("Index Cond", "") for n in probes), plan
    [(count, _)] = [(st, p) for st, p in seen if "count(" in st]
    assert " issues " not in " ".join(count.replace("(", " ").replace(")", " ").split()) + " ", count


@pytest.mark.parametrize("cap", [500, 1000])
def test_a_common_words_count_is_walked_and_an_uncommon_one_counted_off_the_index(site, monkeypatch, cap):
    """PostgreSQL, whoever sees every issue: 学习 is in a sixth of the titles, more rows than a walk
    reads (here 4,000), so ANALYZE's statistics call it common and its count is walked in id order
    first. 4,000 rows hold ~670 of its matches: a cap of 500 is reached by the walk alone (no GIN
    count, which hands over every match); a cap of 1000 is not, and the index counts, exactly. Both
    say what is there."""
    if site.db_engine.dialect.name != "postgresql":
        pytest.skip("SQLite's FTS5 hands its matches over in order and a count stops at its cap")
    from engine.issues import search

    monkeypatch.setattr(search, "WALK_ROWS", 4000)
    monkeypatch.setattr(search, "_common_shares", {})
    monkeypatch.setattr(worklists, "COUNT_CAP", cap)
    runtime = site.runtime
    counts: list[str] = []

    def keep(_conn, _cursor, statement, _parameters, _context, _many) -> None:
        if "count(" in statement and "issue_search" in statement:
            counts.append(statement)

    event.listen(site.db_engine, "before_cursor_execute", keep)
    try:
        with site.readers() as session:
            assert search.common(session, "学习") and not search.common(session, "量子纠缠")
            listing = worklists.issue_rows(session, runtime, actor_for(session, "admin", "web"), TODAY, {"q": "学习"}, 1)
    finally:
        event.remove(site.db_engine, "before_cursor_execute", keep)
    assert (listing["total"], listing["more"]) == (cap, True)
    assert len(listing["rows"]) == 50 and all(r["title"] == "学习制度" for r in listing["rows"])
    walked = [c for c in counts if "@>" not in c]
    indexed = [c for c in counts if "@>" in c]
    assert len(walked) == 1 and "issue_search.issue_id <=" in walked[0], counts
    assert len(indexed) == (0 if cap == 500 else 1), counts


def test_pending_extension_requests_are_found_off_their_own_index(site):
    """A reviewer's 我的待办 lists the pending 延期申请 they may decide first. The pending ones are
    found off their partial index and the join asked for those alone: planned from the scope's
    side, SQLite (no statistics on a table empty at ANALYZE) read every issue to find none — 25 ms
    at 100,000 issues. None pending, the join is not asked at all."""
    from engine.store.kinds import ExtensionState
    from engine.store.models import ExtensionRequest, Issue

    runtime = site.runtime

    def todo(session) -> None:
        worklists.my_todo(session, runtime, REVIEWER, TODAY, 1)

    def joins() -> list[tuple[str, Any]]:
        return [(st, p) for st, p in _captured(site, todo) if "FROM extension_requests JOIN" in " ".join(st.split())]

    assert joins() == []
    with site.transaction() as session:
        issue = session.scalar(select(Issue).where(Issue.ref == "g7"))
        session.add(ExtensionRequest(issue_id=issue.id, round=1, requested_to=dt.date(2027, 3, 31), reason="审计进场",
                                     requested_by="办公室", requested_at=dt.datetime(2026, 11, 30, 2, tzinfo=dt.UTC),
                                     state=ExtensionState.PENDING, due_on=TODAY, overdue_on=TODAY))
    [(statement, parameters)] = joins()
    plan = _plan(site, statement, parameters)
    if site.db_engine.dialect.name == "sqlite":
        assert "extension_requests USING INTEGER PRIMARY KEY" in plan and "issues USING INTEGER PRIMARY KEY" in plan, plan
        assert "SCAN issues" not in plan and "ix_issues" not in plan, plan
    else:
        assert not _seq_scans(json.loads(plan)) & {"issues"}, plan


def test_the_search_index_keeps_its_pending_list_short(site):
    """PostgreSQL's GIN index takes a changed row's terms into a pending list that every search
    reads through, merged into the index past ``gin_pending_list_limit``: 4 MB by default, and a
    search for a word found nowhere took 38–57 ms after 20 writers' progress notes instead of 19 at
    1M issues. duban's migrations and its models both keep it to 512 kB (SQLite's FTS5 has none)."""
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateIndex

    from engine.store.models import IssueSearch

    if site.db_engine.dialect.name != "postgresql":
        pytest.skip("SQLite's FTS5 table has no pending list")
    with site.db_engine.connect() as conn:
        options = conn.scalar(text("SELECT reloptions FROM pg_class WHERE relname = 'ix_issue_search_terms'"))
    assert options == ["gin_pending_list_limit=512"]
    [index] = IssueSearch.__table__.indexes
    assert "WITH (gin_pending_list_limit = 512)" in str(CreateIndex(index).compile(dialect=postgresql.dialect()))

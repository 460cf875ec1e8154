"""Search that serves Chinese (#22): one-, two- and four-character words, letters and numbers, found
through the index of characters and pairs on SQLite and PostgreSQL; the index follows every write
(import, re-import, edits, progress notes); a unit's people never see another unit's issues; and,
for any texts and query, the index answers exactly what LIKE over the text answers."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text, update

from engine.accounts.policy import login_name
from engine.accounts.users import actor_for
from engine.issues import actions, search, worklists
from engine.issues.edit import edit_issue
from engine.store.models import ISSUE_SEARCH, ISSUES, Issue

from .conftest import Store, run_cli

TODAY = dt.date(2026, 12, 1)
NOW = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
HEAD = "序号,方面,问题类别,具体问题,整改措施,责任领导,责任科室,整改时限,整改状态"
ROWS = [  # 序号, 具体问题, 整改措施
    ("1", "理论学习中心组学习制度落实不到位", "制定学习计划"),
    ("2", "党费收缴不规范", "开展专项检查，建立台账"),
    ("3", "OA系统2024年度台账未更新", "按月更新"),
    ("4", "违规发放津补贴问题", "清退违规发放的补贴"),
    ("A-17", "三重一大决策程序不规范", "完善议事规则"),
]


def _csv(path, titles) -> None:
    lines = [HEAD] + [f"{ref},方面,类别,{title},{measures},王建国,{'财务室' if ref == 'A-17' else '办公室'},2027-03-31,整改中"
                      for ref, title, measures in titles]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _setup(db_url, project, monkeypatch):
    monkeypatch.setenv("DUBAN_DATABASE_URL", db_url)
    config = project / "config.toml"
    assert run_cli("--config", config, "init").code == 0
    for unit in ("甲局", "乙局"):
        _csv(project / f"{unit}.csv", ROWS)
        r = run_cli("--config", config, "ledger", "import", project / f"{unit}.csv", "--ledger", f"{unit}台账",
                    "--unit", unit, "--at", "2026-11-02T10:00")
        assert r.code == 0, r.err
    from engine.app.cli.context import App

    return App(str(config)), config


def _found(app, who: str, q: str) -> list[str]:
    with app.readers() as session:
        actor = actor_for(session, who, "web")
        listing = worklists.issue_rows(session, app.runtime, actor, TODAY, {"q": q}, 1)
    return [f"{r['ledger']}/{r['ref']}" for r in listing["rows"]]


def test_words_of_every_length_letters_and_numbers(db_url, project, monkeypatch):
    app, _ = _setup(db_url, project, monkeypatch)
    office = login_name("甲局", "办公室")
    assert _found(app, office, "学") == ["甲局台账/1"]  # one character
    assert _found(app, office, "台账") == ["甲局台账/3", "甲局台账/2"]  # the title's hit first, then 整改措施's
    assert _found(app, office, "中心组学") == ["甲局台账/1"]  # four characters
    assert _found(app, office, "oa系统") == ["甲局台账/3"]  # letters (any case) beside Chinese
    assert _found(app, office, "ＯＡ") == ["甲局台账/3"]  # full-width letters are the same letters
    assert _found(app, office, "2024年度") == ["甲局台账/3"]  # digits
    # a 序号, with its hyphen; in the order the issues were entered (甲局 first)
    assert _found(app, "admin", "a-17") == ["甲局台账/A-17", "乙局台账/A-17"]
    assert _found(app, office, "学习计划") == ["甲局台账/1"]
    assert _found(app, office, "心学") == []  # both characters are there, never side by side
    assert _found(app, office, "学习，制度") == []  # every pair there, the words are not
    assert _found(app, office, "不到位") == ["甲局台账/1"]
    assert _found(app, "admin", "违规发放") == ["甲局台账/4", "乙局台账/4"]
    app.db_engine.dispose()


def test_a_unit_never_sees_another_units_issue(db_url, project, monkeypatch):
    app, _ = _setup(db_url, project, monkeypatch)
    for unit, other in (("甲局", "乙局"), ("乙局", "甲局")):
        for q in ("学习", "规", "党费收缴", "2024"):
            found = _found(app, login_name(unit, "办公室"), q)
            assert found and all(ref.startswith(f"{unit}台账/") for ref in found), (unit, q, found)
            assert not any(ref.startswith(other) for ref in found)
    app.db_engine.dispose()


def test_the_index_follows_edits_progress_notes_and_reimports(db_url, project, monkeypatch):
    app, config = _setup(db_url, project, monkeypatch)
    office = login_name("甲局", "办公室")
    assert _found(app, office, "谈心谈话") == []
    with app.transaction() as session:
        actor = actor_for(session, office, "web")
        actions.record_progress(session, "甲局台账/2", actor=actor, now=NOW, note="已开展谈心谈话12次")
    assert _found(app, office, "谈心谈话") == ["甲局台账/2"]
    assert _found(app, office, "12次") == ["甲局台账/2"]
    with app.transaction() as session:
        actor = actor_for(session, office, "web")
        edit_issue(session, app.runtime, "甲局台账/1", actor=actor, now=NOW, measures="召开专题民主生活会")
    assert _found(app, office, "民主生活") == ["甲局台账/1"]
    assert _found(app, office, "学习计划") == []  # the old 整改措施 is no longer found
    assert _found(app, office, "学习") == ["甲局台账/1"]  # still in its title
    # a handover: the search of the department it went to finds it, the one it left no longer does
    finance = login_name("甲局", "财务室")
    assert _found(app, finance, "党费") == []
    with app.transaction() as session:
        edit_issue(session, app.runtime, "甲局台账/2", actor=actor_for(session, "admin", "web"), now=NOW,
                   department="财务室")
    assert _found(app, finance, "党费") == ["甲局台账/2"] and _found(app, office, "党费") == []
    # a transaction that fails leaves the index as it was
    try:
        with app.transaction() as session:
            actor = actor_for(session, office, "web")
            actions.record_progress(session, "甲局台账/3", actor=actor, now=NOW, note="巡察回头看")
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    assert _found(app, office, "回头看") == []
    # a re-import with new titles and a new row
    _csv(project / "甲局.csv", [("1", "意识形态工作责任制落实不到位", "制定学习计划"), *ROWS[1:],
                                ("6", "新增问题：公务用车管理", "规范公车使用")])
    r = run_cli("--config", config, "ledger", "import", project / "甲局.csv", "--ledger", "甲局台账",
                "--at", "2026-11-20T10:00")
    assert r.code == 0, r.err
    assert _found(app, office, "意识形态") == ["甲局台账/1"]
    assert _found(app, office, "中心组") == []
    assert _found(app, office, "公车") == ["甲局台账/6"]
    # the sheet hands it back to 办公室; its progress note outlived the re-import
    assert _found(app, office, "谈心谈话") == ["甲局台账/2"] and _found(app, finance, "谈心谈话") == []
    with app.readers() as session:  # every issue has its row, and nothing else does
        ids = set(session.scalars(select(Issue.id)))
        assert set(session.scalars(select(ISSUE_SEARCH.c.issue_id))) == ids
    # `duban init` on a database whose index is out of step rebuilds it
    with app.transaction() as session:
        session.execute(ISSUE_SEARCH.delete())
    assert _found(app, office, "意识形态") == []
    r = run_cli("--config", config, "init")
    assert r.code == 0 and "search index built" in r.out, r.out + r.err
    assert _found(app, office, "意识形态") == ["甲局台账/1"]
    assert "search index" not in run_cli("--config", config, "init").out  # in step: left alone
    app.db_engine.dispose()


def test_a_word_found_nowhere_finds_nothing(db_url, project, monkeypatch):
    # that the index answers it without reading the issues: tests/test_query_plans.py, at a volume
    # where the planner's choice means something
    app, _ = _setup(db_url, project, monkeypatch)
    with app.readers() as session:
        listing = worklists.issue_rows(session, app.runtime, actor_for(session, "admin", "web"), TODAY,
                                       {"q": "量子纠缠"}, 1)
    assert (listing["rows"], listing["total"], listing["more"]) == ([], 0, False)
    app.db_engine.dispose()


# -- the index answers what LIKE answers ------------------------------------------------------------

ALPHABET = "学习整改落实制度党费台账问题规范发放ＡａB1２、，-（）_% "
REFS = ["-" * (n + 1) for n in range(6)]  # no letter or digit: the titles alone hold words
texts = st.lists(st.text(alphabet=ALPHABET, max_size=14), min_size=1, max_size=6)


def _six_issues(store, titles: tuple[str, ...] = ("",) * 6) -> list[int]:
    from engine.store.models import LEDGERS, WORKFLOWS

    with store.engine.begin() as conn:
        wf = conn.execute(WORKFLOWS.insert().values(name="w", content_hash="h", title="w", source="", definition={},
                                                    created_at=NOW)).inserted_primary_key[0]
        ledger = conn.execute(LEDGERS.insert().values(name="L", unit="", workflow_name="w", headers=[],
                                                      created_at=NOW, updated_at=NOW)).inserted_primary_key[0]
        conn.execute(ISSUES.insert(), [{"ledger_id": ledger, "ref": REFS[n], "position": n, "title": titles[n],
                                        "measures": "", "state": "s", "workflow_id": wf, "state_since": NOW,
                                        "extra": {}, "created_at": NOW, "updated_at": NOW} for n in range(6)])
        ids = list(conn.scalars(select(ISSUES.c.id).order_by(ISSUES.c.id)))
        search.refresh(conn, ids)
    return ids


def test_index_search_is_like_search(store):
    ids = _six_issues(store)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(titles=texts, measures=texts, query=st.one_of(st.text(alphabet=ALPHABET, min_size=1, max_size=5),
                                                         texts.flatmap(lambda ts: st.sampled_from(ts))))
    def check(titles: list[str], measures: list[str], query: str) -> None:
        titles, measures = (titles * 6)[:6], (measures * 6)[:6]
        with store.engine.begin() as conn:
            for issue_id, title, measure in zip(ids, titles, measures, strict=True):
                conn.execute(update(ISSUES).where(ISSUES.c.id == issue_id).values(title=title, measures=measure))
            search.refresh(conn, ids)
            if not search.fold(query).strip():
                return
            # each part, through the index and walked (LIKE alone: PostgreSQL's page of a common word)
            found = {(part, walk): set(conn.scalars(select(ISSUE_SEARCH.c.issue_id).where(
                search.matching(query, conn.dialect.name, part=part, walk=walk))))
                for part in ("any", "title", "rest") for walk in (False, True)}
            # LIKE over the folded text, and the same question asked in Python
            s = ISSUE_SEARCH.c
            naive = set(conn.scalars(select(s.issue_id).where(s.title.contains(search.fold(query), autoescape=True)
                                                              | s.body.contains(search.fold(query), autoescape=True))))
        folded = search.fold(query)
        in_title = {i for i, t in zip(ids, titles, strict=True) if folded in search.fold(t)}
        in_body = {i for i, ref, m in zip(ids, REFS, measures, strict=True) if folded in f"{ref}\n{search.fold(m)}"}
        expected = {"any": in_title | in_body, "title": in_title, "rest": in_body - in_title}
        assert naive == expected["any"], (titles, measures, query)
        for (part, walk), ids_found in found.items():
            assert ids_found == expected[part], (part, walk, titles, measures, query)

    check()


@pytest.mark.parametrize("walk_rows", [1, 3, 100])
def test_pages_list_title_hits_then_the_rest_in_the_order_entered(db_url, project, monkeypatch, walk_rows):
    """Page after page, whatever path reads them (PostgreSQL walks a common word's page in id order
    for ``WALK_ROWS`` rows, then falls back to the index): the title hits in the order the issues
    were entered, then the other hits, each issue once."""
    app, _ = _setup(db_url, project, monkeypatch)
    monkeypatch.setattr(worklists, "PAGE", 1)
    monkeypatch.setattr(worklists, "COUNT_CAP", 2)  # every word here is "common": the count is capped
    monkeypatch.setattr(search, "WALK_ROWS", walk_rows)
    for q in ("台账", "违规发放", "规", "学习"):
        with app.readers() as session:
            s = ISSUE_SEARCH.c
            rows = session.execute(select(s.issue_id, s.title.contains(q)).where(s.title.contains(q) | s.body.contains(q))
                                   .order_by(s.issue_id)).all()
            expected = [i for i, titled in rows if titled] + [i for i, titled in rows if not titled]
            refs = dict(session.execute(select(Issue.id, Issue.ref)).all())
            seen = []
            for page in range(1, len(expected) + 2):
                listing = worklists.issue_rows(session, app.runtime, actor_for(session, "admin", "web"), TODAY,
                                               {"q": q}, page)
                seen += [r["ref"] for r in listing["rows"]]
        assert seen == [refs[i] for i in expected], (q, walk_rows)
    app.db_engine.dispose()


def _index(conn, ids: list[int]) -> dict[int, tuple[str, str, list[str]]]:
    s = ISSUE_SEARCH.c
    return {r.issue_id: (r.title, r.body, sorted(r.terms.split() if isinstance(r.terms, str) else r.terms))
            for r in conn.execute(select(s.issue_id, s.title, s.body, s.terms).where(s.issue_id.in_(ids)))}


def test_a_progress_note_adds_to_the_row_what_a_rewrite_would_write(store):
    """A note grows its issue's row by itself alone (``search.note``); whatever the notes, their
    order, the transactions they come in, an issue rewritten in the same one or a row gone missing,
    every row is then what rewriting it from the database gives — and the FTS5 table agrees."""
    from engine.issues import history

    ids = _six_issues(store, ("理论学习", "党费收缴", "台账", "ＯＡ系统", "", "制度"))
    note = st.tuples(st.sampled_from(ids), st.text(alphabet=ALPHABET, max_size=10), st.booleans(), st.booleans())

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(transactions=st.lists(st.lists(note, min_size=1, max_size=4), min_size=1, max_size=3))
    def check(transactions: list[list[tuple[int, str, bool, bool]]]) -> None:
        for steps in transactions:
            with store.sessions() as session, session.begin():
                for issue_id, text_, rewrite, lost in steps:
                    if lost:  # its row gone (a crash between versions, say): the note writes it whole
                        session.execute(ISSUE_SEARCH.delete().where(ISSUE_SEARCH.c.issue_id == issue_id))
                    history.record(session, issue_id, by="办公室", door="web", at=NOW, trigger="progress",
                                   from_state="s", to_state="s", note=text_)
                    if rewrite:
                        search.mark(session, [issue_id])
        with store.engine.connect() as conn:
            rewritten = {r["issue_id"]: (r["title"], r["body"], sorted(r["terms"].split()))
                         for r in search._rows(conn, ids)}
            assert _index(conn, ids) == rewritten, transactions
            if conn.dialect.name == "sqlite":  # the words FTS5 finds are the row's
                for issue_id, (_, _, terms) in rewritten.items():
                    for term in terms[:3] + terms[-3:]:
                        assert issue_id in set(conn.exec_driver_sql(
                            f"SELECT rowid FROM {search.FTS} WHERE {search.FTS} MATCH ?", (f'"{term}"',)).scalars())

    check()


def test_a_note_with_no_new_word_leaves_the_terms_alone(pg_url, project, monkeypatch):
    """PostgreSQL adds a note in place: one whose words the row holds already leaves the terms as
    they were, so the update is HOT (the GIN index is not written again); one with a new word
    merges it in, in the order a rewrite writes (code points)."""
    from engine.config import load_config
    from engine.runtime import Runtime
    from engine.store import db

    monkeypatch.setenv("DUBAN_DATABASE_URL", pg_url)
    engine = db.make_engine(pg_url)
    db.upgrade(engine)
    store = Store(engine, db.session_factory(engine), Runtime(load_config(project / "config.toml")))
    ids = _six_issues(store, ("理论学习", "党费收缴", "台账", "ＯＡ系统", "", "制度"))
    s = ISSUE_SEARCH.c

    def terms(conn) -> list[str]:
        return list(conn.scalar(select(s.terms).where(s.issue_id == ids[0])))

    counts = text("SELECT pg_stat_get_xact_tuples_updated(CAST('issue_search' AS regclass)), "
                  "pg_stat_get_xact_tuples_hot_updated(CAST('issue_search' AS regclass))")

    def updated(conn, note: str) -> tuple[int, int]:
        """Rows updated and of them HOT, by adding ``note`` (the counters may hold earlier
        transactions' until the backend reports them: a difference)."""
        u0, h0 = conn.execute(counts).one()
        search._append(conn, [(ids[0], note)])
        u1, h1 = conn.execute(counts).one()
        return u1 - u0, h1 - h0

    with engine.begin() as conn:
        before = terms(conn)
        assert updated(conn, "理论学习") == (1, 1)
        assert terms(conn) == before
        assert conn.scalar(select(s.body).where(s.issue_id == ids[0])).endswith("\n理论学习")
    with engine.begin() as conn:
        assert updated(conn, "台账ｏａ") == (1, 0)  # new terms: the GIN index gains them
        merged = terms(conn)
        assert set(merged) == set(before) | {"台", "账", "台账", "账o", "o", "a", "oa"} and merged == sorted(merged)
    engine.dispose()

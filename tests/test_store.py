"""The store on a real SQLite file and on the real PostgreSQL: schema, import, transitions."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, inspect, select, text

from engine.accounts.actor import SYSTEM
from engine.accounts.users import NewUser, actor_for, add_user
from engine.errors import Refused
from engine.issues.service import transition
from engine.ledger.importer import import_ledger
from engine.store import db
from engine.store.models import HistoryEntry, Issue

from .conftest import SEED_CSV

NOW = dt.datetime(2026, 11, 25, 1, 0, tzinfo=dt.UTC)


def test_schema_is_at_head_with_indexes(store):
    engine, _, _ = store
    current, head = db.schema_status(engine)
    assert current == head == "0021"
    indexes = {ix["name"] for ix in inspect(engine).get_indexes("issues")}
    assert {"ix_issues_state_overdue_due", "ix_issues_deadline", "ix_issues_department", "ix_issues_ledger_state",
            "ix_issues_due_on", "ix_issues_overdue_due", "ix_issues_next_remind_at"} <= indexes
    assert "ix_issues_state" not in indexes  # its first column leads ix_issues_state_overdue_due
    db.upgrade(engine)  # upgrading again is a no-op
    assert db.schema_status(engine)[0] == head


def test_closed_vocabularies_are_checked_by_the_database(store):
    """kind / state / status columns refuse a value outside their list, in the database itself."""
    from sqlalchemy.exc import IntegrityError

    from engine.reminders.sweep import Sweeper

    engine, sessions, runtime = store
    with db.transaction(sessions) as s:
        import_ledger(s, runtime, SEED_CSV, now=NOW, feedback_date=dt.date(2026, 9, 1),
                      workflow_name="inspection-rectification")
    assert Sweeper(runtime, sessions).sweep(NOW + dt.timedelta(days=60)).written > 0
    for table, column in (("reminders", "kind"), ("duty_occurrences", "state"), ("duties", "kind")):
        with pytest.raises(IntegrityError) as info, engine.begin() as conn:
            conn.execute(text(f"UPDATE {table} SET {column} = 'nonsense'"))
        assert "check" in str(info.value).lower()


def test_sqlite_pragmas(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000


def test_import_transition_and_reimport(store):
    _, sessions, runtime = store
    with db.transaction(sessions) as s:
        result = import_ledger(s, runtime, SEED_CSV, now=NOW, workflow_name="inspection-rectification")
    assert (result.created, result.rows) == (26, 26)
    with db.transaction(sessions) as s:
        assert s.scalar(select(Issue.state).where(Issue.ref == "7")) == "completed"
        add_user(s, NewUser("分管副局长", roles=("leader",)), NOW)
        leader = actor_for(s, "分管副局长", "api")
        moved = transition(s, runtime, "bishan-keji-2022/7", "reopen", actor=leader, now=NOW, note="反弹")
        assert (moved.from_state, moved.to_state) == ("completed", "in_progress")
    with pytest.raises(Refused):
        with db.transaction(sessions) as s:
            transition(s, runtime, "7", "plan", actor=SYSTEM, now=NOW)
    with db.transaction(sessions) as s:
        again = import_ledger(s, runtime, SEED_CSV, now=NOW, workflow_name="inspection-rectification")
    # the file says 已完成 again for 7: a claim the workflow refuses (submit needs evidence, then a sign-off)
    assert (again.created, again.updated, again.unchanged, again.moved) == (0, 0, 26, 0)
    assert len(again.not_applied) == 1 and "evidence is required" in again.not_applied[0]
    with db.transaction(sessions) as s:
        steps = s.execute(select(HistoryEntry.trigger, HistoryEntry.from_state, HistoryEntry.to_state)
                          .where(HistoryEntry.trigger != "import").order_by(HistoryEntry.id)).all()
        assert s.scalar(select(func.count()).select_from(HistoryEntry).where(HistoryEntry.trigger == "import")) == 26
        assert [tuple(r) for r in steps] == [("reopen", "completed", "in_progress")]
        assert s.scalar(select(Issue.state).where(Issue.ref == "7")) == "in_progress"


def test_failed_import_leaves_no_ledger(store, tmp_path):
    _, sessions, runtime = store
    bad = tmp_path / "bad.csv"
    bad.write_text(SEED_CSV.read_text(encoding="utf-8").replace("2022-10-31", "10/31"), encoding="utf-8")
    from engine.errors import LedgerError

    with pytest.raises(LedgerError) as info:
        with db.transaction(sessions) as s:
            import_ledger(s, runtime, bad, now=NOW, workflow_name="inspection-rectification")
    assert len(info.value.details) == 2
    with db.transaction(sessions) as s:
        assert s.scalar(select(Issue.id).limit(1)) is None


def test_cli_on_this_backend(db_url, cli):
    env = {"DUBAN_DATABASE_URL": db_url}
    assert cli("init", **env).code == 0
    assert cli("ledger", "import", SEED_CSV, **env).code == 0
    assert cli("status", "--json", **env).json["by_state"]["long_term_sustained"] == 9
    assert cli("issue", "transition", "7", "reopen", "--by", "admin", "--note", "n", **env).code == 0
    assert cli("issue", "list", "--state", "in_progress", "--json", **env).json[0]["number"] == "7"


@pytest.mark.postgres
def test_two_processes_making_the_signing_key_at_once_agree(pg_url, project, monkeypatch):
    """Two daemons starting together both find no key; both must end up signing with one key."""
    import threading

    from engine.accounts.links import site_secret

    monkeypatch.delenv("DUBAN_SECRET_KEY", raising=False)
    engine = db.make_engine(pg_url)
    db.upgrade(engine)
    sessions = db.session_factory(engine)
    first = sessions()
    mine = site_secret(first)  # inserted, not yet committed: the other process must wait, then read it
    theirs: list[str] = []
    other = threading.Thread(target=lambda: theirs.append(_secret_in_own_transaction(sessions)))
    other.start()
    other.join(0.5)
    assert other.is_alive(), "the second process did not wait for the first one's key"
    first.commit()
    first.close()
    other.join(10)
    assert theirs == [mine]
    engine.dispose()


def _secret_in_own_transaction(sessions) -> str:
    from engine.accounts.links import site_secret

    with sessions() as session, session.begin():
        return site_secret(session)


def test_an_evidence_id_beyond_the_column_is_not_found(store):
    """Fuzzed ids past 32 bits (PostgreSQL's integer) or 64 bits (SQLite's) are a 404, not a 500."""
    from engine.app.http.uploads import evidence_response
    from engine.errors import NotFound
    from engine.issues.evidence import EvidenceStore

    with store.sessions() as session:
        for evidence_id in (2**31, 2**63, 10**30, 0, -1):
            with pytest.raises(NotFound):
                evidence_response(session, SYSTEM, evidence_id, EvidenceStore.of(store.runtime.config))


def test_a_step_leaves_its_row_as_a_fresh_plan_says_and_its_entry_chained(store, tmp_path):
    """A step writes only the columns it changed, on the driver (issue #22): what it leaves is the new
    state, the deadline given, the plan the reminder core gives, and one entry chained to the head,
    whether the issue is named by reference or handed over loaded."""
    from engine.issues import history
    from engine.issues.queries import resolve_ref
    from engine.issues.service import replan

    _, sessions, runtime = store
    sheet = tmp_path / "t.csv"
    sheet.write_text("序号,方面,问题类别,具体问题,整改措施,责任领导,责任科室,整改时限,整改状态\n"
                     "1,方面,类别,问题一,措施,党组书记,办公室,2026-12-31,已制定方案\n"
                     "2,方面,类别,问题二,措施,党组书记,办公室,,待整改\n", encoding="utf-8")
    with db.transaction(sessions) as s:
        import_ledger(s, runtime, sheet, now=NOW, workflow_name="inspection-rectification")
    later = NOW + dt.timedelta(days=1)
    with db.transaction(sessions) as s:
        transition(s, runtime, "t/1", "start", actor=SYSTEM, now=later)
    with db.transaction(sessions) as s:
        loaded = resolve_ref(s, "t/2", for_update=True)
        transition(s, runtime, loaded, "plan", actor=SYSTEM, now=later, deadline=dt.date(2027, 1, 29))
    with db.transaction(sessions) as s:
        rows = {r.ref: r for r in s.execute(select(Issue.ref, Issue.state, Issue.state_since, Issue.updated_at,
                                                   Issue.deadline, Issue.round))}
        assert (rows["1"].state, rows["1"].deadline, rows["1"].round) == ("in_progress", dt.date(2026, 12, 31), 1)
        assert (rows["2"].state, rows["2"].deadline, rows["2"].round) == ("planned", dt.date(2027, 1, 29), 1)
        assert all(r.state_since == r.updated_at == later for r in rows.values())
        for ref in ("1", "2"):
            issue = resolve_ref(s, f"t/{ref}")
            stored = (issue.remind_after, issue.next_remind_at, issue.due_on, issue.overdue_on)
            assert stored[0] == later and stored[2] is not None
            replan(s, runtime, issue, later)  # the same plan again: nothing for the commit to change
            assert (issue.remind_after, issue.next_remind_at, issue.due_on, issue.overdue_on) == stored
        planned = s.scalars(select(HistoryEntry).join(Issue).where(Issue.ref == "2")
                            .order_by(HistoryEntry.id.desc()).limit(1)).one()
        assert (planned.trigger, planned.from_state, planned.to_state, planned.door) == ("plan", "identified",
                                                                                         "planned", "system")
        assert planned.changes == [{"field": "deadline", "before": None, "after": "2027-01-29"}]
        assert history.verify(s).ok

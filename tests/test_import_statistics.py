"""A large first import re-reads PostgreSQL's statistics part-way, in its own transaction."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, text

from engine.duties import book
from engine.ledger.importer import import_ledger
from engine.store import db
from engine.store.models import Issue

from .conftest import SEED_CSV

NOW = dt.datetime(2026, 11, 25, 1, 0, tzinfo=dt.UTC)


def reltuples(session) -> float:
    return float(session.scalar(text("SELECT reltuples FROM pg_class WHERE relname = 'issues'")))


@pytest.mark.postgres
def test_following_many_issues_analyzes_after_the_first_chunks(pg_url, project, monkeypatch):
    from engine.config import load_config
    from engine.runtime import Runtime

    monkeypatch.setenv("DUBAN_DATABASE_URL", pg_url)
    engine = db.make_engine(pg_url)
    db.upgrade(engine)  # statistics taken on the empty tables, as after `duban init`
    runtime = Runtime(load_config(project / "config.toml"))
    sessions = db.session_factory(engine)
    with db.transaction(sessions) as s:
        assert reltuples(s) <= 0
    monkeypatch.setattr(book, "_CHUNK", 4)  # 26 issues: 7 chunks, ANALYZE after the second
    analyzed: list[str] = []
    real = book._Statistics.chunk

    def counted(self) -> None:
        was = self.done
        real(self)
        if self.done and not was:
            analyzed.append("once")

    monkeypatch.setattr(book._Statistics, "chunk", counted)
    with db.transaction(sessions) as s:
        import_ledger(s, runtime, SEED_CSV, now=NOW, workflow_name="inspection-rectification")
        runtime.duty_book.follow_issues(s, list(s.scalars(select(Issue.id))), NOW)
        # the statistics now count the rows this (uncommitted) transaction wrote
        assert reltuples(s) == 26
    assert analyzed == ["once"] * len(analyzed) and analyzed


def test_a_small_follow_never_analyzes(store, monkeypatch):
    engine, sessions, runtime = store
    statements: list[str] = []
    from sqlalchemy import event

    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with db.transaction(sessions) as s:
        import_ledger(s, runtime, SEED_CSV, now=NOW, workflow_name="inspection-rectification")
    assert not any(sql.lstrip().upper().startswith("ANALYZE") for sql in statements)

"""A catch-up sweep streams: one batch at a time, nothing of a batch kept once it is written."""

from __future__ import annotations

import datetime as dt
import gc

from sqlalchemy import func, select

from engine.ledger.importer import import_ledger
from engine.reminders import sweep
from engine.reminders.subjects import IssueSubject
from engine.store import db
from engine.store.models import Reminder

from .conftest import SEED_CSV

NOW = dt.datetime(2026, 11, 25, 1, 0, tzinfo=dt.UTC)


def live_subjects() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, IssueSubject))


def test_a_catch_up_holds_at_most_one_batch(store, monkeypatch):
    _, sessions, runtime = store
    with db.transaction(sessions) as s:
        import_ledger(s, runtime, SEED_CSV, now=NOW, feedback_date=dt.date(2026, 9, 1),
                      workflow_name="inspection-rectification")
    monkeypatch.setattr(sweep, "BATCH", 4)
    batches: list[tuple[str, int, int]] = []
    gc.collect()
    before = live_subjects()

    def after_batch(table: str, rows: int) -> None:
        batches.append((table, rows, live_subjects() - before))

    later = NOW + dt.timedelta(days=730)  # long after every deadline: a catch-up over all of them
    result = sweep.Sweeper(runtime, sessions, on_batch=after_batch).sweep(later)
    issue_batches = [b for b in batches if b[0] == "issues"]
    assert result.examined > 2 * 4 and len(issue_batches) >= 3  # streamed in several batches
    assert all(rows <= 4 for _, rows, _ in batches)
    assert all(kept == 0 for _, _, kept in batches), batches  # each batch let go before the next
    assert sum(rows for _, rows, _ in batches) == result.examined
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Reminder)) == result.written > 0

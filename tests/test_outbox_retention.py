"""Outbox retention (issue #23): finished messages older than [notifications] keep_days are deleted;
pending ones, newer ones, the reminders they carried and the history stay, and nothing is re-sent."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from .conftest import ROOT

EXAMPLE = ROOT / "examples" / "2026-区审计局.csv"
T0 = "2026-12-01T09:00"
SWEEP = "2027-01-11T10:00"  # a Monday morning, past the example's deadlines: reminders, delivered at once


def _counts(project) -> dict[str, int]:
    from engine.app.cli.context import App
    from notifications.store import DeliveryAttempt, OutboxMessage, ReminderMessage

    app = App(str(project / "config.toml"))
    with app.reading() as session:
        by_status = dict(session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all())
        return {**{str(k): int(v) for k, v in by_status.items()},
                "attempts": session.scalar(select(func.count()).select_from(DeliveryAttempt)) or 0,
                "links": session.scalar(select(func.count()).select_from(ReminderMessage)) or 0,
                "reminders": session.scalar(select(func.count()).select_from(_reminders())) or 0}


def _reminders():
    from notifications.store import ReminderMessage

    return ReminderMessage.__table__.c.reminder_id.table.metadata.tables["reminders"]


def test_prune_deletes_old_finished_messages_only_and_nothing_is_sent_again(project, cli, db_url, monkeypatch):
    monkeypatch.setenv("DUBAN_DATABASE_URL", db_url)
    with (project / "config.toml").open("a", encoding="utf-8") as config:
        config.write('[notifications]\njitter_seconds = 0\n[channels.console]\nkind = "console"\n'
                     '[recipients."办公室"]\nconsole = ""\n[recipients."财务室"]\nconsole = ""\n')
    assert cli("init", "--at", T0).code == 0
    assert cli("ledger", "import", EXAMPLE, "--at", T0).code == 0
    swept = cli("sweep", "--at", SWEEP)
    assert swept.code == 0, swept.err
    before = _counts(project)
    assert before.get("sent", 0) > 0 and before["attempts"] >= before["sent"] and before["reminders"] > 0, before
    finished = before["sent"] + before.get("undeliverable", 0)
    # one old message still waiting must survive whatever its age
    from engine.app.cli.context import App
    from notifications.store import OutboxMessage, OutboxStatus

    app = App(str(project / "config.toml"))
    with app.transaction() as session:
        session.add(OutboxMessage(key="old-pending", channel="console", recipient="办公室", status=OutboxStatus.PENDING,
                                  created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                                  next_attempt_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC)))

    young = cli("outbox", "prune", "--at", "2027-03-01T10:00")  # 49 days on: within the default 180
    assert young.code == 0 and young.out.startswith("0 finished message(s)"), young.out
    old = cli("outbox", "prune", "--at", "2027-08-01T10:00")
    assert old.code == 0 and old.out.startswith(f"{finished} finished message(s)"), old.out
    after = _counts(project)
    assert after.get("sent", 0) == 0 and after.get("undeliverable", 0) == 0 and after["attempts"] == 0 and after["links"] == 0
    assert after.get("pending") == 1  # the waiting message is kept
    assert after["reminders"] == before["reminders"]  # the dedupe keys stay
    # the reminders keep their routed mark: a sweep at the same instant routes and sends nothing again
    again = cli("sweep", "--at", SWEEP)
    assert again.code == 0 and "0 reminder(s) routed" in again.out, again.out
    assert _counts(project).get("sent", 0) == 0
    # keep_days = 0 keeps everything
    assert "nothing deleted" in cli("outbox", "prune", "--keep-days", "0", "--at", "2030-01-01T10:00").out

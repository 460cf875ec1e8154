"""``duban outbox``: messages queued, sent, failed (dead letters) and undeliverable."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from notifications.outbox import Outbox
from notifications.queue import outbox_messages
from notifications.reports import gaps
from notifications.retention import prune
from notifications.settings import load_notify

from ...i18n import _
from .context import App, at_option, json_option, pass_app
from .language import Group
from .output import out, print_json, say


@click.group("outbox", cls=Group)
def outbox_group() -> None:
    """Messages queued, sent, failed (dead letters) and undeliverable."""


@outbox_group.command("list")
@click.option("--status", type=click.Choice(["pending", "sent", "failed", "dead", "undeliverable"]),
              help="Only this status ('failed' means dead letters).")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 100_000))
@json_option
@pass_app
def outbox_list(app: App, status: str | None, limit: int, as_json: bool) -> None:
    """List outbox messages, newest first."""
    tz = app.config.tz
    with app.transaction() as session:
        found = outbox_messages(session, status=("dead" if status == "failed" else status), limit=limit)
        rows: list[dict[str, Any]] = [
            {"id": m.id, "key": m.key, "status": m.status, "channel": m.channel, "recipient": m.recipient,
             "address": m.address, "subject": m.subject, "attempts": m.attempts, "last_error": m.last_error,
             "next_attempt_at": m.next_attempt_at.astimezone(tz).isoformat() if m.next_attempt_at else None,
             "sent_at": m.sent_at.astimezone(tz).isoformat() if m.sent_at else None,
             "created_at": m.created_at.astimezone(tz).isoformat()} for m in found]
        # what the platform said after accepting: "sent but not delivered to N of M"
        reports = gaps(session, [r["id"] for r in rows])
    notes: dict[int, str] = {}
    for r in rows:
        gap = reports.get(r["id"])
        r["delivery"] = None if gap is None else {
            "recipients": gap.recipients, "missed": gap.missed, "missed_ids": list(gap.missed_ids),
            "reason": gap.reason, "pending": gap.pending, "summary": gap.summary()}
        if gap is not None and gap.missed:
            notes[r["id"]] = gap.summary()
    if as_json:
        print_json(rows)
        return
    table = Table(_("id"), _("status"), _("channel"), _("recipient"), _("attempts"), _("next / sent"), _("subject / error"))
    for r in rows:
        note = r["last_error"] or notes.get(r["id"]) or r["subject"]
        table.add_row(str(r["id"]), str(r["status"]), str(r["channel"] or "—"), str(r["recipient"]), str(r["attempts"]),
                      str(r["sent_at"] or r["next_attempt_at"] or "")[:16], str(note))
    out.print(table)
    say(f"{len(rows)} message(s)")


@outbox_group.command("retry")
@click.argument("message_id", type=click.IntRange(1, 2**63 - 1))
@at_option
@pass_app
def outbox_retry(app: App, message_id: int, at: str | None) -> None:
    """Put a dead or undeliverable message back in the queue; the next sweep delivers it."""
    now = app.now(at)
    with app.transaction() as session:
        message = Outbox.retry(session, message_id, now)
    say(f"message {message.id} to {message.recipient} via {message.channel or '—'}: queued again")


@outbox_group.command("prune")
@click.option("--keep-days", type=click.IntRange(0, 36500), metavar="DAYS",
              help="Keep finished messages this many days (default [notifications] keep_days; 0 keeps all).")
@at_option
@pass_app
def outbox_prune(app: App, keep_days: int | None, at: str | None) -> None:
    """Delete finished messages (sent, dead, undeliverable, silenced) older than keep_days; the daemon's
    leader does this hourly. Reminders and history are kept."""
    keep = load_notify(app.runtime.config).settings.keep_days if keep_days is None else keep_days
    pruned = prune(app.sessions, app.now(at), keep)
    say(f"{pruned} finished message(s) older than {keep} day(s) deleted" if keep else "keep_days = 0: nothing deleted")

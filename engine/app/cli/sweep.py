"""``duban sweep``: one tick for cron users: duties ahead, due reminders written, routed and delivered."""

from __future__ import annotations

import click

from ..notifying import build_notifier
from ..tick import tick
from .context import App, at_option, pass_app
from .language import Command
from .output import say


@click.command("sweep", cls=Command)
@at_option
@pass_app
def sweep(app: App, at: str | None) -> None:
    """One pass: store duty occurrences ahead, then write every reminder due now (for cron users)."""
    now = app.now(at)
    app.require_schema()
    notifier = build_notifier(app.runtime, app.sessions)
    try:
        done = tick(app.runtime, notifier, app.sessions, app.runtime.duty_definitions(), now, deliver=True)
    finally:
        notifier.close()
    result, r, d = done.swept, done.routed, done.delivered
    assert d is not None
    say(f"sweep at {now.astimezone(app.config.tz).isoformat()}: {result.examined} due row(s) examined, "
        f"{result.written} reminder(s) written in {result.seconds * 1000:.0f} ms")
    for line in result.errors:
        say(f"  error: {line}")
    say(f"notify: {r.reminders} reminder(s) routed ({r.silenced} silenced) into {r.messages} message(s), "
        f"{r.undeliverable} undeliverable; delivered {d.sent}, retrying {d.retried}, dead {d.dead}, "
        f"waiting {d.postponed}")

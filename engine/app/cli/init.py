"""``duban init``: create or upgrade the database, register the workflows and duties, add the administrators."""

from __future__ import annotations

import click

from ...issues.search import ensure_index
from ...reminders.replan import replan_if_calendar_changed
from .context import App, at_option, pass_app
from .db import upgrade_schema
from .language import Command
from .output import say


def _sync_workflows(app: App, at: str | None) -> None:
    now = app.now(at)
    with app.transaction() as session:
        for version, created in app.registry.sync_all(session, now):
            mark = "registered" if created else "unchanged"
            say(f"workflow {version.name}@{version.version}: {mark}")
        duties = app.runtime.duty_definitions()
        synced = app.runtime.duty_book.sync(session, duties, now)
        say(f"duties: {len(duties)} defined ({synced.created} new, {synced.updated} changed, "
            f"{synced.retired} retired), {synced.occurrences} occurrence(s) stored ahead")
        if synced.waiting:
            say(f"duties bound to units not here yet (they start with the unit's first ledger or account): "
                f"{', '.join(synced.waiting)}")


@click.command("init", cls=Command)
@at_option
@pass_app
def init(app: App, at: str | None) -> None:
    """Create or upgrade the database and register the workflows."""
    from ...accounts.users import ensure_admins

    upgrade_schema(app, at=at)
    say(f"database ready: {app.db_engine.url.render_as_string(hide_password=True)}")
    with app.transaction() as session:
        indexed = ensure_index(session)
    if indexed is not None:
        say(f"search index built: {indexed} issue(s)")
    _sync_workflows(app, at)
    with app.transaction() as session:
        planned = replan_if_calendar_changed(session, app.runtime, app.runtime.calendar, app.now(at))
    if planned:
        say(f"the calendar changed: {planned} stored deadline(s) and reminder(s) planned again")
    with app.transaction() as session:
        made = ensure_admins(session, app.config.workflows.admins, app.now(at))
    for name in made:
        say(f"user {name}: administrator (set a password with `duban user passwd {name}`)")

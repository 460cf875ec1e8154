"""``duban init`` and ``duban db``: the schema and the registered workflows."""

from __future__ import annotations

import click

from ...issues.search import ensure_index
from ...reminders.replan import replan_all, replan_if_calendar_changed
from ...store import db
from .context import App, at_option, pass_app
from .output import say

# The first revision whose rows carry the reminder core's plan (due_on, overdue_on).
PLANNED_FROM = "0005"


def _upgrade(app: App, revision: str = "head", at: str | None = None) -> tuple[str | None, str | None]:
    """Upgrade; rows written before the plan existed are planned now (one pass, all rows)."""
    before, _ = db.schema_status(app.db_engine)
    db.upgrade(app.db_engine, revision)
    after, _ = db.schema_status(app.db_engine)
    if before is not None and before < PLANNED_FROM <= (after or ""):
        with app.transaction() as session:
            planned = replan_all(session, app.runtime.core, app.now(at))
        say(f"planned {planned} row(s) again for the new schema")
    return before, after


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


@click.command("init")
@at_option
@pass_app
def init(app: App, at: str | None) -> None:
    """Create or upgrade the database and register the workflows."""
    from ...accounts.users import ensure_admins

    _upgrade(app, at=at)
    say(f"database ready: {app.db_engine.url.render_as_string(hide_password=True)}")
    with app.transaction() as session:
        indexed = ensure_index(session)
    if indexed is not None:
        say(f"search index built: {indexed} issue(s)")
    _sync_workflows(app, at)
    with app.transaction() as session:
        planned = replan_if_calendar_changed(session, app.runtime.core, app.runtime.calendar, app.now(at))
    if planned:
        say(f"the calendar changed: {planned} stored deadline(s) and reminder(s) planned again")
    with app.transaction() as session:
        made = ensure_admins(session, app.config.workflows.admins, app.now(at))
    for name in made:
        say(f"user {name}: administrator (set a password with `duban user passwd {name}`)")


@click.group("db")
def db_group() -> None:
    """Database schema commands."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to.")
@pass_app
def upgrade(app: App, revision: str) -> None:
    """Upgrade the schema (Alembic migrations)."""
    _, head = db.schema_status(app.db_engine)
    before, after = _upgrade(app, revision)
    say(f"schema: {before or 'empty'} -> {after} (head {head})")


@db_group.command("replan")
@at_option
@pass_app
def replan(app: App, at: str | None) -> None:
    """Plan every open row's reminders again (after changing [calendar] extra_holidays, say)."""
    with app.transaction() as session:
        planned = replan_all(session, app.runtime.core, app.now(at))
    say(f"planned {planned} row(s)")


@db_group.command("status")
@pass_app
def status(app: App) -> None:
    """Show the schema revision of the database and of this duban."""
    current, head = db.schema_status(app.db_engine)
    say(f"database: {current or 'empty'}; this duban: {head}")

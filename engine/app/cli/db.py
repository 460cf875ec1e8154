"""``duban db``: the schema (upgrade, status) and planning every stored row again."""

from __future__ import annotations

import click

from ...reminders.replan import replan_all
from ...store import db
from .context import App, at_option, pass_app
from .language import Group
from .output import say

# The first revision whose rows carry the reminder core's plan (due_on, overdue_on).
PLANNED_FROM = "0005"


def upgrade_schema(app: App, revision: str = "head", at: str | None = None) -> tuple[str | None, str | None]:
    """Upgrade; rows written before the plan existed are planned now (one pass, all rows)."""
    before, _ = db.schema_status(app.db_engine)
    db.upgrade(app.db_engine, revision)
    after, _ = db.schema_status(app.db_engine)
    if before is not None and before < PLANNED_FROM <= (after or ""):
        with app.transaction() as session:
            planned = replan_all(session, app.runtime, app.now(at))
        say(f"planned {planned} row(s) again for the new schema")
    return before, after


@click.group("db", cls=Group)
def db_group() -> None:
    """Database schema commands."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to.")
@pass_app
def upgrade(app: App, revision: str) -> None:
    """Upgrade the schema (Alembic migrations)."""
    _, head = db.schema_status(app.db_engine)
    before, after = upgrade_schema(app, revision)
    say(f"schema: {before or 'empty'} -> {after} (head {head})")


@db_group.command("replan")
@at_option
@pass_app
def replan(app: App, at: str | None) -> None:
    """Plan every open row's reminders again (after changing [calendar] extra_holidays, say)."""
    with app.transaction() as session:
        planned = replan_all(session, app.runtime, app.now(at))
    say(f"planned {planned} row(s)")


@db_group.command("status")
@pass_app
def status(app: App) -> None:
    """Show the schema revision of the database and of this duban."""
    current, head = db.schema_status(app.db_engine)
    say(f"database: {current or 'empty'}; this duban: {head}")

"""``duban init`` and ``duban db``: the schema and the registered workflows."""

from __future__ import annotations

import click

from ..store import db
from .app import App, at_option, pass_app
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


@click.command("init")
@at_option
@pass_app
def init(app: App, at: str | None) -> None:
    """Create or upgrade the database and register the workflows."""
    db.upgrade(app.db_engine)
    say(f"database ready: {app.db_engine.url.render_as_string(hide_password=True)}")
    _sync_workflows(app, at)


@click.group("db")
def db_group() -> None:
    """Database schema commands."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to.")
@pass_app
def upgrade(app: App, revision: str) -> None:
    """Upgrade the schema (Alembic migrations)."""
    before, head = db.schema_status(app.db_engine)
    db.upgrade(app.db_engine, revision)
    after, _ = db.schema_status(app.db_engine)
    say(f"schema: {before or 'empty'} -> {after} (head {head})")


@db_group.command("status")
@pass_app
def status(app: App) -> None:
    """Show the schema revision of the database and of this duban."""
    current, head = db.schema_status(app.db_engine)
    say(f"database: {current or 'empty'}; this duban: {head}")


def register(cli: click.Group) -> None:
    cli.add_command(init)
    cli.add_command(db_group)

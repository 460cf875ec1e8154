"""What every command needs, built lazily: configuration, database, registry, clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property

import click
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ...accounts.actor import Actor
from ...accounts.directory import AccountHearers
from ...accounts.users import actor_for
from ...clock import Clock, FixedClock, parse_instant
from ...config import Config, load_config
from ...reminders.calendar_years import load_confirmations
from ...runtime import Runtime
from ...store import db
from ...workflow.registry import WorkflowRegistry


class App:
    def __init__(self, config_path: str | None):
        self.config_path = config_path
        self._schema_checked = False

    @cached_property
    def config(self) -> Config:
        return load_config(self.config_path)

    @cached_property
    def db_engine(self) -> Engine:
        return db.make_engine(self.config.database.url, echo=self.config.database.echo)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return db.session_factory(self.db_engine)

    @cached_property
    def readers(self) -> sessionmaker[Session]:
        return db.read_factory(self.db_engine)

    @cached_property
    def runtime(self) -> Runtime:
        return Runtime(self.config, hearers=AccountHearers())  # the reminders ask the accounts through it

    @property
    def registry(self) -> WorkflowRegistry:
        return self.runtime.registry

    def clock(self, at: str | None) -> Clock:
        return FixedClock(parse_instant(at, self.config.tz)) if at else Clock()

    def now(self, at: str | None) -> dt.datetime:
        return self.clock(at).now()

    def require_schema(self) -> None:
        if not self._schema_checked:
            db.require_current_schema(self.db_engine)
            self._schema_checked = True
            # the years an administrator confirmed end their provisional warning before any question
            with self.readers() as session:
                load_confirmations(session, self.runtime.calendar)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work on an up-to-date schema; commits on success, rolls back on any error."""
        self.require_schema()
        with db.transaction(self.sessions) as session:
            yield session

    def sync_duties(self, at: str | None) -> None:
        """Store duty occurrences up to the horizon first, as `duty list` does, so none is missing."""
        with self.transaction() as session:
            self.runtime.duty_book.sync(session, self.runtime.duty_definitions(), self.now(at))

    def actor(self, session: Session, by: str, door: str = "cli") -> Actor:
        """The user ``--by`` names (an operator at the shell may act as any user; the door says CLI)."""
        return actor_for(session, by, door)

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only look at the store (never waits for a writer); nothing it does is kept."""
        self.require_schema()
        with self.readers() as session:
            try:
                yield session
            finally:
                session.rollback()


pass_app = click.make_pass_decorator(App)

at_option = click.option(
    "--at", "at", metavar="TIME", default=None,
    help="Act as if it were this instant (ISO-8601; without an offset, in the configured time zone).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")

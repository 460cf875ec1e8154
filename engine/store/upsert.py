"""INSERT … ON CONFLICT DO NOTHING, on SQLite and PostgreSQL alike.

Writing a reminder or an occurrence twice must be a no-op, not an error and not a duplicate: the
unique key decides, inside the database, so two processes cannot both win.
"""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignore(session: Session, table: Table, conflict_columns: list[str]):
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=conflict_columns)
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=conflict_columns)
    raise NotImplementedError(f"duban supports SQLite and PostgreSQL, not {dialect}")

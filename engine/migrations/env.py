"""Alembic environment: runs on the connection duban hands it (see engine.store.db.upgrade)."""

from alembic import context
from sqlalchemy import create_engine

import engine.store.accounts  # noqa: F401  (its tables join the metadata)
from engine.store.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # plain `alembic` invocation during development
        connectable = create_engine(config.get_main_option("sqlalchemy.url"))
        with connectable.connect() as connection:
            _migrate(connection)
            connection.commit()
        return
    _migrate(connection)


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """What autogenerate compares: not SQLite's FTS5 table of the search index and its shadow tables
    (made by revision 0017 in SQL, no model has them), nor an index made on another database only."""
    if type_ == "table" and reflected and name and name.startswith("issue_search_fts"):
        return False
    ddl_if = getattr(obj, "_ddl_if", None) if type_ == "index" else None
    dialect = context.get_context().dialect.name
    return not (ddl_if is not None and ddl_if.dialect is not None and ddl_if.dialect != dialect)


def _migrate(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


run()

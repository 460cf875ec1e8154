"""Alembic environment: runs on the connection duban hands it (see engine.store.db.upgrade)."""

from alembic import context
from sqlalchemy import Connection, create_engine

# Every module that declares tables, so that autogenerate compares all of them: a table whose
# module is not imported here looks to `alembic revision --autogenerate` like one to drop.
# They all share one MetaData (engine.store.models.Base.metadata).
import engine.store.accounts  # noqa: F401
import notifications.store  # noqa: F401
from engine.store.autogen import include_object_for
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


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        compare_server_default=True,
        include_object=include_object_for(connection.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()


run()

"""A Core statement compiled once for a connection's dialect and run on the driver's cursor.

For the few statements that run once per delivered message or once per step of an issue.
SQLAlchemy's own ``execute`` costs about 100 µs a statement here (cache lookup, execution context,
result wrapping) where the driver takes 10–20 µs; the outbox records each outcome in its own
transaction before the next send (so a crash re-sends at most one message), and at that rate the
overhead alone would cost a fifth of the delivery throughput (``bench/delivery.py``); a step of an
issue runs four such statements (``engine.issues.service``, ``history``, ``engine.duties.book``).
The SQL, its constant parameters and every bound value's conversion still come from SQLAlchemy (the
compiled statement and the column types' bind processors), so the statement reads and converts
exactly as ``execute`` would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import Executable

from .writers import BUSY_SECONDS, queue_of


class Prepared:
    """``statement`` ready to run with a mapping of its bound parameters' values."""

    def __init__(self, statement: Executable, dialect: Dialect):
        compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        self._constants: dict[str, Any] = dict(compiled.params)
        self._order: tuple[str, ...] | None = tuple(compiled.positiontup or ()) if compiled.positional else None
        self._convert: dict[str, Callable[[Any], Any]] = {}
        for name, bind in compiled.binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self._convert[name] = process

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        """The driver's parameters for ``values`` (the statement's own constants filled in)."""
        merged = {**self._constants, **values}
        for name, process in self._convert.items():
            if name in merged:
                merged[name] = process(merged[name])
        if self._order is not None:
            return tuple(merged[name] for name in self._order)
        return merged

    @contextmanager
    def _executed(self, conn: Connection, values: Mapping[str, Any]) -> Iterator[Any]:
        """A driver cursor that has executed the statement, inside the transaction ``conn`` has begun."""
        parameters = self.parameters(values)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(self.sql, parameters)
            yield cursor
        except conn.dialect.loaded_dbapi.Error as exc:
            # Callers catch SQLAlchemy's exceptions (OperationalError for a locked database, ...).
            raise DBAPIError.instance(self.sql, parameters, exc, conn.dialect.loaded_dbapi.Error,
                                      dialect=conn.dialect) from exc
        finally:
            cursor.close()

    def run(self, conn: Connection, values: Mapping[str, Any]) -> int:
        """Execute; the driver's row count (rows updated, deleted or inserted)."""
        with self._executed(conn, values) as cursor:
            return int(cursor.rowcount)

    def run_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
        """Execute once per row of values, in one driver call (``executemany``); the rows changed
        by all of them together (sqlite3 and psycopg both sum an executemany's row counts)."""
        if not rows:
            return 0
        parameters = [self.parameters(values) for values in rows]
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(self.sql, parameters)
            return int(cursor.rowcount)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(self.sql, parameters, exc, conn.dialect.loaded_dbapi.Error,
                                      dialect=conn.dialect) from exc
        finally:
            cursor.close()

    def first(self, conn: Connection, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row of a SELECT (raw driver values), or None."""
        with self._executed(conn, values) as cursor:
            row = cursor.fetchone()
            return None if row is None else tuple(row)

    def all(self, conn: Connection, values: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Every row of a SELECT (raw driver values)."""
        with self._executed(conn, values or {}) as cursor:
            return [tuple(row) for row in cursor.fetchall()]


@contextmanager
def driver_transaction(conn: Connection) -> Iterator[None]:
    """A writing transaction for prepared statements on ``conn``.

    On SQLite it is BEGIN IMMEDIATE and COMMIT sent to the driver (whose connection is in
    autocommit mode, see engine.store.db): SQLAlchemy's transaction objects and events cost as
    much as the two statements inside. Elsewhere it is ``conn.begin()``.
    """
    if conn.dialect.name != "sqlite":
        with conn.begin():
            yield
        return
    raw = conn.connection.driver_connection
    queue = queue_of(conn.engine)  # in turn with the process's other writers (engine.store.writers)
    if queue is not None and not queue.acquire(raw, BUSY_SECONDS):
        raise OperationalError("BEGIN IMMEDIATE", None, Exception("database is locked: the writer queue did not move"))
    try:
        raw.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
        try:
            yield
        except BaseException:
            raw.execute("ROLLBACK")  # type: ignore[union-attr]
            raise
        raw.execute("COMMIT")  # type: ignore[union-attr]
    finally:
        if queue is not None:
            queue.release(raw)


class PreparedSet:
    """Statements prepared on first use for each dialect they meet (one per engine, in practice)."""

    def __init__(self, statements: Mapping[Any, Executable]):
        self._statements = dict(statements)
        self._ready: dict[tuple[str, str, str, Any], Prepared] = {}

    def get(self, conn: Connection, key: Any) -> Prepared:
        dialect = conn.dialect
        slot = (dialect.name, dialect.driver, dialect.paramstyle, key)
        ready = self._ready.get(slot)
        if ready is None:
            ready = self._ready[slot] = Prepared(self._statements[key], dialect)
        return ready

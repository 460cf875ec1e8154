"""Connecting to the database and bringing its schema up to date.

SQLite is the embedded default (WAL so readers never block the writer, a busy timeout so two
processes wait rather than fail, foreign keys on). Within one process the writing transactions of
a database queue up in arrival order (``WriterQueue``) before BEGIN IMMEDIATE, so the server's
threads take the write lock in turn instead of polling ``busy_timeout`` in no fair order.
PostgreSQL is reached through psycopg 3 with a pool as large as the threads that can hold a
connection at once. The schema is Alembic's alone: nothing here calls ``create_all``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from ..errors import ConfigError, DubanError
from .writers import BUSY_SECONDS, WriterQueue, queue_of, register

# Threads that can hold a PostgreSQL connection at once: the HTTP server's worker threads
# (Starlette's run_in_threadpool, anyio's default limiter of 40) and the daemon's jobs (8). A pool
# smaller than that makes a busy server's threads queue for a connection on top of the database.
HTTP_THREADS = 40
JOB_THREADS = 8
POOL_SIZE = HTTP_THREADS + JOB_THREADS
POOL_OVERFLOW = 8  # a CLI command or a test beside a full server
# Instead of a round trip before every checkout (pool_pre_ping), connections are replaced after
# half an hour, before a firewall or PgBouncer drops one that sat idle; a connection that the
# server did close fails one statement and is discarded by the pool.
POOL_RECYCLE = 1800

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` as people write it and use the psycopg 3 driver for it."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (the pysqlite driver would otherwise
    # defer it), so a writing transaction can be BEGIN IMMEDIATE; see _sqlite_begin.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode survives a crash of the process (not of the machine's power) and is the
    # setting SQLite recommends for WAL; FULL would cost an fsync per commit.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={BUSY_SECONDS * 1000}")
    cur.close()


WRITES = "duban_writes"  # the execution option that marks a connection of the writing sessions


def _sqlite_begin(queue: WriterQueue, conn) -> None:
    # A writing transaction takes the write lock up front (IMMEDIATE): one that reads then writes
    # (every sweep and transition) then waits instead of failing with "database is locked" when
    # another writer came in between. Within the process it first waits its turn in the queue, so
    # BEGIN IMMEDIATE finds the lock free unless another process holds it (then busy_timeout).
    # Reads (pages, /healthz, previews) begin DEFERRED and never wait for a writer: in WAL mode
    # they read the last committed state. Straight to the driver: this runs for every
    # transaction, and SQLAlchemy's execution path costs more than the statement itself.
    driver = conn.connection.driver_connection
    if not conn.get_execution_options().get(WRITES):
        driver.execute("BEGIN")
        return
    if not queue.acquire(driver, BUSY_SECONDS):
        raise OperationalError("BEGIN IMMEDIATE", None, Exception(
            f"database is locked: waited {BUSY_SECONDS} s behind this process's other writers"))
    try:
        driver.execute("BEGIN IMMEDIATE")
    except BaseException:
        queue.release(driver)
        raise


def _sqlite_commit(queue: WriterQueue, conn) -> None:
    # The next writer may begin only once COMMIT is done, so it is issued here, then the turn
    # passes on; the driver's own commit that follows finds no transaction and does nothing.
    driver = conn.connection.driver_connection
    if queue.holds(driver):
        # if COMMIT fails the transaction is still open: the rollback that follows passes the turn on
        driver.execute("COMMIT")
        queue.release(driver)


def _sqlite_rollback(queue: WriterQueue, conn) -> None:
    driver = conn.connection.driver_connection
    if queue.holds(driver):
        try:
            driver.rollback()
        finally:
            queue.release(driver)


def _sqlite_pool_release(queue: WriterQueue, dbapi_conn, _record: ConnectionPoolEntry, *_rest) -> None:
    # A connection returned, reset or closed by the pool with a transaction still open (an
    # exception in the middle, a connection dropped) never saw our rollback: pass its turn on.
    if queue.holds(dbapi_conn):
        try:
            dbapi_conn.rollback()
        except sqlite3.Error:  # a closed or broken connection: its lock went with it
            pass
        queue.release(dbapi_conn)


# A bulk write (an import, the search index's rebuild) on SQLite gets this much page cache (KiB)
# until its connection goes back to the pool. With SQLite's default 2 MB, importing 10,000 issues
# into a database of 480,000 took 72 s, most of it FTS5 merging the search index's segments
# through a cache a hundredth of their size; with 256 MiB, 13 s. Only bulk work gets it: every
# pooled connection keeping that much would cost gigabytes.
BULK_CACHE_KIB = 256 * 1024
_BULK = "duban.bulk_cache"


def bulk_cache(conn: Connection) -> None:
    """Give this connection (SQLite) a large page cache for the bulk work of its transaction."""
    if conn.dialect.name == "sqlite" and not conn.info.get(_BULK):
        conn.exec_driver_sql(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
        conn.info[_BULK] = True


def _sqlite_bulk_done(dbapi_conn, record: ConnectionPoolEntry) -> None:
    if record.info.pop(_BULK, False):
        try:
            dbapi_conn.execute("PRAGMA cache_size=-2000")  # SQLite's default again
            dbapi_conn.execute("PRAGMA shrink_memory")
        except sqlite3.Error:  # a closed or broken connection: its cache went with it
            pass


def make_engine(url: str, *, echo: bool = False) -> Engine:
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"database url is not valid: {url!r}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        db_engine = create_engine(url, echo=echo, connect_args={"timeout": BUSY_SECONDS})
        queue = register(db_engine)
        event.listen(db_engine, "connect", _sqlite_pragmas)
        event.listen(db_engine, "begin", partial(_sqlite_begin, queue))
        event.listen(db_engine, "commit", partial(_sqlite_commit, queue))
        event.listen(db_engine, "rollback", partial(_sqlite_rollback, queue))
        for name in ("reset", "checkin", "invalidate", "close"):
            event.listen(db_engine.pool, name, partial(_sqlite_pool_release, queue))
        event.listen(db_engine.pool, "checkin", _sqlite_bulk_done)
    else:
        try:
            db_engine = create_engine(url, echo=echo, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW,
                                      pool_recycle=POOL_RECYCLE, pool_pre_ping=False)
        except ModuleNotFoundError as exc:  # the driver is an extra: SQLite-only installs do without it
            raise ConfigError(f"{parsed.get_backend_name()} needs its driver ({exc.name}), which is not installed",
                              hint="pip install 'duban[postgres]' (the offline bundle: install.sh --postgres)") from None
    return db_engine


def writer_queue(db_engine: Engine) -> WriterQueue | None:
    """The queue the writing transactions of a SQLite database wait in (None on PostgreSQL)."""
    return queue_of(db_engine)


def alembic_config(db_engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", db_engine.url.render_as_string(hide_password=False))
    return cfg


def upgrade(db_engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema to ``revision`` in one go."""
    cfg = alembic_config(db_engine)
    try:
        with db_engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
        if revision == "head":  # an older revision may not have the tables it names
            refresh_statistics(db_engine)
    except OperationalError as exc:
        raise DubanError(f"cannot reach the database {db_engine.url!r}: {exc.orig}") from None


def refresh_statistics(db_engine: Engine) -> None:
    """Give SQLite's planner the table sizes and spreads (ANALYZE: 0.2 s at 100,000 issues).

    Without them it cannot tell 100 ledgers from a million issues and joins in the wrong order:
    a user's 我的待办 then sorts every matching issue instead of reading a page off the index. A
    sampled ANALYZE (``analysis_limit``) was tried and chose that wrong order again. PostgreSQL
    samples anyway; it is told now rather than when autovacuum next looks."""
    with db_engine.begin() as conn:
        if db_engine.dialect.name == "sqlite":
            conn.exec_driver_sql("ANALYZE")
        elif db_engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE issues, issue_departments, ledgers")


def schema_status(db_engine: Engine) -> tuple[str | None, str]:
    """The database's current revision and the newest one this code knows."""
    head = ScriptDirectory.from_config(alembic_config(db_engine)).get_current_head()
    with db_engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, head or ""


def require_current_schema(db_engine: Engine) -> None:
    try:
        current, head = schema_status(db_engine)
    except OperationalError as exc:
        raise DubanError(f"cannot reach the database {db_engine.url!r}: {exc.orig}") from None
    if current is None:
        raise DubanError("the database has no duban schema yet", hint="run `duban init` first")
    if current != head:
        raise DubanError(
            f"the database schema is at {current}, this duban expects {head}",
            hint="run `duban db upgrade`",
        )


def session_factory(db_engine: Engine) -> sessionmaker[Session]:
    """Sessions for work that writes (on SQLite: BEGIN IMMEDIATE)."""
    return sessionmaker(db_engine.execution_options(**{WRITES: True}), expire_on_commit=False)


def read_factory(db_engine: Engine) -> sessionmaker[Session]:
    """Sessions for work that only reads (on SQLite: BEGIN DEFERRED, never waiting on a writer)."""
    return sessionmaker(db_engine, expire_on_commit=False)


def one_writer(factory: sessionmaker[Session]) -> bool:
    """Whether the factory's writes take a lock on the whole database (SQLite's file), so what need
    not happen inside a write is better done outside it; PostgreSQL's row locks keep writers of
    different rows apart."""
    bind = factory.kw.get("bind")
    return bind is None or bind.dialect.name == "sqlite"


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: everything inside commits together or not at all."""
    with factory() as session, session.begin():
        yield session

"""The daemon and its database: waiting for it at start, and which daemon sweeps.

Every daemon delivers the outbox (its leases are safe to take concurrently), but only one should
sweep and route, or each sweep would be done twice for nothing. The choice lives in the database,
so there is nothing else to run or configure:

* **PostgreSQL**: the leader holds a session-level ``pg_try_advisory_lock`` on a connection of its
  own, kept for the life of the process. When the process dies, even with ``kill -9``, the server
  sees the socket close and frees the lock; a follower polling every few seconds takes it over.
  TCP keepalives on that connection bound how long a vanished *host* keeps the lock. Advisory locks
  belong to one database, so two duban installations on one server do not contend. (A pooler in
  transaction mode, such as pgbouncer, cannot carry a session lock: point the daemon at the server.)
* **SQLite**: one daemon per database file, enforced with an exclusive ``flock`` on
  ``<database>.daemon.lock``; a second daemon is refused. The kernel drops the lock when the
  process dies, so a crash never leaves a stale lock behind.

Two leaders at once (a network split that the old leader has not noticed yet) only wastes work:
the sweep claims rows with ``FOR UPDATE SKIP LOCKED`` and writes under unique dedupe keys, and
routing queues messages under unique keys, so nothing is written or sent twice.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError

from ..errors import DubanError
from ..store import db

if TYPE_CHECKING:
    import psycopg

# "duban" in ASCII, as one bigint: the key every duban daemon of a database contends for.
LOCK_KEY = 0x6475_6261_6E


class AlreadyRunning(DubanError):
    """A second daemon on a SQLite database: refused with exit code 2."""


class Leadership(Protocol):
    """What the daemon asks of a leadership strategy."""

    @property
    def role(self) -> str:
        """"sole" (SQLite), "leader" or "follower" (PostgreSQL)."""
        ...

    @property
    def is_leader(self) -> bool: ...

    def poll(self) -> bool:
        """Try to become (or check still being) the leader; True if leadership changed."""
        ...

    def close(self) -> None: ...


class SoleDaemon:
    """SQLite: the only daemon of its database file, and so always the leader."""

    role = "sole"

    def __init__(self, database: str | None):
        self.path: Path | None = None
        self._fh = None
        if not database or database == ":memory:":
            return  # an in-memory database cannot be shared: nothing to guard
        self.path = Path(f"{Path(database).expanduser().resolve()}.daemon.lock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Opened without truncating: a refused daemon must not wipe the holder's pid.
        fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the process lifetime
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise AlreadyRunning(
                f"another duban daemon is already running on this SQLite database (pid {holder})",
                details=[f"lock file: {self.path}"],
                hint="run one daemon per SQLite file; for several daemons use PostgreSQL",
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh

    @property
    def is_leader(self) -> bool:
        return True

    def poll(self) -> bool:
        return False

    def close(self) -> None:
        # The file stays: unlinking it would let a newcomer lock a fresh inode while a slow
        # starter still holds the old one, and two daemons would both believe they are alone.
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


class AdvisoryLeader:
    """PostgreSQL: leader while holding the advisory lock on a dedicated connection."""

    def __init__(self, url: URL, *, key: int = LOCK_KEY, connect_timeout: int = 5):
        # psycopg takes the libpq URI; SQLAlchemy's driver suffix is not part of it.
        self.conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.key = key
        self.connect_timeout = connect_timeout
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._leader = False
        self.last_error: str | None = None

    @property
    def role(self) -> str:
        return "leader" if self._leader else "follower"

    @property
    def is_leader(self) -> bool:
        return self._leader

    def poll(self) -> bool:
        was = self._leader
        try:
            if self._conn is None or self._conn.closed:
                self._connect()
            assert self._conn is not None  # _connect sets it or raises
            if self._leader:
                # The lock lives as long as this connection: a round trip proves both.
                self._conn.execute("SELECT 1")
            else:
                row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
                self._leader = bool(row and row[0])
            self.last_error = None
        except Exception as exc:  # noqa: BLE001 - any failure of the lock connection ends leadership
            self.last_error = f"{type(exc).__name__}: {exc}".strip()
            self._leader = False
            self._drop()
        return self._leader != was

    def _connect(self) -> None:
        import psycopg  # the PostgreSQL driver is only needed when the database is PostgreSQL

        # Keepalives: a leader whose host vanished (no FIN, no RST) loses the lock after about
        # idle + interval * count = 10 + 5 * 3 = 25 s, inside the 30 s failover target.
        self._conn = psycopg.connect(
            self.conninfo, autocommit=True, connect_timeout=self.connect_timeout,
            application_name="duban-daemon-leader",
            keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3,
        )

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - it is already broken; closing is best effort
                pass
        self._conn = None

    def close(self) -> None:
        # Unlocked explicitly before the session closes: the server frees a closed session's locks
        # only when its backend exits, a moment after close() returns, so a follower polling right
        # then would still find the lock held (seen as a flaky hand-over under load).
        if self._leader and self._conn is not None and not self._conn.closed:
            try:
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
            except Exception:  # noqa: BLE001 - the session is ending anyway; closing frees the lock
                pass
        self._leader = False
        self._drop()


def leadership_for(url: URL) -> Leadership:
    """The strategy for this database: a file lock on SQLite, an advisory lock on PostgreSQL."""
    if url.get_backend_name() == "sqlite":
        return SoleDaemon(url.database)
    if url.get_backend_name() == "postgresql":
        return AdvisoryLeader(url)
    raise DubanError(f"the daemon supports SQLite and PostgreSQL, not {url.get_backend_name()}")


def wait_for_database(engine: Engine, seconds: float, stop: threading.Event,
                      waiting: Callable[[str], None]) -> bool:
    """Wait up to ``seconds`` for the database to answer, then insist on the current schema.

    A database that is still starting (the daemon and PostgreSQL booting together) is waited for
    rather than failed on; a missing or old schema is a mistake no wait fixes (DubanError, exit 2).
    Returns False if ``stop`` was set while waiting.
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            current, head = db.schema_status(engine)
            break
        except OperationalError as exc:
            if time.monotonic() >= deadline:
                raise DubanError(f"cannot reach the database: {exc.orig}", hint="check [database] url") from None
            waiting(str(exc.orig).strip())
            if stop.wait(min(5.0, max(0.1, deadline - time.monotonic()))):
                return False
    if current is None:
        raise DubanError("the database has no duban schema yet", hint="run `duban init` first")
    if current != head:
        raise DubanError(f"the database schema is at {current}, this duban expects {head}",
                         hint="run `duban db upgrade`")
    return True

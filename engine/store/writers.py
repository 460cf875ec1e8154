"""One queue per SQLite database file and process for the transactions that write.

SQLite lets one connection write at a time. Left to ``busy_timeout``, writers that find the lock
taken sleep and retry on a growing back-off, in no order: with 20 of the server's threads writing,
most got through in tens of milliseconds while the unlucky ones slept for seconds (p99 1.9 s, max
7 s). Here a writer waits its turn in arrival order and is woken the moment the one before it
commits, so the wait is the sum of the transactions ahead of it and nothing more. Another process
writing to the same file is still waited for by ``busy_timeout``.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from pathlib import Path

from sqlalchemy import Engine

BUSY_SECONDS = 30  # how long a writer waits for the lock, in the queue and in busy_timeout alike


class WriterQueue:
    """A first-come, first-served lock whose holder is a connection (not a thread).

    The turn is handed to the oldest waiter on release, never grabbed by whoever runs next, so
    no writer is overtaken. A waiter that gives up (its timeout) leaves the queue."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._owner: object | None = None
        self._waiting: deque[object] = deque()

    def acquire(self, holder: object, timeout: float | None = None) -> bool:
        """Wait for the turn of ``holder``; False if ``timeout`` seconds passed first."""
        with self._cond:
            if self._owner is None and not self._waiting:
                self._owner = holder
                return True
            self._waiting.append(holder)
            self._cond.notify_all()  # for whoever watches the queue grow (``wait_for_waiting``)
            deadline = None if timeout is None else time.monotonic() + timeout
            while self._owner is not holder:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    self._waiting.remove(holder)
                    return False
                self._cond.wait(left)
            return True

    def holds(self, holder: object) -> bool:
        return self._owner is holder

    def release(self, holder: object) -> None:
        """Pass the turn to the oldest waiter; nothing if ``holder`` does not have it."""
        with self._cond:
            if self._owner is not holder:
                return
            self._owner = self._waiting.popleft() if self._waiting else None
            self._cond.notify_all()

    @property
    def held(self) -> bool:
        """Whether some writer has the turn now."""
        return self._owner is not None

    @property
    def waiting(self) -> int:
        """How many writers wait for their turn."""
        return len(self._waiting)

    def wait_for_waiting(self, count: int, timeout: float) -> bool:
        """Block until at least ``count`` writers wait (for tests and benchmarks that line them up)."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._waiting) >= count, timeout)


_QUEUES: dict[str, WriterQueue] = {}
_GUARD = threading.Lock()


def queue_for(database: str | None) -> WriterQueue:
    """The process's queue for a SQLite database file; a fresh one for an in-memory database,
    which no other connection shares."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return WriterQueue()
    key = str(Path(database).expanduser().resolve())
    with _GUARD:
        return _QUEUES.setdefault(key, WriterQueue())


_ENGINES: weakref.WeakKeyDictionary[Engine, WriterQueue] = weakref.WeakKeyDictionary()


def register(db_engine: Engine) -> WriterQueue:
    """Give a SQLite engine its queue (the file's, shared by every engine on it in the process)."""
    queue = _ENGINES[db_engine] = queue_for(db_engine.url.database)
    return queue


def queue_of(db_engine: Engine) -> WriterQueue | None:
    """The queue of a SQLite engine, or of one derived from it by ``execution_options``; None on
    PostgreSQL (its row locks queue writers already)."""
    if db_engine.dialect.name != "sqlite":
        return None
    engine: object = db_engine
    while isinstance(engine, Engine):
        found = _ENGINES.get(engine)
        if found is not None:
            return found
        engine = getattr(engine, "_proxied", None)  # an OptionEngine's own engine
    return None

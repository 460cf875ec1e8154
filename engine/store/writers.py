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
import weakref
from collections import deque
from pathlib import Path

from sqlalchemy import Engine

BUSY_SECONDS = 30  # how long a writer waits for the lock, in the queue and in busy_timeout alike


class WriterQueue:
    """A first-come, first-served lock whose holder is a connection (not a thread).

    The turn is handed to the oldest waiter on release, never grabbed by whoever runs next, so
    no writer is overtaken. Each waiter sleeps on its own event and only the next one is woken:
    with one condition for all, every commit woke the 19 others of 20 writers to find it was not
    their turn, each taking the GIL to go back to sleep. A waiter that gives up (its timeout)
    leaves the queue."""

    turn_type: type[threading.Event] = threading.Event  # what a waiter sleeps on (a test's may run out late)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._grown = threading.Condition(self._lock)  # for ``wait_for_waiting`` only
        self._owner: object | None = None
        self._waiting: deque[tuple[object, threading.Event]] = deque()

    def acquire(self, holder: object, timeout: float | None = None) -> bool:
        """Wait for the turn of ``holder``; False if ``timeout`` seconds passed first."""
        with self._lock:
            if self._owner is None and not self._waiting:
                self._owner = holder
                return True
            turn = self.turn_type()
            self._waiting.append((holder, turn))
            self._grown.notify_all()
        if turn.wait(timeout):
            return True
        with self._lock:
            if self._owner is holder:  # handed over as the wait ran out: it is ours after all
                return True
            self._waiting.remove((holder, turn))
            return False

    def holds(self, holder: object) -> bool:
        return self._owner is holder

    def release(self, holder: object) -> None:
        """Pass the turn to the oldest waiter; nothing if ``holder`` does not have it."""
        with self._lock:
            if self._owner is not holder:
                return
            if self._waiting:
                self._owner, turn = self._waiting.popleft()
                turn.set()
            else:
                self._owner = None

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
        with self._grown:
            return self._grown.wait_for(lambda: len(self._waiting) >= count, timeout)


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

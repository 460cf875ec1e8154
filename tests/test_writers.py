"""Writers on one SQLite file take the lock in arrival order; PostgreSQL's pool fits the server."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from engine.store import db
from engine.store.writers import WriterQueue

WAIT = 30.0  # a bound for waits on conditions, never a sleep


def test_queue_hands_the_turn_to_the_oldest_waiter():
    queue = WriterQueue()
    first = object()
    assert queue.acquire(first)
    order: list[int] = []
    threads = []
    for n in range(6):
        def run(n: int = n) -> None:
            holder = object()
            assert queue.acquire(holder, WAIT)
            order.append(n)
            queue.release(holder)
        thread = threading.Thread(target=run)
        thread.start()
        threads.append(thread)
        assert queue.wait_for_waiting(n + 1, WAIT)  # lined up before the next one starts
    queue.release(first)
    for thread in threads:
        thread.join(WAIT)
    assert order == list(range(6))
    assert queue.waiting == 0


def test_a_waiter_that_gives_up_leaves_the_queue():
    queue = WriterQueue()
    holder, quitter, patient = object(), object(), object()
    assert queue.acquire(holder)
    assert not queue.acquire(quitter, 0.0)
    assert queue.waiting == 0
    got = threading.Event()
    thread = threading.Thread(target=lambda: queue.acquire(patient, WAIT) and got.set())
    thread.start()
    assert queue.wait_for_waiting(1, WAIT)
    queue.release(quitter)  # not its turn: nothing happens
    assert not got.is_set() and queue.holds(holder)
    queue.release(holder)
    thread.join(WAIT)
    assert got.is_set() and queue.holds(patient)


def test_a_turn_handed_over_as_the_wait_runs_out_is_taken():
    """The waiter's wait ends unanswered at the very moment the turn is handed to it: it must take
    the turn (else the queue stays held by a writer that went away, and every writer after waits)."""
    class Late(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            super().wait(timeout)
            return False  # the clock ran out as the turn came

    queue = WriterQueue()
    queue.turn_type = Late
    first, late = object(), object()
    assert queue.acquire(first)
    answer: list[bool] = []
    thread = threading.Thread(target=lambda: answer.append(queue.acquire(late, WAIT)))
    thread.start()
    assert queue.wait_for_waiting(1, WAIT)
    queue.release(first)
    thread.join(WAIT)
    assert answer == [True] and queue.holds(late) and queue.waiting == 0


def test_waiters_that_give_up_as_the_turn_comes_never_lose_it_nor_share_it():
    """Eight threads take and give back the turn 300 times each, many with a wait so short it runs
    out as the turn is handed to them: at most one holds it at a time, and it is never left with a
    waiter that went away (the queue ends free, and every thread got its turns)."""
    queue = WriterQueue()
    inside, most, got = [0], [0], [0]
    guard = threading.Lock()
    errors: list[BaseException] = []

    def run(seed: int) -> None:
        try:
            for n in range(300):
                holder = object()
                timeout = (0.0, 0.0001, 0.001, WAIT)[(seed + n) % 4]
                if not queue.acquire(holder, timeout):
                    continue
                with guard:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                    got[0] += 1
                with guard:
                    inside[0] -= 1
                queue.release(holder)
        except BaseException as exc:  # noqa: BLE001 - reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert not errors and not any(t.is_alive() for t in threads)
    assert most[0] == 1 and got[0] >= 8 * 75  # the waits of WAIT seconds all got their turn
    assert not queue.held and queue.waiting == 0


def test_sqlite_writers_commit_in_the_order_they_asked(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'q.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE turns (id INTEGER PRIMARY KEY, n INTEGER)")
    writes = db.session_factory(engine)
    queue = db.writer_queue(engine)
    assert queue is not None and queue is db.writer_queue(engine)
    assert db.writer_queue(engine.execution_options(x=1).execution_options(y=2)) is queue
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            with db.transaction(writes) as s:
                s.execute(text("INSERT INTO turns (n) VALUES (:n)"), {"n": n})
        except BaseException as exc:  # noqa: BLE001 - reported below, not lost in the thread
            errors.append(exc)

    threads = []
    with db.transaction(writes) as s:  # hold the lock while the others line up
        s.execute(text("INSERT INTO turns (n) VALUES (-1)"))
        for n in range(8):
            thread = threading.Thread(target=write, args=(n,))
            thread.start()
            threads.append(thread)
            assert queue.wait_for_waiting(n + 1, WAIT)
    for thread in threads:
        thread.join(WAIT)
    assert errors == []
    with engine.connect() as conn:
        assert [n for (n,) in conn.execute(text("SELECT n FROM turns ORDER BY id"))] == [-1, *range(8)]
    assert queue.waiting == 0 and not queue.held


def test_a_failed_or_abandoned_writer_passes_the_turn_on(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    writes = db.session_factory(engine)
    queue = db.writer_queue(engine)
    assert queue is not None
    with pytest.raises(OperationalError), db.transaction(writes) as s:
        s.execute(text("SELECT * FROM no_such_table"))
    session = writes()
    session.execute(text("CREATE TABLE t (x INTEGER)"))  # begun, never committed
    session.close()
    # a second engine on the same file in the same process shares the queue
    other = db.make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    assert db.writer_queue(other) is queue
    with db.transaction(db.session_factory(other)) as s:
        s.execute(text("CREATE TABLE t (x INTEGER)"))
    assert queue.waiting == 0 and not queue.held


def test_prepared_writes_take_their_turn_too(tmp_path):
    from engine.store.prepared import driver_transaction

    engine = db.make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    queue = db.writer_queue(engine)
    assert queue is not None
    done = threading.Event()

    def prepared_write() -> None:
        with engine.connect() as conn, driver_transaction(conn):
            conn.connection.driver_connection.execute("INSERT INTO t VALUES (2)")
        done.set()

    with db.transaction(db.session_factory(engine)) as s:
        s.execute(text("INSERT INTO t VALUES (1)"))
        thread = threading.Thread(target=prepared_write)
        thread.start()
        assert queue.wait_for_waiting(1, WAIT)  # in the queue, not polling busy_timeout
        assert not done.is_set()
    thread.join(WAIT)
    assert done.is_set() and not queue.held
    with engine.connect() as conn:
        assert [x for (x,) in conn.execute(text("SELECT x FROM t ORDER BY rowid"))] == [1, 2]


def test_reads_do_not_wait_for_the_writer(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 's.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    with db.transaction(db.session_factory(engine)) as s:
        s.execute(text("INSERT INTO t VALUES (1)"))
        with db.read_factory(engine)() as reader:  # same thread: it would hang if reads queued
            assert reader.scalar(text("SELECT count(*) FROM t")) == 0


@pytest.mark.postgres
def test_postgres_pool_fits_the_server_threads(pg_url):
    engine = db.make_engine(pg_url)
    pool = engine.pool
    assert db.writer_queue(engine) is None
    assert pool.size() == db.POOL_SIZE >= db.HTTP_THREADS + db.JOB_THREADS  # type: ignore[attr-defined]
    assert pool._pre_ping is False  # no round trip per checkout
    assert pool._recycle == db.POOL_RECYCLE > 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1


def test_a_bulk_write_has_a_large_page_cache_until_its_connection_returns(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'bulk.db'}")
    sessions = db.session_factory(engine)
    try:
        with db.transaction(sessions) as session:
            conn = session.connection()
            db.bulk_cache(conn)
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -db.BULK_CACHE_KIB
        # the pool holds one connection: the next transaction gets the same one, back to the default
        with db.transaction(sessions) as session:
            conn = session.connection()
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -2000
            assert not conn.info.get("duban.bulk_cache")
    finally:
        engine.dispose()


"""Where the outbox's sends run: threads that are handed a call and hand back what came of it,
and ``Pace``, which says which channels' sends are worth a thread.

The "Send" step of ``notifications.outbox`` when several messages may be on their way at once.
A ``ThreadPoolExecutor`` did this with a ``Future`` per send and ``concurrent.futures.wait`` over
all those in flight each time one came back (a waiter put on and taken off every future, under
its lock): at a thousand sends a second that bookkeeping is a share of the one core the process's
Python code runs on (``bench/delivery.py``). Here a call goes out on one queue and its result
comes back on another; threads start as the calls out need them, up to ``workers``.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from queue import Empty, SimpleQueue
from typing import Generic, TypeVar, cast

T = TypeVar("T")  # what the caller tags a call with, to know it again when it comes back
R = TypeVar("R")  # what a call returns


class Senders(Generic[T, R]):
    """Up to ``workers`` threads running calls handed to ``start``; ``finished`` waits for them."""

    def __init__(self, workers: int, name: str = "duban-send") -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers, self.name = workers, name
        self.out = 0  # calls handed out whose results have not been taken back
        self._threads: list[threading.Thread] = []
        self._todo: SimpleQueue[tuple[T, Callable[[], R]] | None] = SimpleQueue()
        self._done: SimpleQueue[tuple[T, R | None, BaseException | None]] = SimpleQueue()

    def start(self, tag: T, call: Callable[[], R]) -> None:
        """Run ``call`` on a thread; its result comes back from ``finished`` with ``tag``."""
        if self.out >= len(self._threads) and len(self._threads) < self.workers:  # all busy: one more
            thread = threading.Thread(target=self._work, name=f"{self.name}_{len(self._threads)}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self.out += 1
        self._todo.put((tag, call))

    def finished(self) -> list[tuple[T, R]]:
        """Wait until a call has returned; it and every other returned since, with their tags."""
        if not self.out:
            raise RuntimeError("no call is out: nothing would come back")
        done = [self._done.get()]
        while True:
            try:
                done.append(self._done.get_nowait())
            except Empty:
                break
        self.out -= len(done)
        results = []
        for tag, result, error in done:
            if error is not None:  # the call raised (the outbox's sends catch what channels raise)
                raise error
            results.append((tag, cast(R, result)))  # a call that did not raise returned its R
        return results

    def close(self) -> None:
        """Let the threads end once the calls out are done, and wait for them."""
        for _ in self._threads:
            self._todo.put(None)
        for thread in self._threads:
            thread.join()
        self._threads.clear()

    def __enter__(self) -> Senders[T, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _work(self) -> None:
        while (job := self._todo.get()) is not None:
            tag, call = job
            try:
                self._done.put((tag, call(), None))
            except BaseException as exc:  # noqa: BLE001 - handed back and raised there: never left waiting
                self._done.put((tag, None, exc))


class Pace:
    """Per channel, whether its sends go to ``Senders``' threads or are made on the calling thread.

    Threads overlap the time sends wait on the network. They do nothing for the time a send
    computes (the process's Python runs one thread at a time), and every hand-over costs switches
    between threads: to a receiver on the same machine, 8 sends in flight on threads delivered
    1,430 messages a second where sends on the calling thread delivered 1,540 (``bench/delivery.py``,
    2-core machine; such a send computed ~250 µs and waited ~100–200 µs). So a channel's sends
    start on the calling thread, which measures each: once each of ``WINDOW`` sends in a row
    waited more than ``WAITED`` times what it computed, the channel's sends go to threads from then
    on. One slow send (a connection being opened, a pause) does not move a channel; a server that
    answers in milliseconds does, after ``WINDOW`` sends.

    Where a send runs changes nothing the outbox promises: either way at most ``in_flight``
    messages per channel are sent and not yet recorded (``notifications.lanes``).
    """

    WINDOW = 4
    WAITED = 2.0

    def __init__(self) -> None:
        self.threaded: set[str] = set()
        self._recent: dict[str, deque[bool]] = {}  # channel -> whether each recent send mostly waited

    def note(self, channel: str, wall: float, cpu: float) -> None:
        """A send made on the calling thread took ``wall`` seconds, ``cpu`` of them computing."""
        recent = self._recent.get(channel)
        if recent is None:
            recent = self._recent[channel] = deque(maxlen=self.WINDOW)
        recent.append(wall - cpu > self.WAITED * cpu)
        if len(recent) == self.WINDOW and all(recent):
            self.threaded.add(channel)

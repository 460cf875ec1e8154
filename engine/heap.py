"""Giving freed memory back to the operating system after a large piece of work.

A catch-up routes hundreds of thousands of reminders in batches; each batch's rows, digests and
rendered texts are freed when it ends, but glibc's malloc keeps freed space in its arenas (one per
thread that allocated) and, once a large block was freed, serves later large blocks from the heap
where they fragment it. The daemon's resident size then grew batch after batch (434 MB through a
600,000-reminder catch-up, with 3 MB of live Python objects at the end). ``malloc_trim(0)`` hands
the free pages back; it costs a few milliseconds, so it runs once a batch, not once a row. The
daemon also caps glibc's arenas (``limit_arenas``): its sweep, routing and each delivery run's send
threads would otherwise each fragment an arena of their own (up to eight per core).

Once a serving process has started, what it made so far (modules, the application, the mappers,
the workflows, the compiled statements) lives as long as it does, and the cyclic collector would
walk all of it at every full collection while the requests in flight wait: ``settle`` moves it out
of the collector's sight (``gc.freeze``) and lets the young generation grow to ``YOUNG`` objects
before a collection instead of 700. With 20 writers on SQLite the write p99 fell from ~205 to
~130 ms and the max from ~300 to ~215 ms (``bench/workspace.py --only writes``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
from functools import cache

M_ARENA_MAX = -8  # mallopt's parameter number (glibc's malloc.h)
YOUNG = 20_000  # allocations less deallocations between young-generation collections (Python's default: 700)


@cache
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    # musl has neither: nothing to tune this way
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def give_back() -> None:
    """Return the allocator's free pages to the operating system (glibc); nothing elsewhere."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def limit_arenas(count: int) -> None:
    """At most ``count`` malloc arenas for the process's threads (glibc); call before they start."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(M_ARENA_MAX, count)


def settle() -> None:
    """After start-up: collect once, freeze what is left, collect the young generation less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG, middle, old)

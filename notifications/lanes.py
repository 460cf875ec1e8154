"""Which claimed messages may be on their way at once.

The outbox sends several messages at a time (``notifications.outbox``), within two rules:

* **per channel** at most ``limit`` sends in flight, and only one until the channel has finished a
  send in this process (its first send opens its client or connection; two opened at once would
  leak one);
* **per recipient** the claim order holds: a message to someone starts only after every earlier
  message of the batch to them on that channel has finished (or was set aside), so nobody reads
  their reminders out of order.

Pure bookkeeping, no threads or database: ``Lanes`` answers "what may start now" and is told what
started, finished or was set aside.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Generic, Protocol, TypeVar


class Routed(Protocol):
    @property
    def channel(self) -> str: ...

    @property
    def recipient(self) -> str: ...


T = TypeVar("T", bound=Routed)


def recipient_key(item: Routed) -> Hashable:
    return item.channel, item.recipient


class Lanes(Generic[T]):
    """The waiting messages of a run's claims, in claim order, and those in flight."""

    def __init__(self, items: Sequence[T], limit: int, warm: set[str]) -> None:
        if limit < 1:
            raise ValueError(f"the in-flight limit must be at least 1, got {limit}")
        self.waiting: list[T] = list(items)
        self.limit = limit
        self.warm = warm  # channels that finished a send in this process (shared with the outbox)
        self.flying: Counter[str] = Counter()
        self.busy: set[Hashable] = set()
        self.in_flight = 0

    def extend(self, items: Sequence[T]) -> None:
        """Add a later claim's messages behind those waiting (their recipients' order goes on)."""
        self.waiting.extend(items)

    def room(self, channel: str) -> int:
        return self.limit if channel in self.warm else 1

    def next(self) -> T | None:
        """The first waiting message that may start now (it stays waiting until ``start``/``drop``)."""
        passed: set[Hashable] = set()
        for item in self.waiting:
            key = recipient_key(item)
            if key in self.busy or key in passed or self.flying[item.channel] >= self.room(item.channel):
                passed.add(key)  # a later message to them waits for this one
                continue
            return item
        return None

    def start(self, item: T) -> None:
        self.waiting.remove(item)
        self.flying[item.channel] += 1
        self.busy.add(recipient_key(item))
        self.in_flight += 1

    def drop(self, item: T) -> None:
        """Set aside without sending (postponed, undeliverable, lost)."""
        self.waiting.remove(item)

    def finish(self, item: T) -> None:
        self.flying[item.channel] -= 1
        self.busy.discard(recipient_key(item))
        self.in_flight -= 1
        self.warm.add(item.channel)

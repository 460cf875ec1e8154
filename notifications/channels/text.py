"""Text shaping shared by the group robots: the key line and byte-safe truncation.

Every robot message ends with the line ``（编号 KEY）``. Robots have no idempotency header, so this
line is the dedup handle: a reader (or a bot in the group) seeing the same 编号 twice knows the
second is a re-send after a crash, not a new reminder. Truncation never removes it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from notifications.message import dumps

# What a cut field ends with: the platforms' own ellipsis, two characters (6 UTF-8 bytes).
MARKER = "……"


def key_line(key: str) -> str:
    """The last line of every robot message; see the module docstring."""
    return f"（编号 {key}）"


def fit_utf8(text: str, limit: int, marker: str = MARKER) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, never inside a character, marked if cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    mark = marker.encode("utf-8")
    if len(mark) > limit:
        mark = b""
    # errors="ignore" drops the partial character a byte cut may leave at the end.
    return data[: limit - len(mark)].decode("utf-8", errors="ignore") + mark.decode("utf-8")


def compose(head: str, body: str, tail: str, limit: int) -> str:
    """``head + body + tail`` within ``limit`` bytes, cutting the body first and keeping the tail."""
    whole = head + body + tail
    if len(whole.encode("utf-8")) <= limit:
        return whole
    room = limit - len((head + tail).encode("utf-8"))
    if room >= len(MARKER.encode("utf-8")):
        return head + fit_utf8(body, room) + tail
    # Only a pathological subject gets here; the key line still survives.
    room = limit - len(tail.encode("utf-8"))
    if room <= 0:
        return fit_utf8(whole, limit)
    return fit_utf8(head + body, room) + tail


def fit_chars(text: str, limit: int, marker: str = MARKER) -> str:
    """``text`` within ``limit`` characters (the platform counts characters, not bytes), marked if cut."""
    if len(text) <= limit:
        return text
    if len(marker) >= limit:
        return text[:limit]
    return text[: limit - len(marker)] + marker


def json_bytes(value: Any) -> int:
    """The UTF-8 size of ``value`` as the channels send it (``message.dumps``)."""
    return len(dumps(value).encode("utf-8"))


def fit_json(build: Callable[[int], Any], limit: int, measure: Callable[[Any], int] = json_bytes) -> Any:
    """The payload ``build(room)`` for the largest ``room`` whose JSON stays within ``limit`` bytes.

    ``build`` cuts its text to ``room`` bytes; the JSON it is wrapped in (keys, quotes, escaped
    newlines, the fields around it) costs bytes too, so the room is found by measuring the payload
    itself. Sizes grow with ``room``, so a bisection finds it in a dozen builds.
    """
    low, high = 0, limit
    best = build(0)
    if measure(best) > limit:
        return best  # even the empty text does not fit: the caller's fixed fields are too big
    while low <= high:
        room = (low + high) // 2
        payload = build(room)
        if measure(payload) <= limit:
            best, low = payload, room + 1
        else:
            high = room - 1
    return best

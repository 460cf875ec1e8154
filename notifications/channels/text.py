"""Text shaping shared by the group robots: the key line and byte-safe truncation.

Every robot message ends with the line ``（编号 KEY）``. Robots have no idempotency header, so this
line is the dedup handle: a reader (or a bot in the group) seeing the same 编号 twice knows the
second is a re-send after a crash, not a new reminder. Truncation never removes it.
"""

from __future__ import annotations

MARKER = "…（内容过长，已截断）"


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

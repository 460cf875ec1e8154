"""What a platform's result code means to duban: the four classes and the table type.

Each platform module (``dingtalk_codes``, ``wecom_codes``, ``feishu_codes``) reads its platform's
error shape in one place and looks the code up in its own table, where every entry cites the page
of the platform's documentation it comes from. A code that is in no table is permanent: the same
message would fail the same way, and dead-lettering it at once shows the problem (``outbox list``)
instead of hiding it behind retries. ``docs/platform-codes.md`` lists every entry; a test keeps
the two in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    REFRESH = "refresh-token"  # the access token is invalid or expired: fetch a new one, send once more
    RATE = "rate-limited"  # refused for now: wait the platform's window, then send again
    TRANSIENT = "transient"  # the platform's own trouble: back off and try again
    PERMANENT = "permanent"  # configuration or content: retrying cannot help


@dataclass(frozen=True)
class Code:
    """One documented code: its class, the wait the platform documents (rate limits) and the page."""

    kind: Kind
    meaning: str
    source: str
    wait: float | None = None


Table = Mapping[int, Code]


@dataclass(frozen=True)
class Verdict:
    """A failed answer as read: the code that decides, its class, the wait and the text for the log."""

    code: int
    kind: Kind
    text: str
    wait: float | None = None


def classify(table: Table, code: int, text: str, *, wait: float | None = None) -> Verdict:
    """``code`` looked up in ``table``; a ``wait`` the answer itself gives beats the documented one."""
    entry = table.get(code)
    if entry is None:
        return Verdict(code, Kind.PERMANENT, text)
    return Verdict(code, entry.kind, text, wait if wait is not None else entry.wait)


def as_int(value: object) -> int | None:
    """A result code as the platforms write it: a JSON number, or a string of digits (DingTalk's sub_code)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None

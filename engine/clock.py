"""One clock for the whole program.

Every component asks a ``Clock`` for the time instead of calling ``datetime.now`` itself, so a
command run with ``--at`` and a test under freezegun see the same instant everywhere. Times are
aware and in UTC inside duban; the configured time zone is only for reading and showing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from .errors import BadInput

UTC = dt.UTC


class Clock:
    """The system clock (which freezegun can freeze)."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)


@dataclass(frozen=True)
class FixedClock(Clock):
    """A clock stopped at one instant: what ``--at`` gives every command."""

    at: dt.datetime

    def now(self) -> dt.datetime:
        return self.at


# The years duban works in: a ledger's deadlines, a duty's periods, an --at. A date outside is a
# typo (9999-12-31, 0001-01-01) that would otherwise overflow or loop through millennia.
FIRST_YEAR, LAST_YEAR = 1970, 2100


def check_year(value: dt.date, what: str) -> None:
    """Refuse a date outside FIRST_YEAR…LAST_YEAR with a clear message."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise BadInput(f"{what} {value.isoformat()} is outside the supported years {FIRST_YEAR}–{LAST_YEAR}")


def parse_instant(text: str, tz: ZoneInfo) -> dt.datetime:
    """Parse ``--at`` style input into an aware UTC datetime.

    Accepts ISO-8601 with or without an offset (``2026-10-13T09:00+08:00``, ``2026-10-13 09:00``) or a
    bare date (midnight). Without an offset the time is read in the configured time zone, because
    that is the zone the people typing it live in.
    """
    raw = text.strip()
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(
            f"not a date or time: {text!r}",
            hint="use ISO-8601, e.g. 2026-10-13, 2026-10-13T09:00 or 2026-10-13T09:00+08:00",
        ) from None
    check_year(value.date(), "the time")
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def parse_date(text: str) -> dt.date:
    """Parse a plain ``YYYY-MM-DD`` date given on the command line."""
    try:
        value = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(f"not a date: {text!r}", hint="use YYYY-MM-DD, e.g. 2026-10-13") from None
    check_year(value, "the date")
    return value

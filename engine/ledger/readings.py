"""What an import read that is not written plainly in the sheet: the list it owes its reader.

Every cell the import does not take as written — a deadline phrase read as a date, 立行立改 counted
from the feedback date, 长期坚持 put on the long-term track, numbering moved out of a title, a blank
方面 carried down — and every row it skips (the title above the header, a footer) is a ``Reading``:
``FILE: row 5: 整改时限: 2026年12月底前 → 2026-12-31``. Runs of rows read the same way are one line
(``rows 5–9``), so a ledger of merged cells does not list each row.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_READINGS = 5000  # lines kept; beyond that, a count


@dataclass
class Reading:
    first: int  # sheet rows first..last
    last: int
    column: str  # the header, or "" for a whole row
    raw: str  # the cell (or the row) as written
    meaning: str  # how it was read

    def line(self, name: str) -> str:
        rows = f"row {self.first}" if self.first == self.last else f"rows {self.first}–{self.last}"
        if not self.column:
            return f"{name}: {rows}: {self.meaning}: {_short(self.raw, 120)}"
        raw = _short(self.raw, 40) if self.raw else "(blank)"
        return f"{name}: {rows}: {self.column}: {raw} → {self.meaning}"


class Readings:
    """Readings in sheet order, a run of consecutive rows read alike kept as one."""

    def __init__(self, limit: int = MAX_READINGS):
        self.items: list[Reading] = []
        self.more = 0
        self._limit = limit
        self._open: dict[str, Reading] = {}

    def add(self, row: int, column: str, raw: str, meaning: str, *, after: int = -1) -> None:
        """``after``: the previous row of the ledger, so that a run goes on over it."""
        current = self._open.get(column)
        if current is not None and current.last == after and current.raw == raw and current.meaning == meaning:
            current.last = row
            return
        if len(self.items) >= self._limit:
            self.more += 1
            return
        reading = Reading(row, row, column, raw, meaning)
        self.items.append(reading)
        self._open[column] = reading

    def lines(self, name: str) -> list[str]:
        out = [r.line(name) for r in sorted(self.items, key=lambda r: r.first)]
        if self.more:
            out.append(f"{name}: … and {self.more:,} more")
        return out


def _short(value: str, width: int) -> str:
    value = " ".join(value.split())
    return value if len(value) <= width else value[:width - 1] + "…"

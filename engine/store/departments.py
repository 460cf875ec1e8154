"""The departments a 责任科室 cell names, kept in ``issue_departments`` for indexed filters."""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from .models import ISSUE_DEPARTMENTS

# A ledger cell may name several departments ("办公室、财务室"); each counts for a filter.
_SPLIT = re.compile(r"[、,，;；/／\s]+")


def departments_of(text: str) -> list[str]:
    """The departments a 责任科室 cell names, in order, each once."""
    return list(dict.fromkeys(part for part in _SPLIT.split(text or "") if part))


def set_departments(session: Session, ledger_id: int, cells: Iterable[tuple[int, str]], *,
                    fresh: bool = False) -> None:
    """Record the departments of each (issue id, 责任科室 cell) of one ledger; ``fresh``: the issues are new."""
    pairs = list(cells)
    if not pairs:
        return
    table = ISSUE_DEPARTMENTS
    conn = session.connection()
    if not fresh:
        ids = [i for i, _ in pairs]
        for start in range(0, len(ids), 1000):
            conn.execute(delete(table).where(table.c.issue_id.in_(ids[start:start + 1000])))
    rows = [{"issue_id": i, "department": d[:200], "ledger_id": ledger_id} for i, cell in pairs
            for d in departments_of(cell)]
    if rows:
        conn.execute(insert(table), rows)

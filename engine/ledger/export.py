"""Writing a ledger back out with the headers it came in with (a round trip)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import BadInput
from ..store.models import Issue, Ledger
from ..workflow.registry import WorkflowRegistry
from .columns import ColumnTable
from .sheet import write_csv, write_xlsx
from .writer import NUMBERING


def export_ledger(session: Session, registry: WorkflowRegistry, ledger: Ledger, path: Path, *,
                  chain_head: str = "") -> int:
    """Write ``ledger`` to ``path`` (.csv or .xlsx); returns the number of issues written. An XLSX
    carries ``chain_head`` (the history's, engine.issues.history) in its document properties."""
    workflow = registry.definition(registry.of_ledger(session, ledger))
    headers = list(ledger.headers) or [names[0] for names in workflow.columns.values()]
    # the columns as the import read them: the built-in spellings too, one column per field
    index, _ = ColumnTable(workflow.columns).assign(headers)
    field_at = {i: fld for fld, i in index.items()}
    definitions: dict[int, Any] = {}
    xlsx = path.suffix.lower() in (".xlsx", ".xlsm")

    def rows() -> Iterator[list[Any]]:
        stmt = select(Issue).where(Issue.ledger_id == ledger.id).order_by(Issue.position, Issue.id)
        for issue in session.scalars(stmt.execution_options(yield_per=1000)):
            wf = definitions.get(issue.workflow_id)
            if wf is None:
                wf = definitions[issue.workflow_id] = registry.definition(issue.workflow)
            out = []
            for i, header in enumerate(headers):
                fld = field_at.get(i)
                if fld is None:
                    out.append(issue.extra.get(header, ""))
                elif fld == "status":
                    out.append(wf.status_word(issue.state))
                elif fld == "unit":
                    out.append(ledger.unit)
                elif fld == "ref" and xlsx and issue.ref.isdigit():
                    out.append(int(issue.ref))
                else:
                    out.append(numbered(issue, fld))
            yield out

    count = 0

    def counted() -> Iterator[list[Any]]:
        nonlocal count
        for row in rows():
            count += 1
            yield row

    suffix = path.suffix.lower()
    if suffix == ".csv":
        write_csv(path, headers, counted())
    elif xlsx:
        write_xlsx(path, headers, counted(), title=ledger.name, heading=f"{ledger.unit.strip() or ledger.name}巡察整改台账",
                   description=f"台账校验值（办理记录链）：{chain_head}" if chain_head else "")
    else:
        raise BadInput(f"{path}: unsupported file type {suffix or '(none)'}", hint="use .csv or .xlsx")
    return count


def numbered(issue: Issue, fld: str) -> Any:
    """The field as the sheet had it: with the numbering the import moved out of the cell
    (engine.ledger.rows) put back in front."""
    value = getattr(issue, fld)
    prefix = ((issue.extra or {}).get(NUMBERING) or {}).get(fld) if fld in ("area", "category", "title") else None
    return f"{prefix}{value}" if prefix and value else value

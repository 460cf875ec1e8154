"""Importing a ledger file into the store, all or nothing.

The file is read once, streaming: rows are checked and written in batches inside one transaction,
and every problem found is collected. If there is any, the transaction is rolled back and all the
problems are reported (``FILE: row N: COLUMN: message``), so nothing of a bad file is kept while
memory stays flat for a million rows. Re-importing updates issues by 序号 and never duplicates.
On re-import the status column is a claim (``engine.ledger.claims``): the workflow decides.

Ledgers are read as offices keep them: the header is found below a title (``engine.ledger.layout``),
its columns by the spellings offices use (``engine.ledger.columns``), each row as written or as
listed (``engine.ledger.rows``): what the import read other than as written is in
``ImportResult.readings``, shown by ``--dry-run`` and the import's summary.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..accounts.actor import SYSTEM, Actor
from ..accounts.policy import ARCHIVED, UnitAction, may_unit
from ..accounts.users import ensure_accounts
from ..errors import Forbidden, LedgerError, Refused
from ..runtime import Runtime
from ..store.db import bulk_cache
from ..store.models import Issue, Ledger, LedgerImport
from .columns import ColumnTable
from .migrate import version_notes
from .rows import Columns, RowReader, unit_above
from .sheet import Sheet, open_sheet
from .writer import ImportResult, Writer

log = logging.getLogger("duban.ledger")

BATCH = 2000
MAX_REPORTED = 200  # problems listed in full; beyond that, a count


def import_ledger(
    session: Session,
    runtime: Runtime,
    path: Path,
    *,
    now: dt.datetime,
    actor: Actor = SYSTEM,
    ledger_name: str | None = None,
    feedback_date: dt.date | None = None,
    unit: str | None = None,
    workflow_name: str,
    dry_run: bool = False,
    sheet_name: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    milestones_done: dict[str, dt.date] | None = None,
) -> ImportResult:
    """Import ``path`` into the ledger ``ledger_name`` (default: the file's stem).

    Runs inside the caller's transaction; raises ``LedgerError`` (after writing nothing the caller
    should keep) when any row is bad. With ``dry_run`` every check runs and nothing is kept.
    Only an administrator, or a unit's administrator for that unit's ledgers, imports.
    """
    by = actor.name
    name = ledger_name or path.stem
    bulk_cache(session.connection())  # its rows, and the search index they feed at commit
    # locked: a `workflow migrate` of the ledger running meanwhile finishes first, so the rows
    # written here follow the version it moved the ledger to
    ledger = session.scalar(select(Ledger).where(Ledger.name == name).with_for_update())
    _may_import(actor, ledger.unit if ledger else (unit or ""), name)
    if ledger is not None and ledger.archived_at is not None:
        raise Refused(f"{path}: {ARCHIVED}，不能重新导入（ledger {name!r} is archived: read-only）",
                      hint=f"an administrator reopens it first: duban ledger unarchive {name}")
    wf_name = ledger.workflow_name if ledger else workflow_name
    registry = runtime.registry
    newest = registry.sync(session, wf_name, now)
    # a ledger's rows never mix versions: new rows follow the ledger's, moved only on purpose
    version = newest if ledger is None else registry.of_ledger(session, ledger)
    workflow = registry.definition(version)
    table = ColumnTable(workflow.columns)
    sheet = open_sheet(path, sheet=sheet_name, field_of=table.field_of)
    result = ImportResult(name, wf_name, version.version, dry_run=dry_run, file_name=path.name)
    if ledger is not None:
        result.warnings.extend(version_notes(session, registry, ledger, newest, version))
    cols = Columns(path, sheet.headers, table, result.warnings, sheet.header_rows[0])

    old_feedback = ledger.feedback_date if ledger else None
    if ledger is None:
        ledger = Ledger(name=name, workflow_name=wf_name, unit=unit or "", feedback_date=feedback_date,
                        headers=[h for h in sheet.headers if h], created_at=now, updated_at=now)
        session.add(ledger)
        session.flush()
        fresh = True
    else:
        fresh = False
        ledger.headers = _merge_headers(ledger.headers, sheet.headers)
        ledger.updated_at = now
        if feedback_date is not None:
            ledger.feedback_date = feedback_date
        if unit is not None:
            ledger.unit = unit

    problems: list[str] = []
    writer = Writer(session, runtime, ledger, version, fresh, now, actor, path, cols.header_of, problems)
    reader = RowReader(path, cols, workflow, problems=problems, feedback=lambda: ledger.feedback_date,
                       add_workdays=runtime.calendar.add_workdays)
    _layout_readings(sheet, reader)
    batch: list[dict] = []
    width = len(sheet.headers)
    for number, cells in sheet.rows:
        if len(cells) < width:
            cells = cells + [None] * (width - len(cells))
        row = reader.read(number, cells)
        if row is None:
            continue
        batch.append(row)
        if len(batch) >= BATCH:
            writer.write(batch, result)
            batch.clear()
            if progress:
                progress(sheet.position(), sheet.size)
    if batch and not problems:
        writer.write(batch, result)
    if progress:
        progress(sheet.size, sheet.size)
    result.rows = reader.rows
    if reader.supplied:  # 方面 from section headings: a column of its own on export
        ledger.headers = _merge_headers(ledger.headers, [table.spellings[f][0] for f in ("area", "category")
                                                         if f in reader.supplied])
    result.readings = reader.readings
    result.warnings.extend(reader.carried.lines(path.name))
    status_like = dict(reader.status_like())
    for header in cols.no_field:
        if (words := status_like.get(header)) is None:
            result.warnings.append(f"{path}: column {header!r} is not a ledger field; kept as an extra column")
            continue
        result.warnings.append(f"{path}: column {header!r} holds status words only ({'、'.join(words)}) but was not "
                               "read as the status, so no row's status was taken from it: to have it read, rename "
                               "it 整改状态 in the sheet or name it under columns: status: in the workflow's YAML")
    sheet_unit = reader.unit
    above = unit_above(sheet.skipped)
    if not sheet_unit and above is not None:
        sheet_unit = above[2]
        if unit is None and (fresh or not ledger.unit):
            reader.readings.add(above[0], "单位", above[1], f"the ledger's unit: {sheet_unit}")

    if unit is None and sheet_unit and ledger.unit != sheet_unit:
        if ledger.unit and not fresh:
            result.warnings.append(f"{path}: 单位 says {sheet_unit!r}; the ledger keeps {ledger.unit!r} (change it with --unit)")
        else:
            ledger.unit = sheet_unit
    if fresh and not ledger.unit and runtime.config.workspace.unit:
        ledger.unit = runtime.config.workspace.unit  # a one-unit installation's unit
    if result.rows == 0 and not problems:
        problems.append(f"{path}: the file has headers but no rows")
    if problems:
        shown = problems[:MAX_REPORTED]
        if len(problems) > MAX_REPORTED:
            shown.append(f"... and {len(problems) - MAX_REPORTED} more problems")
        raise LedgerError(f"{path}: {len(problems)} problem(s); nothing was imported", details=shown)

    if not fresh:
        count = session.scalar(select(func.count()).select_from(Issue).where(Issue.ledger_id == ledger.id)) or 0
        result.missing = count - len(reader.seen)
        if result.missing > 0:
            result.warnings.append(
                f"{path}: {result.missing} issue(s) of ledger {name!r} are not in this file; they are kept"
            )
    if not fresh and ledger.feedback_date != old_feedback:
        writer.refresh_feedback_states(workflow)
    writer.apply_claims(result)
    runtime.duty_book.sync_milestones(session, ledger, workflow.milestones, workflow.reminders, now)
    for milestone, on in (milestones_done or {}).items():
        runtime.duty_book.milestone_done(session, ledger, milestone, on, by=by, now=now,
                                         note=f"recorded at the import of {path.name}", restated=True)
    runtime.duty_book.follow_issues(session, writer.moved, now)
    session.add(LedgerImport(ledger_id=ledger.id, at=now, by=by, file_name=str(path), sha256=_sha256(path),
                             created=result.created, updated=result.updated, unchanged=result.unchanged))
    return result


def _layout_readings(sheet: Sheet, reader: RowReader) -> None:
    """The rows above the header, and how a header of several rows was read."""
    for number, line in sheet.skipped:
        reader.readings.add(number, "", line, "above the header, skipped" if number < sheet.header_rows[0]
                            else "under the header, skipped")
    if len(sheet.header_rows) > 1:
        rows = f"{sheet.header_rows[0]}–{sheet.header_rows[-1]}"
        reader.readings.add(sheet.header_rows[0], "", "; ".join(sheet.joined) or "(the same names)",
                            f"a header of {len(sheet.header_rows)} rows ({rows}), read as one")


def _may_import(actor: Actor, unit: str, name: str) -> None:
    if actor.is_admin or (unit and may_unit(actor, UnitAction.IMPORT, unit)):
        return
    raise Forbidden(f"{actor.label} may not import ledger {name!r}",
                    hint="an administrator, or the unit's administrator (unit_admin), imports ledgers")


def owners_of(session: Session, ledger: Ledger) -> list[tuple[str, str]]:
    """The distinct (责任领导, 责任科室) cells of a ledger: the people its issues name."""
    return [(a, b) for a, b in session.execute(select(Issue.leader, Issue.department)
                                              .where(Issue.ledger_id == ledger.id).distinct())]


def ensure_ledger_accounts(session: Session, ledger_name: str, now: dt.datetime) -> list[str]:
    """Make the accounts the ledger's cells name, within its unit (``[workspace] auto_accounts``)."""
    ledger = session.scalars(select(Ledger).where(Ledger.name == ledger_name)).one()
    return ensure_accounts(session, owners_of(session, ledger), ledger.unit, now)


def _merge_headers(old: list[str], new: list[str]) -> list[str]:
    return list(old) + [h for h in new if h and h not in old]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

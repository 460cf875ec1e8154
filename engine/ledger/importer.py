"""Importing a ledger file into the store, all or nothing.

The file is read once, streaming: rows are checked and written in batches inside one transaction,
and every problem found is collected. If there is any, the transaction is rolled back and all the
problems are reported (``FILE: row N: COLUMN: message``), so nothing of a bad file is kept while
memory stays flat for a million rows. Re-importing updates issues by 序号 and never duplicates.
On re-import the status column is a claim (``engine.ledger.claims``): the workflow decides.
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
from ..store.models import Issue, Ledger, LedgerImport
from ..workflow.schema import WorkflowDef
from .cells import parse_deadline, text
from .migrate import version_notes
from .sheet import open_sheet
from .writer import ImportResult, Writer

log = logging.getLogger("duban.ledger")

BATCH = 2000
MAX_REPORTED = 200  # problems listed in full; beyond that, a count


class _Columns:
    """Which cell of a row fills which field, found by header name in any order."""

    def __init__(self, path: Path, headers: list[str], workflow: WorkflowDef, warnings: list[str]):
        by_header: dict[str, str] = {}
        for target, names in workflow.columns.items():
            for name in names:
                by_header[name] = target
        self.index: dict[str, int] = {}
        self.header_of: dict[str, str] = {}
        self.extra: dict[str, int] = {}
        problems = []
        for i, header in enumerate(headers):
            if not header:
                continue
            fld = by_header.get(header)
            if fld is None:
                self.extra[header] = i
                warnings.append(f"{path}: column {header!r} is not a ledger field; kept as an extra column")
            elif fld in self.index:
                problems.append(
                    f"{path}: row 1: {header}: the column {self.header_of[fld]!r} already fills {fld!r}"
                )
            else:
                self.index[fld] = i
                self.header_of[fld] = header
        for required in ("ref", "title"):
            if required not in self.index:
                wanted = " / ".join(workflow.columns.get(required, [required]))
                problems.append(f"{path}: row 1: missing the {wanted} column")
        if problems:
            raise LedgerError(f"{path}: cannot import", details=problems)

    def getter(self, fld: str):
        """A fast accessor for one field's cell in a row padded to the header width."""
        i = self.index.get(fld)
        if i is None:
            return lambda cells: None
        return lambda cells: cells[i]


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
    sheet = open_sheet(path, sheet=sheet_name)
    name = ledger_name or path.stem
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
    result = ImportResult(name, wf_name, version.version, dry_run=dry_run)
    if ledger is not None:
        result.warnings.extend(version_notes(session, registry, ledger, newest, version))
    cols = _Columns(path, sheet.headers, workflow, result.warnings)
    words = workflow.word_to_state()

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

    writer = Writer(session, runtime, ledger, version, fresh, now, actor, path, cols.header_of)
    problems: list[str] = []
    seen: dict[str, int] = {}
    batch: list[dict] = []

    def problem(row: int, fld: str, message: str) -> None:
        header = cols.header_of.get(fld, fld)
        problems.append(f"{path}: row {row}: {header}: {message}")

    width = len(sheet.headers)
    get = {fld: cols.getter(fld) for fld in ("ref", "title", "deadline", "status", "area", "category",
                                             "measures", "leader", "department", "unit")}
    g_unit = get["unit"]
    sheet_unit = ""  # the sheet's 单位 column: one unit for the ledger (the first value given)
    g_ref, g_title, g_deadline, g_status = get["ref"], get["title"], get["deadline"], get["status"]
    g_area, g_category, g_measures, g_leader, g_department = (
        get["area"], get["category"], get["measures"], get["leader"], get["department"])
    deadlines: dict[object, dt.date | None] = {}  # the same few deadline cells recur on every row
    extra_cols = list(cols.extra.items())
    for number, cells in sheet.rows:
        result.rows += 1
        if len(cells) < width:
            cells = cells + [None] * (width - len(cells))
        ref = text(g_ref(cells))
        if not sheet_unit:
            sheet_unit = text(g_unit(cells))
        row_ok = True
        if not ref:
            problem(number, "ref", "missing 序号")
            row_ok = False
        elif ref in seen:
            problem(number, "ref", f"序号 {ref!r} already used in row {seen[ref]}")
            row_ok = False
        else:
            seen[ref] = number
        title = text(g_title(cells))
        if not title:
            problem(number, "title", "missing the problem title (具体问题)")
            row_ok = False
        raw_deadline = g_deadline(cells)
        try:
            deadline = deadlines[raw_deadline]
        except (KeyError, TypeError):
            try:
                deadline = parse_deadline(raw_deadline)
                if isinstance(raw_deadline, str):
                    deadlines[raw_deadline] = deadline
            except ValueError as exc:
                problem(number, "deadline", str(exc))
                row_ok = False
        word = text(g_status(cells))
        state = words.get(word) if word else None  # a blank cell: the initial state, or keep the state
        if word and state is None:
            known = "、".join(sorted(w for w in words if not w.isascii()))
            problem(number, "status", f"unknown status {word!r} (known: {known})")
            row_ok = False
        if not row_ok or problems:
            continue  # once anything is wrong nothing will be kept: only keep checking
        batch.append({
            "ref": ref, "position": number - 1, "area": text(g_area(cells)),
            "category": text(g_category(cells)), "title": title,
            "measures": text(g_measures(cells)), "leader": text(g_leader(cells)),
            "department": text(g_department(cells)), "deadline": deadline, "state": state,
            "extra": {h: v for h, i in extra_cols if (v := text(cells[i]))} if extra_cols else {},
            "_row": number, "_word": word,
        })
        if len(batch) >= BATCH:
            writer.write(batch, result)
            batch.clear()
            if progress:
                progress(sheet.position(), sheet.size)
    if batch and not problems:
        writer.write(batch, result)
    if progress:
        progress(sheet.size, sheet.size)

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
        result.missing = count - len(seen)
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

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Row, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from ..errors import LedgerError
from ..reminders.core import Plan
from ..runtime import Runtime
from ..store.departments import set_departments
from ..store.models import ISSUES, Issue, Ledger, LedgerImport
from ..workflow.schema import WorkflowDef
from .cells import parse_deadline, text
from .claims import StateClaim, apply_claim
from .sheet import open_sheet

log = logging.getLogger("duban.ledger")

BATCH = 2000
MAX_REPORTED = 200  # problems listed in full; beyond that, a count
MAX_CHANGES = 2000  # diff lines kept for --dry-run; beyond that, a count
FIELDS = ("area", "category", "title", "measures", "leader", "department", "deadline")


@dataclass
class ImportResult:
    ledger: str
    workflow: str
    workflow_version: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    missing: int = 0  # issues of the ledger not in this file (kept)
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False
    changes: list[str] = field(default_factory=list)  # the diff, field by field and state by state
    moved: int = 0  # state claims applied along the workflow
    not_applied: list[str] = field(default_factory=list)  # state claims refused, with the reason

    def as_json(self) -> dict[str, Any]:
        return {"ledger": self.ledger, "workflow": self.workflow, "workflow_version": self.workflow_version,
                "rows": self.rows, "created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "missing": self.missing, "moved": self.moved, "not_applied": self.not_applied,
                "changes": self.changes, "warnings": self.warnings, "dry_run": self.dry_run}


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
    by: str = "import",
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
    """
    sheet = open_sheet(path, sheet=sheet_name)
    name = ledger_name or path.stem
    ledger = session.scalar(select(Ledger).where(Ledger.name == name))
    wf_name = ledger.workflow_name if ledger else workflow_name
    registry = runtime.registry
    version = registry.sync(session, wf_name, now)
    workflow = registry.definition(version)
    result = ImportResult(name, wf_name, version.version, dry_run=dry_run)
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

    writer = _Writer(session, runtime, ledger, version, fresh, now, by, path, cols.header_of)
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
                                         note=f"recorded at the import of {path.name}")
    runtime.duty_book.follow_issues(session, writer.moved, now)
    session.add(LedgerImport(ledger_id=ledger.id, at=now, by=by, file_name=str(path), sha256=_sha256(path),
                             created=result.created, updated=result.updated, unchanged=result.unchanged))
    return result


class _Writer:
    """Writes batches of checked rows: new issues in bulk, changed ones by id, state changes to history."""

    def __init__(self, session: Session, runtime: Runtime, ledger: Ledger, version, fresh: bool,
                 now: dt.datetime, by: str, path: Path, headers: dict[str, str]):
        self.session, self.rt, self.ledger, self.fresh = session, runtime, ledger, fresh
        self.workflow_id, self.now, self.by, self.path = version.id, now, by, path
        self.wf_hash = version.content_hash
        self.workflow = runtime.registry.definition(version)
        self.today = runtime.calendar.local_date(now)
        self._plans: dict[tuple, Plan] = {}
        self.moved: list[int] = []  # issues whose state changed (their per-issue duties follow them)
        self.claims: list[StateClaim] = []  # rows whose status word differs from duban's state
        self.headers = headers  # field -> the sheet's header for it
        self.never = {st.name for st in self.workflow.states if st.import_ == "never"}

    def plan(self, state: str, deadline: dt.date | None, since: dt.date | None = None,
             tracked: dt.date | None = None) -> Plan:
        """The core's plan for a row in ``state`` with ``deadline`` (memoised: few pairs recur).
        ``since``/``tracked``: the day it entered the state / was created (default: today)."""
        key = (state, deadline, since, tracked)
        if key not in self._plans:
            core = self.rt.core
            track = core.issue_track(self.workflow, self.wf_hash, state, deadline, self.ledger.feedback_date,
                                     since or self.today, None, tracked=tracked or self.today)
            self._plans[key] = core.plan_track(track, self.now)
        return self._plans[key]

    def write(self, batch: list[dict], result: ImportResult) -> None:
        session, now = self.session, self.now
        existing: dict[str, Row[Any]] = {}
        if not self.fresh:
            rows = session.execute(
                select(Issue.id, Issue.ref, Issue.state, *(getattr(Issue, f) for f in FIELDS), Issue.extra,
                       Issue.workflow_id, Issue.state_since, Issue.created_at)
                .where(Issue.ledger_id == self.ledger.id, Issue.ref.in_([r["ref"] for r in batch]))
            ).all()
            existing = {r.ref: r for r in rows}
        inserts, updates = [], []
        departments: list[tuple[int, str]] = []
        workflow = self.workflow
        for row in batch:
            number, word = row.pop("_row"), row.pop("_word")
            old = existing.get(row["ref"])
            if old is None:
                if row["state"] is None:
                    row["state"] = workflow.initial
                elif row["state"] in self.never:
                    self.note(result, f"{self.path}: row {number}: {self.header('status')}: sheet says {word}; "
                                      f"not applied: {workflow.label(row['state'])} is reached only by a person's "
                                      f"step in duban, never by a sheet; imported as {workflow.label(workflow.initial)}")
                    row["state"] = workflow.initial
                plan = self.plan(row["state"], row["deadline"])
                inserts.append({**row, "ledger_id": self.ledger.id, "workflow_id": self.workflow_id,
                                "state_since": now, "created_at": now, "updated_at": now, "remind_after": now,
                                "next_remind_at": plan.next_remind_at, "due_on": plan.due_on,
                                "overdue_on": plan.overdue_on})
                continue
            claimed = row["state"]
            if claimed is not None and claimed != old.state:
                self.claims.append(StateClaim(old.id, old.ref, number, word, old.state, claimed))
            row["state"] = old.state  # the sheet never sets a state: a claim moves it, or nothing does
            edited = [f for f in FIELDS if getattr(old, f) != row[f]]
            if not edited and old.extra == row["extra"]:
                result.unchanged += 1
                continue
            for f in edited:
                self.change(result, f"{self.path.name}: row {number}: {self.header(f)}: "
                                    f"{_shown(getattr(old, f))} → {_shown(row[f])}")
            for h in sorted(set(old.extra) | set(row["extra"])):
                if old.extra.get(h) != row["extra"].get(h):
                    self.change(result, f"{self.path.name}: row {number}: {h}: "
                                        f"{_shown(old.extra.get(h))} → {_shown(row['extra'].get(h))}")
            moved = old.deadline != row["deadline"]
            local = self.rt.calendar.local_date
            replanned = (self.plan(row["state"], row["deadline"], local(old.state_since), local(old.created_at))
                         if moved and old.workflow_id == self.workflow_id else None)
            updates.append({**row, "b_id": old.id, "updated_at": now, "state_since": None, "remind_after": now,
                            **({"next_remind_at": _KEEP} if replanned is None else {
                                "next_remind_at": replanned.next_remind_at, "due_on": replanned.due_on,
                                "overdue_on": replanned.overdue_on})})
            if old.department != row["department"]:
                departments.append((old.id, row["department"]))
        conn = session.connection()
        if inserts:
            # A plain executemany, then the new ids by (ledger, 序号): RETURNING with parameter order
            # made SQLAlchemy send the batch row by row (a 100k import took 4× as long).
            conn.execute(insert(ISSUES), inserts)
            by_ref = dict(conn.execute(select(ISSUES.c.ref, ISSUES.c.id).where(
                ISSUES.c.ledger_id == self.ledger.id, ISSUES.c.ref.in_([row["ref"] for row in inserts]))).all())
            ids = [by_ref[row["ref"]] for row in inserts]
            set_departments(session, [(i, row["department"]) for i, row in zip(ids, inserts, strict=True)], fresh=True)
            self.moved.extend(ids)
            result.created += len(inserts)
        set_departments(session, departments)
        for with_since in (True, False):
            for with_next in (True, False):
                _update(session, [u for u in updates if (u["state_since"] is not None) == with_since
                                  and (u["next_remind_at"] is not _KEEP) == with_next],
                        with_state_since=with_since, with_next=with_next)
        result.updated += len(updates)

    def header(self, fld: str) -> str:
        return self.headers.get(fld, fld)

    @staticmethod
    def change(result: ImportResult, line: str) -> None:
        if len(result.changes) < MAX_CHANGES:
            result.changes.append(line)
        elif len(result.changes) == MAX_CHANGES:
            result.changes.append("… more changes not listed")

    def note(self, result: ImportResult, line: str) -> None:
        result.not_applied.append(line)
        result.warnings.append(line)

    def apply_claims(self, result: ImportResult) -> None:
        """Each row's state claim, along the workflow (a transition per step) or reported."""
        label = self.workflow.label
        for claim in self.claims:
            steps, reason = apply_claim(self.session, self.rt, self.workflow, claim, by=self.by, now=self.now,
                                        source=self.path.name)
            said = (f"{self.path}: row {claim.row}: {self.header('status')}: sheet says {claim.word}, "
                    f"duban has {label(claim.current)}")
            if reason is not None:
                self.note(result, f"{said}; not applied: {reason}")
                continue
            result.moved += 1
            via = ", ".join(step.label or step.trigger for step in steps)
            self.change(result, f"{self.path.name}: row {claim.row}: {self.header('status')}: "
                                f"{label(claim.current)} → {label(claim.claimed)} (via {via})")

    def refresh_feedback_states(self, workflow: WorkflowDef) -> None:
        """The feedback date changed: re-plan issues whose deadline counts from it."""
        states = [s for s, rule in workflow.deadlines.items() if rule.anchor == "feedback"]
        if not states:
            return
        rows = self.session.execute(select(Issue.id, Issue.state, Issue.deadline, Issue.state_since, Issue.workflow_id,
                                           Issue.created_at)
                                    .where(Issue.ledger_id == self.ledger.id, Issue.state.in_(states))).all()
        self._plans.clear()  # they were made with the old feedback date
        moves = []
        for r in rows:
            if r.workflow_id != self.workflow_id:
                continue
            local = self.rt.calendar.local_date
            plan = self.plan(r.state, r.deadline, local(r.state_since), local(r.created_at))
            moves.append({"b_id": r.id, "b_next": plan.next_remind_at, "b_due": plan.due_on,
                          "b_overdue": plan.overdue_on})
        if moves:
            self.session.connection().execute(
                update(ISSUES).where(ISSUES.c.id == bindparam("b_id")).values(
                    next_remind_at=bindparam("b_next"), due_on=bindparam("b_due"), overdue_on=bindparam("b_overdue")),
                moves)


_KEEP = object()  # marker: leave next_remind_at as it is


def _update(session: Session, rows: list[dict], *, with_state_since: bool, with_next: bool) -> None:
    if not rows:
        return
    # bind names must differ from column names: SQLAlchemy reserves those for the SET clause
    names = (*FIELDS, "state", "position", "extra", "updated_at") + (("state_since",) if with_state_since else ())
    names += ("remind_after", "next_remind_at", "due_on", "overdue_on") if with_next else ()
    stmt = update(ISSUES).where(ISSUES.c.id == bindparam("b_id")).values({n: bindparam(f"b_{n}") for n in names})
    session.connection().execute(stmt, [{"b_id": r["b_id"], **{f"b_{n}": r[n] for n in names}} for r in rows])


def _shown(value: object) -> str:
    if value is None or value == "":
        return "(blank)"
    shown = str(value)
    return repr(shown if len(shown) <= 60 else shown[:59] + "…")


def _merge_headers(old: list[str], new: list[str]) -> list[str]:
    return list(old) + [h for h in new if h and h not in old]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

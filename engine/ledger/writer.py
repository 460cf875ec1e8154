"""Writing checked ledger rows: new issues in bulk, changed fields by id, the diff, state claims.

The second half of ``engine.ledger.importer``: the importer reads and checks the sheet, this
module writes what it found, batch by batch, inside the importer's transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Row, bindparam, insert, select, update
from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..issues import history
from ..reminders.core import Plan
from ..reminders.replan import store_plans
from ..runtime import Runtime
from ..store.departments import set_departments
from ..store.models import ISSUES, Issue, Ledger, WorkflowVersion
from ..workflow.schema import WorkflowDef
from .claims import StateClaim, apply_claim
from .readings import Readings

MAX_CHANGES = 2000  # diff lines kept for --dry-run; beyond that, a count
FIELDS = ("area", "category", "title", "measures", "leader", "department", "deadline")
# Keys of an issue's ``extra`` that duban itself writes (not a sheet's extra columns): a re-import
# keeps them. "numbering": the numbering moved out of a cell (engine.ledger.rows), written back on
# export; "extension": a pending 延期 request (engine.issues.actions).
NUMBERING = "numbering"
KEPT = ("extension",)


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
    # what was read other than as written (a deadline phrase, numbering, a footer skipped, …)
    readings: Readings = field(default_factory=Readings)
    file_name: str = ""

    def read_as(self) -> list[str]:
        return self.readings.lines(self.file_name)

    def as_json(self) -> dict[str, Any]:
        return {"ledger": self.ledger, "workflow": self.workflow, "workflow_version": self.workflow_version,
                "rows": self.rows, "created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "missing": self.missing, "moved": self.moved, "not_applied": self.not_applied,
                "changes": self.changes, "warnings": self.warnings, "read_as": self.read_as(), "dry_run": self.dry_run}



class Writer:
    """Writes batches of checked rows: new issues in bulk, changed ones by id, state changes to history."""

    def __init__(self, session: Session, runtime: Runtime, ledger: Ledger, version, fresh: bool,
                 now: dt.datetime, actor: Actor, path: Path, headers: dict[str, str], problems: list[str]):
        self.session, self.rt, self.ledger, self.fresh = session, runtime, ledger, fresh
        self.workflow_id, self.now, self.actor, self.path = version.id, now, actor, path
        self.wf_hash = version.content_hash
        self.workflow = runtime.registry.definition(version)
        self.today = runtime.calendar.local_date(now)
        self._plans: dict[tuple, Plan] = {}
        self.moved: list[int] = []  # issues whose state changed (their per-issue duties follow them)
        self.claims: list[StateClaim] = []  # rows whose status word differs from duban's state
        self.headers = headers  # field -> the sheet's header for it
        self.never = {st.name for st in self.workflow.states if st.import_ == "never"}
        self.problems = problems  # the importer's: a row refused here rolls the import back

    def plan(self, state: str, deadline: dt.date | None, since: dt.datetime | None = None,
             created: dt.datetime | None = None, checkin: dt.datetime | None = None) -> Plan:
        """The core's plan for a row in ``state`` with ``deadline``: the row's own instants (a new
        row's are now) through the core's one mapping (``issue_track_at``); memoised by local day,
        since few combinations recur in a sheet."""
        local = self.rt.calendar.local_date
        since, created = since or self.now, created or self.now
        key = (state, deadline, local(since), local(created), None if checkin is None else local(checkin))
        if key not in self._plans:
            core = self.rt.core
            track = core.issue_track_at(self.workflow, self.wf_hash, state, deadline, self.ledger.feedback_date,
                                        since, checkin, created)
            self._plans[key] = core.plan_track(track, self.now)
        return self._plans[key]

    def write(self, batch: list[dict], result: ImportResult) -> None:
        session, now = self.session, self.now
        existing: dict[str, Row[Any]] = {}
        if not self.fresh:
            rows = session.execute(
                select(Issue.id, Issue.ref, Issue.state, *(getattr(Issue, f) for f in FIELDS), Issue.extra,
                       Issue.workflow_id, Issue.state_since, Issue.created_at, Issue.last_checkin_at, Issue.round)
                .where(Issue.ledger_id == self.ledger.id, Issue.ref.in_([r["ref"] for r in batch]))
            ).all()
            existing = {r.ref: r for r in rows}
        inserts, updates = [], []
        numbers: list[int] = []  # the sheet row of each insert
        edits: list[history.HistoryRow] = []  # the history of each edited row
        departments: list[tuple[int, str]] = []
        workflow = self.workflow
        for row in batch:
            number, word, long_term = row.pop("_row"), row.pop("_word"), row.pop("_long_term")
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
                numbers.append(number)
                inserts.append({**row, "ledger_id": self.ledger.id, "workflow_id": self.workflow_id,
                                "state_since": now, "created_at": now, "updated_at": now, "remind_after": now,
                                "next_remind_at": plan.next_remind_at, "due_on": plan.due_on,
                                "overdue_on": plan.overdue_on})
                continue
            if long_term and self.due_by_deadline(old):
                self.problems.append(
                    f"{self.path}: row {number}: {self.header('deadline')}: {word or '长期坚持'!r} is a long-term item, "
                    f"but in duban the issue is {self.workflow_of(old.workflow_id).label(old.state)}, which is due by "
                    f"its {self.header('deadline')}: keep its date until it is signed off into long-term")
                continue
            for key in KEPT:
                if key in old.extra:
                    row["extra"][key] = old.extra[key]
            claimed = row["state"]
            if claimed is not None and claimed != old.state:
                self.claims.append(StateClaim(old.id, old.ref, number, word, old.state, claimed, old.workflow_id))
            row["state"] = old.state  # the sheet never sets a state: a claim moves it, or nothing does
            edited = [f for f in FIELDS if getattr(old, f) != row[f]]
            if not edited and old.extra == row["extra"]:
                result.unchanged += 1
                continue
            lines, fields = [], []
            for f in edited:
                lines.append(f"{self.header(f)}: {_shown(getattr(old, f))} → {_shown(row[f])}")
                fields.append(history.field_change(f, getattr(old, f), row[f]))
            for f, before, after in _numbering_changes(old.extra.get(NUMBERING), row["extra"].get(NUMBERING)):
                lines.append(f"{self.header(f)}（编号）: {_shown(before)} → {_shown(after)}")
                fields.append(history.field_change(f"{f}.numbering", before, after))
            for h in sorted(set(old.extra) | set(row["extra"])):
                if h != NUMBERING and old.extra.get(h) != row["extra"].get(h):
                    lines.append(f"{h}: {_shown(old.extra.get(h))} → {_shown(row['extra'].get(h))}")
                    fields.append(history.field_change(h, old.extra.get(h), row["extra"].get(h)))
            for line in lines:
                self.change(result, f"{self.path.name}: row {number}: {line}")
            # a sheet edit is a change like any other: in the history, with its file and row
            edits.append({"issue_id": old.id, "at": now, "by": self.actor.name, "door": self.actor.door,
                          "trigger": "edit", "from_state": old.state, "to_state": old.state, "round_": old.round,
                          "note": f"导入 {self.path.name} 第{number}行：" + "；".join(lines)[:3000],
                          "changes": [{"file": self.path.name, "row": number}, *fields]})
            moved = old.deadline != row["deadline"]
            replanned = (self.plan(row["state"], row["deadline"], old.state_since, old.created_at,
                                   old.last_checkin_at)
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
            history.record_many(session, [
                {"issue_id": i, "at": now, "by": self.actor.name, "door": self.actor.door, "trigger": "import",
                 "from_state": row["state"], "to_state": row["state"], "round_": 1,
                 "note": f"导入 {self.path.name} 第{n}行", "changes": [{"file": self.path.name, "row": n}]}
                for i, row, n in zip(ids, inserts, numbers, strict=True)], fresh=True)
            set_departments(session, self.ledger.id, [(i, row["department"]) for i, row in zip(ids, inserts, strict=True)],
                            fresh=True)
            self.moved.extend(ids)
            result.created += len(inserts)
        set_departments(session, self.ledger.id, departments)
        for with_since in (True, False):
            for with_next in (True, False):
                _update(session, [u for u in updates if (u["state_since"] is not None) == with_since
                                  and (u["next_remind_at"] is not _KEEP) == with_next],
                        with_state_since=with_since, with_next=with_next)
        history.record_many(session, edits)
        result.updated += len(updates)

    def header(self, fld: str) -> str:
        return self.headers.get(fld, fld)

    def due_by_deadline(self, old: Row[Any]) -> bool:
        """The issue's state is due by its own 整改时限 (已制定方案, 整改中): it cannot lose its date."""
        rule = self.workflow_of(old.workflow_id).deadlines.get(old.state)
        return rule is not None and rule.anchor == "deadline"

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
        for claim in self.claims:
            workflow = self.workflow_of(claim.workflow_id)
            label = workflow.label
            steps, reason = apply_claim(self.session, self.rt, workflow, claim, actor=self.actor, now=self.now,
                                        source=self.path.name)
            if reason is not None:  # one message, not pieces: it is translated whole
                self.note(result, f"{self.path}: row {claim.row}: {self.header('status')}: sheet says {claim.word}, "
                                  f"duban has {label(claim.current)}; not applied: {reason}")
                continue
            result.moved += 1
            via = "、".join(step.label or step.trigger for step in steps)
            self.change(result, f"{self.path.name}: row {claim.row}: {self.header('status')}: "
                                f"{label(claim.current)} → {label(claim.claimed)} (via {via})")

    def workflow_of(self, workflow_id: int | None) -> WorkflowDef:
        """The workflow an existing issue moves by: its own version (the ledger's, unless an older
        duban mixed two in it), so a reported step is one that issue's machine has."""
        if workflow_id is None or workflow_id == self.workflow_id:
            return self.workflow
        version = self.session.get(WorkflowVersion, workflow_id)
        assert version is not None  # issues.workflow_id is a foreign key
        return self.rt.registry.definition(version)

    def refresh_feedback_states(self, workflow: WorkflowDef) -> None:
        """The feedback date changed: re-plan issues whose deadline counts from it."""
        states = [s for s, rule in workflow.deadlines.items() if rule.anchor == "feedback"]
        if not states:
            return
        rows = self.session.execute(select(Issue.id, Issue.state, Issue.deadline, Issue.state_since, Issue.workflow_id,
                                           Issue.created_at, Issue.last_checkin_at)
                                    .where(Issue.ledger_id == self.ledger.id, Issue.state.in_(states))).all()
        self._plans.clear()  # they were made with the old feedback date
        store_plans(self.session, ISSUES, [(r.id, self.plan(r.state, r.deadline, r.state_since, r.created_at,
                                                              r.last_checkin_at))
                                           for r in rows if r.workflow_id == self.workflow_id], after=None)


_KEEP = object()  # marker: leave next_remind_at as it is


def _update(session: Session, rows: list[dict], *, with_state_since: bool, with_next: bool) -> None:
    if not rows:
        return
    # bind names must differ from column names: SQLAlchemy reserves those for the SET clause
    names = (*FIELDS, "state", "position", "extra", "updated_at") + (("state_since",) if with_state_since else ())
    names += ("remind_after", "next_remind_at", "due_on", "overdue_on") if with_next else ()
    stmt = update(ISSUES).where(ISSUES.c.id == bindparam("b_id")).values({n: bindparam(f"b_{n}") for n in names})
    session.connection().execute(stmt, [{"b_id": r["b_id"], **{f"b_{n}": r[n] for n in names}} for r in rows])


def _numbering_changes(old: object, new: object) -> list[tuple[str, object, object]]:
    before = old if isinstance(old, dict) else {}
    after = new if isinstance(new, dict) else {}
    return [(f, before.get(f), after.get(f)) for f in sorted(set(before) | set(after)) if before.get(f) != after.get(f)]


def _shown(value: object) -> str:
    if value is None or value == "":
        return "(blank)"
    shown = str(value)
    return repr(shown if len(shown) <= 60 else shown[:59] + "…")

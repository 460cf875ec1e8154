"""A ledger's end: archived when its rectification is over, reopened, or deleted (a test ledger).

**Archived** (``duban ledger archive``). A closed 巡察整改台账 is evidence: it stays in every report,
the board and the overview, and whoever could read it still can, but nobody writes to it — the
policy refuses every action but viewing on its issues and duties (``policy.ARCHIVED``, administrators
included) and a re-import is refused — and nothing about it is reminded of. The stored plan of its
issues and open occurrences (``next_remind_at``) is cleared: the sweep and the preview read only
rows whose next reminder has come, so they skip it without a query of their own; reminders
already written but not routed yet are marked routed (silenced). The due dates stay, so the board
and the report still say what was late. **Unarchived**: planned again from now (``replan_all`` of
the ledger; the look-backs its long-term items would have had meanwhile are generated), nothing
of the closed time caught up.

**Deleted** (``duban ledger delete``), after the operator typed the ledger's name: the database
cascades from ``ledgers`` to its issues, their history, evidence rows, reminders, departments, its
imports, milestones and their occurrences. Store files (``[evidence] folder``) no remaining row
names are moved aside *inside* the transaction — on PostgreSQL with the evidence table locked
against new rows, on SQLite under the write lock every writer takes — and unlinked once it has
committed; a failed commit puts them back. So an upload of the same bytes, racing the delete,
never loses its file.

Each act is an administrator's (``UnitAction.ARCHIVE``: administrators and the unit's; ``DELETE``:
administrators only) and is written to the administrators' log: who, the door, when, what, why.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import ColumnElement, Table, delete, func, or_, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from ..accounts.actor import Actor
from ..accounts.policy import WORDS, UnitAction, may_unit
from ..errors import Forbidden, NotFound, Refused
from ..issues.evidence import STAGING_PREFIX, EvidenceStore
from ..reminders.replan import replan_all
from ..runtime import Runtime
from ..store import adminlog, db
from ..store.kinds import OccurrenceState
from ..store.models import (
    DUTIES,
    EVIDENCE,
    HISTORY,
    ISSUES,
    LEDGER_IMPORTS,
    LEDGERS,
    OCCURRENCES,
    REMINDERS,
    Ledger,
)


@dataclass(frozen=True)
class Archived:
    ledger: str
    at: dt.datetime
    issues: int  # issues no longer reminded of
    occurrences: int  # open milestones and look-backs no longer reminded of
    silenced: int  # reminders written but not routed, marked routed


@dataclass(frozen=True)
class Reopened:
    ledger: str
    at: dt.datetime
    planned: int  # issues and occurrences planned again


@dataclass
class Deleted:
    ledger: str
    at: dt.datetime
    counts: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # store files removed (no other row named them)


def _ledger(session: Session, name: str) -> Ledger:
    stmt = select(Ledger).where(Ledger.name == name)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()  # two administrators acting at once: one waits, then sees the other's act
    ledger = session.scalar(stmt)
    if ledger is None:
        known = session.scalars(select(Ledger.name).order_by(Ledger.name).limit(30)).all()
        raise NotFound(f"no ledger {name!r}", hint=f"ledgers: {', '.join(known) or 'none'}")
    return ledger


def _require(actor: Actor, action: UnitAction, ledger: Ledger) -> None:
    if not may_unit(actor, action, ledger.unit):
        who = "管理员" if action == UnitAction.DELETE else "管理员或本单位管理员"
        raise Forbidden(f"{actor.label} 无权{WORDS[action]}（限{who}）",
                        hint="an administrator (admin) or, to archive, the unit's administrator (unit_admin)")


def _when(at: dt.datetime | None, tz: dt.tzinfo) -> str:
    return at.astimezone(tz).isoformat(timespec="minutes") if at else "?"


# -- archive, unarchive -------------------------------------------------------------------------

def archive_ledger(session: Session, runtime: Runtime, name: str, *, actor: Actor, now: dt.datetime,
                   note: str = "") -> Archived:
    """Close the ledger ``name``: read-only, never reminded of; still read and reported."""
    ledger = _ledger(session, name)
    _require(actor, UnitAction.ARCHIVE, ledger)
    tz = runtime.config.tz
    if ledger.archived_at is not None:
        raise Refused(f"台账 {name} 已于 {_when(ledger.archived_at, tz)} 由 {ledger.archived_by} 归档"
                      f"（already archived）")
    ledger.archived_at, ledger.archived_by, ledger.updated_at = now, actor.name, now
    session.flush()
    conn = session.connection()
    issues = conn.execute(update(ISSUES).where(ISSUES.c.ledger_id == ledger.id).values(next_remind_at=None)).rowcount
    occurrences = conn.execute(update(OCCURRENCES).where(
        OCCURRENCES.c.ledger_id == ledger.id, OCCURRENCES.c.state == OccurrenceState.OPEN)
        .values(next_remind_at=None)).rowcount
    silenced = conn.execute(update(REMINDERS).where(REMINDERS.c.ledger_id == ledger.id, REMINDERS.c.routed_at.is_(None))
                            .values(routed_at=now)).rowcount
    adminlog.record(session, at=now, by=actor.name, door=actor.door, action="ledger.archive", subject=name, note=note,
                    details={"issues": issues, "occurrences": occurrences, "reminders_silenced": silenced})
    return Archived(name, now, issues, occurrences, silenced)


def unarchive_ledger(session: Session, runtime: Runtime, name: str, *, actor: Actor, now: dt.datetime,
                     note: str = "") -> Reopened:
    """Reopen an archived ledger: writable again, its reminders planned from ``now``."""
    ledger = _ledger(session, name)
    _require(actor, UnitAction.ARCHIVE, ledger)
    if ledger.archived_at is None:
        raise Refused(f"台账 {name} 未归档（not archived）")
    since = ledger.archived_at
    ledger.archived_at, ledger.archived_by, ledger.updated_at = None, None, now
    session.flush()
    planned = replan_all(session, runtime, now, ledger_id=ledger.id)
    ids = list(session.scalars(select(ISSUES.c.id).where(ISSUES.c.ledger_id == ledger.id)))
    runtime.duty_book.follow_issues(session, ids, now)  # the look-backs of its long-term items, from today
    adminlog.record(session, at=now, by=actor.name, door=actor.door, action="ledger.unarchive", subject=name,
                    note=note, details={"planned": planned, "archived_at": since.isoformat()})
    return Reopened(name, now, planned)


def admin_log(session: Session, *, subject: str | None = None, limit: int = 200) -> list[adminlog.LogEntry]:
    """The administrators' log (ledgers archived, reopened, deleted; backups restored), newest first."""
    return adminlog.entries(session, subject=subject, limit=limit)


def archived_ledgers(session: Session) -> set[str]:
    return set(session.scalars(select(Ledger.name).where(Ledger.archived_at.is_not(None))))


# -- delete -------------------------------------------------------------------------------------

def delete_ledger(sessions: sessionmaker[Session], store: EvidenceStore, name: str, *,
                  actor_of: Callable[[Session], Actor], now: dt.datetime,
                  confirm: str, note: str = "") -> Deleted:
    """Remove the ledger ``name`` and everything of it, once ``confirm`` repeats its name exactly.

    Runs its own transaction (``actor_of(session)`` builds the acting user in it), since the store
    files it removes must follow that transaction's fate (see the module docstring)."""
    aside: list[tuple[Path, Path]] = []
    try:
        with db.transaction(sessions) as session:
            actor: Actor = actor_of(session)
            ledger = _ledger(session, name)
            _require(actor, UnitAction.DELETE, ledger)
            if ledger.archived_at is not None:
                raise Refused(f"台账 {name} 已归档，是整改的证据，不能删除（an archived ledger is kept as evidence）",
                              hint=f"if it really is a test ledger, reopen it first: duban ledger unarchive {name}")
            if confirm != ledger.name:
                raise Refused(f"确认的名称「{confirm}」与台账名称「{ledger.name}」不符，未删除"
                              f"(the confirmation does not repeat the ledger's name; nothing was deleted)")
            if session.get_bind().dialect.name == "postgresql":
                # no evidence row can be added until this commits: an upload of bytes this delete is
                # about to unlink either committed before (and is seen below) or comes after
                session.execute(text("LOCK TABLE evidence IN SHARE ROW EXCLUSIVE MODE"))
            result = Deleted(ledger.name, now, counts=_counts(session, ledger.id))
            shas = _store_files(session, ledger.id)
            session.execute(delete(LEDGERS).where(LEDGERS.c.id == ledger.id))  # the database cascades
            session.expunge(ledger)
            still = set(session.scalars(select(EVIDENCE.c.sha256).where(EVIDENCE.c.sha256.in_(shas)).distinct())) \
                if shas else set()
            result.files = sorted(shas - still)
            adminlog.record(session, at=now, by=actor.name, door=actor.door, action="ledger.delete", subject=name,
                            note=note, details={**result.counts, "store_files_removed": len(result.files),
                                                "unit": ledger.unit, "archived": ledger.archived_at is not None})
            aside = _set_aside(store.folder, result.files)
    except BaseException:
        for moved, original in aside:
            with contextlib.suppress(OSError):
                os.replace(moved, original)
        raise
    for moved, _ in aside:
        with contextlib.suppress(FileNotFoundError):
            moved.unlink()
    return result


def contents(session: Session, name: str) -> dict[str, int]:
    """What deleting the ledger ``name`` would remove, counted (shown before the name is typed)."""
    return _counts(session, _ledger(session, name).id)


def _counts(session: Session, ledger_id: int) -> dict[str, int]:
    issues = select(ISSUES.c.id).where(ISSUES.c.ledger_id == ledger_id)
    occurrences = select(OCCURRENCES.c.id).where(OCCURRENCES.c.ledger_id == ledger_id)

    def count(table: Table, *where: ColumnElement[bool]) -> int:
        return session.scalar(select(func.count()).select_from(table).where(*where)) or 0

    return {
        "issues": count(ISSUES, ISSUES.c.ledger_id == ledger_id),
        "history": count(HISTORY, HISTORY.c.issue_id.in_(issues)),
        "evidence": count(EVIDENCE, or_(EVIDENCE.c.issue_id.in_(issues), EVIDENCE.c.occurrence_id.in_(occurrences))),
        "reminders": count(REMINDERS, REMINDERS.c.ledger_id == ledger_id),
        "duties": count(DUTIES, DUTIES.c.ledger_id == ledger_id),
        "occurrences": count(OCCURRENCES, OCCURRENCES.c.ledger_id == ledger_id),
        "imports": count(LEDGER_IMPORTS, LEDGER_IMPORTS.c.ledger_id == ledger_id),
    }


def _store_files(session: Session, ledger_id: int) -> set[str]:
    """The SHA-256 names of the store files the ledger's evidence rows use (never a path outside the store)."""
    issues = select(ISSUES.c.id).where(ISSUES.c.ledger_id == ledger_id)
    occurrences = select(OCCURRENCES.c.id).where(OCCURRENCES.c.ledger_id == ledger_id)
    return set(session.scalars(select(EVIDENCE.c.sha256).where(
        EVIDENCE.c.content.is_(None),
        or_(EVIDENCE.c.issue_id.in_(issues), EVIDENCE.c.occurrence_id.in_(occurrences))).distinct()))


def _set_aside(folder: Path, names: list[str]) -> list[tuple[Path, Path]]:
    """Rename each store file to a temporary name (``duban evidence check`` lists one a crash left)."""
    moved = []
    for sha in names:
        original = folder / sha
        temp = folder / f"{STAGING_PREFIX}deleted-{sha[:16]}-{secrets.token_hex(4)}"
        try:
            os.replace(original, temp)
        except FileNotFoundError:
            continue  # already missing: nothing to remove
        moved.append((temp, original))
    return moved


"""The history: every change to an issue, written here and only here, as a hash chain per issue.

Each entry says who (``by``: the login name), through which door, when, the step (``trigger``), the
state before → after, what changed field by field (``changes``: before → after; an import's file and
row; an evidence file's id and SHA-256), the round and why (``note``). Its ``hash`` is SHA-256 over
that content and its predecessor's ``hash`` (``prev_hash``; the first entry of an issue chains to
``genesis(issue_id)``), so an entry changed, deleted or inserted behind duban's back breaks the chain
at that point, and ``verify`` names it.

Several daemons write at once on PostgreSQL: a writer holds the issue's row lock (the services open
an issue ``for_update``) while it reads the head and appends, and ``(issue_id, prev_hash)`` is unique,
so two writers can never both extend the same head — the second fails instead of forking the chain.

What the chain proves, and what it does not: it shows that the history as stored is the history
duban wrote — nothing edited, removed or slipped in between — as long as the chain head a reader
holds (printed by ``duban audit verify``, in exports and reports) came from a time before the
tampering. Someone with write access to the database who recomputes every hash after a change
produces a new, self-consistent chain; only a head kept elsewhere (the copy sent to the 纪检组)
exposes that. It does not prove that what a person wrote is true.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NotRequired, TypedDict

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.orm import Session

from ..store.models import HISTORY, ISSUES, Evidence, HistoryEntry, Issue, Ledger
from ..store.prepared import PreparedSet
from . import search

CHAIN_VERSION = "duban-history-v1"


class FieldChange(TypedDict):
    """A field edited: its value before and after (a date as ISO text)."""

    field: str
    before: object
    after: object


class EvidenceAdded(TypedDict):
    """A file added as evidence, by its row and its SHA-256."""

    evidence: int
    sha256: str
    file: str


class ImportedRow(TypedDict):
    """The sheet and row an import read."""

    file: str
    row: int


# What an entry's ``changes`` hold. The stored JSON (and so the hash) is these dicts as they are.
Change = FieldChange | EvidenceAdded | ImportedRow


class HistoryRow(TypedDict):
    """One entry for ``record_many``: ``record``'s keyword arguments plus ``issue_id``."""

    issue_id: int
    at: dt.datetime
    by: str
    door: str
    trigger: str
    from_state: str | None
    to_state: str
    note: NotRequired[str]
    round_: NotRequired[int | None]
    changes: NotRequired[Sequence[Change] | None]


def genesis(issue_id: int) -> str:
    return hashlib.sha256(f"{CHAIN_VERSION}:issue:{issue_id}".encode()).hexdigest()


def _instant(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def entry_hash(issue_id: int, at: dt.datetime, by: str, door: str, trigger: str, from_state: str | None,
               to_state: str, note: str, round_: int | None, changes: Sequence[Mapping[str, object]] | None,
               prev_hash: str) -> str:
    content = [CHAIN_VERSION, issue_id, _instant(at), by, door, trigger, from_state, to_state, note or "", round_,
               changes or [], prev_hash]
    text = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def hash_of(entry: HistoryEntry) -> str:
    return entry_hash(entry.issue_id, entry.at, entry.by, entry.door, entry.trigger, entry.from_state,
                      entry.to_state, entry.note, entry.round, entry.changes, entry.prev_hash or "")


def _heads(session: Session) -> dict[int, str]:
    # the chain heads this transaction has written: entries not flushed yet are heads too
    heads: dict[int, str] = session.info.setdefault("duban.history_heads", {})
    return heads


def head(session: Session, issue_id: int) -> str:
    """The hash the next entry of this issue chains to."""
    heads = _heads(session)
    if issue_id not in heads:
        # Entries this transaction added are in ``heads`` already: nothing needs flushing first,
        # so the connection is asked directly (no autoflush, no ORM result).
        conn = session.connection()
        last = _PREPARED.get(conn, "head").first(conn, {"issue_id": issue_id})
        heads[issue_id] = (last[0] if last else None) or genesis(issue_id)
    return heads[issue_id]


# Built once, and run on the driver (engine.store.prepared): a step asks for its issue's head and
# appends an entry every time, and SQLAlchemy's execute cost more than the two statements.
_ENTRY = ("issue_id", "at", "by", "door", "trigger", "from_state", "to_state", "note", "round", "changes",
          "prev_hash", "hash")
_PREPARED = PreparedSet({
    # inline: no RETURNING of the new id (nobody reads it)
    "insert": insert(HISTORY).values({name: bindparam(name, type_=HISTORY.c[name].type) for name in _ENTRY}).inline(),
    "head": (select(HISTORY.c.hash).where(HISTORY.c.issue_id == bindparam("issue_id"))
             .order_by(HISTORY.c.id.desc()).limit(1)),
})


def record(session: Session, issue: Issue | int, *, by: str, door: str, at: dt.datetime, trigger: str,
           from_state: str | None, to_state: str, note: str = "", round_: int | None = None,
           changes: Sequence[Change] | None = None) -> str:
    """Append one entry to the issue's chain (in the caller's transaction); its hash, the new head."""
    if isinstance(issue, Issue) and issue.id is None:
        session.flush()  # a new issue: its id first
    issue_id = issue if isinstance(issue, int) else issue.id
    if round_ is None and isinstance(issue, Issue):
        round_ = issue.round or 1
    prev = head(session, issue_id)
    note = note or ""
    stored = [dict(c) for c in changes] if changes else None
    value = entry_hash(issue_id, at, by, door, trigger, from_state, to_state, note, round_, stored, prev)
    # Straight to the connection, not through the unit of work, and no HistoryEntry built: one row
    # whose every value is known here, and a step's flush (or building the mapped object) would
    # otherwise cost more than the rest of the step.
    conn = session.connection()
    _PREPARED.get(conn, "insert").run(conn, {
        "issue_id": issue_id, "at": at, "by": by, "door": door, "trigger": trigger, "from_state": from_state,
        "to_state": to_state, "note": note, "round": round_, "changes": stored, "prev_hash": prev, "hash": value})
    _heads(session)[issue_id] = value
    if trigger == "progress" and not changes:  # a note only adds to the text: its row grows by it
        search.note(session, issue_id, note)
    elif search.changes_text(trigger, changes):  # every text change passes here: the index follows it
        search.mark(session, [issue_id])
    return value


def prime_heads(session: Session, issue_ids: list[int], *, fresh: bool = False) -> None:
    """Read the chain heads of many issues at once (``fresh``: new issues, whose head is genesis)."""
    heads = _heads(session)
    wanted = [i for i in issue_ids if i not in heads]
    if fresh:
        heads.update({i: genesis(i) for i in wanted})
        return
    for start in range(0, len(wanted), 1000):
        part = wanted[start:start + 1000]
        last = (select(func.max(HistoryEntry.id)).where(HistoryEntry.issue_id.in_(part))
                .group_by(HistoryEntry.issue_id).scalar_subquery())
        found = dict(session.execute(select(HistoryEntry.issue_id, HistoryEntry.hash)
                                     .where(HistoryEntry.id.in_(last))).all())
        heads.update({i: found.get(i) or genesis(i) for i in part})


def record_many(session: Session, entries: Sequence[HistoryRow], *, fresh: bool = False) -> None:
    """Append many entries at once (an import): each a dict of ``record``'s keyword arguments plus
    ``issue_id``; one executemany, chained in the order given."""
    if not entries:
        return
    prime_heads(session, list(dict.fromkeys(e["issue_id"] for e in entries)), fresh=fresh)
    heads = _heads(session)
    rows = []
    for e in entries:
        prev = heads[e["issue_id"]]
        value = entry_hash(e["issue_id"], e["at"], e["by"], e["door"], e["trigger"], e["from_state"], e["to_state"],
                           e.get("note", ""), e.get("round_"), e.get("changes"), prev)
        heads[e["issue_id"]] = value
        rows.append({"issue_id": e["issue_id"], "at": e["at"], "by": e["by"], "door": e["door"], "trigger": e["trigger"],
                     "from_state": e["from_state"], "to_state": e["to_state"], "note": e.get("note", ""),
                     "round": e.get("round_"), "changes": e.get("changes"), "prev_hash": prev, "hash": value})
    session.connection().execute(insert(HISTORY), rows)
    search.mark(session, [e["issue_id"] for e in entries if search.changes_text(e["trigger"], e.get("changes"))])


def field_change(name: str, before: object, after: object) -> FieldChange:
    def shown(value: object) -> object:
        return value.isoformat() if isinstance(value, dt.date) else value
    return {"field": name, "before": shown(before), "after": shown(after)}


# -- verification --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Break:
    issue_ref: str
    entry_id: int | None
    what: str

    def __str__(self) -> str:
        at = f"entry {self.entry_id}" if self.entry_id is not None else "its evidence"
        return f"{self.issue_ref}: {at}: {self.what}"


@dataclass
class Verified:
    issues: int = 0
    entries: int = 0
    evidence: int = 0
    head: str = ""
    breaks: list[Break] | None = None
    held_ok: bool | None = None  # the head given to check: the history up to its instant unchanged

    @property
    def ok(self) -> bool:
        return not self.breaks


def _rows(session: Session, ledger_id: int | None, batch: int = 5000) -> Iterator[HistoryEntry]:
    """Every entry (of one ledger), by issue and then in the order written, a batch at a time."""
    last_issue, last_id = 0, 0
    while True:
        stmt = select(HistoryEntry).where(
            (HistoryEntry.issue_id > last_issue)
            | ((HistoryEntry.issue_id == last_issue) & (HistoryEntry.id > last_id)))
        if ledger_id is not None:
            stmt = stmt.where(HistoryEntry.issue_id.in_(select(Issue.id).where(Issue.ledger_id == ledger_id)))
        rows = session.scalars(stmt.order_by(HistoryEntry.issue_id, HistoryEntry.id).limit(batch)).all()
        if not rows:
            return
        yield from rows
        last_issue, last_id = rows[-1].issue_id, rows[-1].id
        session.expunge_all()


def head_text(at: dt.datetime, digest: str) -> str:
    """A chain head as people keep it: the instant it was taken and the digest of every chain then."""
    return f"{at.astimezone(dt.UTC):%Y%m%dT%H%M%S.%fZ}-{digest}"


def parse_head(text: str) -> tuple[dt.datetime, str] | None:
    when, _, digest = text.strip().partition("-")
    try:
        at = dt.datetime.strptime(when, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return (at, digest.lower()) if len(digest) == 64 else None


def verify(session: Session, ledger: Ledger | None = None, *, at: dt.datetime | None = None,
           held: str | None = None) -> Verified:
    """Recompute every chain (of one ledger): the first entry changed, deleted or inserted behind
    duban's back in each issue, and every evidence file whose SHA-256 differs from what its entry
    recorded. ``head`` is the chains' digest at ``at`` (default: now), kept as ``head_text``;
    ``held`` (a head taken earlier) is recomputed as of its own instant: the history up to then
    must be unchanged, whatever was added since."""
    at = at or dt.datetime.now(dt.UTC)
    then = parse_head(held) if held else None
    refs = dict(session.execute(select(Issue.id, Ledger.name + "/" + Issue.ref).join(Ledger, Ledger.id == Issue.ledger_id)
                                .where(*([Issue.ledger_id == ledger.id] if ledger is not None else []))).all())
    out = Verified(breaks=[])
    breaks: list[Break] = []
    digests = {"now": hashlib.sha256(CHAIN_VERSION.encode()), "then": hashlib.sha256(CHAIN_VERSION.encode())}
    recorded: dict[int, str] = {}  # evidence id -> the SHA-256 its entry recorded
    current: int | None = None
    expected, broken = "", False
    last_at: dict[str, str | None] = {"now": None, "then": None}  # each issue's last hash up to each instant
    seen_issues: set[int] = set()

    def close(issue_id: int | None) -> None:
        if issue_id is None:
            return
        for key, digest in digests.items():
            if last_at[key] is not None:
                digest.update(f"{issue_id}:{last_at[key]};".encode())

    for entry in _rows(session, ledger.id if ledger is not None else None):
        if entry.issue_id != current:
            close(current)
            current, expected, broken = entry.issue_id, genesis(entry.issue_id), False
            last_at.update(now=None, then=None)
            seen_issues.add(entry.issue_id)
        out.entries += 1
        for change in entry.changes or []:
            if isinstance(change, dict) and "evidence" in change:
                recorded[int(change["evidence"])] = str(change.get("sha256"))
        if not broken:
            ref = refs.get(entry.issue_id, f"issue {entry.issue_id}")
            if entry.prev_hash != expected:
                what = ("an entry before it was deleted, or this one inserted" if entry.prev_hash else
                        "written outside the chain (no predecessor hash)")
                breaks.append(Break(ref, entry.id, what))
                broken = True
            elif entry.hash != hash_of(entry):
                breaks.append(Break(ref, entry.id, "changed after it was written (its content no longer matches its hash)"))
                broken = True
        expected = entry.hash or ""
        if entry.at <= at:
            last_at["now"] = expected
        if then is not None and entry.at <= then[0]:
            last_at["then"] = expected
    close(current)
    out.issues = len(seen_issues)
    out.head = head_text(at, digests["now"].hexdigest())
    out.held_ok = None if then is None else digests["then"].hexdigest() == then[1]
    stmt = select(Evidence.id, Evidence.issue_id, Evidence.sha256).where(Evidence.issue_id.is_not(None))
    if ledger is not None:
        stmt = stmt.where(Evidence.issue_id.in_(select(Issue.id).where(Issue.ledger_id == ledger.id)))
    for evidence_id, owner, sha in session.execute(stmt):
        issue_id = owner or 0  # never None: the query asks for issues' files
        out.evidence += 1
        if evidence_id in recorded and recorded[evidence_id] != sha:
            breaks.append(Break(refs.get(issue_id, f"issue {issue_id}"), None,
                                f"evidence file {evidence_id}: its SHA-256 is not the one the history recorded"))
        elif evidence_id not in recorded:
            breaks.append(Break(refs.get(issue_id, f"issue {issue_id}"), None,
                                f"evidence file {evidence_id} is in no history entry (added behind duban's back)"))
    out.breaks = breaks
    return out


def chain_head(session: Session, ledger: Ledger, at: dt.datetime | None = None) -> str:
    """The head of a ledger's chains at ``at`` as ``verify`` computes it, for exports and reports,
    read off the stored hashes: per issue in id order the stored ``hash`` of its last entry (in the
    order written) at or before ``at``, folded into one SHA-256 as ``verify`` folds them — one query
    of three columns, no entry re-hashed. Whether the chains hold is ``verify``'s question (``duban
    audit verify``, which with ``--head`` checks a head printed here); a report that printed the
    head through ``verify`` paid for the whole verification and threw the verdict away."""
    at = at or dt.datetime.now(dt.UTC)
    digest = hashlib.sha256(CHAIN_VERSION.encode())
    h = HISTORY.c
    rows = session.execute(select(h.issue_id, h.at, h.hash)
                           .where(h.issue_id.in_(select(ISSUES.c.id).where(ISSUES.c.ledger_id == ledger.id)))
                           .order_by(h.issue_id, h.id))
    current: int | None = None
    last: str | None = None  # the issue's last hash up to ``at`` ("" for an entry without one, as verify)
    for issue_id, when, value in rows:
        if issue_id != current:
            if last is not None:
                digest.update(f"{current}:{last};".encode())
            current, last = issue_id, None
        if when <= at:
            last = value or ""
    if last is not None:
        digest.update(f"{current}:{last};".encode())
    return head_text(at, digest.hexdigest())

"""Search that serves Chinese: an index of characters and character pairs, confirmed by LIKE.

Most Chinese search words have two characters (学习, 整改), some one; trigram indexes (FTS5's
trigram tokenizer, pg_trgm) cannot answer those, and ``LIKE '%q%'`` reads every row when nothing
matches. Each issue's text — 序号, 编号, 具体问题, 整改措施 and its progress notes (进展情况) — is
folded (NFKC, lower case) and stored in ``issue_search`` with its *terms*: every letter/digit
character, and every pair of neighbouring ones within a run of letters and digits. A query's terms
are its pairs (a one-character run: the character): an issue whose text contains the query has
all of them, so their AND is a superset of the answer, read off the index (FTS5 on SQLite, GIN on
PostgreSQL), and LIKE on those candidates alone gives the exact answer. A word found nowhere is
answered by the index without reading a row.

The title's terms are in the index twice, the second time marked (``title_term``): the hits in a
title are listed first, and both parts — title hits, then the rest — are read in the order the
issues were entered (their id), a page at a time off the index, so a word in a sixth of a
million issues costs a page, not a sort of all of them. SQLite's FTS5 hands its matches over in
rowid order and a page or a capped count stops there; PostgreSQL's GIN index cannot, so a common
word's page (past the list's count cap) is read walking the issues in id order, each checked by
LIKE (``walk``), for at most ``WALK_ROWS`` rows (``walk_bound``) before falling back to the index.

The index follows every write through the history (``engine.issues.history`` is the one writer of
it): an entry that changes an issue's text marks the issue, and its row is rewritten when the
transaction commits, from what the database then holds. A progress note only adds to the text,
at its end: its row gains the note and the note's terms (``note``), without reading the issue's
earlier notes again — what the rewrite would give, at the cost of one note, not of all of them.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Table,
    Text,
    and_,
    column,
    delete,
    event,
    false,
    func,
    insert,
    literal_column,
    or_,
    select,
    table,
    text,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from ..store.db import bulk_cache
from ..store.models import HISTORY, ISSUE_DEPARTMENTS, ISSUE_SEARCH, ISSUES, SiteState

# Bump when the terms or the folded text change: ``duban init`` then rebuilds the index.
VERSION = "pairs-scope-title-3"
FTS = "issue_search_fts"
_FTS_ROWS = table(FTS, column("rowid", Integer))  # SQLite: its matches, joined by rowid
SITE_STATE = cast(Table, SiteState.__table__)
SITE_STATE_NAME_SEARCH = "search_version"  # the VERSION the index was built by
_STALE = "duban.search_stale"
_NOTES = "duban.search_notes"
_BATCH = 1000
# PostgreSQL: the rows a page of a common word walks in id order (``walk``, ``walk_bound``) before
# it gives up and collects the matches off the GIN index instead (a word rare in titles, say)
WALK_ROWS = 20_000
# PostgreSQL: a word whose every term is in at least this share of the rows (ANALYZE's most common
# elements of ``terms``) and in more rows than a walk reads is counted by a walk first (``common``):
# at 5 % the walk's 20,000 rows hold about a thousand matches, the count's cap
COMMON_SHARE = 0.05
_COMMON_SECONDS = 300.0  # how long the shares read off pg_stats are kept (they change at ANALYZE)
_common_shares: dict[str, tuple[float, dict[str, tuple[float, float]]]] = {}
# history triggers whose entries always change the searched text; others do when a field changed
_TEXT_TRIGGERS = frozenset({"import", "progress"})
# the text, and who the issue is of (its scope terms: see ``scope_terms``)
_TEXT_FIELDS = frozenset({"ref", "title", "measures", "leader", "department"})


def fold(value: str) -> str:
    """The form both the text and a query are compared in: full-width letters and digits as
    half-width ones (NFKC), lower case."""
    return unicodedata.normalize("NFKC", value).lower()


# runs of letters and digits: \w is str.isalnum() and the underscore (the ``re`` docs), less the underscore
_RUN = re.compile(r"[^\W_]+")


def _runs(folded: str) -> list[str]:
    return _RUN.findall(folded)


def terms_of(folded: str) -> set[str]:
    """Every character and every neighbouring pair within each run of letters and digits."""
    out: set[str] = set()
    for run in _RUN.findall(folded):
        out.update(run)
        out.update(map(str.__add__, run, run[1:]))
    return out


def query_terms(query: str) -> list[str]:
    """The terms any text containing ``query`` (folded) has: each run's pairs, a lone character itself."""
    out: dict[str, None] = {}
    for run in _runs(fold(query)):
        if len(run) == 1:
            out[run] = None
        else:
            out.update((run[i:i + 2], None) for i in range(len(run) - 1))
    return list(out)


def _hex(name: str) -> str:
    return name.encode("utf-8").hex()


def ledger_term(ledger_id: int) -> str:
    return f"ledger{ledger_id}"


def leader_term(name: str) -> str:
    return f"leader{_hex(name)}"


def department_term(name: str) -> str:
    return f"dept{_hex(name)}"


def title_term(term: str) -> str:
    """A term as found in the title (letters and digits, never as short as a text term)."""
    return f"title{term}"


def scope_terms(ledger_id: int, leader: str, departments: Iterable[str]) -> set[str]:
    """Who an issue is of, as terms (letters and digits, never as short as a text term): a search by
    someone who sees one department's or one unit's issues asks the index for those alone, instead
    of confirming every issue of the installation that has the words. The scope in SQL still
    decides what is shown: a term out of step could hide an issue, never show one."""
    return {ledger_term(ledger_id), leader_term(leader or ""), *(department_term(d) for d in departments)}


# -- keeping the index in step ---------------------------------------------------------------------


def changes_text(trigger: str, changes: Sequence[Mapping[str, Any]] | None) -> bool:
    """Whether a history entry changes what the search finds the issue by."""
    if trigger in _TEXT_TRIGGERS:
        return True
    for change in changes or ():
        field = str(change.get("field", "")) if isinstance(change, dict) else ""
        if field in _TEXT_FIELDS or field.endswith(".numbering"):
            return True
    return False


def mark(session: Session, issue_ids: Iterable[int]) -> None:
    """The issues' rows are rewritten when this transaction commits (``_on_commit``)."""
    stale: set[int] = session.info.setdefault(_STALE, set())
    stale.update(issue_ids)


def note(session: Session, issue_id: int, text_: str) -> None:
    """A progress note appended to the issue's text: added to its row when this transaction commits."""
    session.info.setdefault(_NOTES, []).append((issue_id, text_))


@event.listens_for(Session, "before_commit")
def _on_commit(session: Session) -> None:
    stale: set[int] = session.info.pop(_STALE, None) or set()
    notes: list[tuple[int, str]] = session.info.pop(_NOTES, None) or []
    if not (stale or notes):
        return
    session.flush()
    conn = session.connection()
    if stale:
        refresh(conn, sorted(stale))
    appended = [(issue_id, text_) for issue_id, text_ in notes if issue_id not in stale]  # a rewrite holds them
    if appended:
        _append(conn, appended)


@event.listens_for(Session, "after_rollback")
def _on_rollback(session: Session) -> None:
    session.info.pop(_STALE, None)
    session.info.pop(_NOTES, None)


# PostgreSQL adds a note in place: the row's terms never travel to Python and back (an issue's
# 100–250 of them, read, merged and sent again, were most of a note's cost), and a note that
# brings no new term leaves the terms as they were, so the update can be HOT and its issue's
# terms are not put into the GIN index again. Merged terms keep the order ``_rows`` writes
# (code points, as Python sorts: COLLATE "C").
_PG_APPEND = text(
    "UPDATE issue_search SET body = body || :tail, terms = CASE WHEN terms @> n.new THEN terms ELSE "
    "ARRAY(SELECT t FROM unnest(terms || n.new) AS t GROUP BY t ORDER BY t COLLATE \"C\") END "
    "FROM (SELECT string_to_array(:w, ' ') AS new) AS n WHERE issue_id = :i RETURNING issue_id")


def _append(conn: Connection, notes: Sequence[tuple[int, str]]) -> None:
    """Add progress notes to their issues' rows, in order: the text ends with each note (folded,
    after a line break, as ``_rows`` joins them) and the terms gain the note's."""
    added: dict[int, list[str]] = {}
    for issue_id, text_ in notes:
        added.setdefault(issue_id, []).append(text_ or "")
    tails = {issue_id: "".join("\n" + fold(text_) for text_ in texts) for issue_id, texts in added.items()}
    if conn.dialect.name == "postgresql":
        found = {conn.execute(_PG_APPEND, {"tail": tail, "w": " ".join(sorted(terms_of(tail))), "i": issue_id})
                 .scalar() for issue_id, tail in tails.items()}
    else:
        s = ISSUE_SEARCH.c
        found = set()
        for row in conn.execute(select(s.issue_id, s.body, s.terms).where(s.issue_id.in_(list(tails)))):
            tail = tails[row.issue_id]
            words = " ".join(sorted(set(row.terms.split()) | terms_of(tail)))
            conn.execute(ISSUE_SEARCH.update().where(s.issue_id == row.issue_id)
                         .values(body=row.body + tail, terms=words))
            found.add(row.issue_id)
    missing = sorted(set(tails) - found)
    if missing:  # no row to add to: written whole, notes included (they are in the history already)
        refresh(conn, missing)


def _numbering(extra: Any) -> list[str]:
    numbering = (extra or {}).get("numbering") if isinstance(extra, dict) else None
    return [str(v) for v in numbering.values() if v] if isinstance(numbering, dict) else []


def _rows(conn: Connection, ids: Sequence[int]) -> list[dict[str, Any]]:
    i, h, d = ISSUES.c, HISTORY.c, ISSUE_DEPARTMENTS.c
    departments: dict[int, list[str]] = {}
    for issue_id, department in conn.execute(select(d.issue_id, d.department).where(d.issue_id.in_(ids))):
        departments.setdefault(issue_id, []).append(department)
    notes: dict[int, list[str]] = {}
    for issue_id, note in conn.execute(select(h.issue_id, h.note).where(h.issue_id.in_(ids), h.trigger == "progress")
                                       .order_by(h.id)):
        notes.setdefault(issue_id, []).append(note or "")
    rows = []
    for issue_id, ledger_id, leader, ref, title, measures, extra in conn.execute(
            select(i.id, i.ledger_id, i.leader, i.ref, i.title, i.measures, i.extra).where(i.id.in_(ids))):
        folded_title = fold(title or "")
        body = "\n".join(fold(part) for part in (ref or "", *_numbering(extra), measures or "", *notes.get(issue_id, ())))
        in_title = terms_of(folded_title)
        terms = sorted(in_title | {title_term(t) for t in in_title} | terms_of(body)
                       | scope_terms(ledger_id, leader, departments.get(issue_id, ())))
        rows.append({"issue_id": issue_id, "title": folded_title, "body": body, "terms": " ".join(terms)})
    return rows


# PostgreSQL's text[] goes over the wire as one string an issue, split by the server: psycopg
# dumping ~500 terms an issue element by element cost more than the rest of an import's row.
# Terms never hold a space (runs of letters and digits, scope terms in hex).
_PG_INSERT = text(
    "INSERT INTO issue_search (issue_id, title, body, terms) "
    "SELECT u.i, u.t, u.b, string_to_array(u.w, ' ') FROM unnest("
    "CAST(:ids AS integer[]), CAST(:titles AS text[]), CAST(:bodies AS text[]), CAST(:words AS text[])) "
    "AS u(i, t, b, w)")


def _insert(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if conn.dialect.name != "postgresql":
        conn.execute(insert(ISSUE_SEARCH), rows)
        return
    conn.execute(_PG_INSERT, {"ids": [r["issue_id"] for r in rows], "titles": [r["title"] for r in rows],
                              "bodies": [r["body"] for r in rows], "words": [r["terms"] for r in rows]})


def refresh(conn: Connection, issue_ids: Sequence[int]) -> None:
    """Rewrite the index rows of these issues from what the database holds (a deleted issue's goes)."""
    for start in range(0, len(issue_ids), _BATCH):
        part = list(issue_ids[start:start + _BATCH])
        conn.execute(delete(ISSUE_SEARCH).where(ISSUE_SEARCH.c.issue_id.in_(part)))
        rows = _rows(conn, part)
        if rows:
            _insert(conn, rows)


def rebuild(conn: Connection) -> int:
    """The whole index again (revision 0017, ``duban init`` after ``VERSION`` changed); how many issues."""
    bulk_cache(conn)
    conn.execute(delete(ISSUE_SEARCH))
    if conn.dialect.name == "sqlite":  # the FTS5 table's own reset: its triggers deleted row by row
        conn.exec_driver_sql(f"INSERT INTO {FTS}({FTS}) VALUES ('delete-all')")
    last, done = 0, 0
    while True:
        ids = list(conn.scalars(select(ISSUES.c.id).where(ISSUES.c.id > last).order_by(ISSUES.c.id).limit(_BATCH)))
        if not ids:
            break
        rows = _rows(conn, ids)
        _insert(conn, rows)
        last, done = ids[-1], done + len(rows)
    _set_version(conn)
    return done


def _set_version(conn: Connection) -> None:
    s = SITE_STATE
    now = dt.datetime.now(dt.UTC)
    if conn.execute(select(s.c.name).where(s.c.name == SITE_STATE_NAME_SEARCH)).first() is None:
        conn.execute(insert(s).values(name=SITE_STATE_NAME_SEARCH, value=VERSION, updated_at=now))
    else:
        conn.execute(s.update().where(s.c.name == SITE_STATE_NAME_SEARCH).values(value=VERSION, updated_at=now))


def out_of_step(conn: Connection) -> bool:
    """The index was built by other terms, or misses issues (written by a duban before it)."""
    s = SITE_STATE
    version = conn.scalar(select(s.c.value).where(s.c.name == SITE_STATE_NAME_SEARCH))
    if version != VERSION:
        return True
    return (conn.scalar(select(func.count()).select_from(ISSUES)) !=
            conn.scalar(select(func.count()).select_from(ISSUE_SEARCH)))


# -- querying --------------------------------------------------------------------------------------


def _like(column: ColumnElement[str], folded: str) -> ColumnElement[bool]:
    return column.contains(folded, autoescape=True)


def matching(query: str, dialect: str, *, part: str = "any", walk: bool = False,
             ledgers: Sequence[int] | None = None, leader: str | None = None,
             department: str | None = None) -> ColumnElement[bool]:
    """A condition over ``issue_search`` (joined to the issues): its text contains ``query`` —
    anywhere (``part`` "any"), in the title ("title"), or only outside it ("rest").

    The index finds the candidates (every term of the query present, and of the scope given: one of
    ``ledgers``, ``leader``'s, ``department``'s), LIKE confirms them; a query of no letter or digit at
    all (punctuation) has no terms and falls back to LIKE alone, as does ``walk`` (PostgreSQL, a
    common word's page): a page read in id order checks each row it reads, LIKE being exact, and
    the GIN index, which cannot hand its matches over in order, is left out."""
    s = ISSUE_SEARCH.c
    folded = fold(query)
    if not folded.strip():
        return false()
    in_title, in_body = _like(s.title, folded), _like(s.body, folded)
    confirm = {"any": or_(in_title, in_body), "title": in_title, "rest": and_(~in_title, in_body)}[part]
    terms = query_terms(query)
    if not terms or walk:
        return confirm
    terms = [title_term(t) for t in terms] if part == "title" else terms
    terms += [leader_term(leader)] if leader is not None else []
    terms += [department_term(department)] if department is not None else []
    any_of = [ledger_term(i) for i in ledgers] if ledgers else []
    if dialect == "postgresql":
        array = type_coerce(s.terms, ARRAY(Text()))
        return and_(array.contains(terms), *([array.overlap(any_of)] if any_of else []), confirm)
    words = " AND ".join(f'"{t}"' for t in terms)
    if any_of:
        words += " AND (" + " OR ".join(f'"{t}"' for t in any_of) + ")"
    # joined, not ``IN (SELECT rowid …)``: FTS5 then hands its matches over one by one in rowid
    # order and a page or a capped count stops early, where the IN list is first collected whole
    return and_(_FTS_ROWS.c.rowid == s.issue_id, literal_column(FTS).op("MATCH")(words), confirm)


def order(query: str, dialect: str) -> ColumnElement[int]:
    """What a search's page is ordered by, its issues' ids: on SQLite the FTS5 table's rowid when the
    query has terms, the order FTS5 reads its matches in (the issue_search id is the same number,
    but SQLite sorts by it instead of reading on)."""
    if dialect != "postgresql" and fold(query).strip() and query_terms(query):
        return _FTS_ROWS.c.rowid
    return ISSUE_SEARCH.c.issue_id


def common(session: Session, query: str) -> bool:
    """PostgreSQL: whether every term of ``query`` is among the most common of the index — each in
    ``COMMON_SHARE`` of the rows or more and in more rows than ``WALK_ROWS``, by ANALYZE's
    statistics — so a walk (``walk``) likely finds a count's cap of matches within ``WALK_ROWS``
    rows, and reads fewer rows than the GIN index would hand over. The index hands over every match
    before a count can stop: 18 ms for 学习 (a ninth of the rows) at a million issues, 3 ms at
    100,000, where a walk reads ~9,000 rows in 5–7 ms at either. A guess only steers the cost: a
    walk that comes back short is followed by the index's count, which is exact."""
    terms = query_terms(query)
    if not terms:
        return False
    shares = _shares(session)
    return all(share >= COMMON_SHARE and rows > WALK_ROWS
               for share, rows in (shares.get(t, (0.0, 0.0)) for t in terms))


def _shares(session: Session) -> dict[str, tuple[float, float]]:
    """term -> (its share of the rows, the rows that share is of the table's estimated size)."""
    bind = session.get_bind()
    key = str(bind.engine.url)
    now = time.monotonic()
    kept = _common_shares.get(key)
    if kept is not None and now - kept[0] < _COMMON_SECONDS:
        return kept[1]
    # the arrays are unnested side by side: the frequencies' three trailing figures (their
    # minimum, maximum and the nulls' share) pair with no element
    shares = {str(e): (float(f), float(f) * float(n)) for e, f, n in session.execute(text(
        "SELECT u.e, u.f, c.reltuples FROM pg_stats s "
        "JOIN pg_class c ON c.oid = to_regclass(quote_ident(s.schemaname) || '.issue_search'), "
        "unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) AS u(e, f) "
        "WHERE s.schemaname = current_schema() AND s.tablename = 'issue_search' AND s.attname = 'terms' "
        "AND u.e IS NOT NULL"))}
    _common_shares[key] = (now, shares)
    return shares


def walk_bound(session: Session, rows: int) -> int | None:
    """An id a walk (``walk``) up to which reads at most ``rows`` rows: the ids are unique integers,
    so from the smallest on, ``rows`` of them hold at most that many. None: no id lies past it, and
    a walk reads them all. (Counting ``rows`` rows into the index instead reads them, and after
    many updates each one's page too: 10 ms at a million.)"""
    s = ISSUE_SEARCH.c
    first, last = session.execute(select(func.min(s.issue_id), func.max(s.issue_id))).one()
    if first is None or first + rows - 1 >= last:
        return None
    return int(first) + rows - 1


def ensure_index(session: Session) -> int | None:
    """Rebuild the index when it is out of step (``duban init``); how many issues, or None if it was not."""
    conn = session.connection()
    return rebuild(conn) if out_of_step(conn) else None

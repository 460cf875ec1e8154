"""The tables. The database is the truth: every question "what is due" is answered from here.

Columns that later queries filter on (state, deadline, department) carry indexes; the history is
append-only (rows are inserted, never updated).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .kinds import DutyKind, ExtensionState, OccurrenceState, ReminderKind
from .types import JSONDoc, UTCDateTime, enum_type

# Named constraints, so Alembic's batch mode can alter SQLite tables and migrations stay stable.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class WorkflowVersion(Base):
    """One version of a workflow, identified by the hash of its content. Issues point at a version."""

    __tablename__ = "workflows"
    __table_args__ = (UniqueConstraint("name", "content_hash", name="uq_workflows_name_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200), default="")
    source_path: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(Text)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    @property
    def version(self) -> str:
        return self.content_hash[:12]


class Ledger(Base):
    """A ledger (台账): the list of problems one inspection found in one organisation."""

    __tablename__ = "ledgers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    unit: Mapped[str] = mapped_column(String(200), default="")
    feedback_date: Mapped[dt.date | None] = mapped_column(Date)
    workflow_name: Mapped[str] = mapped_column(String(100))
    # The headers of the imported file in their order, so an export gives the same sheet back.
    headers: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # Closed when its rectification is over (engine.ledger.lifecycle): read-only, never reminded of,
    # still reported. Who closed it and why are in the administrators' log.
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    archived_by: Mapped[str | None] = mapped_column(String(200))


class Issue(Base):
    """One problem (具体问题) of a ledger and where it stands in its workflow."""

    __tablename__ = "issues"
    __table_args__ = (
        UniqueConstraint("ledger_id", "ref", name="uq_issues_ledger_ref"),
        Index("ix_issues_ledger_state", "ledger_id", "state"),
        # A ledger's overview reads these, never its rows: area × state counts, categories, the
        # last 整改时限, issues by the day they entered; and the overdue list in its own order.
        Index("ix_issues_ledger_area_state", "ledger_id", "area", "state", "position"),
        Index("ix_issues_ledger_category", "ledger_id", "category"),
        Index("ix_issues_ledger_deadline", "ledger_id", "deadline"),
        Index("ix_issues_ledger_created", "ledger_id", "created_at", "state"),
        # Paged lists are read off these in their ORDER BY and stop at a page. Each ends in the id: an
        # SQLite index entry ends in the rowid anyway, a PostgreSQL one does not, and there a page of
        # the ~95k issues sharing a feedback-date deadline was otherwise read and sorted whole (#22).
        Index("ix_issues_overdue_due", "overdue_on", "due_on", "id"),
        Index("ix_issues_ledger_overdue_due", "ledger_id", "overdue_on", "due_on", "id"),
        # 我的待办 of whoever's scope is whole units (a reviewer): each state's head in that order;
        # and the issues of a state, to count them (it replaced ix_issues_state)
        Index("ix_issues_state_overdue_due", "state", "overdue_on", "due_on", "id"),
        # The workspace: a user's issue list is read off (ledger, 序号 order) and stops at a page;
        # a leader's count and ledger choices are read off their own entries.
        Index("ix_issues_ledger_position", "ledger_id", "position", "id"),
        Index("ix_issues_leader_ledger", "leader", "ledger_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ledger_id: Mapped[int] = mapped_column(ForeignKey("ledgers.id", ondelete="CASCADE"))
    ref: Mapped[str] = mapped_column(String(40))  # 序号, as written in the ledger
    position: Mapped[int] = mapped_column(Integer)  # row order in the ledger
    area: Mapped[str] = mapped_column(String(300), default="")  # 方面
    category: Mapped[str] = mapped_column(String(300), default="")  # 问题类别
    title: Mapped[str] = mapped_column(Text)  # 具体问题
    measures: Mapped[str] = mapped_column(Text, default="")  # 整改措施
    leader: Mapped[str] = mapped_column(String(200), default="")  # 责任领导
    department: Mapped[str] = mapped_column(String(200), default="", index=True)  # 责任科室
    deadline: Mapped[dt.date | None] = mapped_column(Date, index=True)  # 整改时限
    state: Mapped[str] = mapped_column(String(60))  # indexed first in ix_issues_state_overdue_due
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflows.id"))
    state_since: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    extra: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)  # unknown ledger columns
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # The sweep reads only rows whose next reminder is due (an index range scan), never the table.
    next_remind_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    remind_after: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # swept up to here
    last_checkin_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # 整改轮次: 1, then 2 after a reviewer returns the item for a second round (二次整改), ...
    round: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # What the reminder core says of the deadline the issue follows now (engine.reminders.core.Plan):
    # the board's overdue and upcoming lists are range reads of these, never a scan. Deferred:
    # they are written with the plan and read by queries, never from a loaded Issue, and converting
    # two dates a row made listing 20k issues 30% slower (bench/ledger_import.py).
    due_on: Mapped[dt.date | None] = mapped_column(Date, index=True, deferred=True)
    overdue_on: Mapped[dt.date | None] = mapped_column(Date, deferred=True)

    ledger: Mapped[Ledger] = relationship(lazy="joined")
    workflow: Mapped[WorkflowVersion] = relationship()


class HistoryEntry(Base):
    """One step an issue took (or an import that changed it). Append-only."""

    __tablename__ = "history"
    # one successor per entry: two writers that read the same head cannot both extend an issue's chain
    __table_args__ = (UniqueConstraint("issue_id", "prev_hash", name="uq_history_issue_prev"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    by: Mapped[str] = mapped_column(String(200))
    trigger: Mapped[str] = mapped_column(String(60))
    from_state: Mapped[str | None] = mapped_column(String(60))
    to_state: Mapped[str] = mapped_column(String(60))
    note: Mapped[str] = mapped_column(Text, default="")
    # how the action came in: web, api, cli, import (or system for duban's own steps)
    door: Mapped[str] = mapped_column(String(20), default="cli", server_default="cli")
    # the issue's round (整改轮次) once the step was taken: who submitted a round is read from here
    round: Mapped[int | None] = mapped_column(Integer)
    # what changed, field by field: [{"field": "deadline", "before": "2026-10-31", "after": "2026-12-31"}],
    # and for an import its source ({"file": …, "row": N}); evidence added: {"evidence": id, "sha256": …}
    changes: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # the chain (engine.issues.history): this entry's hash over its content and its predecessor's
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


class Evidence(Base):
    """Proof (佐证材料): a file attached to an issue or to a duty occurrence."""

    __tablename__ = "evidence"

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int | None] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), index=True)
    occurrence_id: Mapped[int | None] = mapped_column(
        ForeignKey("duty_occurrences.id", ondelete="CASCADE"), index=True)
    file_name: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    path: Mapped[str | None] = mapped_column(Text)  # the SHA-256 (a file in the evidence store); older rows: a path
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    added_by: Mapped[str] = mapped_column(String(200), index=True)  # the quota sums by it
    # the issue's round (整改轮次) when it was added: a resubmission after 退回 needs this round's own
    round: Mapped[int | None] = mapped_column(Integer)


class LedgerImport(Base):
    """One import of a ledger file: who, when, what file, and what it changed."""

    __tablename__ = "ledger_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    ledger_id: Mapped[int] = mapped_column(ForeignKey("ledgers.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    by: Mapped[str] = mapped_column(String(200))
    file_name: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    created: Mapped[int] = mapped_column(Integer)
    updated: Mapped[int] = mapped_column(Integer)
    unchanged: Mapped[int] = mapped_column(Integer)


class Duty(Base):
    """A recurring duty (quarterly report, monthly clearing…) or a ledger milestone (the report)."""

    __tablename__ = "duties"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    title: Mapped[str] = mapped_column(Text)
    kind: Mapped[DutyKind] = mapped_column(enum_type(DutyKind, "duty_kind"))
    owners: Mapped[list[str]] = mapped_column(JSON, default=list)
    ledger_id: Mapped[int | None] = mapped_column(ForeignKey("ledgers.id", ondelete="CASCADE"), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    spec_hash: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    generated_until: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class DutyOccurrence(Base):
    """One period of a duty (e.g. 2026-Q3). ``scheduled_due`` is computed; ``due`` may be edited."""

    __tablename__ = "duty_occurrences"
    __table_args__ = (UniqueConstraint("duty_id", "period", name="uq_duty_occurrences_duty_period"),
                      # ending in the id, as the issues' list indexes do (PostgreSQL adds no row id)
                      Index("ix_duty_occurrences_ledger_due", "ledger_id", "due", "id"),
                      Index("ix_duty_occurrences_overdue_due", "overdue_on", "due", "id"),
                      Index("ix_duty_occurrences_due", "due", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    duty_id: Mapped[int] = mapped_column(ForeignKey("duties.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(300))
    # for a duty done for each issue in a state (a look-back per long-term item)
    issue_id: Mapped[int | None] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), index=True)
    # the milestone's ledger, or the ledger of the issue it is for; None for a duty of no ledger
    ledger_id: Mapped[int | None] = mapped_column(ForeignKey("ledgers.id", ondelete="CASCADE"))
    anchor: Mapped[dt.date] = mapped_column(Date)
    scheduled_due: Mapped[dt.date] = mapped_column(Date)
    due: Mapped[dt.date] = mapped_column(Date)
    state: Mapped[OccurrenceState] = mapped_column(enum_type(OccurrenceState, "occurrence_state"),
                                                   default=OccurrenceState.OPEN)
    touched: Mapped[bool] = mapped_column(Boolean, default=False)  # edited or done: never regenerated
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    done_by: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text, default="")
    next_remind_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    remind_after: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    overdue_on: Mapped[dt.date | None] = mapped_column(Date)  # as Issue.overdue_on
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    duty: Mapped[Duty] = relationship(lazy="joined")


class Reminder(Base):
    """A reminder that fell due, written once: ``dedupe_key`` is (subject, rule, occurrence)."""

    __tablename__ = "reminders"

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(400), unique=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)  # when it fell due
    subject: Mapped[str] = mapped_column(String(300))  # LEDGER/序号, a duty key, calendar:YEAR
    kind: Mapped[ReminderKind] = mapped_column(enum_type(ReminderKind, "reminder_kind"))
    rule: Mapped[str] = mapped_column(String(100))
    occurrence: Mapped[str] = mapped_column(String(60))
    recipients: Mapped[list[str]] = mapped_column(JSON)
    ledger_id: Mapped[int | None] = mapped_column(ForeignKey("ledgers.id", ondelete="CASCADE"), index=True)
    issue_id: Mapped[int | None] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), index=True)
    occurrence_id: Mapped[int | None] = mapped_column(ForeignKey("duty_occurrences.id", ondelete="CASCADE"))
    due: Mapped[dt.date | None] = mapped_column(Date)
    days_overdue: Mapped[int] = mapped_column(Integer, default=0)
    # engine.reminders.facts.ReminderFacts as stored: the subject as it stood when it fell due
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # set when the notification pipeline has turned it into outbox messages (or silenced it)
    routed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)


class ExtensionRequest(Base):
    """A 延期申请: a later 整改时限 asked for an issue, waiting on its deciders until approved or refused.

    While pending it is a subject of the reminder core of its own: its decision falls due by the
    workflow's ``extension_requests`` rule, and the core's plan is stored on the row
    (``next_remind_at``, ``due_on``, ``overdue_on``) like an issue's, so "what waits on whom" is an
    index read. Deciding it clears the plan; the row stays, with the decision and its reason.
    """

    __tablename__ = "extension_requests"
    __table_args__ = (
        # one request waits per issue; the pending rows are read off this index alone
        Index("uq_extension_requests_pending", "issue_id", unique=True,
              sqlite_where=text("state = 'pending'"), postgresql_where=text("state = 'pending'")),
        # the requester's answers of the last days (我的待办)
        Index("ix_extension_requests_requester", "requested_by", "decided_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), index=True)
    round: Mapped[int] = mapped_column(Integer)  # the issue's round when it was asked
    requested_to: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    state: Mapped[ExtensionState] = mapped_column(enum_type(ExtensionState, "extension_state"),
                                                  default=ExtensionState.PENDING)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decision_note: Mapped[str] = mapped_column(Text, default="")  # a refusal's reason (required)
    next_remind_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    remind_after: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    due_on: Mapped[dt.date | None] = mapped_column(Date)  # the decision's due date
    overdue_on: Mapped[dt.date | None] = mapped_column(Date)


class IssueDepartment(Base):
    """Each department a 责任科室 cell names ("办公室、财务室" names two), so filters are index reads."""

    __tablename__ = "issue_departments"

    __table_args__ = (Index("ix_issue_departments_department_ledger", "department", "ledger_id"),)

    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True)
    department: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)
    # the issue's ledger, so a department's ledgers are one index read (the workspace's choices)
    ledger_id: Mapped[int | None] = mapped_column(Integer)


class IssueSearch(Base):
    """What the search finds an issue by (engine.issues.search): its text, folded (NFKC, lower case),
    and the index terms of it — every character and every pair of neighbouring characters.

    Chinese search words are mostly two characters long, which trigram indexes cannot find; pairs
    can, and a query's pairs all present is a superset of the text containing it, confirmed by
    LIKE on ``title`` / ``body``. PostgreSQL indexes ``terms`` (an array) with GIN; SQLite keeps
    them as words in an FTS5 table over this one (``issue_search_fts``, made by revision 0017 and
    kept in step by triggers), since SQLite has no arrays."""

    __tablename__ = "issue_search"
    # PostgreSQL's own: on SQLite a B-tree over the words would be dead weight beside the FTS5 table.
    # Its pending list of new terms, which every search reads through, is kept to 512 kB (revision 0021).
    __table_args__ = (Index("ix_issue_search_terms", "terms", postgresql_using="gin",
                            postgresql_with={"gin_pending_list_limit": 512}).ddl_if(dialect="postgresql"),)

    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True,
                                          autoincrement=False)
    title: Mapped[str] = mapped_column(Text)  # 具体问题, folded: its hits rank first
    body: Mapped[str] = mapped_column(Text)  # 序号, 编号, 整改措施 and the progress notes, folded
    terms: Mapped[Any] = mapped_column(Text().with_variant(ARRAY(Text()), "postgresql"))


class AdminLogEntry(Base):
    """One administrator's act on what is not an issue (a ledger archived, reopened, deleted;
    a restore): who, through which door, when, what, to what and why. Append-only; it outlives
    the ledger it names, so it names it by its name, not by a key."""

    __tablename__ = "admin_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    by: Mapped[str] = mapped_column(String(200))
    door: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(60))  # ledger.archive, ledger.unarchive, ledger.delete, restore
    subject: Mapped[str] = mapped_column(String(300), index=True)  # the ledger's name, the archive's file
    note: Mapped[str] = mapped_column(Text, default="")  # why
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # what it did: counts, hashes


# The Core tables, for Core statements (bulk writes, the readers' selects). A declarative model's
# ``__table__`` is a Table, but SQLAlchemy types the attribute as FromClause, which insert(),
# update() and delete() do not take; every module takes its tables from here.
WORKFLOWS = cast(Table, WorkflowVersion.__table__)
LEDGERS = cast(Table, Ledger.__table__)
class SiteState(Base):
    """Small facts about the installation itself (e.g. the calendar the stored plans were made on)."""

    __tablename__ = "site_state"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


ISSUES = cast(Table, Issue.__table__)
HISTORY = cast(Table, HistoryEntry.__table__)
EVIDENCE = cast(Table, Evidence.__table__)
LEDGER_IMPORTS = cast(Table, LedgerImport.__table__)
DUTIES = cast(Table, Duty.__table__)
OCCURRENCES = cast(Table, DutyOccurrence.__table__)
REMINDERS = cast(Table, Reminder.__table__)
ISSUE_DEPARTMENTS = cast(Table, IssueDepartment.__table__)
ADMIN_LOG = cast(Table, AdminLogEntry.__table__)
EXTENSIONS = cast(Table, ExtensionRequest.__table__)
ISSUE_SEARCH = cast(Table, IssueSearch.__table__)

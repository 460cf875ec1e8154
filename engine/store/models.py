"""The tables. The database is the truth: every question "what is due" is answered from here.

Columns that later queries filter on (state, deadline, department) carry indexes; the history is
append-only (rows are inserted, never updated).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .types import UTCDateTime

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


class Issue(Base):
    """One problem (具体问题) of a ledger and where it stands in its workflow."""

    __tablename__ = "issues"
    __table_args__ = (
        UniqueConstraint("ledger_id", "ref", name="uq_issues_ledger_ref"),
        Index("ix_issues_ledger_state", "ledger_id", "state"),
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
    state: Mapped[str] = mapped_column(String(60), index=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflows.id"))
    state_since: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # unknown ledger columns
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    ledger: Mapped[Ledger] = relationship(lazy="joined")
    workflow: Mapped[WorkflowVersion] = relationship()


class HistoryEntry(Base):
    """One step an issue took (or an import that changed it). Append-only."""

    __tablename__ = "history"

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    by: Mapped[str] = mapped_column(String(200))
    trigger: Mapped[str] = mapped_column(String(60))
    from_state: Mapped[str | None] = mapped_column(String(60))
    to_state: Mapped[str] = mapped_column(String(60))
    note: Mapped[str] = mapped_column(Text, default="")


class Evidence(Base):
    """Proof of rectification (佐证材料): a file attached to an issue."""

    __tablename__ = "evidence"

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), index=True)
    file_name: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    path: Mapped[str | None] = mapped_column(Text)
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    added_by: Mapped[str] = mapped_column(String(200))


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

"""The notification side's tables: the outbox, its delivery attempts and reports, silences, rate windows
and app tokens.

They share the store's metadata (``engine.store.models.Base``) and its migrations, but only the
notification layer reads or writes them: the domain knows nothing of messages or channels.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.models import Base
from engine.store.types import JSONDoc, UTCDateTime, enum_type


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"  # gave up after the last attempt, or a permanent error
    UNDELIVERABLE = "undeliverable"  # no address, or no such channel
    SILENCED = "silenced"


class AttemptStatus(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    DEAD = "dead"


class SilenceTarget(StrEnum):
    ISSUE = "issue"
    DUTY = "duty"
    DEPARTMENT = "department"
    LEDGER = "ledger"


class OutboxMessage(Base):
    """A message to one recipient on one channel: a digest of that person's reminders.

    ``key`` is the idempotency key every attempt carries (Message-ID, Idempotency-Key), so a
    message sent again after a crash is recognisable as the same one.
    """

    __tablename__ = "outbox"
    # the delivery scan: pending rows in due order
    __table_args__ = (Index("ix_outbox_status_next_attempt", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    channel: Mapped[str] = mapped_column(String(100))
    recipient: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(500), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    # indexed as the first column of ix_outbox_status_next_attempt
    status: Mapped[OutboxStatus] = mapped_column(enum_type(OutboxStatus, "outbox_status"))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # leased by a sender until
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class DeliveryAttempt(Base):
    """One try at sending an outbox message: when, where, and how it went."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    channel: Mapped[str] = mapped_column(String(100))
    recipient: Mapped[str] = mapped_column(String(200))
    status: Mapped[AttemptStatus] = mapped_column(enum_type(AttemptStatus, "attempt_status"))
    error: Mapped[str] = mapped_column(Text, default="")
    seconds: Mapped[float] = mapped_column(default=0.0)
    worker: Mapped[str] = mapped_column(String(100), default="")


class ReminderMessage(Base):
    """Which reminders a message carries (a digest carries many; a reminder may go to several)."""

    __tablename__ = "reminder_messages"

    reminder_id: Mapped[int] = mapped_column(ForeignKey("reminders.id", ondelete="CASCADE"), primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"), primary_key=True,
                                            index=True)


class Silence(Base):
    """An admin's snooze: no reminders for a target until a date (Alertmanager's silences)."""

    __tablename__ = "silences"

    id: Mapped[int] = mapped_column(primary_key=True)
    target_kind: Mapped[SilenceTarget] = mapped_column(enum_type(SilenceTarget, "silence_target"))
    target: Mapped[str] = mapped_column(String(300))
    until: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    lifted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class RateWindow(Base):
    """Messages sent through a channel in the current window, shared by every daemon."""

    __tablename__ = "rate_windows"

    channel: Mapped[str] = mapped_column(String(100), primary_key=True)
    window_start: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer, default=0)


class DeliveryReport(Base):
    """What the platform said about a sent message's delivery (``notifications.reports``).

    ``missed`` of ``recipients`` did not get it (``missed_ids``, ``|``-joined; ``reason`` in the
    platform's terms). ``task`` is the platform's handle to ask later (DingTalk's ``task_id``), due
    at ``check_at``; None once the answer is final."""

    __tablename__ = "delivery_reports"
    # the follow-up scan: reports still waiting for the platform's word, in due order
    __table_args__ = (Index("ix_delivery_reports_check_at", "check_at"),)

    message_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"), primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    missed: Mapped[int] = mapped_column(Integer, default=0)
    missed_ids: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    task: Mapped[str | None] = mapped_column(String(100))
    check_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class AppToken(Base):
    """An organisation app's access token, shared by every daemon (``notifications.tokens``).

    ``key`` hashes the platform, host and app id; the token is short-lived (about two hours) and
    only lets the app send notices, so keeping it beside the signing key is no new exposure."""

    __tablename__ = "app_tokens"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    token: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    fetched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


# The Core tables (``__table__`` is typed FromClause; see engine.store.models)
OUTBOX = cast(Table, OutboxMessage.__table__)
DELIVERY_ATTEMPTS = cast(Table, DeliveryAttempt.__table__)
REMINDER_MESSAGES = cast(Table, ReminderMessage.__table__)
SILENCES = cast(Table, Silence.__table__)
RATE_WINDOWS = cast(Table, RateWindow.__table__)
APP_TOKENS = cast(Table, AppToken.__table__)
DELIVERY_REPORTS = cast(Table, DeliveryReport.__table__)

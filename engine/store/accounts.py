"""The tables of the people who act: users, their roles and their credentials.

A user's ``name`` is the login name the history records: ``UNIT/NAME`` for the accounts a ledger
import makes for a unit (``display_name`` is the 责任领导 / 责任科室 name people use), a bare name
for district accounts. A role is granted over a scope (see ``engine.accounts.policy``). Passwords
are kept only as argon2 hashes, API tokens and web sessions as the SHA-256 of their secret; signed
links are not stored (a user's ``session_epoch`` revokes them all). Failed sign-ins are counted per
(login name, client address) and per address in ``login_throttle`` (see ``engine.accounts.credentials``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .models import Base
from .types import UTCDateTime


class User(Base):
    __tablename__ = "users"
    __table_args__ = (Index("ix_users_unit", "unit"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    unit: Mapped[str] = mapped_column(String(200), default="")  # "" = not bound to one unit
    email: Mapped[str] = mapped_column(String(300), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    im: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # {"wecom": id, "dingtalk": id, "feishu": id}
    password_hash: Mapped[str | None] = mapped_column(Text)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Unused since 0012 (sign-ins are throttled per name and address in login_throttle). Kept:
    # dropping a column rebuilds the table on SQLite, whose DROP would cascade to every grant.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # bumped by "log out everywhere", a password change or revoking links: older sessions and every
    # signed link issued before stop counting
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    grants: Mapped[list[Grant]] = relationship(lazy="selectin", cascade="all, delete-orphan",
                                               order_by="Grant.id")

    @property
    def shown(self) -> str:
        return self.display_name or self.name


class Grant(Base):
    """One role of a user over a scope: a unit, a ledger, a leader's or a department's name."""

    __tablename__ = "user_roles"
    __table_args__ = (UniqueConstraint("user_id", "role", "scope", name="uq_user_roles_grant"),
                      Index("ix_user_roles_role_scope", "role", "scope"))

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    scope: Mapped[str] = mapped_column(String(300), default="")


class ApiToken(Base):
    """A token for an integration; only its SHA-256 is kept. It ends at ``expires_at`` or when revoked."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class SiteSecret(Base):
    """The signing key of links and sessions when ``DUBAN_SECRET_KEY`` is not set (made once)."""

    __tablename__ = "site_secrets"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class WebSession(Base):
    """A signed-in browser: the session cookie carries the random id whose SHA-256 is ``id``.

    Ending it here (log out, log out everywhere, a new password, a disabled account) ends it for
    whoever holds the cookie, a copy of it included."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    via: Mapped[str] = mapped_column(String(20))  # "password" or "link"
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class LoginThrottle(Base):
    """Sign-in attempts not (yet) followed by a success, per (login name, client address) and per
    address alone (``name`` = ""): the next attempt is refused before ``next_at``."""

    __tablename__ = "login_throttle"

    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)  # rows quiet for a day are forgotten
    next_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


USERS = cast(Table, User.__table__)
GRANTS = cast(Table, Grant.__table__)

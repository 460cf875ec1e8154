"""Signed values: the expiring links reminders carry, and the key that signs them and sessions.

A link is ``/w/TOKEN``: TOKEN signs (user id, the user's session epoch, expiry). It is not stored;
it stops working when it expires, when the user is disabled, or when the user's epoch moves on
(``duban user revoke NAME``: every link and session of that user at once).

A link opens an account without a password from wherever it was forwarded to, so it is only for
the people reminded, and short: an administrator gets none (``takes_links``; they sign in with a
password), and a reader refuses a token whose expiry is more than ``[workspace] link_days`` after
its own now, whatever instant (``--at``) it was signed for. The key is
``DUBAN_SECRET_KEY`` from the environment, else a random one made once and kept in the database
(``site_secrets``), so a fresh install works and links survive a restart.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from typing import cast

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from ..store.accounts import SiteSecret, User
from ..store.upsert import insert_ignore
from .lookup import find_user

SECRET_ENV = "DUBAN_SECRET_KEY"
LINK_DAYS = 14
NO_LINK_ROLES = ("admin",)
SKEW = dt.timedelta(hours=1)  # how far ahead another process's clock may be when it signs a link
_SALT = "duban-link-v1"


def site_secret(session: Session) -> str:
    """The signing key: from the environment, else the database's (made on first use)."""
    value = os.environ.get(SECRET_ENV, "").strip()
    if value:
        return value
    row = session.get(SiteSecret, "signing")
    if row is not None:
        return row.value
    # Two daemons starting together on one database both find no key: the first insert wins,
    # the other ignores the conflict and reads the winner's, so every process signs alike.
    table = cast(Table, SiteSecret.__table__)
    session.execute(insert_ignore(session, table, ["name"]).values(name="signing", value=secrets.token_urlsafe(48)))
    return str(session.execute(select(table.c.value).where(table.c.name == "signing")).scalar_one())


def takes_links(user: User) -> bool:
    """Whether ``user`` may be sent a link: enabled, and no administrator."""
    return not user.disabled and not any(g.role in NO_LINK_ROLES for g in user.grants)


def make_link_token(secret: str, user_id: int, epoch: int, now: dt.datetime, *, days: int = LINK_DAYS) -> str:
    expires = int((now + dt.timedelta(days=max(1, days))).timestamp())
    return URLSafeSerializer(secret, salt=_SALT).dumps([user_id, epoch, expires])


def read_link_token(secret: str, token: str, now: dt.datetime, *, days: int = LINK_DAYS) -> tuple[int, int] | None:
    """(user id, epoch) of a genuine token that has not expired and does not reach further than
    ``days`` past ``now``; None otherwise (tampered, expired, or signed for a later time)."""
    try:
        user_id, epoch, expires = URLSafeSerializer(secret, salt=_SALT).loads(token[:500])
    except (BadSignature, ValueError, TypeError):
        return None
    if not (isinstance(user_id, int) and isinstance(epoch, int) and isinstance(expires, int)):
        return None
    if not now.timestamp() < expires <= (now + dt.timedelta(days=days) + SKEW).timestamp():
        return None
    return user_id, epoch


def workspace_link(session: Session, name: str, now: dt.datetime, public_url: str, *,
                   days: int = LINK_DAYS) -> str | None:
    """``PUBLIC_URL/w/TOKEN`` of the account ``name`` (what its reminders carry); None for an
    unknown, disabled or administrator account, or without a public URL."""
    if not public_url:
        return None
    user = find_user(session, name)  # a login name, or the one account called so
    if user is None or user.disabled or not takes_links(user):
        return None
    token = make_link_token(site_secret(session), user.id, user.session_epoch, now, days=days)
    return f"{public_url.rstrip('/')}/w/{token}"

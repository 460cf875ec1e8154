"""Credentials: signing in with a password, web sessions, API tokens, and how they all end.

**Signing in is throttled, never locked.** Every attempt counts against two keys — (login name,
client address) and the address alone — until it succeeds. After a few free attempts the next one
must wait 1 s, 2 s, 4 s … up to 15 minutes, and an attempt inside the wait is refused without the
password being looked at. Someone guessing from another address therefore slows only themselves:
the real user, at their own address, signs in as usual. The attempt is counted *before* its
password is checked, so a hundred guesses sent at once cost what a hundred in a row do. Every
refusal — an unknown name, a wrong password, a disabled account, a throttled attempt — is the one
message ``REFUSED``: a stranger learns neither which accounts exist nor which are under attack.
The state is in the database, so every daemon on one PostgreSQL counts alike.

The password check itself (argon2, ``passwords``) is not done here: it takes a core for tens of
milliseconds, so the HTTP layer runs it between ``begin_login`` and ``finish_login``, off the event
loop and a few at a time.

**A web session is a row** (``web_sessions``): the cookie carries a random id, the table its
SHA-256, when it began, when it expires and when it was ended. **An API token is a row** too,
ending at its expiry (``TOKEN_DAYS`` unless said otherwise) or when revoked. ``end_all`` ends
everything a user holds at once — sessions, tokens and signed links (``session_epoch``): a new
password, a disabled account, ``duban user revoke`` and "log out everywhere" all call it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.orm import Session, joinedload

from ..errors import BadInput, Refused
from ..store.accounts import ApiToken, Grant, LoginThrottle, User, WebSession
from ..store.upsert import insert_ignore
from .actor import Actor
from .lookup import find_user

REFUSED = "用户名或密码错误，或尝试过于频繁，请稍后再试"
FREE_ATTEMPTS = 3  # per (login name, address): a typo or two costs nothing
FREE_PER_ADDRESS = 30  # per address: an office behind one NAT address signs in together
MAX_DELAY = dt.timedelta(minutes=15)
FORGET_AFTER = dt.timedelta(days=1)  # a key quiet this long starts again from nothing
TOKEN_DAYS = 90
MAX_TOKEN_DAYS = 366  # a token is made again at least once a year
MAX_SESSIONS = 20  # open sessions per user; older ones end (a link opened again and again)


def delay_after(attempts: int, free: int) -> dt.timedelta:
    """How long the next attempt waits after ``attempts`` unsuccessful ones: 0 for the first
    ``free - 1``, then 1 s, 2 s, 4 s … up to ``MAX_DELAY``."""
    if attempts < free:
        return dt.timedelta(0)
    return min(dt.timedelta(seconds=2 ** min(attempts - free, 20)), MAX_DELAY)


@dataclass(frozen=True)
class Attempt:
    """One sign-in under way: whether it may be tried now, and the hash to check it against
    (None for an unknown or disabled name: the check then runs against a dummy hash, so it takes
    as long and fails)."""

    name: str
    address: str
    allowed: bool
    user_id: int | None = None
    password_hash: str | None = None


def begin_login(session: Session, name: str, address: str, now: dt.datetime) -> Attempt:
    """Count an attempt to sign in as ``name`` from ``address``, unless either key says wait."""
    name, address = name.strip()[:200], (address.strip() or "unknown")[:64]
    session.execute(delete(LoginThrottle).where(LoginThrottle.last_at < now - FORGET_AFTER))
    # the address first, always: two attempts lock the rows in one order and cannot deadlock
    keys = [(_key(session, address, "", now), FREE_PER_ADDRESS), (_key(session, address, name, now), FREE_ATTEMPTS)]
    if any(row.next_at > now for row, _ in keys):
        return Attempt(name, address, allowed=False)
    for row, free in keys:
        row.failures += 1
        row.last_at = now
        row.next_at = now + delay_after(row.failures, free)
    user = find_user(session, name) if name else None  # a login name, or the one account called so
    if user is None or user.disabled:
        return Attempt(name, address, allowed=True)
    return Attempt(name, address, allowed=True, user_id=user.id, password_hash=user.password_hash)


def finish_login(session: Session, attempt: Attempt, password_ok: bool, now: dt.datetime,
                 hours: int) -> tuple[User, str] | None:
    """After the password check: the user and a new session's id, or None (say ``REFUSED``).

    Success forgets the (name, address) key and gives the address its attempt back; a failure
    stays counted."""
    if not (attempt.allowed and password_ok and attempt.user_id is not None):
        return None
    user = session.get(User, attempt.user_id)
    if user is None or user.disabled:  # disabled between the two steps
        return None
    session.execute(delete(LoginThrottle).where(LoginThrottle.address == attempt.address,
                                                LoginThrottle.name == attempt.name))
    session.execute(update(LoginThrottle)
                    .where(LoginThrottle.address == attempt.address, LoginThrottle.name == "",
                           LoginThrottle.failures > 0)
                    .values(failures=LoginThrottle.failures - 1))
    return user, open_session(session, user, "password", now, hours)


def _key(session: Session, address: str, name: str, now: dt.datetime) -> LoginThrottle:
    table = cast(Table, LoginThrottle.__table__)
    session.execute(insert_ignore(session, table, ["address", "name"])
                    .values(address=address, name=name, failures=0, last_at=now, next_at=now))
    # FOR UPDATE: on PostgreSQL two daemons counting the same key take turns (SQLite's write
    # transaction already serialises them)
    return session.scalars(select(LoginThrottle).where(LoginThrottle.address == address, LoginThrottle.name == name)
                           .with_for_update().execution_options(populate_existing=True)).one()


# -- web sessions ---------------------------------------------------------------------------------


def open_session(session: Session, user: User, via: str, now: dt.datetime, hours: int) -> str:
    """A new session of ``user`` for ``hours``; returns the id its cookie carries (kept only hashed)."""
    session.execute(delete(WebSession).where(WebSession.user_id == user.id,
                                             (WebSession.expires_at <= now) | WebSession.ended_at.is_not(None)))
    raw = secrets.token_urlsafe(32)
    key = _sha(raw)
    session.add(WebSession(id=key, user_id=user.id, via=via, created_at=now, expires_at=now + dt.timedelta(hours=hours)))
    session.flush()
    older = list(session.scalars(select(WebSession.id)
                                 .where(WebSession.user_id == user.id, WebSession.ended_at.is_(None), WebSession.id != key)
                                 .order_by(WebSession.created_at.desc()).offset(MAX_SESSIONS - 1)))
    if older:
        session.execute(update(WebSession).where(WebSession.id.in_(older)).values(ended_at=now))
    return raw


def session_user(session: Session, raw: object, now: dt.datetime) -> User | None:
    """The enabled user whose open, unexpired session ``raw`` names, with their grants: one
    statement, by the session's primary key (every page of the workspace asks)."""
    if not isinstance(raw, str) or not 20 <= len(raw) <= 100:
        return None
    return session.scalars(select(User).join(WebSession, WebSession.user_id == User.id).options(joinedload(User.grants))
                           .where(WebSession.id == _sha(raw), WebSession.ended_at.is_(None),
                                  WebSession.expires_at > now, User.disabled.is_(False))).unique().one_or_none()


def end_session(session: Session, raw: object, now: dt.datetime) -> None:
    if isinstance(raw, str) and 20 <= len(raw) <= 100:
        session.execute(update(WebSession).where(WebSession.id == _sha(raw), WebSession.ended_at.is_(None))
                        .values(ended_at=now))


def log_out(session: Session, raw: str, now: dt.datetime, everywhere: bool = False) -> None:
    """End the session ``raw``; ``everywhere``: end everything its user holds (``end_all``)."""
    user = session_user(session, raw, now) if everywhere else None
    if user is not None:
        end_all(session, user, now)
    else:
        end_session(session, raw, now)


# -- API tokens -----------------------------------------------------------------------------------


def new_api_token(session: Session, user: User, label: str, now: dt.datetime, *,
                  days: int = TOKEN_DAYS) -> tuple[str, ApiToken]:
    """A token acting as ``user`` for ``days``: the token (shown once) and its row."""
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise BadInput(f"a token lasts 1 to {MAX_TOKEN_DAYS} days, not {days}")
    if user.disabled:
        raise Refused(f"user {user.name!r} is disabled", hint="no token is made for a disabled account")
    token = "dbn_" + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, label=label.strip()[:200], token_sha256=_sha(token), created_at=now,
                   expires_at=now + dt.timedelta(days=days), revoked=False)
    session.add(row)
    session.flush()
    return token, row


_USERS, _GRANTS, _TOKENS = (cast(Table, m.__table__) for m in (User, Grant, ApiToken))
_U, _G, _T = _USERS.c, _GRANTS.c, _TOKENS.c
# Every API request asks it: columns, not mapped objects (a User and its Grants built for each
# request cost more than the statement), and the grants in the order the relationship keeps.
_TOKEN_ACTOR = (select(_U.id, _U.name, _U.display_name, _U.unit, _G.role, _G.scope)
                .select_from(_TOKENS.join(_USERS, _U.id == _T.user_id).outerjoin(_GRANTS, _G.user_id == _U.id))
                .where(_T.token_sha256 == bindparam("sha"), _T.revoked.is_(False), _T.expires_at > bindparam("now"),
                       _U.disabled.is_(False))
                .order_by(_G.id))


def token_actor(session: Session, token: str, now: dt.datetime) -> Actor | None:
    """The actor (door "api") of an unexpired, unrevoked token of an enabled user, with their
    grants (one statement, by the token's unique hash); None otherwise."""
    rows = session.connection().execute(_TOKEN_ACTOR, {"sha": _sha(token[:200]), "now": now}).all()
    if not rows:
        return None
    user_id, name, display_name, unit = rows[0][:4]
    grants = tuple((role, scope) for *_, role, scope in rows if role is not None)
    return Actor(name, "api", grants, unit, display_name or name, user_id)


def tokens_of(session: Session, user: User) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)))


TokenRow = ApiToken  # what the doors list of a token (never the token itself)


def token_owner(session: Session, row: ApiToken) -> str:
    owner = session.get(User, row.user_id)
    return owner.name if owner is not None else "?"


def revoke_token(session: Session, token_id: int) -> tuple[ApiToken, bool]:
    """Revoke one token by its id: the row and whether it was still in force."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise BadInput(f"no API token with id {token_id}", hint="see `duban user token list NAME`")
    was = not row.revoked
    row.revoked = True
    return row, was


# -- the end of everything ------------------------------------------------------------------------


def end_all(session: Session, user: User, now: dt.datetime) -> None:
    """End every session, API token and signed link of ``user``."""
    user.session_epoch += 1
    user.updated_at = now
    session.execute(update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked.is_(False))
                    .values(revoked=True))
    session.execute(update(WebSession).where(WebSession.user_id == user.id, WebSession.ended_at.is_(None))
                    .values(ended_at=now))


def _sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()

"""Who a workspace request comes from: the session cookie, a signed link, or an API token.

The cookie is Starlette's signed one (``SessionMiddleware``: itsdangerous, HttpOnly,
SameSite=Lax, Secure when ``[board] public_url`` is https). It holds the random id of a session
row (``engine.accounts.credentials``) and a CSRF token: logging out ends the row, so the cookie,
or a copy of it, stops counting on the server; a password change, "log out everywhere" or a
disabled account ends every row of the user. Every state-changing form carries the CSRF token
(synchronizer pattern) in its action URL, ``?csrf=TOKEN`` (or a client sends ``X-CSRF-Token``):
the token is checked before a byte of the body is read (``limits``), so it cannot travel only
inside the body; the form's hidden field is the handler's second check. The API takes a bearer
token instead and needs none.

Signing in with a password costs an argon2 check, tens of milliseconds of a core. It never runs on
the event loop: ``check_password`` runs it in a worker thread, ``HASHES_AT_ONCE`` at a time, and
the sign-in's database steps run ``SIGNINS_AT_ONCE`` at a time (``signin_work``), so a storm of
logins waits its turn without holding a worker thread while ``/healthz`` and the pages go on.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from fastapi import HTTPException, Request
from sqlalchemy.orm import Session, sessionmaker

from ...accounts.actor import Actor
from ...accounts.credentials import session_user, token_actor
from ...accounts.passwords import verify_password
from ...accounts.users import actor_if
from ...store import db

SESSION_ID = "sid"
SESSION_CSRF = "csrf"
HASHES_AT_ONCE = 2  # of the machine's cores, at most this many hash passwords at a time
SIGNINS_AT_ONCE = 4  # sign-ins in the database at a time (short writes; the rest wait, threadless)

T = TypeVar("T")
CSRF_HEADER = "x-csrf-token"


def csrf_token(request: Request) -> str:
    token = request.session.get(SESSION_CSRF)
    if not isinstance(token, str) or len(token) < 20:
        token = secrets.token_urlsafe(24)
        request.session[SESSION_CSRF] = token
    return token


def presented_csrf(request: Request) -> str:
    """The CSRF token outside the body: ``?csrf=`` of the form's action, or the header."""
    return request.query_params.get("csrf") or request.headers.get(CSRF_HEADER) or ""


def csrf_matches(request: Request, presented: str | None) -> bool:
    expected = request.session.get(SESSION_CSRF)
    return bool(isinstance(expected, str) and presented
                and hmac.compare_digest(expected.encode(), presented.encode()))


def check_csrf(request: Request, presented: str | None) -> None:
    if not csrf_matches(request, presented or presented_csrf(request)):
        raise HTTPException(403, "CSRF token missing or wrong: reload the page and try again")


def sign_in(request: Request, session_id: str) -> None:
    """Carry the new session's id in the cookie (a fresh cookie: nothing of the one before)."""
    request.session.clear()
    request.session[SESSION_ID] = session_id
    csrf_token(request)


def sign_out(request: Request) -> None:
    request.session.clear()


def session_id(request: Request) -> str | None:
    held = request.session.get(SESSION_ID)
    return held if isinstance(held, str) else None


def session_actor(request: Request, session: Session) -> Actor | None:
    """The signed-in user of this request, if their session is open on the server."""
    held = session_id(request)
    if held is None:
        return None
    now = request.app.state.site.clock.now()
    return _once(request, f"duban.session_actor.{held}", lambda: actor_if(session_user(session, held, now), "web"))


def api_actor(request: Request, session: Session) -> Actor | None:
    """The actor of an API request: a bearer API token (``duban user token``) in force."""
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() != "bearer ":
        return None
    return _once(request, "duban.api_actor",
                 lambda: token_actor(session, auth[7:].strip(), request.app.state.site.clock.now()))


def _once(request: Request, key: str, find: Callable[[], Actor | None]) -> Actor | None:
    """One lookup a request: the body limits ask who sends a body before it is read, and the route
    asks again; the answer (an immutable ``Actor``) is kept in the request's own scope."""
    state = request.scope.setdefault("state", {})
    if key not in state:
        state[key] = find()
    found: Actor | None = state[key]
    return found


async def check_password(request: Request, stored: str | None, password: str) -> bool:
    """argon2 in a worker thread, ``HASHES_AT_ONCE`` at a time; a check waiting its turn holds no thread."""
    return await anyio.to_thread.run_sync(verify_password, stored, password,
                                          limiter=_limiter(request, "hash_limiter", HASHES_AT_ONCE))


async def signin_work(request: Request, factory: sessionmaker[Session], work: Callable[..., T], *args: Any) -> T:
    """``work(session, *args)`` in one transaction, in a worker thread, ``SIGNINS_AT_ONCE`` at a time."""
    def run() -> T:
        with db.transaction(factory) as session:
            return work(session, *args)

    return await anyio.to_thread.run_sync(run, limiter=_limiter(request, "signin_limiter", SIGNINS_AT_ONCE))


def _limiter(request: Request, name: str, tokens: int) -> anyio.CapacityLimiter:
    # made on first use, in the event loop that serves the application (a limiter belongs to one)
    state = request.app.state
    limiter = getattr(state, name, None)
    if limiter is None:
        limiter = anyio.CapacityLimiter(tokens)
        setattr(state, name, limiter)
    return limiter

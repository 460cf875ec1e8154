"""Who a workspace request comes from: the session cookie, a signed link, or an API token.

Sessions are Starlette's signed cookie (``SessionMiddleware``: itsdangerous, HttpOnly,
SameSite=Lax, Secure when ``[board] public_url`` is https). The cookie holds the user's id, their
``session_epoch`` at sign-in and a CSRF token; a password change, "log out everywhere" or a
disabled account moves the epoch on, and every older cookie stops counting. Every state-changing
form carries the CSRF token (synchronizer pattern) in its action URL, ``?csrf=TOKEN`` (or a client
sends ``X-CSRF-Token``): the token is checked before a byte of the body is read (``limits``), so
it cannot travel only inside the body; the form's hidden field is the handler's second check. The
API takes a bearer token instead and needs none.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from fastapi import HTTPException, Request
from sqlalchemy.orm import Session

from ...accounts.actor import Actor
from ...accounts.users import actor_for_token, actor_of
from ...store.accounts import User

SESSION_USER = "user"
SESSION_CSRF = "csrf"
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


def sign_in(request: Request, user: User, via: str) -> None:
    request.session.clear()
    request.session[SESSION_USER] = {"id": user.id, "epoch": user.session_epoch, "via": via}
    csrf_token(request)


def sign_out(request: Request) -> None:
    request.session.clear()


def session_actor(request: Request, session: Session) -> Actor | None:
    """The signed-in user of this request, if their session still counts."""
    held: Any = request.session.get(SESSION_USER)
    if not isinstance(held, dict) or not isinstance(held.get("id"), int):
        return None
    user = session.get(User, held["id"])
    if user is None or user.disabled or user.session_epoch != held.get("epoch"):
        return None
    return actor_of(user, "web")


def api_actor(request: Request, session: Session) -> Actor | None:
    """The actor of an API request: a bearer API token (``duban user token``)."""
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() != "bearer ":
        return None
    return actor_for_token(session, auth[7:].strip())

"""Signing in through someone else's word: an organisation app or the single sign-on.

Whatever the door, the end is the one sign-in path of the workspace: the account the outside
identity names (``engine.accounts.external``) gets a server-side session (``open_session``,
``via`` the door) and the session cookie (``identity.sign_in``), as a password or a link gives.
An identity that names no account gets a page saying so, in Chinese, and never an account.

The round trip through the other site carries a ``state``: random, kept in the (signed) session
cookie with where to go afterwards, and taken out on the way back, so an answer we did not ask
for, or one replayed, signs nobody in. It is hexadecimal because WeCom accepts only
``[a-zA-Z0-9]`` there.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from ...accounts.credentials import open_session
from ...accounts.external import Found
from .identity import sign_in, signin_work
from .workspace.routes import Ws, safe_next

ROUND_TRIP = "outside"
ROUND_TRIP_SECONDS = 600  # the platforms' codes live five minutes; a tab left open longer starts again
HINT = "请联系督办管理员为您的账号登记此身份，或使用提醒邮件中的链接、用户名和密码登录。"


def absolute(ws: Ws, path: str) -> str:
    """``path`` of this workspace as the other site must send the browser back to it: under
    ``[board] public_url`` when set (behind a proxy the request's own host is not the public one)."""
    public = ws.runtime.config.board.base_url
    return (public or str(ws.request.base_url).rstrip("/")) + ws.url(path)


def begin(request: Request, door: str, next_path: str, **extra: str) -> str:
    """A new round trip through ``door``: its state (what the other site must send back)."""
    state = secrets.token_hex(16)
    request.session[ROUND_TRIP] = {"state": state, "door": door, "next": safe_next(next_path),
                                   "at": int(time.time()), **extra}
    return state


def returned(request: Request, door: str, state: str) -> dict[str, Any] | None:
    """The round trip this answer ends, if it is the one we began (once: it is taken out)."""
    held = request.session.pop(ROUND_TRIP, None)
    if not isinstance(held, dict) or held.get("door") != door or not isinstance(held.get("state"), str):
        return None
    if not state or not hmac.compare_digest(held["state"].encode(), state.encode()[:100]):
        return None
    if int(time.time()) - int(held.get("at") or 0) > ROUND_TRIP_SECONDS:
        return None
    return held


def refused(ws: Ws, reason: str, status: int = 403) -> Response:
    return ws.message(None, status, "无法登录", f"{reason}。{HINT}")


def stale(ws: Ws) -> Response:
    return ws.message(None, 400, "登录未完成", "登录已过期或不是从本系统发起的，请重新打开工作台。")


async def finish(ws: Ws, find: Callable[[Session], Found], via: str, next_path: str) -> Response:
    """Sign in as the account ``find`` names (one transaction), or say why not."""
    if ws.site.writers is None:
        return ws.message(None, 503, "不可用", "工作台未启用")
    hours = ws.runtime.config.workspace.session_hours

    def work(session: Session) -> tuple[str | None, str]:
        found = find(session)
        if found.user is None:
            return None, found.reason
        return open_session(session, found.user, via, ws.now, hours), ""

    held, reason = await signin_work(ws.request, ws.site.writers, work)
    if held is None:
        return refused(ws, reason)
    sign_in(ws.request, held)
    return RedirectResponse(ws.url(safe_next(next_path)), 303)

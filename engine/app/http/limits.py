"""A request body is judged before a byte of it is read: who sends it, and how much may come.

Left to the application, a body is read first and judged after: a 300 MB JSON body without a
token was parsed into memory before the 401, a 400 MB upload spooled to disk before the 403. This
pure ASGI middleware sits in front of every route and, for a request that carries a body or uses
a body method (POST, PUT, PATCH, DELETE):

* refuses a body where none is taken (the board, ``/w/…``, a GET): 413, nothing read;
* authenticates from the headers alone: ``/api/v1/…`` needs a live bearer API token (else 401),
  ``/ws/…`` a live session and its CSRF token in ``?csrf=`` or ``X-CSRF-Token`` (else 403);
  ``/ws/login`` has no session yet and only its size is judged;
* limits the size: JSON and forms ``BODY_MAX`` (1 MB), an upload (multipart to an ``…/evidence``
  or ``…/step`` address) ``[evidence] max_bytes`` plus ``MULTIPART_OVERHEAD``. A Content-Length
  over the limit is answered 413 at once; a chunked body is counted as it arrives and cut off with
  413 the moment it passes the limit.

A bearer token found live is remembered for ``GATE_SECONDS``: its next requests with a JSON or
form body pass this gate without a lookup (a database round trip on a worker thread, one of the
two an API write cost). The gate only decides whether a body is read; the route looks the token
up again in its own transaction and answers 401 for a token revoked meanwhile, so a revoked token
gets at most a body of ``BODY_MAX`` read for that long, and is never trusted with anything. An
upload is always looked up before its body is read.

A refusal sent while the body is still coming says ``Connection: close``: the server closes the
connection after the answer instead of reading (and throwing away) the hundreds of megabytes the
client may still mean to send. Answers are JSON ``{"detail": …}`` for the API, a short Chinese
page elsewhere. The handlers' own checks (the token, the form's CSRF field, the evidence limit per
file) stay as a second line.
"""

from __future__ import annotations

import hashlib
import html
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...runtime import Runtime
from .identity import api_actor, csrf_matches, presented_csrf, session_actor

log = logging.getLogger("duban.http")

BODY_MAX = 1 << 20  # JSON and url-encoded forms: a note is at most a few kilobytes
MULTIPART_OVERHEAD = 256 << 10  # an upload's boundaries, part headers and text fields (a note, a date)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API = "/api/v1"
WORKSPACE = "/ws/"
LOGOUT = "/ws/logout"
NO_SESSION = frozenset({"/ws/login"})  # signing in is how a session begins
UPLOADS = ("/evidence", "/step")  # the forms and the API operation that take files
CLOSE = {"Connection": "close"}
GATE_SECONDS = 2.0  # how long a token found live lets its requests through the gate unlooked-up
GATE_ENTRIES = 4096  # tokens remembered at most (only live ones: a stranger cannot add any)


class Refusal(Exception):
    """Why a request is answered without its body being read."""

    def __init__(self, status: int, detail: str, text: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.detail, self.text, self.headers = status, detail, text, headers or {}


class BodyLimits:
    """The middleware; ``runtime`` and ``sessions`` are the ``Site``'s (asked per request, so a
    reload's new ``[evidence] max_bytes`` applies to the next request)."""

    def __init__(self, app: ASGIApp, runtime: Callable[[], Runtime], sessions: sessionmaker[Session]) -> None:
        self.app = app
        self.runtime = runtime
        self.sessions = sessions
        self._live: dict[bytes, float] = {}  # a live token's digest -> until when the gate lets it by

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        pending = has_body(headers)
        path = local_path(scope)
        if not pending and not (scope["method"] in BODY_METHODS and takes_body(path)):
            await self.app(scope, receive, send)  # nothing to read: the router answers (405 on the board)
            return
        try:
            limit, shown = await self.judge(scope, path, headers)
        except Refusal as refusal:
            await answer(scope, path, refusal, pending)(scope, receive, send)
            return
        if pending:
            await counted(self.app, scope, receive, send, path, limit, too_large(shown))
        else:
            await self.app(scope, receive, send)

    async def judge(self, scope: Scope, path: str, headers: Headers) -> tuple[int, int]:
        """The size this request's body may have, and the limit a refusal names (an upload's is
        ``[evidence] max_bytes``); raises ``Refusal`` when it may send none."""
        if scope["method"] not in BODY_METHODS or not takes_body(path):
            raise Refusal(413, "this address takes no request body", "此地址不接收请求内容。")
        limit, shown = self.limit_for(path, headers)
        if path.startswith(f"{API}/"):
            key = _digest(headers.get("authorization", ""))
            if limit > BODY_MAX or not self._seen_live(key):  # an upload is always looked up first
                if not await run_in_threadpool(self._lookup, api_actor, scope):
                    raise Refusal(401, "a bearer token is required (duban user token NAME)",
                                  "需要接口令牌。", {"WWW-Authenticate": 'Bearer realm="duban"'})
                self._remember(key)
        elif path not in NO_SESSION:
            request = Request(scope)
            if not csrf_matches(request, presented_csrf(request)):
                raise Refusal(403, "CSRF token missing or wrong: reload the page and try again",
                              "页面已过期或来源不明（缺少校验令牌）。请刷新页面后重试。")
            # logging out needs no live session: one that already ended may still say goodbye
            if path != LOGOUT and not await run_in_threadpool(self._lookup, session_actor, scope):
                raise Refusal(403, "not signed in, or the session has ended", "尚未登录或登录已失效。请重新登录。")
        declared = declared_length(headers)
        if declared is not None and declared > limit:
            raise too_large(shown)
        return limit, shown

    def limit_for(self, path: str, headers: Headers) -> tuple[int, int]:
        kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind == "multipart/form-data" and path.rstrip("/").endswith(UPLOADS):
            files = int(self.runtime().config.evidence.max_bytes)
            return files + MULTIPART_OVERHEAD, files
        return BODY_MAX, BODY_MAX

    def _seen_live(self, key: bytes) -> bool:
        until = self._live.get(key)
        return until is not None and time.monotonic() < until

    def _remember(self, key: bytes) -> None:
        now = time.monotonic()
        if len(self._live) >= GATE_ENTRIES:
            self._live = {k: until for k, until in self._live.items() if until > now}
            if len(self._live) >= GATE_ENTRIES:
                self._live.clear()
        self._live[key] = now + GATE_SECONDS

    def _lookup(self, who: Callable[[Request, Session], Any], scope: Scope) -> bool:
        """Whether ``who`` (``api_actor``, ``session_actor``) finds a live actor; in the thread pool,
        so the database never holds up the event loop."""
        try:
            with self.sessions() as session:
                try:
                    return who(Request(scope), session) is not None
                finally:
                    session.rollback()
        except Exception:
            log.exception("http: who sends %s could not be looked up", scope.get("path"))
            raise Refusal(503, "the server cannot check credentials now; try again later",
                          "暂时无法核验身份，请稍后重试。") from None


def _digest(authorization: str) -> bytes:
    """What the gate remembers of a request's credentials: never the token itself."""
    return hashlib.sha256(authorization.encode("utf-8", "replace")).digest()


async def counted(app: ASGIApp, scope: Scope, receive: Receive, send: Send, path: str, limit: int,
                  refusal: Refusal) -> None:
    """Run ``app`` with its body counted as it arrives; past ``limit``, answer 413 and tell the
    application the client has gone (whatever it answers after that is dropped). An answer the
    application starts before the whole body came (a 405 that never reads it) closes the
    connection too: the server would otherwise read the rest, however long, to throw it away."""
    seen = 0
    started = refused = whole = False

    async def counting_receive() -> Message:
        nonlocal seen, refused, whole
        if refused:
            return {"type": "http.disconnect"}
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            whole = not message.get("more_body", False)
            if seen > limit:
                refused = True
                if not started:
                    await answer(scope, path, refusal, True)(scope, receive, send)
                return {"type": "http.disconnect"}
        return message

    async def guarded_send(message: Message) -> None:
        nonlocal started
        if refused:
            return
        if message["type"] == "http.response.start":
            started = True
            if not whole:
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
        await send(message)

    try:
        await app(scope, counting_receive, guarded_send)
    except Exception:
        if not refused:
            raise
        # the application saw the client "disconnect" mid-body: expected, and answered already
        log.debug("http: %s cut off past %d bytes", path, limit)


def too_large(shown: int) -> Refusal:
    size = f"{shown / 2**20:,.1f}".removesuffix(".0") + " MB"
    return Refusal(413, f"the request body is larger than the limit of {size}",
                   f"提交的内容超过上限（{size}），未予接收。请压缩或拆分文件后重试。")


def answer(scope: Scope, path: str, refusal: Refusal, pending: bool) -> Response:
    """The refusal as JSON for the API, a short page elsewhere; ``Connection: close`` when a body
    is still on its way (the server will not read it)."""
    headers = {**refusal.headers, **(CLOSE if pending else {})}
    if path == API or path.startswith(f"{API}/"):
        return JSONResponse({"detail": refusal.detail}, refusal.status, headers=headers)
    home = html.escape(str(scope.get("root_path") or "").rstrip("/") + WORKSPACE)
    page = (f'<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>未能提交</title>'
            f'<h1>未能提交</h1><p>{html.escape(refusal.text)}</p><p><a href="{home}">返回工作台</a></p></html>\n')
    return HTMLResponse(page, refusal.status, headers=headers)


def takes_body(path: str) -> bool:
    return path.startswith((f"{API}/", WORKSPACE))


def has_body(headers: Headers) -> bool:
    """A body follows the headers: a positive Content-Length, or any Transfer-Encoding (chunked)."""
    if "transfer-encoding" in headers:
        return True
    length = declared_length(headers)
    return length is not None and length > 0


def declared_length(headers: Headers) -> int | None:
    raw = headers.get("content-length")
    # h11 refuses a malformed or negative Content-Length before the application is called
    return int(raw) if raw is not None and raw.strip().isdigit() else None


def local_path(scope: Scope) -> str:
    """The path inside the application (a reverse proxy's mount point, ``root_path``, removed)."""
    path, root = str(scope.get("path") or "/"), str(scope.get("root_path") or "").rstrip("/")
    return (path[len(root):] or "/") if root and path.startswith(root) else path

"""Who may read the board: anyone on this machine; from elsewhere, only with the token.

The board shows named leaders, departments and overdue problems, so it is not for the open
network. Requests from a loopback address pass. Any other request needs the token from the
environment variable named by ``[board] token_env`` (default ``DUBAN_BOARD_TOKEN``), given as
``Authorization: Bearer TOKEN`` or ``?token=TOKEN`` (calendar programs can only do the latter). A
request that carries a proxy's forwarding header is treated as remote even when it arrives on
loopback: a reverse proxy on the same machine must not turn every visitor into a local one.

Sign-in throttling counts attempts per client address (``client_address``): the peer's, or the
forwarded one when the peer is a reverse proxy named in ``[workspace] trusted_proxies``.

A successful ``?token=`` also sets an HttpOnly cookie, so the links of a page opened that way keep
working without the token being copied into every URL (and into every server log line).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Callable, Mapping, Sequence

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...config import Config

COOKIE = "duban_board"
COOKIE_DAYS = 30  # the board cookie set from ?token= lasts this long
OPEN_PATHS = ("/healthz",)
# The workspace and the API authenticate their users themselves (a session, a signed link, an API
# token): the board token is not theirs to need.
OWN_AUTH = ("/ws/", "/w/", "/api/v1")
DEFAULT_TOKEN_ENV = "DUBAN_BOARD_TOKEN"
_FORWARDED = ("forwarded", "x-forwarded-for", "x-real-ip")


def board_token(config: Config, environ: Mapping[str, str] | None = None) -> str | None:
    """The token from the variable ``[board] token_env`` names; None when unset or empty (then
    only loopback is served)."""
    name = config.board.token_env or DEFAULT_TOKEN_ENV
    value = (environ if environ is not None else os.environ).get(name, "").strip()
    return value or None


def is_loopback(address: str | None) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1 from a dual-stack socket
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def is_local(request: Request) -> bool:
    host = request.client.host if request.client else None
    return is_loopback(host) and not any(request.headers.get(h) for h in _FORWARDED)


def client_address(request: Request, trusted_proxies: Sequence[str] = ()) -> str:
    """The address a request is counted against (sign-in throttling): the peer's, or, when the peer
    is one of ``[workspace] trusted_proxies``, the nearest X-Forwarded-For hop that is not. The
    hops further left are the client's own say and prove nothing."""
    peer = request.client.host if request.client else ""
    if peer and peer in trusted_proxies:
        hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",")]
        for hop in reversed(hops):
            if hop not in trusted_proxies:
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    break
    return peer or "unknown"


def presented_tokens(request: Request) -> list[str]:
    """Every token the request carries: bearer header, ?token= and the board cookie."""
    found: list[str] = []
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        found.append(auth[7:].strip())
    found += request.query_params.getlist("token")
    cookie = request.cookies.get(COOKIE)
    if cookie:
        found.append(cookie)
    return [t for t in found if t]


def token_matches(request: Request, token: str) -> bool:
    # compare_digest on every candidate: the time taken does not reveal how much of a guess matched
    return any(hmac.compare_digest(t.encode(), token.encode()) for t in presented_tokens(request))


class BoardGuard:
    """The board's door (plain ASGI: no task and stream per request, as a ``call_next`` middleware
    costs every request, the API's writes included): loopback, ``OPEN_PATHS`` and the paths that
    authenticate their own users pass; any other request needs the board token."""

    def __init__(self, app: ASGIApp, token: Callable[[], str | None]):
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        path = request.url.path
        if path in OPEN_PATHS or path.startswith(OWN_AUTH) or is_local(request):
            await self.app(scope, receive, send)
            return
        token = self.token()
        if token is None:
            await PlainTextResponse(
                "duban board: only local requests are served (no [board] token_env is configured)\n", 403,
            )(scope, receive, send)
        elif not token_matches(request, token):
            await PlainTextResponse("duban board: a token is required\n", 401,
                                    headers={"WWW-Authenticate": 'Bearer realm="duban"'})(scope, receive, send)
        elif token in request.query_params.getlist("token"):
            await self.app(scope, receive, _with_cookie(send, token, request))
        else:
            await self.app(scope, receive, send)


def _with_cookie(send: Send, token: str, request: Request) -> Send:
    """``send`` with the board cookie added to the answer's headers."""
    carrier = Response()
    carrier.set_cookie(COOKIE, token, httponly=True, samesite="strict", path=request.scope.get("root_path") or "/",
                       max_age=COOKIE_DAYS * 86400, secure=request.url.scheme == "https")
    cookies = [h for h in carrier.raw_headers if h[0] == b"set-cookie"]

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *cookies]}
        await send(message)

    return sending

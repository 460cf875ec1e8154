"""Who may read the board: anyone on this machine; from elsewhere, only with the token.

The board shows named leaders, departments and overdue problems, so it is not for the open
network. Requests from a loopback address pass. Any other request needs the token from the
environment variable named by ``[board] token_env`` (default ``DUBAN_BOARD_TOKEN``), given as ``Authorization: Bearer TOKEN`` or
``?token=TOKEN`` (calendar programs can only do the latter). A request that carries a proxy's
forwarding header is treated as remote even when it arrives on loopback: a reverse proxy on the
same machine must not turn every visitor into a local one.

A successful ``?token=`` also sets an HttpOnly cookie, so the links of a page opened that way keep
working without the token being copied into every URL (and into every server log line).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Callable, Iterable, Mapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from ..config import Config

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
COOKIE = "duban_board"
_FORWARDED = ("HTTP_FORWARDED", "HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP")


DEFAULT_TOKEN_ENV = "DUBAN_BOARD_TOKEN"


def board_settings(config: Config) -> dict[str, Any]:
    """``[board]`` of config.toml (``token_env``, ``templates``)."""
    return dict(config.board)


def board_token(config: Config, environ: Mapping[str, str] | None = None) -> str | None:
    """The token from the environment variable ``[board] token_env`` names (default
    ``DUBAN_BOARD_TOKEN``); None when it is unset or empty: then only loopback is served."""
    name = board_settings(config).get("token_env") or DEFAULT_TOKEN_ENV
    value = (environ if environ is not None else os.environ).get(str(name), "").strip()
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


def presented_tokens(environ: dict[str, Any]) -> list[str]:
    """Every token the request carries: bearer header, ?token= and the board cookie."""
    found: list[str] = []
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if auth[:7].lower() == "bearer ":
        found.append(auth[7:].strip())
    found += parse_qs(environ.get("QUERY_STRING", "")).get("token", [])
    cookie = SimpleCookie()
    try:
        cookie.load(environ.get("HTTP_COOKIE", ""))
    except Exception:  # noqa: BLE001 - a malformed cookie header is simply no token
        pass
    if COOKIE in cookie:
        found.append(cookie[COOKIE].value)
    return [t for t in found if t]


def _deny(start_response: StartResponse, status: str, text: str, extra: list[tuple[str, str]]) -> list[bytes]:
    body = text.encode("utf-8")
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
                            ("Cache-Control", "no-store"), *extra])
    return [body]


def guard(app: WSGIApp, token: str | None) -> WSGIApp:
    """Wrap ``app`` so only loopback requests, or requests with ``token``, reach it."""

    def guarded(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        local = is_loopback(environ.get("REMOTE_ADDR")) and not any(environ.get(h) for h in _FORWARDED)
        if local:
            return app(environ, start_response)
        if token is None:
            return _deny(start_response, "403 Forbidden",
                         "duban board: only local requests are served (no [board] token_env is configured)\n", [])
        given = presented_tokens(environ)
        # compare_digest on every candidate: the time taken does not reveal how much of a guess matched
        if not any(hmac.compare_digest(t.encode(), token.encode()) for t in given):
            return _deny(start_response, "401 Unauthorized", "duban board: a token is required\n",
                         [("WWW-Authenticate", 'Bearer realm="duban"')])
        if token in parse_qs(environ.get("QUERY_STRING", "")).get("token", []):
            cookie = f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path={environ.get('SCRIPT_NAME') or '/'}"

            def with_cookie(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                return start_response(status, [*headers, ("Set-Cookie", cookie)], exc_info)

            return app(environ, with_cookie)
        return app(environ, start_response)

    return guarded

"""The headers every response carries, whoever wrote it: a page, the API, or a refusal sent before
the application saw the request.

A pure ASGI wrapper, outermost of duban's middleware, so a 401 or 413 answered before a body was
read has the same Content-Security-Policy, ``no-store`` and ``nosniff`` as a page. A header the
response set itself wins (an evidence download sets its own ``Content-Disposition``). Under TLS
(``[board] public_url`` starts with ``https://``) every response also carries HSTS, so a browser
that once reached the workspace over https never again sends its session cookie in clear.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",  # names and overdue items: nothing for shared caches
}
# A year, the value browsers' preload lists ask for; no includeSubDomains: duban does not own the
# other hosts of its domain.
HSTS = ("Strict-Transport-Security", "max-age=31536000")


class SecurityHeaders:
    """Adds ``HEADERS`` (and HSTS when ``https()`` says the public address is https) to every
    response that lacks them. ``https`` is asked per response: a reload may change the address."""

    def __init__(self, app: ASGIApp, https: Callable[[], bool]) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = added(list(message.get("headers", [])), self.https())
            await send(message)

        await self.app(scope, receive, with_headers)


def added(headers: list[tuple[bytes, bytes]], https: bool) -> list[tuple[bytes, bytes]]:
    present = {name.lower() for name, _ in headers}
    wanted = [*HEADERS.items(), *([HSTS] if https else [])]
    return headers + [(name.lower().encode(), value.encode()) for name, value in wanted
                      if name.lower().encode() not in present]

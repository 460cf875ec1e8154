"""Real servers on 127.0.0.1 for the channel tests: no mocks.

* ``smtp_server()`` — an aiosmtpd server whose ``SmtpSink`` keeps every envelope it accepts and can
  refuse chosen recipients.
* ``LoopbackHTTP`` — a threading HTTP/1.1 server (keep-alive, so connection reuse is observable)
  that records each request and answers through a ``respond`` callable.
* ``DingTalkRobot``, ``WeComRobot``, ``FeishuBot`` — ``respond`` callables that check the path,
  token, signature and payload shape the way the platforms do and answer with the platform's error
  codes when something is wrong (and note why in ``problems``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller

HOUR_MS = 3600 * 1000


def free_port() -> int:
    """A port nothing listens on right now (aiosmtpd's Controller cannot take port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- SMTP -------------------------------------------------------------------------------------


@dataclass
class Envelope:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    peer: tuple[str, int]

    def parsed(self) -> EmailMessage:
        message = BytesParser(policy=policy.default).parsebytes(self.content)
        assert isinstance(message, EmailMessage)
        return message


class SmtpSink:
    """aiosmtpd handler: accepts mail into ``received``; ``refuse[address]`` is an RCPT reply."""

    def __init__(self) -> None:
        self.received: list[Envelope] = []
        self.refuse: dict[str, str] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append(
            Envelope(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, session.peer)
        )
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server(**smtp_kwargs: Any) -> Iterator[tuple[Controller, SmtpSink]]:
    """An SMTP server on a free loopback port; ``smtp_kwargs`` go to aiosmtpd's ``SMTP``."""
    sink = SmtpSink()
    smtp_kwargs.setdefault("server_hostname", "sink.test")  # skip a slow getfqdn()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(), **smtp_kwargs)
    controller.start()
    try:
        yield controller, sink
    finally:
        controller.stop()


def intranet_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 from a CA of its own (as an intranet's mail server has), made by
    trustme: the PEM holding it and its CA (a server's chain, and the bundle a client trusts), and
    its key."""
    import trustme

    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    cert, key = directory / "chain.pem", directory / "key.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems) + ca.cert_pem.bytes())
    leaf.private_key_pem.write_to_path(str(key))
    return cert, key


# -- HTTP -------------------------------------------------------------------------------------

Reply = tuple[int, dict[str, str], bytes]


def json_reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    payload = json.dumps(body).encode()
    return status, {"Content-Type": "application/json", **(headers or {})}, payload


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    raw_query: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    peer: tuple[str, int]

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.raw_query, keep_blank_values=True)

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


class LoopbackHTTP:
    """A keep-alive HTTP server on 127.0.0.1:0 that records requests; use as a context manager."""

    def __init__(self, respond: Callable[[Seen], Reply] | None = None):
        self.respond: Callable[[Seen], Reply] = respond or (lambda seen: json_reply({"ok": True}))
        self.seen: list[Seen] = []
        self.connections = 0  # TCP connections accepted
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str = "/hook", query: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}" + (f"?{query}" if query else "")

    def __enter__(self) -> LoopbackHTTP:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the real platforms do

            def setup(self) -> None:
                super().setup()
                with outer._lock:
                    outer.connections += 1

            def do_GET(self) -> None:
                self.do_POST("GET")

            def do_POST(self, method: str = "POST") -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                parts = urlsplit(self.path)
                seen = Seen(
                    method,
                    parts.path,
                    parts.query,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    self.client_address,
                )
                with outer._lock:
                    outer.seen.append(seen)
                status, headers, payload = outer.respond(seen)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


# -- platform emulators -----------------------------------------------------------------------


@dataclass
class DingTalkRobot:
    """``/robot/send?access_token=…``: checks the token, the 加签 signature and the markdown body."""

    access_token: str = "ding-token"
    secret: str | None = None
    errcode: int = 0  # what to answer once everything checks out
    errmsg: str = "ok"
    problems: list[str] = field(default_factory=list)
    # DingTalk's throttle: over 20 messages a minute the robot is blocked for 10 minutes (660026)
    per_minute: int = 20
    clock: Callable[[], float] = time.monotonic
    sent_at: list[float] = field(default_factory=list)
    blocked_until: float = 0.0

    def __call__(self, seen: Seen) -> Reply:
        if seen.path != "/robot/send" or seen.param("access_token") != self.access_token:
            return self._error(300001, "token is not exist")
        now = self.clock()
        self.sent_at = [t for t in self.sent_at if now - t < 60]
        if now < self.blocked_until or len(self.sent_at) >= self.per_minute:
            if now >= self.blocked_until:
                self.blocked_until = now + 600
            return self._error(660026, "sending too many messages per minute")
        self.sent_at.append(now)
        if self.secret is not None:
            timestamp, sign = seen.param("timestamp"), seen.param("sign")
            if not timestamp or not timestamp.isdigit() or not sign:
                return self._error(310000, "sign not match: missing timestamp or sign")
            if abs(time.time() * 1000 - int(timestamp)) > HOUR_MS:
                return self._error(310000, "sign not match: timestamp more than 1 hour off")
            string_to_sign = f"{timestamp}\n{self.secret}".encode()
            expected = base64.b64encode(
                hmac.new(self.secret.encode(), string_to_sign, hashlib.sha256).digest()
            ).decode()
            if not hmac.compare_digest(expected, sign):
                return self._error(310000, "sign not match")
        body = seen.json()
        markdown = body.get("markdown") or {}
        if body.get("msgtype") != "markdown" or not (markdown.get("title") and markdown.get("text")):
            return self._error(40035, "缺少参数 markdown")
        return json_reply({"errcode": self.errcode, "errmsg": self.errmsg})

    def _error(self, code: int, message: str) -> Reply:
        self.problems.append(message)
        return json_reply({"errcode": code, "errmsg": message})


@dataclass
class WeComRobot:
    """``/cgi-bin/webhook/send?key=…``: checks the key and the markdown content (≤ 4096 bytes)."""

    key: str = "wecom-key"
    errcode: int = 0
    errmsg: str = "ok"
    problems: list[str] = field(default_factory=list)

    def __call__(self, seen: Seen) -> Reply:
        if seen.path != "/cgi-bin/webhook/send" or seen.param("key") != self.key:
            return self._error(93000, "invalid webhook url")
        body = seen.json()
        kind = body.get("msgtype")
        content = (body.get(kind) or {}).get("content") if kind in ("markdown", "text") else None
        if not isinstance(content, str):
            return self._error(40008, "invalid message type")
        limit = 4096 if kind == "markdown" else 2048
        if len(content.encode("utf-8")) > limit:
            return self._error(40058, f"{kind}.content exceed max length {limit}")
        if kind == "markdown" and "<@all>" in content:
            self.problems.append("<@all> in markdown: WeCom documents @all only in a text message's mentioned_list")
        return json_reply({"errcode": self.errcode, "errmsg": self.errmsg})

    def _error(self, code: int, message: str) -> Reply:
        self.problems.append(message)
        return json_reply({"errcode": code, "errmsg": message})


@dataclass
class FeishuBot:
    """``/open-apis/bot/v2/hook/{hook}``: checks the signature in the body and the ``post`` message
    (rich text, as Feishu's custom-bot guide documents it: ``content.post.<lang>`` with a title and
    paragraphs of ``text`` / ``a`` / ``at`` elements)."""

    hook: str = "feishu-hook"
    secret: str | None = None
    code: int = 0
    msg: str = "success"
    status: int = 200
    problems: list[str] = field(default_factory=list)

    def __call__(self, seen: Seen) -> Reply:
        if seen.path != f"/open-apis/bot/v2/hook/{self.hook}":
            return self._error(19001, "param invalid: incoming webhook access token invalid", 404)
        if len(seen.body) > 20 * 1000:  # "the request body may not exceed 20 KB"
            return self._error(19002, "params error: request body over 20 KB", 400)
        body = seen.json()
        if self.secret is not None:
            timestamp, sign = body.get("timestamp"), body.get("sign")
            if not isinstance(timestamp, str) or not timestamp.isdigit() or not sign:
                return self._error(19021, "sign match fail: missing timestamp or sign")
            if abs(time.time() - int(timestamp)) > 3600:
                return self._error(19021, "sign match fail: timestamp not within one hour")
            key = f"{timestamp}\n{self.secret}".encode()
            expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
            if not hmac.compare_digest(expected, sign):
                return self._error(19021, "sign match fail or timestamp is not within one hour")
        post = ((body.get("content") or {}).get("post") or {})
        if body.get("msg_type") != "post" or not isinstance(post, dict) or not post:
            return self._error(19002, "params error: msg_type or content.post", 400)
        for lang in post.values():
            paragraphs = lang.get("content") if isinstance(lang, dict) else None
            if not isinstance(lang.get("title"), str) or not isinstance(paragraphs, list) or not all(
                    isinstance(p, list) and all(isinstance(e, dict) and e.get("tag") in ("text", "a", "at")
                                                for e in p) for p in paragraphs):
                return self._error(19002, "params error: post content", 400)
        return json_reply({"code": self.code, "msg": self.msg, "data": {}}, status=self.status)

    def _error(self, code: int, message: str, status: int = 200) -> Reply:
        self.problems.append(message)
        return json_reply({"code": code, "msg": message, "data": {}}, status=status)


# -- outbox helpers (appended for tests/test_outbox.py) -------------------------------------


@contextmanager
def smtp_server_at(port: int, **smtp_kwargs: Any) -> Iterator[tuple[Controller, SmtpSink]]:
    """Like ``smtp_server`` but on a chosen port, e.g. one a channel already points at while down."""
    sink = SmtpSink()
    smtp_kwargs.setdefault("server_hostname", "sink.test")
    controller = Controller(sink, hostname="127.0.0.1", port=port, **smtp_kwargs)
    controller.start()
    try:
        yield controller, sink
    finally:
        controller.stop()


class KeyCounter:
    """``respond`` callable for ``LoopbackHTTP`` that counts each ``Idempotency-Key`` it receives.

    Answers ``status`` (changeable between runs) after ``delay`` seconds, so concurrent senders
    overlap; a receiver that sees a key twice got a duplicate delivery.
    """

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.status = status
        self.delay = delay
        self.keys: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, seen: Seen) -> Reply:
        if self.delay:
            time.sleep(self.delay)
        status = self.status
        if 200 <= status < 300:
            key = seen.headers.get("idempotency-key", "")
            with self._lock:
                self.keys[key] = self.keys.get(key, 0) + 1
        return json_reply({"ok": 200 <= status < 300}, status=status)

    @property
    def duplicates(self) -> dict[str, int]:
        with self._lock:
            return {key: n for key, n in self.keys.items() if n > 1}

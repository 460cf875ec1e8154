"""What the three organisation-app channels share: the API host, the token, the refresh-once rule,
the error classes and the card's content.

An app channel (``wecom_app``, ``dingtalk_app``, ``feishu_app``) sends a work notice that only its
addressee sees. Each send:

1. takes the app's access token from the ``TokenCache`` (fetched when nobody has a fresh one);
2. posts the notice; if the platform answers with one of its token-expired/invalid codes, forgets
   that token, fetches a new one and posts once more;
3. reads the platform's answer in its one reader (``dingtalk_codes``, ``wecom_codes``,
   ``feishu_codes``) and maps the class of its code (``codes.Kind``): refresh-token (step 2),
   rate-limited (``retry_after`` the platform's window), transient, or permanent (no such user, app
   not authorised, IP not whitelisted, bad agent id): the outbox dead-letters those at once, because
   the same notice would fail the same way until someone changes the configuration;
4. returns a ``Receipt`` when the platform says (or will say) that some addressees were missed.

``address`` is one or more of the platform's user ids separated by ``|`` (a department's members),
or ``dept:ID`` for a department where the platform addresses departments (WeCom, DingTalk).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from notifications.channels._http import USER_AGENT, retry_after_seconds
from notifications.channels._tokens import PROCESS_TOKENS, Token, TokenCache, token_key
from notifications.channels.base import Channel, DeliveryError
from notifications.channels.codes import Kind, Table, Verdict
from notifications.channels.receipt import Receipt
from notifications.channels.text import fit_utf8, key_line
from notifications.message import OutgoingMessage, dumps

BUTTON = "去处理"
CARD_LINES = 5  # the most urgent items a card shows; the button opens all of them


class TokenRefused(Exception):
    """The platform says the token is expired or invalid: fetch a new one and try once more."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


@dataclass(frozen=True)
class Addressees:
    users: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Card:
    """What a notice shows: the subject, the most urgent items, how many more, and the button."""

    title: str
    lines: tuple[str, ...]
    more: int  # items beyond ``lines``
    link: str | None  # the button's URL: the recipient's signed workspace link
    text: str  # the whole digest as plain text, for platforms or cases without a card
    pressing: bool = False  # something is overdue or escalated (``AppCard.pressing``)

    @classmethod
    def of(cls, message: OutgoingMessage) -> Card:
        given = message.card  # the pipeline's ``AppCard``
        lines = given.lines if given is not None else ()
        link = given.link if given is not None else None
        total = given.total if given is not None else 0
        if not lines:  # a test notice or a hand-made message: its text is the content
            lines = tuple(ln for ln in message.text.strip().splitlines() if ln.strip())[:CARD_LINES]
            total = len(lines)
        shown = lines[:CARD_LINES]
        return cls(message.subject, shown, max(0, total - len(shown)), link, message.text.strip(),
                   given.pressing if given is not None else False)

    def more_line(self) -> str:
        return f"……另有 {self.more} 项，请点击“{BUTTON}”查看全部" if self.more else ""

    def plain(self, key: str, limit: int) -> str:
        """The notice as plain text within ``limit`` bytes: subject, items, link, key line."""
        tail = (f"\n{BUTTON}：{self.link}" if self.link else "") + f"\n{key_line(key)}"
        head = f"{self.title}\n"
        room = max(0, limit - len((head + tail).encode("utf-8")))
        return head + fit_utf8(self.text, room) + tail


class AppChannel(Channel):
    """An organisation app's work notices; see the module docstring. Subclasses give the endpoints."""

    platform: ClassVar[str]  # every app channel has one (see ``Channel.platform``)
    default_base: ClassVar[str]
    # the platform's documented codes and their classes (``codes``)
    codes: ClassVar[Table] = {}
    # signin, login_base_url: the app's web login of the workspace (engine.app.http.signin_apps)
    common_keys: ClassVar[frozenset[str]] = frozenset({"base_url", "timeout", "signin", "login_base_url"})
    personal: ClassVar[bool] = True

    @classmethod
    def reaches_one(cls, address: str) -> bool:
        # ``dept:ID`` puts the notice before a whole department: not one person's to open
        return not any(part.strip().startswith("dept:") for part in address.split("|"))

    def __init__(self, name: str, settings: Mapping[str, Any], env: Mapping[str, str] = os.environ):
        super().__init__(name, settings, env)
        base = self.setting_str("base_url", self.default_base).rstrip("/")
        try:
            parsed = httpx.URL(base)
        except httpx.InvalidURL as exc:
            raise self.config_error(f"'base_url' is not a URL ({exc})") from None
        if parsed.scheme not in ("http", "https") or not parsed.host or parsed.query:
            raise self.config_error("'base_url' must be an http:// or https:// URL without a query")
        self.base = base
        self.host = parsed.host
        self.timeout = self.setting_number("timeout", 10.0)
        self.tokens: TokenCache = PROCESS_TOKENS
        self._client: httpx.Client | None = None

    # -- what a platform module gives ------------------------------------------------------

    def app_id(self) -> str:
        raise NotImplementedError

    def fetch_token(self) -> Token:
        raise NotImplementedError

    def deliver(self, message: OutgoingMessage, to: Addressees, token: str) -> Receipt | None:
        """Post one notice; raise ``TokenRefused`` or the ``DeliveryError`` ``reply_error`` gives."""
        raise NotImplementedError

    def read_reply(self, reply: dict[str, Any], response: httpx.Response) -> Verdict | None:
        """The failure the platform's answer reports, None for success (the platform's reader)."""
        raise NotImplementedError

    def recipients(self, address: str) -> tuple[str, ...]:
        return tuple(p.strip() for p in address.split("|") if p.strip() and not p.strip().startswith("dept:"))

    def addressees(self, address: str) -> Addressees:
        users, departments = [], []
        for part in (p.strip() for p in address.split("|")):
            if not part:
                continue
            if part.startswith("dept:"):
                departments.append(part.removeprefix("dept:").strip())
            else:
                users.append(part)
        if not users and not departments:
            raise self.failure("no user id to send to (the address is empty)", permanent=True)
        return Addressees(tuple(users), tuple(departments))

    # -- the send --------------------------------------------------------------------------

    def send(self, message: OutgoingMessage) -> Receipt | None:
        to = self.addressees(message.address)
        key = token_key(self.platform, self.base, self.app_id())
        token = self.tokens.get(key, self.fetch_token)
        try:
            return self.deliver(message, to, token)
        except TokenRefused:
            self.tokens.invalidate(key, token)
            token = self.tokens.get(key, self.fetch_token)
            try:
                return self.deliver(message, to, token)
            except TokenRefused as again:
                raise self.failure(f"{again.text} (again with a new token)") from None

    def api_token(self) -> str:
        """The app's token for a call outside ``send`` (``follow_up``)."""
        return self.tokens.get(token_key(self.platform, self.base, self.app_id()), self.fetch_token)

    def reply_error(self, verdict: Verdict) -> DeliveryError | TokenRefused:
        """The error a failed answer means, by the class of its code (see the module docstring)."""
        if verdict.kind is Kind.REFRESH:
            return TokenRefused(verdict.text)
        if verdict.kind is Kind.RATE:
            return self.failure(verdict.text, retry_after=60.0 if verdict.wait is None else verdict.wait,
                                rate_limited=True)
        if verdict.kind is Kind.TRANSIENT:
            return self.failure(verdict.text, retry_after=verdict.wait)
        return self.failure(verdict.text, permanent=True)

    def token_error(self, verdict: Verdict) -> DeliveryError:
        """The error of a refused token request: a wrong id or secret is permanent, busy is not."""
        error = self.reply_error(verdict)
        return error if isinstance(error, DeliveryError) else self.failure(verdict.text, permanent=True)

    # -- HTTP ------------------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout, headers={"User-Agent": USER_AGENT},
                                        follow_redirects=False)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def call(self, method: str, path: str, *, params: Mapping[str, str] | None = None, body: Any = None,
             headers: Mapping[str, str] | None = None) -> tuple[dict[str, Any], httpx.Response]:
        """One API call: the JSON object answered, and the response (for its headers).

        Network trouble, 429 and 5xx are transient; an answer that is not a JSON object is transient
        too (a proxy's page: we cannot tell whether the notice arrived). Errors name the host only:
        the query carries the access token.
        """
        all_headers = dict(headers or {})
        content = None
        if body is not None:
            content = dumps(body).encode("utf-8")
            all_headers["Content-Type"] = "application/json; charset=utf-8"
        try:
            response = self._http().request(method, self.base + path, params=params, content=content,
                                            headers=all_headers)
        except httpx.TimeoutException as exc:
            raise self.failure(f"{self.host} did not answer within {self.timeout:g}s") from exc
        except httpx.TransportError as exc:
            raise self.failure(f"cannot reach {self.host}: {exc or type(exc).__name__}") from exc
        wait = self.rate_wait(response)
        status = response.status_code
        if status == 429:
            raise self.failure(f"{self.host} answered HTTP 429 (rate limited)", retry_after=60.0 if wait is None else wait,
                               rate_limited=True)
        if status >= 500:
            raise self.failure(f"{self.host} answered HTTP {status}", retry_after=wait)
        try:
            reply = response.json()
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            if 400 <= status < 500:
                raise self.failure(f"{self.host} answered HTTP {status}", permanent=True)
            raise self.failure(f"{self.host} answered HTTP {status} without a JSON result")
        return reply, response

    def gettoken(self, path: str, params: Mapping[str, str], label: str) -> Token:
        """The ``GET …gettoken`` that WeCom and DingTalk share: ``errcode``, ``access_token``, ``expires_in``."""
        reply, response = self.call("GET", path, params=params)
        verdict = self.read_reply(reply, response)
        if verdict is not None:
            raise self.token_error(Verdict(verdict.code, verdict.kind, f"{label} gettoken: {verdict.text}",
                                           verdict.wait))
        return self.token_of(reply, "access_token", "expires_in")

    def rate_wait(self, response: httpx.Response) -> float | None:
        """Seconds the platform asks us to wait (``Retry-After``), None if it does not say."""
        return retry_after_seconds(response.headers.get("Retry-After"))

    def token_of(self, reply: dict[str, Any], value: str, lifetime: str) -> Token:
        """The token in a token endpoint's answer (its expiry from ``lifetime`` seconds)."""
        token, seconds = reply.get(value), reply.get(lifetime)
        if not isinstance(token, str) or not token or not isinstance(seconds, int) or isinstance(seconds, bool):
            raise self.failure(f"{self.host} answered the token request without a token")
        return Token(token, self.tokens.clock() + seconds)

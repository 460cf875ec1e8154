"""What the webhook and the three group robots share: one keep-alive HTTP client and error mapping.

Error messages name only the host, never the URL: robot URLs carry their access token in the query
(DingTalk, WeCom) or the path (Feishu), and errors end up in logs and in the ledger.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import httpx

from notifications.channels._lines import Lines
from notifications.channels.base import Channel, DeliveryError
from notifications.channels.codes import Kind, Verdict
from notifications.message import dumps

USER_AGENT = "duban/0.1"

# The robots document per-minute quotas (DingTalk and WeCom: 20 messages a minute per robot), so a
# rate-limit answer means "the minute is used up"; retrying sooner would only be refused again.
RATE_LIMIT_PAUSE = 60.0


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), None if absent."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - dt.datetime.now(dt.UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


class HttpChannel(Channel):
    """A channel that POSTs JSON to ``settings["url"]`` within ``settings["timeout"]`` seconds."""

    keys: ClassVar[frozenset[str]] = frozenset({"url", "timeout", "secret_env"})

    def __init__(self, name: str, settings: Mapping[str, Any], env: Mapping[str, str] = os.environ):
        super().__init__(name, settings, env)
        self.url = self.setting_str("url")
        try:
            parsed = httpx.URL(self.url)
        except httpx.InvalidURL as exc:
            raise self.config_error(f"'url' is not a URL ({exc})") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise self.config_error("'url' must be an http:// or https:// URL")
        self.host = parsed.host
        self._url = parsed  # parsed once: httpx parses a URL given as text again on every request
        self.timeout = self.setting_number("timeout", 10.0)
        self._lines = Lines(self.timeout, USER_AGENT)  # keep-alive, one per send on its way

    def close(self) -> None:
        self._lines.close()

    def post_json(
        self,
        body: Any,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """POST ``body`` as UTF-8 JSON; network trouble becomes a transient ``DeliveryError``."""
        try:
            content = dumps(body).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise self.failure(f"payload is not JSON: {exc}", permanent=True) from exc
        all_headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        # Merged here because httpx's own ``params=`` replaces the URL's query, and with it the
        # robot's access_token.
        url = self._url.copy_merge_params(params) if params else self._url
        try:
            with self._lines.line() as line:
                return line.post(url, content, all_headers)
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise self.failure(f"bad URL for {self.host}: {exc}", permanent=True) from exc
        except httpx.TimeoutException as exc:
            raise self.failure(f"{self.host} did not answer within {self.timeout:g}s") from exc
        except httpx.TransportError as exc:
            raise self.failure(f"cannot reach {self.host}: {exc or type(exc).__name__}") from exc

    def status_error(
        self, response: httpx.Response, *, pause_429: float | None = None
    ) -> DeliveryError | None:
        """The error an HTTP status means, or None for 2xx.

        ``retry_after`` comes from the ``Retry-After`` header; a 429 without one gets ``pause_429``.
        """
        status = response.status_code
        if 200 <= status < 300:
            return None
        excerpt = " ".join(response.text[:200].split())
        text = f"{self.host} answered HTTP {status}" + (f": {excerpt}" if excerpt else "")
        wait = retry_after_seconds(response.headers.get("Retry-After"))
        if status == 429:
            return self.failure(text, retry_after=pause_429 if wait is None else wait)
        # 408 is the server giving up on a slow request: a timeout, so worth another try.
        if status >= 500 or status == 408:
            return self.failure(text, retry_after=wait)
        return self.failure(text, permanent=True)

    def robot_json(self, response: httpx.Response) -> dict[str, Any]:
        """The robot's JSON answer; 429 and 5xx raise (transient whatever the body says).

        The robots answer HTTP 200 with a result code on success and on failure (Feishu sometimes
        with HTTP 400), so the platform's reader decides from the body. An answer that is not a
        JSON object raises too: a 4xx is permanent, anything else transient (a proxy's page: we
        cannot tell whether the message arrived).
        """
        if response.status_code == 429 or response.status_code >= 500:
            raise self.status_error(response, pause_429=RATE_LIMIT_PAUSE)  # type: ignore[misc]
        try:
            reply = response.json()
        except ValueError:
            reply = None
        if isinstance(reply, dict):
            return reply
        error = self.status_error(response)
        if error is not None:
            raise error
        raise self.failure(f"{self.host} answered HTTP {response.status_code} without a result code")

    def verdict_error(self, verdict: Verdict) -> DeliveryError:
        """The error a robot's failed answer means, by the class of its code (``codes.Kind``)."""
        if verdict.kind is Kind.RATE:
            wait = RATE_LIMIT_PAUSE if verdict.wait is None else verdict.wait
            return self.failure(verdict.text, retry_after=wait, rate_limited=True)
        if verdict.kind is Kind.TRANSIENT:
            return self.failure(verdict.text, retry_after=verdict.wait)
        return self.failure(verdict.text, permanent=True)  # a robot has no token to refresh

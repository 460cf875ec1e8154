"""Access tokens of the organisation's apps (WeCom, DingTalk, Feishu): fetched once, kept until
shortly before they expire, shared.

The three platforms give an app an access token valid for about two hours and throttle the endpoint
that hands it out; fetching one per message would be refused within minutes. So a token is cached
under the app's identity (platform, API host, app id — never the secret):

* **in the process** (``TokenCache``, one per process): every worker thread of a daemon, every
  channel built after a reload, and ``duban remind send`` in the same process use the same token;
  threads that find none wait while one of them fetches (single flight);
* **in the database** (a ``SharedTokens``, see ``notifications.tokens``) when the daemon gives one:
  several daemons on one PostgreSQL take turns under a lock, and the second finds the first's token
  instead of fetching its own.

A token is given up early (``margin`` before its expiry) and when the platform says it is invalid or
expired: ``invalidate`` forgets it here and in the database, and the next ``get`` fetches a new one.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

# Given up this many seconds before the platform's expiry, so a send never carries a token that
# dies in flight (the platforms' own SDKs use five minutes too).
MARGIN = 300.0


@dataclass(frozen=True)
class Token:
    value: str
    expires_at: float  # seconds since the epoch


def token_key(platform: str, base_url: str, app_id: str) -> str:
    """The cache key of one app: a hash, so neither logs nor the database show ids."""
    return hashlib.sha256(f"{platform}\n{base_url}\n{app_id}".encode()).hexdigest()[:32]


class SharedTokens(Protocol):
    """Tokens kept where every daemon on the database sees them."""

    def read(self, key: str, fresh_after: float) -> Token | None:
        """The stored token of ``key`` if it is valid past ``fresh_after`` (epoch seconds)."""

    def fetch_once(self, key: str, fresh_after: float, fetch: Callable[[], Token]) -> Token:
        """Under a lock every daemon takes: the stored token if still fresh, else ``fetch()``'s, stored."""

    def forget(self, key: str, value: str) -> None:
        """Drop the stored token of ``key`` if it is still ``value`` (another may have replaced it)."""


class TokenCache:
    """The process's tokens; ``shared`` (set by the daemon) adds the database behind it."""

    def __init__(self, *, clock: Callable[[], float] = time.time, margin: float = MARGIN) -> None:
        self.clock = clock
        self.margin = margin
        self.shared: SharedTokens | None = None
        self.fetches = 0  # tokens this process fetched from a platform (tests and /metrics read it)
        self._tokens: dict[str, Token] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _fresh(self, token: Token | None) -> bool:
        return token is not None and token.expires_at - self.margin > self.clock()

    def get(self, key: str, fetch: Callable[[], Token]) -> str:
        """A valid token for ``key``; ``fetch`` is called only when nobody has one."""
        token = self._tokens.get(key)
        if self._fresh(token):
            assert token is not None
            return token.value
        with self._lock(key):
            token = self._tokens.get(key)  # another thread may have fetched it while we waited
            if self._fresh(token):
                assert token is not None
                return token.value
            fresh_after = self.clock() + self.margin

            def counted() -> Token:
                self.fetches += 1
                return fetch()

            if self.shared is not None:
                token = self.shared.read(key, fresh_after) or self.shared.fetch_once(key, fresh_after, counted)
            else:
                token = counted()
            self._tokens[key] = token
            return token.value

    def invalidate(self, key: str, value: str) -> None:
        """The platform refused ``value``: forget it, unless a newer token has replaced it already."""
        with self._lock(key):
            current = self._tokens.get(key)
            if current is not None and current.value == value:
                del self._tokens[key]
            if self.shared is not None:
                self.shared.forget(key, value)


# One per process for channels built without a database (``duban notify test``); a daemon's
# notifiers use the one of their database (``notifications.service``), which a reload keeps.
PROCESS_TOKENS = TokenCache()

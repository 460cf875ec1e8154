"""The organisation apps' access tokens kept in the database, so several daemons share one.

``channels._tokens.TokenCache`` keeps a token per process; this is the ``SharedTokens`` behind it
when a daemon runs on a database. A process that finds no fresh token takes a lock every daemon
takes for that app — on PostgreSQL a transaction-level advisory lock, on SQLite the write lock
(writing sessions begin IMMEDIATE) — reads again, and only if the row is still stale fetches from
the platform and stores the answer. The others wait on the lock for that one request (its timeout
bounds the wait) and then read the new token: N daemons cost the token endpoint one call, not N.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session, sessionmaker

from engine.store.db import transaction
from engine.store.upsert import insert_ignore
from notifications.channels._tokens import Token
from notifications.store import APP_TOKENS, AppToken


def _at(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _lock_id(key: str) -> int:
    # A signed 64-bit number from the key's hex digits (advisory locks take a bigint).
    return int(key[:15], 16)


class DatabaseTokens:
    """``SharedTokens`` in the ``app_tokens`` table."""

    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    def read(self, key: str, fresh_after: float) -> Token | None:
        with self.sessions() as session:
            row = session.get(AppToken, key)
            return self._fresh(row, fresh_after)

    @staticmethod
    def _fresh(row: AppToken | None, fresh_after: float) -> Token | None:
        if row is None or row.expires_at <= _at(fresh_after):
            return None
        return Token(row.token, row.expires_at.timestamp())

    def fetch_once(self, key: str, fresh_after: float, fetch: Callable[[], Token]) -> Token:
        with transaction(self.sessions) as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_id(key)})
            row = session.execute(select(AppToken).where(AppToken.key == key)).scalar_one_or_none()
            found = self._fresh(row, fresh_after)
            if found is not None:  # another daemon fetched it while we waited for the lock
                return found
            token = fetch()
            now = dt.datetime.now(dt.UTC)
            if row is None:
                session.execute(insert_ignore(session, APP_TOKENS, ["key"]).values(
                    key=key, token=token.value, expires_at=_at(token.expires_at), fetched_at=now))
            else:
                row.token, row.expires_at, row.fetched_at = token.value, _at(token.expires_at), now
            return token

    def forget(self, key: str, value: str) -> None:
        with transaction(self.sessions) as session:
            session.execute(delete(AppToken).where(AppToken.key == key, AppToken.token == value))

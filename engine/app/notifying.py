"""The notifier of one process, wired to the accounts: who hears and how to reach them.

Notifications know messages, not accounts (an import-linter contract); the application hands
them the accounts' directory here, once, for every door that notifies (the daemon, ``duban
sweep``, ``duban outbox``, ``duban notify test``).
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from notifications.service import Notifier

from ..accounts.directory import AccountDirectory
from ..runtime import Runtime


def build_notifier(runtime: Runtime, sessions: sessionmaker[Session]) -> Notifier:
    config = runtime.config
    people = AccountDirectory(config.board.base_url, config.workspace.link_days)
    return Notifier(runtime, sessions, people=people)

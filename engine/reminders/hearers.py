"""Who, among the accounts, a subject waits on: an interface the application wires in.

Building a subject from its row names the people a state waits on (the reviewers over a ledger)
and who may decide a 延期申请 (whoever hears for the issue's 责任领导). Who those people are is the
accounts' business (``engine.accounts.directory.AccountHearers`` implements this over the one
policy); the reminder package never imports the accounts (an import-linter contract).
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session


class Hearers(Protocol):
    def reviewers(self, session: Session, ledger_id: int) -> list[str]:
        """The enabled reviewers (login names) over the ledger ``ledger_id``, empty when none."""
        ...

    def hearers(self, session: Session, unit: str, name: str) -> list[str]:
        """The enabled accounts that hear what is addressed to ``name`` on a ledger of ``unit``."""
        ...


class NoHearers:
    """No accounts at all: nobody reviews, names hear for themselves (the administrators stand in)."""

    def reviewers(self, session: Session, ledger_id: int) -> list[str]:
        return []

    def hearers(self, session: Session, unit: str, name: str) -> list[str]:
        return []

"""Who hears, as the notification stages ask it: an interface the application wires in.

The pipeline turns a reminder's recipient names (a ledger's 责任领导 and 责任科室, a reviewer, an
escalation's 派驻纪检监察组) into people with addresses and links. Who those people are is the
accounts' business (``engine.accounts.directory`` implements this protocol over the one policy);
notifications never read the accounts tables themselves (an import-linter contract).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Protocol

from sqlalchemy.orm import Session


class Contact(Protocol):
    """What the pipeline may know of a person: the names config may list them under (the login
    name first, then the name people use, ``办公室``), their account's e-mail and IM ids
    (``wecom``/``dingtalk``/``feishu``)."""

    @property
    def names(self) -> tuple[str, ...]: ...

    @property
    def email(self) -> str: ...

    @property
    def im(self) -> Mapping[str, str]: ...


class People(Protocol):
    def unit_of(self, session: Session, ledger: str) -> str:
        """The unit a ledger belongs to (``""``: the district's): whose accounts hear of its items."""
        ...

    def hearers(self, session: Session, unit: str, name: str) -> list[str]:
        """The people (account login names) who hear what is addressed to ``name`` on a ledger of
        ``unit``; empty when no account does (the configured ``[recipients]`` are asked next)."""
        ...

    def contact(self, session: Session, person: str) -> Contact | None:
        """The enabled account ``person``'s contact; None when it has none."""
        ...

    def link(self, session: Session, person: str, now: dt.datetime) -> str | None:
        """The person's own signed workspace link (for personal addresses only), if they may have one."""
        ...


class NoAccounts:
    """No accounts at all (a process that only delivers): names are their own recipients."""

    def unit_of(self, session: Session, ledger: str) -> str:
        return ""

    def hearers(self, session: Session, unit: str, name: str) -> list[str]:
        return []

    def contact(self, session: Session, person: str) -> Contact | None:
        return None

    def link(self, session: Session, person: str, now: dt.datetime) -> str | None:
        return None

"""The accounts as the reminders and the notifications ask about them.

``AccountHearers`` answers the subject reader (``engine.reminders.hearers.Hearers``): the reviewers
over a ledger, who hears for a name. ``AccountDirectory`` answers the notification pipeline
(``notifications.people.People``): who hears (``policy.hearers``: the unit's own account, a
reviewer, a department's members), where to reach them and their signed link. The application
builds them once per process and hands them in, so neither package reads the accounts tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..store.accounts import User
from ..store.models import Ledger
from . import policy
from .links import workspace_link


@dataclass(frozen=True)
class AccountContact:
    names: tuple[str, ...]
    email: str = ""
    im: Mapping[str, str] = field(default_factory=dict)


class AccountHearers:
    def hearers(self, session: Session, unit: str, name: str) -> list[str]:
        return policy.hearers(session, unit, name)

    def reviewers(self, session: Session, ledger_id: int) -> list[str]:
        ledger = session.get(Ledger, ledger_id)
        return policy.reviewers_of(session, ledger) if ledger is not None else []


class AccountDirectory(AccountHearers):
    def __init__(self, public_url: str = "", link_days: int = 14):
        self.public_url = public_url
        self.link_days = link_days

    def unit_of(self, session: Session, ledger: str) -> str:
        return session.scalar(select(Ledger.unit).where(Ledger.name == ledger)) or ""

    def contact(self, session: Session, person: str) -> AccountContact | None:
        row = session.execute(select(User.name, User.display_name, User.unit, User.email, User.im)
                              .where(User.name == person, User.disabled.is_(False))).first()
        if row is None:
            return None
        shown = row.display_name or (row.name.removeprefix(f"{row.unit}/") if row.unit else row.name)
        names = tuple(dict.fromkeys((row.name, shown)))
        return AccountContact(names=names, email=row.email or "", im=dict(row.im or {}))

    def link(self, session: Session, person: str, now: dt.datetime) -> str | None:
        return workspace_link(session, person, now, self.public_url, days=self.link_days)

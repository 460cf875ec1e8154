"""The accounts as the notification pipeline asks about them (``notifications.people.People``).

The application builds one per process and hands it to the pipeline, so notifications learn who
hears (``policy.hearers``: the unit's own account, a reviewer, a department's members), where to
reach them and their signed link without reading the accounts tables themselves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..store.accounts import User
from . import policy
from .links import workspace_link


@dataclass(frozen=True)
class AccountContact:
    names: tuple[str, ...]
    email: str = ""
    im: Mapping[str, str] = field(default_factory=dict)


class AccountDirectory:
    def __init__(self, public_url: str = "", link_days: int = 14):
        self.public_url = public_url
        self.link_days = link_days

    def hearers(self, session: Session, unit: str, name: str) -> list[str]:
        return policy.hearers(session, unit, name)

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

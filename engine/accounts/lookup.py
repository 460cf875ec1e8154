"""Finding an account by the name a person gives: its login name, or the name people call it.

Shared by the doors' ``--by`` (``engine.accounts.users``) and the sign-in
(``engine.accounts.credentials``): ``区教委/办公室`` names one account; ``办公室`` names the one
account people call so, when there is exactly one (a one-unit installation keeps its bare names).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..store.accounts import User


def user_by_id(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def find_exact(session: Session, login: str) -> User | None:
    return session.scalar(select(User).where(User.name == login))


def find_user(session: Session, name: str) -> User | None:
    """The account whose login name is ``name`` (``区教委/办公室``), else the one account people call
    ``name`` (its display name or the part after ``UNIT/``) when exactly one is called so."""
    name = name.strip()
    if not name:
        return None
    user = session.scalar(select(User).where(User.name == name))
    if user is not None or "/" in name:
        return user
    found = called(session, name)
    return found[0] if len(found) == 1 else None


def called(session: Session, name: str) -> list[User]:
    return list(session.scalars(select(User).where(
        (User.display_name == name) | (User.name.like(f"%/{like_escaped(name)}", escape="\\"))).order_by(User.name).limit(20)))


def like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

"""Accounts: adding, importing, disabling users; who an action's ``--by`` names.

Every door turns "who is this" into an ``Actor`` here: the CLI's ``--by NAME`` (an operator at the
shell may act as any existing user; the history says the door was the CLI), the web's session or
signed link, the API's token. A ledger import makes the accounts its 责任领导 and 责任科室 cells
name (no password: they come in through the links their reminders carry) unless
``[workspace] auto_accounts = false``. Signing in, sessions and tokens are ``credentials``.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import BadInput, Refused
from ..store.accounts import Grant, User
from .actor import DOORS, Actor
from .credentials import end_all
from .lookup import called, find_exact
from .lookup import find_user as find_user  # the doors look accounts up through this service
from .passwords import hash_password
from .policy import ACCOUNT_ROLES, login_name, names_of, own_account

IM_KINDS = ("wecom", "dingtalk", "feishu")


def parse_role(text: str) -> tuple[str, str]:
    """``reviewer``, ``department:办公室``, ``reviewer:ledger:2026-区审计局`` -> (role, scope)."""
    role, _, scope = text.strip().partition(":")
    if role not in ACCOUNT_ROLES:
        raise BadInput(f"unknown role {role!r}", hint=f"roles: {', '.join(ACCOUNT_ROLES)} (optionally ROLE:SCOPE)")
    return role, scope.strip()


def get_user(session: Session, name: str) -> User:
    user = find_user(session, name)
    if user is None:
        many = called(session, name.strip()) if name.strip() and "/" not in name else []
        if len(many) > 1:
            raise BadInput(f"{name.strip()!r} names {len(many)} accounts: {', '.join(u.name for u in many)}",
                           hint="give the login name, UNIT/NAME (see `duban user list`)")
        raise BadInput(f"no user named {name!r}", hint="see `duban user list`; add one with `duban user add`")
    return user


def actor_of(user: User, door: str) -> Actor:
    assert door in DOORS
    return Actor(user.name, door, tuple((g.role, g.scope) for g in user.grants), user.unit, user.shown, user.id)


def actor_if(user: User | None, door: str) -> Actor | None:
    """The actor of a user found by a credential, or None when none was found."""
    return None if user is None else actor_of(user, door)


def actor_for(session: Session, name: str, door: str) -> Actor:
    """The actor ``--by NAME`` names; an unknown or disabled user is refused (exit 2)."""
    if not name or not name.strip():
        raise BadInput("say who is acting: --by USER")
    user = get_user(session, name)
    if user.disabled:
        raise BadInput(f"user {user.name!r} is disabled")
    return actor_of(user, door)


@dataclass(frozen=True)
class NewUser:
    name: str
    display_name: str = ""
    unit: str = ""
    email: str = ""
    phone: str = ""
    im: dict[str, str] | None = None
    roles: tuple[str, ...] = ()


def add_user(session: Session, new: NewUser, now: dt.datetime, *, password: str | None = None) -> User:
    name = new.name.strip()
    if not name or len(name) > 200:
        raise BadInput("a user needs a name of 1 to 200 characters")
    if find_exact(session, name) is not None:
        raise Refused(f"a user named {name!r} exists already")
    grants = [parse_role(r) for r in new.roles if r.strip()]
    if not grants:
        raise BadInput(f"user {name!r} needs at least one role", hint=f"roles: {', '.join(ACCOUNT_ROLES)}")
    user = User(name=name, display_name=new.display_name.strip(), unit=new.unit.strip(), email=new.email.strip(),
                phone=new.phone.strip(), im={k: v for k, v in (new.im or {}).items() if v},
                password_hash=hash_password(password) if password else None, disabled=False, failed_logins=0,
                session_epoch=0, created_at=now, updated_at=now)
    user.grants = [Grant(role=role, scope=scope) for role, scope in dict.fromkeys(grants)]
    session.add(user)
    session.flush()
    return user


CONTACTS = ("display_name", "email", "phone", *IM_KINDS)


def set_contacts(session: Session, name: str, changes: dict[str, str], now: dt.datetime) -> list[str]:
    """Change an account's display name, e-mail, phone or IM ids (``CONTACTS``; "" clears one).

    Accounts the ledger import made carry no addresses; this is how their WeCom/DingTalk/Feishu ids
    and mailboxes get filled in. Returns the fields that changed."""
    user = get_user(session, name)
    unknown = sorted(set(changes) - set(CONTACTS))
    if unknown:
        raise BadInput(f"unknown field(s) {', '.join(unknown)}", hint=f"fields: {', '.join(CONTACTS)}")
    changed = []
    im = dict(user.im or {})
    for field_name, raw in changes.items():
        value = raw.strip()
        if len(value) > 300:
            raise BadInput(f"{field_name} of {name!r} is longer than 300 characters")
        if field_name in IM_KINDS:
            if im.get(field_name, "") != value:
                im = {k: v for k, v in {**im, field_name: value}.items() if v}
                changed.append(field_name)
        elif getattr(user, field_name) != value:
            setattr(user, field_name, value)
            changed.append(field_name)
    if changed:
        user.im = im
        user.updated_at = now
    return changed


def set_password(session: Session, name: str, password: str, now: dt.datetime) -> User:
    user = get_user(session, name)
    user.password_hash = hash_password(password)
    end_all(session, user, now)  # a new password ends every session, token and link of the old one
    return user


def disable(session: Session, name: str, now: dt.datetime) -> User:
    user = get_user(session, name)
    user.disabled = True
    end_all(session, user, now)
    return user


def revoke(session: Session, name: str, now: dt.datetime) -> User:
    """Log the user out everywhere, revoke their API tokens and void every link sent to them."""
    user = get_user(session, name)
    end_all(session, user, now)
    return user


def ensure_accounts(session: Session, owners: Iterable[tuple[str, str]], unit: str, now: dt.datetime) -> list[str]:
    """Make the accounts a ledger of ``unit`` names in its (责任领导, 责任科室) cells; the login names made.

    Each is the unit's own: ``UNIT/NAME``, shown as ``NAME``, bound to the unit and granted over
    ``NAME``, so two units' 办公室 are two accounts that never see each other's items. A ledger of no
    unit makes district accounts under the bare name, as before units existed."""
    wanted: dict[str, str] = {}
    for leader, department in owners:
        if leader.strip():  # a leader is matched whole (visibility compares the cell), a department split
            wanted.setdefault(leader.strip()[:200], "leader")
        for name in names_of(department):
            wanted.setdefault(name[:200], "department")
    made = []
    for name, role in wanted.items():
        if own_account(session, unit, name) is None and find_exact(session, login_name(unit, name)) is None:
            add_user(session, NewUser(login_name(unit, name), display_name=name if unit else "", unit=unit,
                                      roles=(f"{role}:{name}",)), now)
            made.append(login_name(unit, name))
    return made


def ensure_admins(session: Session, names: Iterable[str], now: dt.datetime) -> list[str]:
    made = []
    for name in names:
        if name.strip() and find_exact(session, name.strip()) is None:
            add_user(session, NewUser(name.strip(), display_name="管理员", roles=("admin",)), now)
            made.append(name.strip())
    return made


USER_COLUMNS = ("name", "display_name", "unit", "email", "phone", "wecom", "dingtalk", "feishu", "roles")


def import_users(session: Session, path: Path, now: dt.datetime, *,
                 update: bool = False) -> tuple[list[str], list[str]]:
    """Add the users of a CSV (``USER_COLUMNS``; ``roles`` separated by ``;``): all or none.

    With ``update`` a row naming an existing account fills in its contacts instead (the non-empty
    cells of ``CONTACTS``; roles are left as they are). Returns (added, updated) names."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BadInput(f"{path}: cannot read the file ({exc})") from None
    if not rows:
        raise BadInput(f"{path}: no users (the first row names the columns: {', '.join(USER_COLUMNS)})")
    missing = [c for c in ("name", "roles") if c not in rows[0]]
    if missing:
        raise BadInput(f"{path}: row 1: missing the column(s) {', '.join(missing)}")
    added: list[str] = []
    updated: list[str] = []
    for number, row in enumerate(rows, start=2):
        cells = {k: (v or "").strip() for k, v in row.items() if k}
        if update and cells.get("name") and (find_user(session, cells["name"]) is not None
                                             or len(called(session, cells["name"])) > 1):
            try:
                if set_contacts(session, cells["name"], {c: cells[c] for c in CONTACTS if cells.get(c)}, now):
                    updated.append(cells["name"])
            except BadInput as exc:
                raise BadInput(f"{path}: row {number}: {exc.message}") from None
            continue
        same = find_user(session, cells.get("name", "")) if cells.get("name") else None
        if same is not None:  # a bare name that is an existing account's: fill it in, never a second one
            raise BadInput(f"{path}: row {number}: {cells['name']!r} exists already (as {same.name!r})",
                           hint="to fill in its e-mail and IM ids: duban user import FILE --update")
        try:
            add_user(session, NewUser(cells["name"], cells.get("display_name", ""), cells.get("unit", ""),
                                      cells.get("email", ""), cells.get("phone", ""),
                                      {k: cells.get(k, "") for k in IM_KINDS},
                                      tuple(r for r in cells.get("roles", "").split(";") if r.strip())), now)
        except (BadInput, Refused) as exc:
            raise BadInput(f"{path}: row {number}: {exc.message}") from None
        added.append(cells["name"])
    return added, updated


def acting_accounts(session: Session) -> list[tuple[str, dict[str, str]]]:
    """The enabled accounts that act (leader, department, reviewer): (login name, IM ids)."""
    return [(name, dict(im or {})) for name, im in session.execute(
        select(User.name, User.im).join(Grant, Grant.user_id == User.id)
        .where(Grant.role.in_(("leader", "department", "reviewer")), User.disabled.is_(False))
        .distinct().order_by(User.name))]


def reviewer_names(session: Session) -> list[str]:
    return list(session.scalars(select(User.name).join(Grant, Grant.user_id == User.id)
                                .where(Grant.role == "reviewer", User.disabled.is_(False)).distinct()))


def list_users(session: Session, *, unit: str | None = None, limit: int = 1000) -> list[User]:
    """Every account by login name, or one unit's (``unit``)."""
    stmt = select(User).order_by(User.name).limit(limit)
    if unit is not None:
        stmt = stmt.where(User.unit == unit)
    return list(session.scalars(stmt))

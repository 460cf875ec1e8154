"""Who an outside identity is here: an organisation app's user id, or a single sign-on claim.

There is one truth for each, so nothing new is stored (revision 0019 stays empty):

* **App user ids** live on the account, in ``im`` (``wecom``/``dingtalk``/``feishu``), where the
  notices read them: ``duban user set NAME --wecom ID`` or ``duban user import --update``. The
  value may name several people (``zhangsan|lisi``: a department's members), exactly as a notice
  addresses them, so each of them signs in as that account. An id that no enabled account holds,
  or that two accounts hold, signs nobody in: guessing between two accounts would show one
  person another's items.
* **A single sign-on claim** names the account: its login name, or with a unit claim the unit's
  own account ``UNIT/NAME`` (what the ledger import makes). The identity provider vouches for
  the claim; nobody is made an account by signing in.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..store.accounts import User
from .policy import login_name

APP_PLATFORMS = ("wecom", "dingtalk", "feishu")


@dataclass(frozen=True)
class Found:
    """The account an outside identity names, or why there is none (``reason``, in Chinese)."""

    user: User | None
    reason: str = ""


def ids_of(value: object) -> set[str]:
    """The platform ids an ``im`` value holds (``a|b`` names two people)."""
    return {part.strip() for part in str(value or "").split("|") if part.strip()}


def by_app_id(session: Session, platform: str, user_id: str) -> Found:
    """The enabled account whose ``im[platform]`` names ``user_id``."""
    assert platform in APP_PLATFORMS
    wanted = user_id.strip()
    if not wanted:
        return Found(None, "平台未返回用户身份")
    # JSON is read in Python: the same on SQLite and PostgreSQL, and an office has hundreds of
    # accounts, not millions
    rows = session.execute(select(User.id, User.im).where(User.disabled.is_(False))).all()
    ids = [row.id for row in rows if wanted in ids_of((row.im or {}).get(platform))]
    if not ids:
        return Found(None, "没有督办账号登记了您的这个身份")
    if len(ids) > 1:
        return Found(None, "您的身份登记在多个督办账号上，无法确定登录哪一个")
    return Found(session.get(User, ids[0]))


def by_claim(session: Session, name: str, unit: str = "") -> Found:
    """The enabled account a sign-on claim names: ``UNIT/NAME`` with a unit, else the login name."""
    name, unit = name.strip(), unit.strip()
    if not name:
        return Found(None, "统一身份认证未提供所配置的账号声明")
    user = session.scalar(select(User).where(User.name == login_name(unit, name)))
    if user is None:
        return Found(None, "没有与此身份对应的督办账号")
    if user.disabled:
        return Found(None, "对应的督办账号已停用")
    return Found(user)

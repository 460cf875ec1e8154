"""Who may do what to which subject, and who hears about it: the one policy.

Every door (web, API, CLI, import) and every reader (the reminder core's recipients, the
notification pipeline's people, the pages' "may" flags, duties, users, evidence) asks here, so a
rule is written once. Two kinds of answer:

* **may** — ``may(actor, action, issue)`` for an issue, ``may_duty(actor, action, duty)`` for a
  duty occurrence, ``may_unit(actor, action, unit)`` for what belongs to a unit (importing a
  ledger, listing its users). ``ISSUE_RULES`` / ``DUTY_RULES`` / ``UNIT_RULES`` are the tables: the
  roles that may take each action. ``admin`` holds every role. A workflow step (``Action.STEP``)
  is open to every role but an observer; its own ``roles:`` and guards then decide.
* **who hears** — ``hearers(session, unit, name)``: the accounts a reminder addressed to a ledger's
  责任领导 / 责任科室 ``name`` reaches within the ledger's ``unit``; ``reviewers_of(session, ledger)``:
  the reviewers an item waiting on sign-off reminds; ``names_of(cell)``: a cell naming several
  departments is several names, for visibility, accounts and recipients alike.

A unit is a boundary. An account bound to a unit (``users.unit``) reaches that unit's ledgers only,
whatever its grants say (``Actor`` adds the condition to every answer); district accounts (no
unit: the 巡察办, administrators, reviewers over several units) reach what their grants name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..errors import Forbidden
from ..store.accounts import Grant, User
from ..store.departments import departments_of
from ..store.models import Issue, Ledger
from .actor import Actor

ACCOUNT_ROLES = ("admin", "unit_admin", "leader", "department", "reviewer", "observer")
"""Every role an account's grant may name (``duban user add --role``); a workflow step's ``roles:``
are ``engine.workflow.guards.STEP_ROLES``."""


class Action(StrEnum):
    VIEW = "view"  # the issue, its history and its evidence
    STEP = "step"  # a workflow step; the step's own roles and guards decide further
    PROGRESS = "progress"  # 进展情况
    EVIDENCE = "evidence"  # 佐证材料 added outside a step
    EXTENSION_REQUEST = "extension_request"  # 延期申请
    EXTENSION_DECIDE = "extension_decide"
    DEADLINE = "deadline"  # move the 整改时限 directly (a 延期 by edit)
    MEASURES = "measures"  # edit the 整改措施
    HANDOVER = "handover"  # a new 责任领导 or 责任科室
    CHECKIN = "checkin"  # a long-term item's look-back (回头看)


class DutyAction(StrEnum):
    VIEW = "duty_view"
    DONE = "duty_done"
    SET_DUE = "duty_set_due"


class UnitAction(StrEnum):
    IMPORT = "import"  # import or re-import a ledger of the unit
    USERS = "users"  # list and manage the unit's accounts
    OVERVIEW = "overview"  # the per-unit overview (/ws/overview)
    ARCHIVE = "archive"  # close a ledger of the unit (read-only) or reopen it
    DELETE = "delete"  # remove a ledger with its issues, history and evidence: administrators only


# who records what is done on an issue: its progress, evidence and extension requests
_RECORDERS = ("leader", "department", "unit_admin")
ISSUE_RULES: dict[Action, tuple[str, ...]] = {
    Action.VIEW: ("leader", "department", "reviewer", "unit_admin", "observer"),
    Action.STEP: ("leader", "department", "reviewer", "unit_admin"),
    Action.PROGRESS: _RECORDERS,
    Action.EVIDENCE: _RECORDERS,
    Action.EXTENSION_REQUEST: _RECORDERS,
    Action.EXTENSION_DECIDE: ("leader", "reviewer", "unit_admin"),
    Action.DEADLINE: ("leader", "reviewer", "unit_admin"),
    Action.MEASURES: ("leader", "department", "reviewer", "unit_admin"),
    Action.HANDOVER: ("reviewer", "unit_admin"),
    Action.CHECKIN: ("leader", "department", "reviewer", "unit_admin"),
}
"""The roles (over the issue) that may take each action; ``admin`` may take all."""

DUTY_RULES: dict[DutyAction, tuple[str, ...]] = {
    # owner: a leader/department grant naming one of the duty's owners (or the issue it is for); for
    # a ledger's milestone, any leader or department account of the ledger's unit
    DutyAction.VIEW: ("owner", "unit_admin", "reviewer", "observer"),
    DutyAction.DONE: ("owner", "unit_admin"),
    DutyAction.SET_DUE: ("unit_admin",),
}

UNIT_RULES: dict[UnitAction, tuple[str, ...]] = {
    UnitAction.IMPORT: ("unit_admin",),
    UnitAction.USERS: ("unit_admin",),
    UnitAction.OVERVIEW: ("reviewer", "observer", "unit_admin"),
    UnitAction.ARCHIVE: ("unit_admin",),
    UnitAction.DELETE: (),
}

WORDS = {
    Action.VIEW: "查看此问题", Action.STEP: "办理此问题", Action.PROGRESS: "填报进展情况", Action.EVIDENCE: "上传佐证材料",
    Action.EXTENSION_REQUEST: "申请延期", Action.EXTENSION_DECIDE: "审批延期申请", Action.DEADLINE: "调整整改时限",
    Action.MEASURES: "修改整改措施", Action.HANDOVER: "调整责任领导或责任科室", Action.CHECKIN: "记录回头看",
    DutyAction.VIEW: "查看此事项", DutyAction.DONE: "办结此事项", DutyAction.SET_DUE: "调整此事项的期限",
    UnitAction.IMPORT: "导入此单位的台账", UnitAction.USERS: "管理此单位的账号", UnitAction.OVERVIEW: "查看各单位概况",
    UnitAction.ARCHIVE: "归档或重新打开此单位的台账", UnitAction.DELETE: "删除台账",
}
"""What each action is, as its reader says it (in refusals)."""


# -- may ---------------------------------------------------------------------------------------

ARCHIVED = "台账已归档，只读"
"""Every refusal of a write to an archived ledger says this (``duban ledger unarchive`` reopens it)."""


def archived(issue: Issue) -> bool:
    return issue.ledger.archived_at is not None


def may(actor: Actor, action: Action, issue: Issue) -> bool:
    # an archived ledger is evidence: read by those who may, written by nobody, administrators included
    if action != Action.VIEW and archived(issue):
        return False
    return actor.acts_as_any(ISSUE_RULES[action], issue)


def require(actor: Actor, action: Action, issue: Issue, ref: str = "") -> None:
    """Raise ``Forbidden`` unless ``actor`` may take ``action`` on ``issue``."""
    if action != Action.VIEW and archived(issue) and actor.sees(issue):
        raise Forbidden(f"{ref + ': ' if ref else ''}{ARCHIVED}，不能{WORDS[action]}（the ledger "
                        f"{issue.ledger.name} is archived: read-only）",
                        hint=f"an administrator reopens it: duban ledger unarchive {issue.ledger.name}")
    if not may(actor, action, issue):
        who = "、".join(_ROLE_WORDS.get(r, r) for r in ISSUE_RULES[action])
        raise Forbidden(f"{ref + ': ' if ref else ''}{actor.label} 无权{WORDS[action]}（限{who}）")


def may_all(actor: Actor, issue: Issue) -> dict[str, bool]:
    """Every issue action's answer for one issue: the pages' "may" flags."""
    return {str(action): may(actor, action, issue) for action in Action}


@dataclass(frozen=True)
class DutySubject:
    """What the policy reads of a duty occurrence: its owners, and the unit and issue it is for."""

    owners: tuple[str, ...]
    unit: str = ""  # the unit of its ledger; "" for a duty of no ledger (the whole installation)
    ledger: str = ""
    issue_leader: str = ""
    issue_department: str = ""
    archived: bool = False  # its ledger is archived: read-only


def may_duty(actor: Actor, action: DutyAction, duty: DutySubject) -> bool:
    if action != DutyAction.VIEW and duty.archived:
        return False
    if actor.is_admin:
        return True
    if actor.unit and duty.unit and actor.unit != duty.unit:
        return False
    names = set(duty.owners) | ({duty.issue_leader} if duty.issue_leader else set()) | set(
        departments_of(duty.issue_department))
    for role, raw in actor.grants:
        if role not in DUTY_RULES[action] and not (role in ("leader", "department") and "owner" in DUTY_RULES[action]):
            continue
        scope = actor.scope_of(role, raw)
        if role in ("leader", "department"):
            # a ledger's milestone (the report) is the unit's: its own leaders and departments record it
            if scope in names or (duty.ledger and actor.unit == duty.unit):
                return True
        elif _reaches_unit(scope, duty.unit, duty.ledger):
            return True
    return False


def require_duty(actor: Actor, action: DutyAction, duty: DutySubject, what: str = "") -> None:
    if action != DutyAction.VIEW and duty.archived:
        raise Forbidden(f"{what + ': ' if what else ''}{ARCHIVED}，不能{WORDS[action]}（the ledger {duty.ledger} is "
                        "archived: read-only）", hint=f"an administrator reopens it: duban ledger unarchive {duty.ledger}")
    if not may_duty(actor, action, duty):
        raise Forbidden(f"{what + ': ' if what else ''}{actor.label} 无权{WORDS[action]}",
                        hint="a duty is done by its owners or the unit's administrator")


def may_unit(actor: Actor, action: UnitAction, unit: str) -> bool:
    if actor.is_admin:
        return True
    if actor.unit and unit and actor.unit != unit:
        return False
    return any(role in UNIT_RULES[action] and _reaches_unit(actor.scope_of(role, raw) or actor.unit, unit, "")
               for role, raw in actor.grants)


def _reaches_unit(scope: str, unit: str, ledger: str) -> bool:
    """A unit_admin/reviewer/observer scope ("", ``unit:U``, ``U`` or ``ledger:L``) over a unit's thing."""
    if not scope:
        return True
    kind, _, name = scope.partition(":")
    if kind == "ledger":
        return bool(ledger) and name == ledger
    return (name if kind == "unit" else scope) == unit


_ROLE_WORDS = {"admin": "管理员", "unit_admin": "单位管理员", "leader": "责任领导", "department": "责任科室",
               "reviewer": "审核人", "observer": "查看人", "owner": "责任人"}


# -- who hears ---------------------------------------------------------------------------------

def names_of(cell: str) -> list[str]:
    """The people a 责任领导/责任科室 cell names ("办公室、财务室" is two), as visibility splits it."""
    return departments_of(cell)


def login_name(unit: str, name: str) -> str:
    """The login name of the account a ledger of ``unit`` makes for ``name``: ``UNIT/NAME``."""
    return f"{unit}/{name}"[:200] if unit else name[:200]


def own_account(session: Session, unit: str, name: str) -> User | None:
    """The account acting as the leader or department ``name`` *of* ``unit`` (its own, not a member's)."""
    if unit:
        found = session.scalar(select(User).where(User.name == login_name(unit, name)))
        if found is not None:
            return found
        return session.scalar(select(User).where(User.unit == unit, User.display_name == name)
                              .join(Grant, Grant.user_id == User.id)
                              .where(Grant.role.in_(("leader", "department")), Grant.scope == name).limit(1))
    return session.scalar(select(User).where(User.name == name, User.unit == ""))


def hearers(session: Session, unit: str, name: str) -> list[str]:
    """The enabled accounts that hear what is addressed to ``name`` on a ledger of ``unit``.

    In order: the unit's own account of that leader or department; else an account named exactly
    ``name`` (a reviewer, an escalation's 派驻纪检监察组) bound to no unit or to this one; else the
    accounts granted over ``name`` (a department's members) within the unit or district-wide; for a
    subject of no unit (an installation-wide duty), every unit's accounts granted over ``name``.
    Empty when nobody has an account: the pipeline then looks at the configured addresses."""
    own = own_account(session, unit, name)
    if own is not None and not own.disabled:
        return [own.name]
    exact = session.scalar(select(User).where(User.name == name, User.disabled.is_(False)))
    if exact is not None and exact.unit in ("", unit):
        return [exact.name]
    granted = select(User.name).join(Grant, Grant.user_id == User.id).where(
        Grant.role.in_(("leader", "department")), Grant.scope == name, User.disabled.is_(False))
    members = list(session.scalars(
        granted.where(or_(User.unit == "", User.unit == unit) if unit else User.unit == "").distinct()
        .order_by(User.name)))
    if members or unit:
        return members
    # What belongs to no unit (an installation-wide duty owned by 办公室) reaches every unit's 办公室:
    # it names no unit's items, so no unit learns another's.
    return list(session.scalars(granted.distinct().order_by(User.name)))


def reviewers_of(session: Session, ledger: Ledger) -> list[str]:
    """The enabled reviewers over a ledger (every ledger, that ledger by name, or its unit) who are
    bound to no unit or to the ledger's: a state whose ``actor`` is ``reviewer`` waits on them."""
    scopes = ["", f"ledger:{ledger.name}"] + ([f"unit:{ledger.unit}", ledger.unit] if ledger.unit else [])
    units = ["", ledger.unit] if ledger.unit else [""]
    return list(session.scalars(
        select(User.name).join(Grant, Grant.user_id == User.id)
        .where(Grant.role == "reviewer", Grant.scope.in_(scopes), User.disabled.is_(False), User.unit.in_(units))
        .distinct().order_by(User.name)))


def can_act_for(session: Session, unit: str, name: str) -> bool:
    """Someone with an account can act for (and be reminded as) the leader or department ``name``."""
    return bool(hearers(session, unit, name))

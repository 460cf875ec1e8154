"""Who is acting, through which door, and what their roles reach: the one permission check.

A user's roles are granted over scopes (``user_roles``):

=============  ==========================================================================
role           scope
=============  ==========================================================================
admin          everything ("")
unit_admin     a unit (the user's own when "")
leader         the 责任领导 name the ledger writes (the user's name when "")
department     the 责任科室 name (the user's name when ""); a cell may name several
reviewer       "" (the user's unit, or all), ``unit:NAME`` or ``ledger:NAME``: signs off, returns
observer       as reviewer, read only
=============  ==========================================================================

A user bound to a unit (``users.unit``) sees only that unit's ledgers, whatever the grant says.
``visible()`` is the same rule as SQL, so lists filter and count in the database; ``sees()`` and
``acts_as()`` answer for one loaded issue. Which roles may take which action is the policy's
table (``engine.accounts.policy``); every door builds an ``Actor`` and the services ask the policy.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true

from ..store.departments import departments_of
from ..store.models import ISSUE_DEPARTMENTS, Issue, Ledger

DOORS = ("web", "api", "cli", "import", "system")


@dataclass(frozen=True)
class Actor:
    name: str
    door: str
    grants: tuple[tuple[str, str], ...]
    unit: str = ""
    shown: str = ""
    user_id: int | None = None

    @property
    def label(self) -> str:
        return self.shown or self.name

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(role for role, _ in self.grants)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def own_name(self) -> str:
        """The leader or department this account is named after: ``办公室`` of ``区教委/办公室``."""
        prefix = f"{self.unit}/"
        return self.name[len(prefix):] if self.unit and self.name.startswith(prefix) else self.name

    def scope_of(self, role: str, scope: str) -> str:
        """A grant's scope; an empty leader or department scope is the account's own name."""
        if scope:
            return scope
        return self.own_name if role in ("leader", "department") else ""

    # -- as SQL ------------------------------------------------------------------------------
    def visible(self, roles: tuple[str, ...] | None = None, *, probe: bool = False) -> ColumnElement[bool]:
        """The issues this actor may see (through ``roles`` only, if given), as a WHERE clause over ``issues``.

        ``probe`` words a department's grant as a per-row EXISTS instead of an IN list: the form for a
        page read off an index in its order (LIMIT 50 stops after 50 hits), where the IN form would
        first collect every issue of the department (tens of thousands at 1M)."""
        if self.is_admin:
            return true()
        clauses: list[ColumnElement[bool]] = []
        for role, raw in self.grants:
            if roles is not None and role not in roles:
                continue
            scope = self.scope_of(role, raw)
            if role == "leader":
                clauses.append(Issue.leader == scope)
            elif role == "department":
                d = ISSUE_DEPARTMENTS.c
                clauses.append(select(d.issue_id).where(d.issue_id == Issue.id, d.department == scope).exists()
                               if probe else Issue.id.in_(select(d.issue_id).where(d.department == scope)))
            elif role in ("unit_admin", "reviewer", "observer"):
                clauses.append(_ledger_clause(scope))
        clause = or_(*clauses) if clauses else false()
        if self.unit:
            clause = and_(clause, Issue.ledger_id.in_(select(Ledger.id).where(Ledger.unit == self.unit)))
        return clause

    def acting(self, states_by_role: dict[str, set[str]], *, probe: bool = False) -> ColumnElement[bool]:
        """The issues waiting on this actor: in a state whose steps one of their roles may take
        (``states_by_role``: role -> states; see ``engine.workflow.schema.WorkflowDef.states_by_role``)."""
        clauses = []
        for role, states in states_by_role.items():
            if states and self._takes(role):
                roles = None if role == "anyone" else (role,)
                clauses.append(and_(Issue.state.in_(sorted(states)), self.visible(roles, probe=probe)))
        return or_(*clauses) if clauses else false()

    def acting_states(self, states_by_role: dict[str, set[str]]) -> list[str]:
        """The states in which an issue may wait on this actor (``acting``'s states)."""
        return sorted(set().union(*(states for role, states in states_by_role.items() if self._takes(role))))

    def scoped_by_units(self) -> bool:
        """Whether this actor's issues are whole units' or ledgers' (a reviewer, an observer, a
        unit's administrator), not a department's or a leader's own rows."""
        return not self.is_admin and not self.roles & {"department", "leader"}

    def _takes(self, role: str) -> bool:
        return self.is_admin or role in self.roles or role == "anyone"

    def visible_ledgers(self) -> ColumnElement[bool]:
        """The ledgers this actor may see issues of, as a WHERE clause over ``ledgers``.

        Read off the grants' own indexes (a leader's ``ix_issues_leader_ledger``, a department's
        ``issue_departments (department, ledger_id)``), one probe a ledger (EXISTS), never by
        collecting the ledgers of all their issues: ``IN (SELECT ledger_id …)`` read a department's
        40,000 rows across the district to name a unit's one ledger (2.9 ms at 1M issues, 0.3 at 100k)."""
        if self.is_admin:
            return true()
        clauses: list[ColumnElement[bool]] = []
        for role, raw in self.grants:
            scope = self.scope_of(role, raw)
            if role == "leader":
                clauses.append(exists().where(Issue.leader == scope, Issue.ledger_id == Ledger.id))
            elif role == "department":
                d = ISSUE_DEPARTMENTS.c
                clauses.append(exists().where(d.department == scope, d.ledger_id == Ledger.id))
            elif role in ("unit_admin", "reviewer", "observer"):
                clauses.append(_ledger_row_clause(scope))
        clause = or_(*clauses) if clauses else false()
        return and_(clause, Ledger.unit == self.unit) if self.unit else clause

    # -- for one issue -----------------------------------------------------------------------
    def _covers(self, role: str, raw: str, issue: Issue) -> bool:
        if self.unit and issue.ledger.unit != self.unit:
            return False
        scope = self.scope_of(role, raw)
        if role == "admin":
            return True
        if role == "leader":
            return issue.leader == scope
        if role == "department":
            return scope in departments_of(issue.department)
        return _ledger_matches(scope, issue.ledger)

    def hidden(self, issue: Issue) -> bool:
        """Whether to answer for this issue as for a missing one: it is another unit's than the one
        this account is bound to, asked through a door a stranger can reach (the web, the API). A
        refusal there would tell which refs exist in units the account has no grant over; the CLI's
        operator holds the database already, and is told the truth (无权查看)."""
        return self.hides(issue.ledger.unit)

    def hides(self, unit: str) -> bool:
        """``hidden`` for anything of ``unit`` ("" for the whole installation's, never hidden)."""
        return bool(self.unit and unit) and self.door in ("web", "api") and unit != self.unit

    def sees(self, issue: Issue) -> bool:
        return any(self._covers(role, scope, issue) for role, scope in self.grants)

    def acts_as(self, role: str, issue: Issue) -> bool:
        """True if the actor holds ``role`` (a workflow's ``roles:`` name) over this issue.
        ``admin`` holds every role; ``anyone`` is any role but observer's."""
        if self.is_admin:
            return True
        if role == "anyone":
            return any(r != "observer" and self._covers(r, s, issue) for r, s in self.grants)
        return any(r == role and self._covers(r, s, issue) for r, s in self.grants)

    def acts_as_any(self, roles: tuple[str, ...] | list[str], issue: Issue) -> bool:
        return any(self.acts_as(role, issue) for role in roles)


def _ledger_clause(scope: str) -> ColumnElement[bool]:
    if not scope:
        return true()
    kind, _, name = scope.partition(":")
    if kind == "ledger":
        return Issue.ledger_id.in_(select(Ledger.id).where(Ledger.name == name))
    unit = name if kind == "unit" else scope
    return Issue.ledger_id.in_(select(Ledger.id).where(Ledger.unit == unit))


def _ledger_row_clause(scope: str) -> ColumnElement[bool]:
    """``_ledger_clause`` over ``ledgers`` itself."""
    if not scope:
        return true()
    kind, _, name = scope.partition(":")
    if kind == "ledger":
        return Ledger.name == name
    return Ledger.unit == (name if kind == "unit" else scope)


def _ledger_matches(scope: str, ledger: Ledger) -> bool:
    if not scope:
        return True
    kind, _, name = scope.partition(":")
    if kind == "ledger":
        return ledger.name == name
    return ledger.unit == (name if kind == "unit" else scope)


SYSTEM = Actor("duban", "system", (("admin", ""),))

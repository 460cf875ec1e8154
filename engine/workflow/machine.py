"""One transitions ``Machine`` per workflow version, shared by every issue on that version.

A machine per issue costs ~30 KB and ~0.5 ms; one machine holding a million models costs
gigabytes. So the machine is built once with ``model=None`` and ``auto_transitions=False`` (no
``to_<state>()`` shortcuts that skip every guard), and an issue is handed to the trigger's event as
a light ``AttachedIssue`` for one operation, never added to the machine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from transitions import Machine, MachineError
from transitions.core import EventData

from ..errors import Refused
from .guards import GUARDS
from .schema import TransitionDef, WorkflowDef


@dataclass
class AttachedIssue:
    """What the guards see of an issue while it is attached to the machine."""

    ref: str
    state: str
    deadline: dt.date | None = None
    # counted only if a guard asks: most steps need no evidence query
    count_evidence: Callable[[], int] = lambda: 0
    count_new_evidence: Callable[[], int] = lambda: 0  # of the issue's current round
    measures: str = ""
    leader: str = ""
    department: str = ""
    # who brought the issue into its current state in this round (the submitters, for four eyes);
    # read off the history only if a guard asks, like the evidence counts
    find_submitters: Callable[[], frozenset[str]] = frozenset
    admins_sign_own: bool = False  # [workspace] admins_sign_own: administrators exempt from four eyes
    refusals: list[str] = field(default_factory=list)
    # the issue itself, for the acting user's role check (engine.accounts.actor.Actor.acts_as)
    issue: Any = None

    @property
    def submitters(self) -> frozenset[str]:
        return self.find_submitters()

    @property
    def evidence_count(self) -> int:
        return self.count_evidence()

    @property
    def new_evidence_count(self) -> int:
        return self.count_new_evidence()


def _role_guard(roles: list[str], admins: frozenset[str]) -> Callable[[EventData], bool]:
    def allowed(event: EventData) -> bool:
        by = (event.kwargs.get("by") or "").strip()
        model = cast(AttachedIssue, event.model)  # transitions types the model as object
        actor = event.kwargs.get("actor")
        if actor is not None and model.issue is not None:  # a user's roles over the issue decide
            ok = actor.acts_as_any(roles, model.issue)
        else:  # no account (a machine used on its own): the names the ledger writes
            ok = (
                "anyone" in roles
                or ("leader" in roles and by == model.leader)
                or ("department" in roles and by == model.department)
                or ("admin" in roles and by in admins)
            )
        if not ok:
            model.refusals.append(f"{by!r} may not do this: allowed roles are {', '.join(roles)}")
        return ok

    return allowed


class WorkflowMachine:
    """Fires triggers for issues of one workflow version."""

    def __init__(self, definition: WorkflowDef, *, admins: frozenset[str] = frozenset()):
        self.definition = definition
        self.machine = Machine(
            model=None,
            states=[s.name for s in definition.states],
            initial=definition.initial,
            transitions=[self._spec(t, admins) for t in definition.transitions],
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
        )

    @staticmethod
    def _spec(t: TransitionDef, admins: frozenset[str]) -> dict[str, Any]:
        conditions: list[Callable[[EventData], bool]] = [GUARDS[name] for name in t.conditions]
        if t.roles:
            conditions.insert(0, _role_guard(list(t.roles), admins))
        return {
            "trigger": t.trigger,
            "source": list(t.source),
            "dest": t.dest,
            "conditions": conditions,
            "unless": [GUARDS[name] for name in t.unless],
        }

    def fire(self, subject: AttachedIssue, trigger: str, **kwargs: Any) -> str:
        """Move ``subject`` by ``trigger``; return the new state or raise ``Refused``.

        The subject's ``state`` is updated in place; nothing is written anywhere.
        """
        allowed = self.definition.triggers_from(subject.state)
        if trigger not in allowed:
            label = self.definition.label(subject.state)
            choices = ", ".join(allowed) if allowed else "none (this state is final)"
            known = "" if trigger in self.machine.events else f" ({trigger!r} is not a trigger of this workflow)"
            raise Refused(
                f"{subject.ref}: cannot {trigger!r} from state {subject.state} ({label}){known}",
                details=[f"triggers allowed from {subject.state}: {choices}"],
            )
        # The event is fired on the subject directly: what add_model would bind to it (a method per
        # trigger and per state) is built anew for every step and used for one call, and cost as
        # much as the guards and the move together. The event reads and sets ``subject.state``
        # only, so no model list is shared between threads and no lock is needed.
        try:
            moved = self.machine.events[trigger].trigger(subject, **kwargs)
        except MachineError as exc:  # defensive: allowed-list and machine disagree
            raise Refused(f"{subject.ref}: {exc.value}") from None
        if not moved:
            reasons = subject.refusals or ["a guard refused the step"]
            raise Refused(
                f"{subject.ref}: {trigger!r} refused in state {subject.state} "
                f"({self.definition.label(subject.state)})",
                details=reasons,
            )
        return subject.state

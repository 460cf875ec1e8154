"""The only guards a workflow YAML may name.

transitions resolves a string callback it cannot find on the model by importing it as a dotted
Python path, so an admin's YAML must never hand it a string. The YAML names a guard from this
allow-list; the loader rejects any other name; the machine receives these functions themselves.

A guard takes transitions' ``EventData`` (the machine runs with ``send_event=True``); the model is a
``AttachedIssue`` (see ``machine``) and the trigger's keyword arguments carry what the person supplied.
On refusal a guard records why, so the refusal can say it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Protocol, cast

from transitions.core import EventData

Guard = Callable[[EventData], bool]


class Guarded(Protocol):
    """What the guards read of the model: ``machine.AttachedIssue``, which imports this module."""

    deadline: dt.date | None
    measures: str
    leader: str
    department: str
    admins_sign_own: bool
    refusals: list[str]

    @property
    def submitters(self) -> frozenset[str]: ...

    @property
    def evidence_count(self) -> int: ...

    @property
    def new_evidence_count(self) -> int: ...


def _model(event: EventData) -> Guarded:
    # transitions types the model as object; the machine only ever attaches an AttachedIssue
    return cast(Guarded, event.model)


def _refuse(event: EventData, reason: str) -> bool:
    _model(event).refusals.append(reason)
    return False


def has_deadline(event: EventData) -> bool:
    """A deadline (整改时限) is set on the issue or given with the step (``--deadline``)."""
    if _model(event).deadline is not None or event.kwargs.get("deadline") is not None:
        return True
    return _refuse(event, "a deadline is required (整改时限): give it with the step "
                          "(command line: --deadline YYYY-MM-DD)")


def has_evidence(event: EventData) -> bool:
    """Evidence (佐证材料) is already attached or given with the step (``--evidence FILE``)."""
    if event.kwargs.get("evidence") or _model(event).evidence_count > 0:
        return True
    return _refuse(event, "evidence is required (佐证材料): upload a file first or with the step "
                          "(command line: --evidence FILE)")


def has_new_evidence(event: EventData) -> bool:
    """Evidence of the current round (整改轮次) is attached or given with the step: after a 退回 for
    a second round (二次整改) the files of the first round do not carry the resubmission."""
    if event.kwargs.get("evidence") or _model(event).new_evidence_count > 0:
        return True
    return _refuse(event, "evidence is required for this round (需上传本轮佐证材料): upload this round's file "
                          "first or with the step (command line: --evidence FILE)")


def has_note(event: EventData) -> bool:
    """A note explains the step, e.g. why a completed problem rebounded (``--note``)."""
    if (event.kwargs.get("note") or "").strip():
        return True
    return _refuse(event, "a note is required: say why with the step (command line: --note TEXT)")


def has_measures(event: EventData) -> bool:
    """Rectification measures (整改措施) are written down."""
    if (_model(event).measures or "").strip():
        return True
    return _refuse(event, "the issue has no rectification measures (整改措施)")


def has_owner(event: EventData) -> bool:
    """A responsible leader (责任领导) and department (责任科室) are named."""
    model = _model(event)
    if (model.leader or "").strip() and (model.department or "").strip():
        return True
    return _refuse(event, "the issue needs a responsible leader and department (责任领导, 责任科室)")


def not_submitter(event: EventData) -> bool:
    """Four eyes: nobody who brought the issue into this state in this round (who submitted or
    co-submitted it) signs it off or returns it, administrators included unless
    ``[workspace] admins_sign_own`` exempts them."""
    by = (event.kwargs.get("by") or "").strip()
    model = _model(event)
    if by not in model.submitters:
        return True
    actor = event.kwargs.get("actor")
    if model.admins_sign_own and actor is not None and getattr(actor, "is_admin", False):
        return True
    return _refuse(event, f"{by} submitted this item in this round and cannot also sign it off or return it "
                          "(提交人不能审核销号或退回)")


def new_deadline(event: EventData) -> bool:
    """A new deadline is given with the step (a returned item's second round needs its own)."""
    if event.kwargs.get("deadline") is not None:
        return True
    return _refuse(event, "a new deadline is required (新的整改时限): give --deadline YYYY-MM-DD")


GUARDS: dict[str, Guard] = {
    "has_deadline": has_deadline,
    "has_evidence": has_evidence,
    "has_new_evidence": has_new_evidence,
    "has_note": has_note,
    "has_measures": has_measures,
    "has_owner": has_owner,
    "not_submitter": not_submitter,
    "new_deadline": new_deadline,
}

# Who may fire a trigger: a user holding the role over the issue (engine.accounts.actor): its own
# leader or department (as written in the ledger), a reviewer or unit administrator over its
# ledger, an administrator, or anyone who may act on it.
STEP_ROLES = ("leader", "department", "reviewer", "unit_admin", "admin", "anyone")

"""A sheet's 整改状态 is a claim; the workflow decides.

On re-import a row whose status word differs from the issue's state does not set the state. It
is a *claim*: applied only forward and only along the workflow's transitions, each step fired
through the issues service with its guards and roles checked against the importing user, and
written to the history like any other step. A blank cell keeps the state; a backward move, a
state marked ``import: never`` and a refused step leave the issue as it is and are reported.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..errors import Refused
from ..issues.service import transition
from ..runtime import Runtime
from ..store.models import Issue
from ..workflow.schema import TransitionDef, WorkflowDef


@dataclass(frozen=True)
class StateClaim:
    """Row ``row`` of the sheet says ``word`` (meaning ``claimed``) where duban has ``current``."""

    issue_id: int
    ref: str
    row: int
    word: str
    current: str
    claimed: str
    workflow_id: int | None = None  # the issue's version: the word is read by its own machine


def forward_path(workflow: WorkflowDef, start: str, goal: str) -> list[TransitionDef] | None:
    """The shortest chain of forward transitions from ``start`` to ``goal``, None if there is none.

    Forward means towards a later state of the ``states`` list (the order work progresses in); a
    state marked ``import: never`` is never entered on a sheet's word.
    """
    never = {s.name for s in workflow.states if s.import_ == "never"}
    came: dict[str, tuple[str, TransitionDef] | None] = {start: None}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        if state == goal:
            steps: list[TransitionDef] = []
            while (link := came[state]) is not None:
                state, step = link
                steps.append(step)
            return steps[::-1]
        for t in workflow.transitions:
            if (state in t.source and t.dest not in came and t.dest not in never
                    and workflow.rank(t.dest) > workflow.rank(state)):
                came[t.dest] = (state, t)
                queue.append(t.dest)
    return None


def why_not(workflow: WorkflowDef, claim: StateClaim) -> str:
    """Why no forward path serves ``claim`` (there is none)."""
    label = workflow.label
    target = workflow.state(claim.claimed)
    if target.import_ == "never":
        return f"{label(claim.claimed)} is reached only by a person's step in duban, never by a sheet"
    if workflow.rank(claim.claimed) < workflow.rank(claim.current):
        return (f"a sheet cannot move an issue back ({label(claim.current)} → {label(claim.claimed)}); "
                "take that step in duban, with its reason")
    return f"no transition of the workflow leads from {label(claim.current)} to {label(claim.claimed)}"


def apply_claim(session: Session, runtime: Runtime, workflow: WorkflowDef, claim: StateClaim, *,
                actor: Actor, now: dt.datetime, source: str) -> tuple[list[TransitionDef], str | None]:
    """Fire the forward path for ``claim``; the steps taken, and the reason when nothing was.

    All the steps or none: a refusal half-way rolls back to before the first (a savepoint).
    """
    steps = forward_path(workflow, claim.current, claim.claimed)
    if steps is None:
        return [], why_not(workflow, claim)
    # FOR UPDATE of the issue row only: PostgreSQL refuses it on the outer-joined ledger
    issue = session.scalars(select(Issue).where(Issue.id == claim.issue_id).with_for_update(of=Issue)
                            .execution_options(populate_existing=True)).one()
    note = f"导入 {source} 第{claim.row}行：整改状态为“{claim.word}”"
    try:
        with session.begin_nested():
            for step in steps:
                transition(session, runtime, issue, step.trigger, actor=actor, now=now, note=note)
    except Refused as exc:
        session.expire(issue)
        detail = "; ".join(exc.details) if exc.details else str(exc)
        return [], f"{step.label or step.trigger} ({step.trigger}): {detail}"
    return steps, None

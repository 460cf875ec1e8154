"""Which states count as open, done and long-term, and the overview sentence they make.

The seed report says "4个方面共26个具体问题，已全部整改完成，对于需要长期坚持的9个问题…" of a ledger with
17 已完成 and 9 长期坚持: a 长期坚持 problem *is* rectified, its measures are merely kept up. So open
(正在整改) are the states with a deadline rule, long-term (需长期坚持) the check-in state, done
(已整改完成) every other state, long-term included. The board and the report both count this way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ..config import Config
from ..workflow.schema import WorkflowDef


@dataclass(frozen=True)
class StateClasses:
    """Which workflow states count as open, done and long-term (see the module docstring)."""

    open: frozenset[str]
    done: frozenset[str]
    long_term: frozenset[str]


def classify(wf: WorkflowDef, done_states: Iterable[str] | None = None,
             long_term_states: Iterable[str] | None = None) -> StateClasses:
    """Open: states with a deadline rule; long-term: the check-in state; done: every other state
    (so long-term ⊆ done). ``done_states`` / ``long_term_states`` override for workflows shaped
    differently."""
    names = [s.name for s in wf.states]
    long_term = set(long_term_states if long_term_states is not None
                    else ([wf.checkins.state] if wf.checkins else []))
    done = set(done_states) if done_states is not None else {s for s in names if s not in wf.deadlines}
    return StateClasses(frozenset(s for s in names if s not in done), frozenset(done), frozenset(long_term))


def classes_for(config: Config, ledger_name: str | None, wf: WorkflowDef) -> StateClasses:
    """The classes ``[report] done_states`` / ``long_term_states`` say (a ledger's own table first)."""
    report = config.report
    own = report.ledgers.get(ledger_name or "") or {}
    return classify(wf, own.get("done_states", report.done_states), own.get("long_term_states", report.long_term_states))


@dataclass(frozen=True)
class Overview:
    areas: int
    categories: int
    issues: int
    done: int
    open: int
    long_term: int

    def counted(self) -> str:
        """4个方面共26个具体问题，已整改完成26个，正在整改0个，需长期坚持9个"""
        return (f"{how_many(self.areas, self.issues)}，已整改完成{self.done}个，"
                f"正在整改{self.open}个，需长期坚持{self.long_term}个")

    def sentence(self) -> str:
        """The seed's wording when nothing is open, else the counted form."""
        if self.issues and self.open == 0:
            text = f"{how_many(self.areas, self.issues)}，已全部整改完成"
            if self.long_term:
                text += f"，对于需要长期坚持的{self.long_term}个问题，做到立即整改，并将长期坚持"
            return text
        return self.counted()


def how_many(areas: int, issues: int) -> str:
    """4个方面共26个具体问题; 共5个具体问题 of a ledger whose sheet has no 方面 (not "0个方面共…")."""
    return f"{areas}个方面共{issues}个具体问题" if areas else f"共{issues}个具体问题"


def review_counts(session: Session, ledger_id: int, wf: WorkflowDef, classes: StateClasses) -> tuple[int, int]:
    """(awaiting sign-off, in a second or later round) of a ledger, counted in SQL. Awaiting
    sign-off: an open state from which only a reviewer may step on (待审核销号)."""
    from sqlalchemy import func, select

    from ..store.models import Issue

    review = sorted(wf.states_by_role().get("reviewer", set()) & classes.open)
    awaiting = session.scalar(select(func.count()).select_from(Issue).where(
        Issue.ledger_id == ledger_id, Issue.state.in_(review))) if review else 0
    second = session.scalar(select(func.count()).select_from(Issue).where(
        Issue.ledger_id == ledger_id, Issue.round > 1))
    return awaiting or 0, second or 0


def review_sentence(awaiting: int, second: int) -> str:
    """"其中待审核销号1个，经退回二次整改1个" (empty when both are 0)."""
    parts = [f"待审核销号{awaiting}个" if awaiting else "", f"经退回二次整改{second}个" if second else ""]
    shown = "，".join(p for p in parts if p)
    return f"其中{shown}" if shown else ""

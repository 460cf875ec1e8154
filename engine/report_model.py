"""The report as data: the overview's counts, areas, categories, problems and duties.

``engine.report.build_report`` fills these from the store; ``engine.report_render`` and
``engine.report_docx`` write them out. ``classify`` sorts workflow states into open, done and
long-term as ``engine.report``'s module docstring explains.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from .report_settings import ReportSettings
from .workflow.schema import WorkflowDef


@dataclass(frozen=True)
class StateClasses:
    """Which workflow states count as open, done and long-term in the overview (see the module
    docstring of ``engine.report``)."""

    open: frozenset[str]
    done: frozenset[str]
    long_term: frozenset[str]


def classify(wf: WorkflowDef, settings: ReportSettings) -> StateClasses:
    names = [s.name for s in wf.states]
    long_term = set(settings.long_term_states if settings.long_term_states is not None
                    else ([wf.checkins.state] if wf.checkins else []))
    done = set(settings.done_states) if settings.done_states is not None else {
        s for s in names if s not in wf.deadlines}
    return StateClasses(frozenset(s for s in names if s not in done), frozenset(done), frozenset(long_term))


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
        return (f"{self.areas}个方面共{self.issues}个具体问题，已整改完成{self.done}个，"
                f"正在整改{self.open}个，需长期坚持{self.long_term}个")

    def sentence(self) -> str:
        """The seed's wording when nothing is open, else the counted form."""
        if self.issues and self.open == 0:
            text = f"{self.areas}个方面共{self.issues}个具体问题，已全部整改完成"
            if self.long_term:
                text += f"，对于需要长期坚持的{self.long_term}个问题，做到立即整改，并将长期坚持"
            return text
        return self.counted()


@dataclass
class Problem:
    number: int
    ref: str
    heading: str
    title: str
    measures: str
    leader: str
    department: str
    state: str
    state_label: str
    status_class: str  # open | done | long_term
    deadline: dt.date | None
    due: dt.date | None  # the deadline being followed while open
    due_title: str
    days_overdue: int
    evidence: int
    lookbacks_done: int
    lookbacks_overdue: int
    lookback_next: dt.date | None
    status_line: str = ""


@dataclass
class Category:
    number: str
    heading: str
    problems: list[Problem] = field(default_factory=list)


@dataclass
class Area:
    number: str  # 一, 二…
    name: str
    heading: str
    categories: list[Category] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # done / open / long_term (long_term ⊆ done)
    states: dict[str, int] = field(default_factory=dict)  # per workflow state


@dataclass
class DutyRow:
    key: str
    title: str
    owners: str
    done: int
    overdue: int
    next_due: dt.date | None


@dataclass
class Report:
    ledger: str
    unit: str
    short_unit: str
    inspector: str
    title_lines: list[str]
    date: dt.date
    overview: Overview
    overview_paragraph: str
    intro: list[str]
    parts: list[str]  # the three part headings, numbered 一、二、三
    part1: list[str]
    part3: list[str]
    areas: list[Area]
    duties: list[DutyRow]
    duties_since: dt.date
    show_details: bool
    show_duties: bool
    show_signature: bool

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the (sandboxed) templates: no ORM objects, no methods to call."""
        data = dataclasses.asdict(self)
        data["overview"].update(sentence=self.overview.sentence(), counted=self.overview.counted())
        data["title"] = "".join(self.title_lines)
        return data


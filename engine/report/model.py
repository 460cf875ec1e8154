"""The report as data: the overview's counts, areas, categories, problems and duties.

``engine.report.build.build_report`` fills these from the store; ``engine.report.render`` and
``engine.report.docx`` write them out.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from ..issues.classes import Overview

_ATOMS = frozenset({str, int, float, bool, type(None), dt.date, dt.datetime})
_FIELDS: dict[type, tuple[str, ...]] = {}  # a dataclass's field names, by its type


def _plain(value: Any) -> Any:
    """``dataclasses.asdict``'s conversion for the report's own values: a dataclass becomes a dict of
    its fields, lists, tuples and dicts are copied, atoms (immutable) are kept as they are."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is list:
        return [_plain(v) for v in value]
    if kind is tuple:
        return tuple(_plain(v) for v in value)
    if kind is dict:
        return {_plain(k): _plain(v) for k, v in value.items()}
    names = _FIELDS.get(kind)
    if names is None:
        if not dataclasses.is_dataclass(value) or isinstance(value, type):
            return copy.deepcopy(value)
        names = _FIELDS[kind] = tuple(f.name for f in dataclasses.fields(value))
    out = {}
    for name in names:
        v = getattr(value, name)
        out[name] = v if type(v) in _ATOMS else _plain(v)
    return out


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
    # what was done, as the report says it (engine.report.wording.problem_paragraph)
    paragraph: str = ""
    work: list[tuple[dt.date, str, str]] = field(default_factory=list)  # (day, progress|submit, note), newest first


@dataclass
class Category:
    number: str
    heading: str  # "" for a blank 问题类别: its problems stand under the area
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
    # the duties' records begin later than the ledger's period (duties registered after the feedback)
    duties_recorded_from: dt.date | None
    show_details: bool | None  # None: the format's default (md/html yes, docx no)
    show_duties: bool
    show_signature: bool
    unit_known: bool = True  # False: no unit in the ledger or [report]; the report says 本单位
    # the head of the ledger's history chains when the report was written (engine.issues.history):
    # a copy sent to the 纪检组 can be checked later with `duban audit verify --head`
    chain_head: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the (sandboxed) templates: no ORM objects, no methods to call.

        What ``dataclasses.asdict`` gives, without its ``deepcopy`` of every string and date
        (immutable: the copies were equal objects): ~110,000 values for a 5,000-issue ledger."""
        data = _plain(self)
        assert isinstance(data, dict)
        data["overview"].update(sentence=self.overview.sentence(), counted=self.overview.counted())
        data["title"] = "".join(self.title_lines)
        return data


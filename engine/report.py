"""整改情况报告: the rectification report, in the structure of a real one (tests/data/seed-report.txt).

The report opens with the unit's title, an introduction and three parts (一、二、三). Part 二
carries the overview sentence and then, per area （一）（二）…, per category (1．2．… as numbered in
the ledger) and per problem (（1）（2）… numbered continuously across the report), what was done.

How the overview counts states
------------------------------
The seed says "4个方面共26个具体问题，已全部整改完成，对于需要长期坚持的9个问题…" of a ledger with 17
已完成 and 9 长期坚持: a 长期坚持 problem *is* rectified, its measures are merely kept up. So:

* 正在整改 (open): states that have a deadline rule in the workflow (``deadlines:``: 待整改,
  已制定方案, 整改中): the problem is still being worked towards a due date;
* 需长期坚持 (long-term): the workflow's check-in state (``checkins.state``, 长期坚持);
* 已整改完成 (done): every other state (已完成 and 长期坚持), so long-term ⊆ done.

The shipped ledger gives 已整改完成26个，正在整改0个，需长期坚持9个; with nothing open the report
words it as the seed does (已全部整改完成，对于需要长期坚持的9个问题，做到立即整改，并将长期坚持), otherwise
as "N个方面共M个具体问题，已整改完成X个，正在整改Y个，需长期坚持Z个". ``[report] done_states`` and
``long_term_states`` override the mapping for workflows shaped differently.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated, Any

from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .board.agenda import duty_items, open_deadlines
from .board.templating import render_template, template_env
from .config import Config
from .errors import BadInput, ConfigError
from .runtime import Runtime
from .store.models import Evidence, Issue, Ledger, WorkflowVersion
from .workflow.schema import WorkflowDef

FORMATS = ("md", "html", "docx")
_DIGITS = "零一二三四五六七八九"


def _paragraphs(value: object) -> object:
    return [value] if isinstance(value, str) else value


Paragraphs = Annotated[list[str], BeforeValidator(_paragraphs)]


class ReportSettings(BaseModel):
    """``[report]`` in config.toml; ``[report.ledgers.NAME]`` overrides any key for one ledger.

    Text settings may use the placeholders {unit} {short_unit} {inspector} {issues} {leaders}
    {departments}; they are replaced literally (never ``str.format``, which would let a config
    file reach Python attributes).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    unit: str | None = None  # 发文机关, e.g. 中共重庆市璧山区科学技术局党组 (default from the ledger's unit)
    short_unit: str | None = None  # how the body names it, e.g. 区科技局党组 (default: unit without 中共)
    inspector: str = "巡察组"  # e.g. 区委第一巡察组
    title: str | None = None  # the whole title; "\n" breaks lines (default: unit + 关于落实…的报告)
    intro: Paragraphs = Field(default_factory=lambda: [
        "根据{inspector}反馈意见，{short_unit}认真分析，逐条研判，精心制定整改方案，逐项落实整改任务，"
        "及时加强跟踪督办，确保整改工作落到实处。现将整改情况报告如下："])
    part1_heading: str = "高度重视，精心组织，认真落实整改责任"
    part1: Paragraphs = Field(default_factory=lambda: [
        "{short_unit}切实履行整改主体责任，成立巡察整改领导小组，认真梳理巡察反馈意见，逐条对照研判，"
        "制定整改工作方案，建立健全整改工作机制，将{issues}个具体问题逐一分解落实到{leaders}名责任领导、"
        "{departments}个责任科室，明确整改时限，实行台账管理、跟踪督办、逐项销号。"])
    part2_heading: str = "突出重点，注重实效，确保整改落到实处"
    part3_heading: str = "认真总结，增添措施，推进整改全面深化"
    part3: Paragraphs = Field(default_factory=lambda: [
        "下阶段，{short_unit}将继续按照做好巡察整改“后半篇文章”的要求，认真总结，增添措施，确保力度不减，"
        "标准不降。加强“回头看”，抓好巩固提升，防止出现反弹。对正在整改和需要长期坚持的整改任务，对照整改标准，"
        "作出后续工作安排和跟踪督办，确保整改彻底。"])
    details: bool = True  # a status line under each problem (state, deadline, evidence, look-backs)
    duties: bool = True  # the appendix of recurring duties done and due
    signature: bool = True  # 发文机关署名 and 成文日期 at the end
    done_states: list[str] | None = None
    long_term_states: list[str] | None = None
    templates: str | None = None  # a folder whose report.md.j2 / report.html.j2 replace the shipped ones
    ledgers: dict[str, dict[str, Any]] = Field(default_factory=dict)


def settings_for(config: Config, ledger_name: str | None) -> ReportSettings:
    """The ``[report]`` settings, with the ledger's own overrides applied."""
    data = dict(config.report)
    per = (data.get("ledgers") or {}).get(ledger_name or "", {}) if isinstance(data.get("ledgers"), dict) else {}
    try:
        return ReportSettings.model_validate({**data, **per})
    except ValidationError as exc:
        lines = [f"[report] {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(f"{config.source or 'config'}: invalid [report] settings", details=lines) from None


# -- wording ----------------------------------------------------------------------------------


def cn_number(n: int) -> str:
    """一, 二 … 十, 十一 … 九十九 (area and part numbers)."""
    if n <= 0 or n >= 100:
        return str(n)
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else _DIGITS[tens] + "十")
    return head + (_DIGITS[ones] if ones else "") if tens else _DIGITS[ones]


def cn_date(d: dt.date | None) -> str:
    """2022年9月30日: GB/T 9704-2012 writes dates in full with Arabic numerals."""
    return "" if d is None else f"{d.year}年{d.month}月{d.day}日"


def area_heading(text: str) -> str:
    """"聚焦…方面" → "聚焦…方面存在的问题。" as the seed words area headings."""
    t = text.strip().rstrip("。")
    return (t + "存在的问题" if t.endswith("方面") else t) + "。"


_NUMBERED = re.compile(r"^\s*(\d+)\s*[.．、]\s*(.*?)\s*$")


def category_heading(text: str, fallback: int) -> tuple[str, str]:
    """(number, heading): the ledger's own number ("1．政治理论…") kept; unnumbered ones counted."""
    m = _NUMBERED.match(text or "")
    number, rest = (m.group(1), m.group(2)) if m else (str(fallback), (text or "").strip())
    return number, f"{number}．\u3000{rest.rstrip('。')}。"


def problem_heading(number: int, title: str) -> str:
    """（1）关于“…”问题的整改情况。 Quotes inside the title become single quotes, as in the seed."""
    inner = title.strip().rstrip("。").replace("“", "‘").replace("”", "’")
    return f"（{number}）关于“{inner}”问题的整改情况。"


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


# -- the data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StateClasses:
    """Which workflow states count as open, done and long-term in the overview (see module doc)."""

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


def _status_line(p: Problem) -> str:
    parts = [f"整改状态：{p.state_label}"]
    if p.deadline:
        parts.append(f"整改时限：{cn_date(p.deadline)}")
    if p.status_class == "open" and p.due:
        # the deadline being followed, unless it is the 整改时限 just named (said once, not twice)
        if p.due != p.deadline or p.due_title != "整改时限":
            parts.append(f"{p.due_title}应于{cn_date(p.due)}前完成")
        if p.days_overdue:
            parts[-1] += f"（已逾期{p.days_overdue}个工作日）"
    parts.append(f"佐证材料：{p.evidence}份")
    if p.lookbacks_done or p.lookbacks_overdue or p.lookback_next:
        text = f"回头看：已完成{p.lookbacks_done}次"
        if p.lookbacks_overdue:
            text += f"，逾期未完成{p.lookbacks_overdue}次"
        if p.lookback_next:
            text += f"，下次{cn_date(p.lookback_next)}"
        parts.append(text)
    return "；".join(parts) + "。"


def _default_unit(ledger: Ledger) -> str:
    unit = ledger.unit.strip()
    if not unit:
        return ledger.name
    return unit if unit.startswith("中共") or unit.endswith("党组") else f"中共{unit}党组"


def build_report(session: Session, runtime: Runtime, ledger: Ledger, now: dt.datetime) -> Report:
    """Everything the report says about ``ledger`` at ``now``, read from the store."""
    settings = settings_for(runtime.config, ledger.name)
    today = runtime.calendar.local_date(now)
    issues = list(session.scalars(select(Issue).where(Issue.ledger_id == ledger.id)
                                  .order_by(Issue.position, Issue.id)))
    versions = {v.id: v for v in session.scalars(select(WorkflowVersion).where(
        WorkflowVersion.id.in_({i.workflow_id for i in issues})))}
    evidence = dict(session.execute(select(Evidence.issue_id, func.count()).join(Issue)
                                    .where(Issue.ledger_id == ledger.id).group_by(Evidence.issue_id)).all())
    following = {d.issue_id: d for d in open_deadlines(session, runtime, today, ledger=ledger, checkins=False)}
    since = ledger.feedback_date or today - dt.timedelta(days=365)
    occurrences = duty_items(session, runtime, today, start=since, ledger=ledger)

    areas: dict[str, Area] = {}
    categories: dict[tuple[str, str], Category] = {}
    totals: Counter[str] = Counter()
    for issue in issues:
        wf = runtime.registry.definition(versions[issue.workflow_id])
        classes = classify(wf, settings)
        cls = "open" if issue.state in classes.open else (
            "long_term" if issue.state in classes.long_term else "done")
        area = areas.get(issue.area)
        if area is None:
            area = areas[issue.area] = Area(cn_number(len(areas) + 1), issue.area, area_heading(issue.area or "其他"))
        category = categories.get((issue.area, issue.category))
        if category is None:
            number, heading = category_heading(issue.category, len(categories) + 1)
            category = categories[(issue.area, issue.category)] = Category(number, heading)
            area.categories.append(category)
        mine = [o for o in occurrences if o.issue_id == issue.id]
        ahead = [o.due for o in mine if o.state == "open" and o.due >= today]
        deadline = following.get(issue.id)
        category.problems.append(Problem(
            0, issue.ref, "", issue.title, issue.measures, issue.leader, issue.department, issue.state,
            wf.label(issue.state), cls, issue.deadline, deadline.due if deadline else None,
            deadline.rule_title if deadline else "", deadline.late.days_overdue if deadline else 0,
            evidence.get(issue.id, 0), sum(o.state == "done" for o in mine),
            sum(o.state == "open" and o.due < today for o in mine), min(ahead) if ahead else None))
        classes_hit = {cls, "done" if cls == "long_term" else cls}
        for key in classes_hit:
            area.counts[key] = area.counts.get(key, 0) + 1
        area.states[issue.state] = area.states.get(issue.state, 0) + 1
        totals.update(classes_hit)

    seq = 0
    for area in areas.values():  # problems are numbered in report order, continuously
        for category in area.categories:
            for p in category.problems:
                seq += 1
                p.number, p.heading = seq, problem_heading(seq, p.title)
                p.status_line = _status_line(p)

    overview = Overview(len([a for a in areas if a]), len([c for c in categories if c[1]]), len(issues),
                        totals["done"], totals["open"], totals["long_term"])
    unit = settings.unit or _default_unit(ledger)
    short_unit = settings.short_unit or unit.removeprefix("中共")
    values = {"unit": unit, "short_unit": short_unit, "inspector": settings.inspector, "issues": str(len(issues)),
              "leaders": str(len({i.leader for i in issues if i.leader})),
              "departments": str(len({i.department for i in issues if i.department}))}
    title = (_fill(settings.title, values) if settings.title
             else f"{unit}\n关于落实{settings.inspector}反馈意见整改情况的报告")

    rows: dict[str, DutyRow] = {}
    for o in occurrences:
        row = rows.setdefault(o.key, DutyRow(o.key, o.title, "、".join(o.owners) or "各责任科室", 0, 0, None))
        if o.state == "done":
            row.done += 1
        elif o.due < today:
            row.overdue += 1
        elif row.next_due is None or o.due < row.next_due:
            row.next_due = o.due
    part3 = [_fill(p, values) for p in settings.part3]
    if settings.duties and rows:
        done, late = sum(r.done for r in rows.values()), sum(r.overdue for r in rows.values())
        part3.append(f"建立经常性工作机制{len(rows)}项，{cn_date(since)}以来已完成{done}次"
                     + (f"，逾期未完成{late}次，正督促落实" if late else "，无逾期未完成事项") + "（详见附件）。")
    return Report(
        ledger=ledger.name, unit=unit, short_unit=short_unit, inspector=settings.inspector,
        title_lines=[line for line in title.split("\n") if line.strip()], date=today, overview=overview,
        overview_paragraph=f"{settings.inspector}反馈意见中指出的{short_unit}{overview.sentence()}。",
        intro=[_fill(p, values) for p in settings.intro],
        parts=[f"{cn_number(i + 1)}、{h}" for i, h in enumerate(
            (settings.part1_heading, settings.part2_heading, settings.part3_heading))],
        part1=[_fill(p, values) for p in settings.part1], part3=part3, areas=list(areas.values()),
        duties=list(rows.values()), duties_since=since, show_details=settings.details,
        show_duties=settings.duties and bool(rows), show_signature=settings.signature)


# -- rendering --------------------------------------------------------------------------------


def report_env(config: Config, override: str | None) -> SandboxedEnvironment:
    """The report's template environment, with the report's wording helpers as filters."""
    return template_env(config, override, {"cndate": cn_date, "cnnum": cn_number})


def render_report(report: Report, fmt: str, config: Config) -> str:
    """The report as Markdown or a standalone HTML page."""
    if fmt not in ("md", "html"):
        raise BadInput(f"unknown report format {fmt!r}", hint="use md, html or docx")
    env = report_env(config, settings_for(config, report.ledger).templates)
    return render_template(env, f"report.{fmt}.j2", report=report.as_dict())

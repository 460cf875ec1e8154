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

import datetime as dt
from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..duties.definitions import DutyDef
from ..duties.schedule import occurrences
from ..issues.classes import Overview, StateClasses, classes_for, review_counts, review_sentence
from ..issues.history import chain_head
from ..issues.work import recorded_work
from ..reminders.agenda import DutyItem, deadline_item, duty_items
from ..reminders.subjects import ISSUES, issue_query
from ..runtime import Runtime
from ..store.models import Duty, DutyKind, Evidence, Issue, Ledger
from ..wording import cn_date, cn_number
from .model import Area, Category, DutyRow, Problem, Report
from .settings import PARTY_BODIES, settings_for
from .wording import area_heading, category_heading, fill, problem_heading, problem_paragraph, unfinished


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


UNKNOWN_UNIT = "本单位"  # when neither the ledger nor [report] names the unit


def _default_unit(ledger: Ledger, party_body: str) -> str:
    """The 发文机关 from the ledger's unit: a unit cell naming its Party organisation (…党委) is kept;
    a bare one (区教育委员会) gets 中共 and ``party_body`` ([report] party_body, 党组 by default)."""
    unit = ledger.unit.strip()
    if not unit:
        return UNKNOWN_UNIT
    if unit.startswith("中共") or unit.endswith(PARTY_BODIES):
        return unit
    return f"中共{unit}{party_body}" if party_body else unit


def _records_begin(session: Session, runtime: Runtime, period_start: dt.date | None, today: dt.date) -> dt.date | None:
    """The day duban's records of the recurring duties begin (the day a duty was registered, or its
    ``since`` if earlier). With ``period_start``: only where a duty fell due in the period before its
    records began (a 2022 ledger whose duties were registered in 2026), so the appendix can say
    that those earlier periods are not counted; ``None`` when every period is on record."""
    first: dt.date | None = None
    rows = session.execute(select(Duty.spec, Duty.created_at)
                           .where(Duty.active.is_(True), Duty.kind == DutyKind.RECURRING))
    for spec, created in rows:
        start = runtime.calendar.local_date(created)  # from then on its occurrences are stored as they come
        if spec.get("since"):  # and from ``since`` on its earlier periods, as history
            start = min(start, dt.date.fromisoformat(spec["since"]))
        if period_start is not None:
            if start <= period_start:
                continue
            try:
                missed = occurrences(DutyDef.model_validate(spec).spec(), period_start, min(start, today),
                                     runtime.calendar)
            except ValueError:  # a spec the sync refused; it has no records to speak of either
                continue
            if not any(o.due < start for o in missed):
                continue
        first = start if first is None else min(first, start)
    return first


def build_report(session: Session, runtime: Runtime, ledger: Ledger, now: dt.datetime) -> Report:
    """Everything the report says about ``ledger`` at ``now``, read from the store.

    One query per kind of row (issues, their measures, evidence counts, duty occurrences), grouped
    once: the cost follows the ledger's size, never the database's.
    """
    workflow = runtime.registry.definition(runtime.registry.of_ledger(session, ledger))
    settings = settings_for(runtime.config, ledger.name, workflow.report)
    core = runtime.core
    today = runtime.calendar.local_date(now)
    subjects = runtime.subjects.issues(session, issue_query().where(ISSUES.c.ledger_id == ledger.id)
                                       .order_by(ISSUES.c.position, ISSUES.c.id))
    measures = dict(session.execute(select(Issue.id, Issue.measures).where(Issue.ledger_id == ledger.id)).all())
    evidence = dict(session.execute(select(Evidence.issue_id, func.count()).join(Issue)
                                    .where(Issue.ledger_id == ledger.id).group_by(Evidence.issue_id)).all())
    work = recorded_work(session, ledger.id, until=now)
    awaiting_states = workflow.states_by_role().get("reviewer", set())  # 待审核销号: the reviewer's move
    # The appendix covers the ledger's own period: from its feedback date to the report's date (and
    # up to a quarter ahead for what falls due next).
    since = min(ledger.feedback_date or _records_begin(session, runtime, None, today) or today
                - dt.timedelta(days=365), today)
    recorded_from = _records_begin(session, runtime, since, today)
    occurrences = duty_items(session, runtime, today, start=since, end=today + dt.timedelta(days=92), ledger=ledger)
    per_issue: dict[int, list[DutyItem]] = {}
    for o in occurrences:
        if o.issue_id is not None:
            per_issue.setdefault(o.issue_id, []).append(o)

    areas: dict[str, Area] = {}
    categories: dict[tuple[str, str], Category] = {}
    totals: Counter[str] = Counter()
    classes_of: dict[str, StateClasses] = {}
    for issue in subjects:
        classes = classes_of.get(issue.wf_hash)
        if classes is None:
            classes = classes_of[issue.wf_hash] = classes_for(runtime.config, ledger.name, issue.workflow)
        cls = "open" if issue.state in classes.open else (
            "long_term" if issue.state in classes.long_term else "done")
        area = areas.get(issue.area)
        if area is None:
            area = areas[issue.area] = Area(cn_number(len(areas) + 1), issue.area, area_heading(issue.area or "其他"))
        category = categories.get((issue.area, issue.category))
        if category is None:
            number, heading = category_heading(issue.category, sum(1 for c in categories.values() if c.heading) + 1)
            category = categories[(issue.area, issue.category)] = Category(number, heading)
            area.categories.append(category)
        mine = per_issue.get(issue.id, [])
        ahead = [o.due for o in mine if o.state == "open" and o.due >= today]
        deadline = deadline_item(core, issue, today) if cls == "open" else None
        notes = [(runtime.calendar.local_date(n.at), n.kind, n.note) for n in work.get(issue.id, [])]
        status = ""
        if cls == "open":  # the 整改时限 when there is one, else the deadline being followed
            target = issue.deadline or (deadline.due if deadline else None)
            late = deadline.late.days_overdue if deadline and deadline.due == target else 0
            status = unfinished(target, today, late, awaiting=issue.state in awaiting_states)
        category.problems.append(Problem(
            0, issue.ref, "", issue.title, measures.get(issue.id, ""), issue.leader, issue.department, issue.state,
            issue.workflow.label(issue.state), cls, issue.deadline, deadline.due if deadline else None,
            deadline.rule_title if deadline else "", deadline.late.days_overdue if deadline else 0,
            evidence.get(issue.id, 0), sum(o.state == "done" for o in mine),
            sum(o.state == "open" and o.late.overdue for o in mine), min(ahead) if ahead else None,
            paragraph=problem_paragraph(notes, measures.get(issue.id, "") or "", open_=cls == "open", status=status),
            work=notes))
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

    overview = Overview(len([a for a in areas if a]), len([c for c in categories if c[1]]), len(subjects),
                        totals["done"], totals["open"], totals["long_term"])
    review = review_sentence(*review_counts(session, ledger.id, workflow, classes_for(runtime.config, ledger.name,
                                                                                       workflow)))
    unit = settings.unit or _default_unit(ledger, settings.party_body)
    short_unit = settings.short_unit or unit.removeprefix("中共")
    if unit == UNKNOWN_UNIT:
        short_unit = settings.short_unit or "我单位"
    values = {"unit": unit, "short_unit": short_unit, "inspector": settings.inspector, "issues": str(len(subjects)),
              "leaders": str(len({i.leader for i in subjects if i.leader})),
              "departments": str(len({i.department for i in subjects if i.department}))}
    title = (fill(settings.title, values) if settings.title
             else f"{unit}\n关于落实{settings.inspector}反馈意见整改情况的报告")

    rows: dict[str, DutyRow] = {}
    for o in occurrences:
        row = rows.setdefault(o.key, DutyRow(o.key, o.title, "、".join(o.owners) or "各责任科室", 0, 0, None))
        if o.state == "done":
            row.done += 1
        elif o.late.overdue:
            row.overdue += 1
        elif row.next_due is None or o.due < row.next_due:
            row.next_due = o.due
    part3 = [fill(p, values) for p in settings.part3]
    if settings.duties and rows:
        done, late = sum(r.done for r in rows.values()), sum(r.overdue for r in rows.values())
        part3.append(f"建立经常性工作机制{len(rows)}项，{cn_date(since)}以来已完成{done}次"
                     + (f"，逾期未完成{late}次，正督促落实" if late else "，无逾期未完成事项") + "（详见附件）。")
    return Report(
        ledger=ledger.name, unit=unit, short_unit=short_unit, inspector=settings.inspector,
        title_lines=[line for line in title.split("\n") if line.strip()], date=today, overview=overview,
        overview_paragraph=f"{settings.inspector}反馈意见中指出的{short_unit}{overview.sentence()}"
                           + (f"，{review}" if review else "") + "。",
        intro=[fill(p, values) for p in settings.intro],
        parts=[f"{cn_number(i + 1)}、{h}" for i, h in enumerate(
            (settings.part1_heading, settings.part2_heading, settings.part3_heading))],
        part1=[fill(p, values) for p in settings.part1], part3=part3, areas=list(areas.values()),
        duties=list(rows.values()), duties_since=since,
        duties_recorded_from=recorded_from,
        show_details=settings.details,
        show_duties=settings.duties and bool(rows), show_signature=settings.signature,
        unit_known=unit != UNKNOWN_UNIT, chain_head=chain_head(session, ledger, now))


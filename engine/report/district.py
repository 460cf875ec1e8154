"""The district's 巡察整改情况通报: the overview's own figures written out for the 巡察办 to send.

Built from ``engine.issues.district`` (the same status clauses the workspace overview counts and links
with), so the notice and the page cannot disagree: each unit's completion and on-time rates and its
counts, the overdue and second-round items by unit (the rows those clauses pick), and the 共性问题
(问题类别 found in two units or more). The notice is a list of blocks rendered to Markdown, or to a
DOCX laid out by GB/T 9704 with the report's own styles (``engine.report.docx``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..accounts.actor import SYSTEM
from ..issues.district import UnitFigures, common_categories, status_clause, unit_figures
from ..runtime import Runtime
from ..store.models import Issue, Ledger
from ..wording import cn_date

_NUMBERS = "一二三四五六七八九十"


@dataclass
class Notice:
    """Title, date and body blocks: (kind, text) with kind h1/h2/p, or ("table", header, rows)."""

    title: str
    date: dt.date
    blocks: list[tuple[Any, ...]] = field(default_factory=list)
    units: list[UnitFigures] = field(default_factory=list)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:g}%"


def _items(session: Session, runtime: Runtime, status: str, today: dt.date) -> dict[str, list[str]]:
    """The issues a status picks, per unit, each as "台账/序号 具体问题（整改时限…）"."""
    stmt = (select(Ledger.unit, Ledger.name, Issue.ref, Issue.title, Issue.deadline).select_from(Issue)
            .join(Ledger, Ledger.id == Issue.ledger_id).where(status_clause(session, runtime, status, today))
            .order_by(Ledger.unit, Ledger.name, Issue.position))
    out: dict[str, list[str]] = {}
    for unit, ledger, ref, title, deadline in session.execute(stmt):
        due = f"（整改时限{cn_date(deadline)}）" if deadline else ""
        out.setdefault(unit or "", []).append(f"{ledger}/{ref} {title}{due}")
    return out


def build_notice(session: Session, runtime: Runtime, now: dt.datetime) -> Notice:
    today = runtime.calendar.local_date(now)
    units = unit_figures(session, runtime, SYSTEM, today)
    common = common_categories(session, SYSTEM)
    notice = Notice(title="关于巡察整改情况的通报", date=today, units=units)
    add = notice.blocks.append
    issues, done = sum(u["issues"] for u in units), sum(u["done"] for u in units)
    total_rate = _pct(round(100 * done / issues, 1) if issues else None)
    add(("p", f"截至{cn_date(today)}，{len(units)}个被巡察单位共有具体问题{issues}个，已整改完成{done}个，"
              f"整体完成率{total_rate}。现将各单位整改情况通报如下。"))
    add(("h1", "一、各单位整改情况"))
    for u in units:
        add(("p", f"{u['unit'] or '（未填单位）'}：具体问题{u['issues']}个，已完成{u['done']}个，完成率{_pct(u['completion'])}；"
                  f"按时完成{u['on_time']}个，按时完成率{_pct(u['on_time_rate'])}；逾期{u['overdue']}个，"
                  f"待审核销号{u['awaiting']}个，经退回二次整改{u['second_round']}个，问题反弹{u['rebound']}个。"))
    add(("table", ("单位", "问题数", "已完成", "完成率", "按时完成率", "逾期", "待审核销号", "二次整改", "反弹"),
         [(u["unit"] or "（未填单位）", u["issues"], u["done"], _pct(u["completion"]), _pct(u["on_time_rate"]),
           u["overdue"], u["awaiting"], u["second_round"], u["rebound"]) for u in units]))
    for n, (status, heading, none) in enumerate((("overdue", "逾期未完成的问题", "各单位均无逾期未完成的问题。"),
                                                  ("second_round", "经退回二次整改的问题", "各单位均无经退回二次整改的问题。")),
                                                 start=1):
        add(("h1", f"{_NUMBERS[n]}、{heading}"))
        listed = _items(session, runtime, status, today)
        if not listed:
            add(("p", none))
        for unit, lines in listed.items():
            add(("h2", f"{unit or '（未填单位）'}（{len(lines)}个）"))
            add(("p", "；".join(lines) + "。"))
    add(("h1", "四、共性问题"))
    if not common:
        add(("p", "暂无两个及以上单位共有的问题类别。"))
    for c in common:
        per = "、".join(f"{u or '（未填单位）'}{k}个" for u, k in c["units"].items())
        add(("p", f"“{c['category']}”类问题在{len(c['units'])}个单位存在，共{c['total']}个（{per}），请各单位举一反三、"
                  "对照自查。"))
    add(("h1", "五、下一步要求"))
    add(("p", "请逾期和二次整改问题所在单位于收到通报后5个工作日内报送整改进展，确保按期整改到位。"))
    return notice


def render_md(notice: Notice) -> str:
    lines = [f"# {notice.title}", ""]
    for block in notice.blocks:
        if block[0] == "table":
            header, rows = block[1], block[2]
            lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
        else:
            lines.append({"h1": "## ", "h2": "### "}.get(block[0], "") + block[1])
        lines.append("")
    lines += [f"{cn_date(notice.date)}", ""]
    return "\n".join(lines)


def write_docx(notice: Notice, path: Path) -> Path:
    """The notice on A4 by GB/T 9704 with the report's styles (title 小标宋, body 仿宋 三号)."""
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    from .docx import BODY_FONT, BODY_SIZE, HEADING1_FONT, HEADING2_FONT, TITLE_FONT, _page_setup, _style

    doc = Document()
    _page_setup(doc)
    _style(doc, "Normal", BODY_FONT, BODY_SIZE)
    styles = {"title": _style(doc, "公文标题", TITLE_FONT, Pt(22), indent=False, align=WD_ALIGN_PARAGRAPH.CENTER),
              "h1": _style(doc, "一级标题", HEADING1_FONT, BODY_SIZE, outline=0),
              "h2": _style(doc, "二级标题", HEADING2_FONT, BODY_SIZE, outline=1),
              "cell": _style(doc, "表格文字", BODY_FONT, Pt(10.5), indent=False, align=WD_ALIGN_PARAGRAPH.CENTER),
              "date": _style(doc, "成文日期", BODY_FONT, BODY_SIZE, indent=False, align=WD_ALIGN_PARAGRAPH.RIGHT)}
    styles["title"].paragraph_format.line_spacing = Pt(35)
    styles["cell"].paragraph_format.line_spacing = Pt(16)
    doc.add_paragraph(notice.title, style=styles["title"])
    doc.add_paragraph("")
    for block in notice.blocks:
        if block[0] == "table":
            header, rows = block[1], block[2]
            table = doc.add_table(rows=1 + len(rows), cols=len(header))
            table.style = "Table Grid"
            for r, row in enumerate((header, *rows)):
                for c, value in enumerate(row):
                    cell = table.cell(r, c)
                    cell.text = ""
                    cell.paragraphs[0].style = styles["cell"]
                    cell.paragraphs[0].add_run(str(value))
        elif block[0] in styles:
            doc.add_paragraph(block[1], style=styles[block[0]])
        else:
            doc.add_paragraph(block[1])
    dated = doc.add_paragraph(cn_date(notice.date), style=styles["date"])
    dated.paragraph_format.right_indent = Pt(64)  # 成文日期右空四字
    doc.save(str(path))
    return path

"""The district's view (issue #20, item 7): three units imported and worked; the overview's figures
equal plain SQL counts of the same rows, and each figure's link opens exactly those items."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from .conftest import ROOT

EXAMPLE = ROOT / "examples" / "2026-区审计局.csv"
T0 = "2026-12-01T09:00"
NOW = "2027-01-10T10:00"  # past the example's 2026-12-31 deadlines: the open ones are overdue
UNITS = ("中共重庆市璧山区审计局党组", "中共重庆市璧山区统计局党组", "中共重庆市璧山区医保局党组")
LEDGERS = ("2026-区审计局", "2026-区统计局", "2026-区医保局")


def _ledger(folder: Path, index: int) -> Path:
    """The example ledger as another unit keeps it: its own unit, some rows already done or long-term,
    a category of its own (so not every category is common)."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    out = [lines[0]]
    for n, line in enumerate(lines[1:], start=1):
        cells = line.split(",")
        cells[-1] = UNITS[index]
        if n <= 2 * index:  # rates differ by unit
            cells[8] = "已完成"
        if index == 1 and n == 8:
            cells[2] = "统计数据质量"
        out.append(",".join(cells))
    path = folder / f"{LEDGERS[index]}.csv"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def district(project, cli, db_url, monkeypatch):
    """Three units imported and worked, on SQLite and on PostgreSQL (the on-time rule dates in SQL)."""
    monkeypatch.setenv("DUBAN_DATABASE_URL", db_url)
    assert cli("init", "--at", T0).code == 0
    for i in range(3):
        result = cli("ledger", "import", _ledger(project, i), "--at", T0)
        assert result.code == 0, result.err
    for name in ("巡察整改办公室", "纪检组长"):
        assert cli("user", "add", name, "--role", "reviewer", DUBAN_NEW_PASSWORD=f"{name}-pass-2026").code == 0
    evidence = project / "纪要.pdf"
    evidence.write_bytes(b"%PDF-1.4 minutes")
    office = f"{UNITS[0]}/办公室"

    def move(ref: str, trigger: str, by: str, at: str, *extra: str) -> None:
        result = cli("issue", "transition", ref, trigger, "--by", by, "--at", at, *extra)
        assert result.code == 0, (ref, trigger, result.err)

    audit = LEDGERS[0]
    # issue 4 done on time; issue 7 returned (second round) then done late; issue 5 submitted, awaiting
    move(f"{audit}/4", "submit", f"{UNITS[0]}/财务室", "2026-12-10T10:00", "--evidence", str(evidence), "--note", "已完成")
    move(f"{audit}/4", "approve", "巡察整改办公室", "2026-12-11T10:00")
    move(f"{audit}/5", "submit", f"{UNITS[0]}/机关党支部", "2026-12-20T10:00", "--evidence", str(evidence),
         "--note", "已完成")
    move(f"{audit}/7", "submit", office, "2026-12-21T10:00", "--evidence", str(evidence), "--note", "已完成")
    move(f"{audit}/7", "return", "纪检组长", "2026-12-22T10:00", "--note", "材料不全", "--deadline", "2027-01-04")
    move(f"{audit}/7", "submit", office, "2027-01-05T10:00", "--evidence", str(evidence), "--note", "已补充")
    move(f"{audit}/7", "approve", "巡察整改办公室", "2027-01-06T10:00")
    # the long-term item of the third unit rebounds
    result = cli("issue", "checkin", f"{LEDGERS[2]}/8", "--by", "巡察整改办公室", "--failed", "--note", "制度未执行",
                 "--at", "2027-01-08T10:00")
    assert result.code == 0, result.err
    return project


def _sql_counts(project: Path) -> dict[str, dict[str, int]]:
    """The same figures counted plainly, row by row, from the tables (not through district.py)."""
    from sqlalchemy import select

    from engine.app.cli.context import App
    from engine.store.models import HistoryEntry, Issue, Ledger

    app = App(str(project / "config.toml"))
    today = app.runtime.calendar.local_date(app.now(NOW))
    out: dict[str, dict[str, int]] = {}
    with app.reading() as session:
        reopened = set(session.scalars(select(HistoryEntry.issue_id).where(HistoryEntry.trigger == "reopen")))
        for issue, unit in session.execute(select(Issue, Ledger.unit).join(Ledger, Ledger.id == Issue.ledger_id)):
            row = out.setdefault(unit, dict.fromkeys(("issues", "done", "on_time", "overdue", "awaiting",
                                                      "second_round", "rebound"), 0))
            done = issue.state in ("completed", "long_term_sustained")
            steps = [h for h in session.scalars(select(HistoryEntry).where(HistoryEntry.issue_id == issue.id))
                     if h.to_state == issue.state and h.trigger != "import" and h.from_state != h.to_state]
            late = bool(steps and issue.deadline and max(h.at for h in steps).date() > issue.deadline)
            row["issues"] += 1
            row["done"] += done
            row["on_time"] += done and not late
            row["overdue"] += (not done and issue.overdue_on is not None and issue.overdue_on <= today)
            row["awaiting"] += issue.state == "awaiting_review"
            row["second_round"] += (issue.round or 1) > 1
            row["rebound"] += issue.id in reopened
    return out


def _figures(html: str) -> dict[str, dict[str, tuple[int, str]]]:
    out: dict[str, dict[str, tuple[int, str]]] = {}
    for unit, row in re.findall(r'<tr class="unit-row" data-unit="([^"]+)">(.*?)</tr>', html, re.S):
        out[unit] = {s: (int(v), href.replace("&amp;", "&"))
                     for href, s, v in [(h, s, v) for s, h, v in
                                        re.findall(r'class="figure" data-status="(\w+)" href="([^"]+)">(\d+)<', row)]}
    return out


def test_the_overview_figures_are_the_sql_counts_and_their_links_open_those_items(district, cli):
    from .test_workspace import _signed_in, workspace

    project = district
    expected = _sql_counts(project)
    assert set(expected) == set(UNITS)
    audit = expected[UNITS[0]]
    assert (audit["done"], audit["on_time"], audit["awaiting"], audit["second_round"]) == (4, 3, 1, 1)
    assert expected[UNITS[2]]["rebound"] == 1 and audit["overdue"] > 0
    link = cli("user", "link", "巡察整改办公室", "--at", NOW).out.strip().splitlines()[-1]
    with workspace(project, at=NOW) as base:
        client = _signed_in(base, link)
        page = client.get(base + "/ws/overview")
        assert page.status_code == 200
        figures = _figures(page.text)
        assert set(figures) == set(UNITS)
        for unit in UNITS:
            assert {s: v for s, (v, _) in figures[unit].items()} == expected[unit], unit
            done, issues = expected[unit]["done"], expected[unit]["issues"]
            assert f"{round(100 * done / issues, 1):g}%" in page.text
            for status, (count, href) in figures[unit].items():
                listing = client.get(base + href if href.startswith("/") else href).text
                assert f"问题清单（{count}）" in listing, (unit, status, href)
                assert listing.count('class="issue-row"') == count
                if status != "issues":  # the filter form keeps the figure's filter
                    assert f'name="status" value="{status}"' in listing
        # 共性问题: the example's categories are in all three units; the one of the 统计局 alone is not
        common = page.text.split('id="common"')[1]
        assert "政治理论学习" in common and "统计数据质量" not in common
        for unit in UNITS:  # each unit's count of a common category opens that many items
            href = re.search(rf'href="([^"]+)">{unit} (\d+)</a>', common.split("政治理论学习")[1])
            assert href and href.group(2) == "1"
            listing = client.get(base + href.group(1).replace("&amp;", "&")).text
            assert listing.count('class="issue-row"') == 1 and "党组理论学习中心组学习计划未按期制定" in listing
        assert client.get(base + "/ws/issues?status=nonsense").status_code == 400


def test_the_district_notice_holds_each_units_figures_and_items(district, cli):
    project = district
    expected = _sql_counts(project)
    md = cli("report", "--district", "--at", NOW)
    assert md.code == 0, md.err
    text = md.out
    for unit in UNITS:
        e = expected[unit]
        rate = f"{round(100 * e['done'] / e['issues'], 1):g}%"
        on_time = f"{round(100 * e['on_time'] / e['done'], 1):g}%" if e["done"] else "—"
        assert (f"{unit}：具体问题{e['issues']}个，已完成{e['done']}个，完成率{rate}；按时完成{e['on_time']}个，"
                f"按时完成率{on_time}；逾期{e['overdue']}个，待审核销号{e['awaiting']}个，"
                f"经退回二次整改{e['second_round']}个，问题反弹{e['rebound']}个。") in text, unit
        assert f"| {unit} | {e['issues']} | {e['done']} | {rate} |" in text
    overdue = text.split("## 二、")[1].split("## 三、")[0]
    second = text.split("## 三、")[1].split("## 四、")[0]
    assert f"### {UNITS[0]}（{expected[UNITS[0]]['overdue']}个）" in overdue
    assert "2026-区审计局/7" in second and "2026-区审计局/7" not in overdue  # done, though late
    common = text.split("## 四、")[1]
    assert "“政治理论学习”类问题在3个单位存在" in common and "统计数据质量" not in common
    out = project / "通报.docx"
    written = cli("report", "--district", "-o", out, "--at", NOW)
    assert written.code == 0, written.err
    from docx import Document

    body = "\n".join(p.text for p in Document(str(out)).paragraphs)
    cells = [c.text for t in Document(str(out)).tables for row in t.rows for c in row.cells]
    assert "关于巡察整改情况的通报" in body and all(u in cells for u in UNITS)
    assert cli("report", "--district", "--ledger", "2026-区审计局").code == 2


def test_the_overview_on_a_phone(district, cli):
    """At 390 px each unit is a card: nothing scrolls sideways and each completion bar is drawn to its rate."""
    from .test_board import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, _browser_or_skip
    from .test_workspace import workspace

    sync_playwright = _browser_or_skip()
    project = district
    link = cli("user", "link", "巡察整改办公室", "--at", NOW).out.strip().splitlines()[-1]
    path = link[link.index("/w/"):]
    with workspace(project, at=NOW) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844},
                                       is_mobile=True).new_page()
            page.goto(base + path)
            page.goto(base + "/ws/overview")
            assert page.locator("tr.unit-row").count() == 3
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            for unit in UNITS:
                row = page.locator(f"tr.unit-row[data-unit='{unit}']")
                rate = row.locator("[data-rate=completion]").inner_text()
                width = float(row.locator("svg.bar rect").nth(1).get_attribute("width") or "0")
                assert abs(width - 1.2 * float(rate.rstrip("%"))) < 0.2, (unit, rate, width)
                assert row.locator("svg.bar").bounding_box()["width"] == 120
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "district-overview-390.png"), full_page=True)
            page.locator(f"tr.unit-row[data-unit='{UNITS[0]}'] a[data-status=second_round]").click()
            page.wait_for_url("**/ws/issues?**")
            assert page.locator("tr.issue-row").count() == 1 and "/7" in page.locator("tr.issue-row").inner_text()
        finally:
            browser.close()


def test_metrics_per_unit_are_the_sql_counts_and_promtool_accepts_them(district):
    """/metrics' per-unit gauges (issue #23): the overview's clauses, every unit, promtool-clean."""
    import shutil
    import subprocess

    from prometheus_client import generate_latest

    from engine.app.cli.context import App
    from engine.app.vitals import Metrics
    from engine.issues.district import unit_counts

    app = App(str(district / "config.toml"))
    today = app.runtime.calendar.local_date(app.now(NOW))

    def figures() -> dict[str, dict[str, int]]:
        with app.reading() as session:
            return unit_counts(session, app.runtime, today, ("overdue", "awaiting"))

    text = generate_latest(Metrics(lambda: {"pending": 1}, figures, database="sqlite").registry).decode()
    expected = _sql_counts(district)
    for unit in UNITS:
        assert f'duban_issues_overdue{{unit="{unit}"}} {float(expected[unit]["overdue"])}' in text, text
        assert f'duban_issues_awaiting_signoff{{unit="{unit}"}} {float(expected[unit]["awaiting"])}' in text
    assert expected[UNITS[0]]["awaiting"] == 1 and expected[UNITS[0]]["overdue"] > 0
    assert 'duban_build_info{database="sqlite",python="' in text
    promtool = shutil.which("promtool", path=f"{ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}")
    assert promtool, "promtool is installed by scripts/setup.sh (Debian's prometheus package)"
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr

"""The rectification report (md, html, docx → PDF) and the ICS feed, from the shipped ledger.

The shipped ledger is the one behind tests/data/seed-report.txt, a real 整改情况报告: the report
must reproduce its overview sentence and its numbering of areas, categories and problems.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from tests.conftest import ROOT, SEED_CSV

SEED = (ROOT / "tests" / "data" / "seed-report.txt").read_text(encoding="utf-8")
REPORT_CONFIG = """
[report]
unit = "中共重庆市璧山区科学技术局党组"
short_unit = "区科技局党组"
inspector = "区委第一巡察组"
title = "中共重庆市璧山区科学技术局党组\\n关于落实区委第一巡察组反馈意见整改\\n情况的报告"
"""
# The seed's own sentence: nothing open, 9 long-term problems among the 26 rectified.
SEED_SENTENCE = ("区委第一巡察组反馈意见中指出的区科技局党组4个方面共26个具体问题，已全部整改完成，"
                 "对于需要长期坚持的9个问题，做到立即整改，并将长期坚持。")
AT = "2022-10-20T10:00"


def require_tools(*tools: str) -> None:
    """Skip without the tools, unless CI demands them (DUBAN_REQUIRE_BROWSER_TOOLS=1): then fail."""
    missing = [t for t in tools if shutil.which(t) is None]
    if not missing:
        return
    message = f"missing {', '.join(missing)} (scripts/setup.sh installs them)"
    if os.environ.get("DUBAN_REQUIRE_BROWSER_TOOLS") == "1":
        pytest.fail(f"DUBAN_REQUIRE_BROWSER_TOOLS=1 but {message}")
    pytest.skip(message)


@pytest.fixture
def bishan(project, cli):
    """The shipped ledger, imported in 2022 with its feedback date, duties stored from then on."""
    with open(project / "config.toml", "a", encoding="utf-8") as f:
        f.write(REPORT_CONFIG)
    assert cli("init", "--at", "2022-07-20T10:00").code == 0
    result = cli("ledger", "import", SEED_CSV, "--feedback-date", "2022-07-15", "--at", "2022-07-20T10:00")
    assert result.code == 0, result.err
    return cli


def _lines(text: str) -> list[str]:
    """Report lines without Markdown heading marks or block quotes."""
    return [re.sub(r"^(#+|>)\s*", "", line).strip() for line in text.splitlines()]


def _structure(lines: list[str]) -> dict[str, list[str]]:
    return {
        "areas": [line for line in lines if re.match(r"^（[一二三四五六七八九十]+）", line)],
        "categories": [line for line in lines if re.match(r"^\d+．", line)],
        "problems": [line for line in lines if re.match(r"^（\d+）关于“", line)],
    }


def test_the_seed_sentence_is_the_seed_reports_own():
    assert SEED_SENTENCE in SEED


def test_markdown_report_reproduces_the_seed(bishan):
    result = bishan("report", "--format", "md", "--at", AT)
    assert result.code == 0, result.err
    text = result.out
    assert SEED_SENTENCE in text
    assert text.startswith("# 中共重庆市璧山区科学技术局党组关于落实区委第一巡察组反馈意见整改情况的报告")
    ours, seed = _structure(_lines(text)), _structure(_lines(SEED))
    assert ours["areas"] == seed["areas"]  # （一）…（四）, worded as the seed words them
    assert len(ours["areas"]) == 4
    assert ours["categories"] == seed["categories"]  # 1．… 10．…
    assert [c.split("．")[0] for c in ours["categories"]] == [str(n) for n in range(1, 11)]
    numbers = [int(re.match(r"^（(\d+)）", p).group(1)) for p in ours["problems"]]
    assert numbers == list(range(1, 27))  # numbered continuously across areas
    # Every title as the seed has it, nested quotes turned single; (10) names one more office in the seed.
    differ = [n for n, (a, b) in enumerate(zip(ours["problems"], seed["problems"], strict=True), 1) if a != b]
    assert differ == [10]
    for heading in ("一、高度重视，精心组织，认真落实整改责任", "二、突出重点，注重实效，确保整改落到实处",
                    "三、认真总结，增添措施，推进整改全面深化"):
        assert heading in text and heading in SEED
    assert "整改状态：长期坚持；整改时限：2022年9月30日；佐证材料：0份" in text
    assert "附件" in text and "往来款项清理" in text  # the recurring duties, done and due


def test_open_problems_are_counted_in_the_issues_form(bishan, project):
    assert bishan("issue", "transition", "bishan-keji-2022/1", "reopen", "--by", "党组书记", "--note", "问题反弹",
                  "--at", "2022-08-01T10:00").code == 0
    (project / "纪要.txt").write_text("会议纪要", encoding="utf-8")
    assert bishan("issue", "transition", "bishan-keji-2022/4", "reopen", "--by", "分管副局长", "--note", "未完成",
                  "--at", "2022-08-01T10:00").code == 0
    result = bishan("report", "--at", AT)
    assert result.code == 0, result.err
    assert "区科技局党组4个方面共26个具体问题，已整改完成24个，正在整改2个，需长期坚持8个。" in result.out
    assert "整改状态：整改中；整改时限：2022年9月30日（已逾期11个工作日）；佐证材料：0份" in result.out
    assert "整改状态：整改中；整改时限：2022年10月31日；佐证材料：0份" in result.out  # (4): not yet due


def test_html_report_from_the_cli(bishan, project):
    out = project / "report.html"
    result = bishan("report", "-o", out, "--at", AT)
    assert result.code == 0, result.err
    assert "4个方面共26个具体问题，已整改完成26个，正在整改0个，需长期坚持9个" in result.out
    page = out.read_text(encoding="utf-8")

    class Headings(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tag: str | None = None
            self.found: dict[str, list[str]] = {}

        def handle_starttag(self, tag, attrs):
            self.tag = tag

        def handle_data(self, data):
            if self.tag in ("h3", "h4", "h5") and data.strip():
                self.found.setdefault(self.tag, []).append(data.strip())

        def handle_endtag(self, tag):
            self.tag = None

    parser = Headings()
    parser.feed(page)
    seed = _structure(_lines(SEED))
    assert parser.found["h3"] == seed["areas"]
    assert parser.found["h4"] == seed["categories"]
    assert len(parser.found["h5"]) == 26
    assert SEED_SENTENCE in page
    assert "@page { size: A4; margin: 37mm 26mm 35mm 28mm; }" in page


def test_html_report_escapes_ledger_text(bishan, project, tmp_path):
    csv = tmp_path / "x.csv"
    csv.write_text("序号,方面,问题类别,具体问题,整改措施,责任领导,责任科室,整改时限,整改状态\n"
                   "1,一方面,1．类别,<script>alert(1)</script>,措施,书记,办公室,2022-09-30,整改中\n", encoding="utf-8")
    assert bishan("ledger", "import", csv, "--ledger", "x", "--at", "2022-07-20T10:00").code == 0
    page = bishan("report", "--ledger", "x", "--format", "html", "--at", AT).out
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_docx_follows_gbt_9704(bishan, project):
    from docx import Document
    from docx.oxml.ns import qn

    out = project / "report.docx"
    result = bishan("report", "-o", out, "--at", AT)
    assert result.code == 0, result.err
    doc = Document(str(out))
    section = doc.sections[0]
    mm = lambda length: round(length.mm)  # noqa: E731
    assert (mm(section.page_width), mm(section.page_height)) == (210, 297)
    assert (mm(section.top_margin), mm(section.bottom_margin)) == (37, 35)
    assert (mm(section.left_margin), mm(section.right_margin)) == (28, 26)

    def east_asia(style_name: str) -> str:
        return doc.styles[style_name].element.rPr.rFonts.get(qn("w:eastAsia"))

    assert east_asia("Normal") == "仿宋_GB2312"
    assert east_asia("公文标题") == "方正小标宋简体"
    assert east_asia("一级标题") == "黑体"
    assert east_asia("二级标题") == "楷体_GB2312"
    normal = doc.styles["Normal"]
    assert normal.font.size.pt == 16
    assert 28 <= normal.paragraph_format.line_spacing.pt <= 29
    assert normal.element.pPr.ind.get(qn("w:firstLineChars")) == "200"
    title = doc.paragraphs[0]
    assert title.style.name == "公文标题" and title.style.font.size.pt == 22
    assert title.style.paragraph_format.alignment == 1  # centred
    assert [p.text for p in doc.paragraphs[:3]] == [
        "中共重庆市璧山区科学技术局党组", "关于落实区委第一巡察组反馈意见整改", "情况的报告"]
    texts = [p.text for p in doc.paragraphs]
    assert SEED_SENTENCE in texts
    assert [t for t in texts if re.match(r"^（\d+）关于", t)] == _structure(_lines("\n".join(texts)))["problems"]
    assert len(_structure(texts)["problems"]) == 26
    footer = section.footer.paragraphs[0]._p.xml
    assert "PAGE" in footer and "— " in footer and " —" in footer
    assert section.even_page_footer.paragraphs[0]._p.xml.count("PAGE") == 1
    assert doc.settings.odd_and_even_pages_header_footer


def test_docx_converts_to_pdf_in_libreoffice(bishan, project):
    require_tools("soffice", "pdftotext")
    out = project / "report.docx"
    assert bishan("report", "-o", out, "--at", AT).code == 0
    profile = project / "lo-profile"  # a private profile: no clash with another soffice running
    done = subprocess.run(["soffice", f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to", "pdf",
                           "--outdir", str(project), str(out)], capture_output=True, text=True, timeout=240)
    pdf = project / "report.pdf"
    assert pdf.is_file() and pdf.stat().st_size > 10_000, done.stdout + done.stderr
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    flat = re.sub(r"\s+", "", text)  # lines wrap, and digits get spaces around them
    assert re.sub(r"\s+", "", SEED_SENTENCE) in flat
    assert "（26）关于“对上一轮巡察整改工作不够重视，个别整改措施未长期坚持”问题的整改情况。" in flat
    assert "—1—" in flat  # the page number field was laid out


def _pdf_pages(docxs: list[Path], folder: Path) -> dict[str, list[str]]:
    """Each DOCX converted by LibreOffice (one process for all), as its pages' text, whitespace removed."""
    profile = folder / "lo-profile"
    done = subprocess.run(["soffice", f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to", "pdf",
                           "--outdir", str(folder / "pdf"), *map(str, docxs)], capture_output=True, text=True,
                          timeout=240)
    out = {}
    for docx in docxs:
        pdf = folder / "pdf" / (docx.stem + ".pdf")
        assert pdf.is_file(), done.stdout + done.stderr
        text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, text=True,
                              check=True).stdout
        out[docx.stem] = [re.sub(r"\s+", "", page) for page in text.split("\f") if page.strip()]
    return out


def test_the_signature_never_stands_alone_on_a_page(cli, project):
    """The seed ledger with the shipped settings puts the signature at the top of a page: without
    keep-with-next it stood there alone. Three more copies, one to three lines longer, move the
    page break across the closing lines."""
    from docx import Document

    from engine.report.settings import ReportSettings

    require_tools("soffice", "pdftotext")
    intro = ReportSettings().intro[0]
    with open(project / "config.toml", "a", encoding="utf-8") as f:
        f.write("[report]\n")
        for k in (1, 2, 3):
            f.write(f'[report.ledgers."seed-{k}"]\nintro = {[intro] + ["另行说明。"] * k}\n'.replace("'", '"'))
    assert cli("init", "--at", "2022-07-20T10:00").code == 0
    names = ["bishan-keji-2022", "seed-1", "seed-2", "seed-3"]
    docxs = []
    for name in names:
        assert cli("ledger", "import", SEED_CSV, "--ledger", name, "--feedback-date", "2022-07-15",
                   "--at", "2022-07-20T10:00").code == 0
        docxs.append(project / f"{name}.docx")
        assert cli("report", "--ledger", name, "-o", docxs[-1], "--at", AT).code == 0
    signature = "中共重庆市璧山区科学技术局党组2022年10月20日"
    for name, pages in _pdf_pages(docxs, project).items():
        signed = [page for page in pages if signature in page]
        assert len(signed) == 1, (name, pages)
        rest = re.sub(r"—\d+—", "", signed[0]).replace(signature, "")
        assert rest.endswith("正督促落实（详见附件）。"), (name, signed[0])  # the closing paragraph came along
    paragraphs = Document(str(docxs[0])).paragraphs
    last = [p.text for p in paragraphs].index("2022年10月20日")
    assert paragraphs[last - 1].text == "中共重庆市璧山区科学技术局党组"
    assert all(p.paragraph_format.keep_with_next for p in paragraphs[last - 3:last])
    assert all(p.paragraph_format.keep_together for p in paragraphs[last - 3:last + 1])


def test_report_settings_are_checked(bishan, project):
    with open(project / "config.toml", "a", encoding="utf-8") as f:
        f.write("titel = \"typo\"\n")  # still inside [report]
    result = bishan("report", "--at", AT)
    assert result.code == 2
    assert "titel" in result.err


def test_admin_templates_replace_the_shipped_ones_in_a_sandbox(bishan, project):
    folder = project / "tpl"
    folder.mkdir()
    (folder / "report.md.j2").write_text("{{ report.overview.counted }}|{{ report.areas|length }}\n", encoding="utf-8")
    with open(project / "config.toml", "a", encoding="utf-8") as f:
        f.write('templates = "tpl"\n')
    result = bishan("report", "--at", AT)
    assert result.code == 0, result.err
    assert result.out == "4个方面共26个具体问题，已整改完成26个，正在整改0个，需长期坚持9个|4\n"
    (folder / "report.md.j2").write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}", encoding="utf-8")
    result = bishan("report", "--at", AT)
    assert result.code == 2 and "unsafe" in result.err  # the sandbox refuses, and the CLI says so


def test_docx_needs_a_file_and_one_ledger(bishan, tmp_path):
    assert bishan("report", "--format", "docx").code == 2
    csv = tmp_path / "y.csv"
    csv.write_text(SEED_CSV.read_text(encoding="utf-8"), encoding="utf-8")
    assert bishan("ledger", "import", csv, "--ledger", "second", "--at", "2022-07-20T10:00").code == 0
    result = bishan("report", "--at", AT)
    assert result.code == 2 and "--ledger" in result.err


# -- the ICS feed ------------------------------------------------------------------------------


def _open_counts(project: Path, department: str | None = None) -> tuple[int, int]:
    """What the sweep follows, counted from SQL on its own: issues in a state with a deadline rule
    or in the check-in state (长期坚持), and open duty occurrences (a look-back only while its
    issue is 长期坚持)."""
    from engine.store.models import Duty, DutyOccurrence, Issue

    engine = create_engine(f"sqlite:///{project / 'duban.db'}")
    followed = ["identified", "planned", "in_progress", "long_term_sustained"]
    with Session(engine) as s:
        issues = s.scalars(select(Issue.department).where(Issue.state.in_(followed)))
        deadlines = sum(1 for d in issues if department in (None, d))
        rows = s.execute(select(Duty.owners, Issue.department, Issue.state, DutyOccurrence.issue_id)
                         .select_from(DutyOccurrence).join(Duty)
                         .outerjoin(Issue, Issue.id == DutyOccurrence.issue_id).where(DutyOccurrence.state == "open"))
        duties = sum(1 for owners, dep, state, issue_id in rows
                     if (issue_id is None or state == "long_term_sustained")
                     and (department is None or department in owners or dep == department))
    engine.dispose()
    return deadlines, duties


def test_calendar_export_parses_back(bishan, project):
    from icalendar import Calendar

    assert bishan("issue", "transition", "bishan-keji-2022/1", "reopen", "--by", "党组书记", "--note", "问题反弹",
                  "--at", "2022-08-01T10:00").code == 0
    out = project / "duban.ics"
    result = bishan("calendar", "export", "-o", out, "--at", AT)
    assert result.code == 0, result.err
    cal = Calendar.from_ical(out.read_bytes())
    events = cal.walk("VEVENT")
    deadlines, duties = _open_counts(project)
    assert deadlines == 1 + 8 and duties > 10  # issue 1 reopened; 8 long-term items' check-ins
    assert len(events) == deadlines + duties  # one VEVENT per open deadline and open duty occurrence
    uids = [str(e["UID"]) for e in events]
    assert len(set(uids)) == len(uids)
    issue = next(e for e in events if "中心组学习不够深入" in str(e["SUMMARY"]))
    assert issue.decoded("DTSTART") == dt.date(2022, 9, 30)  # all-day, on the 整改时限
    assert issue.decoded("DTEND") == dt.date(2022, 10, 1)
    description = str(issue["DESCRIPTION"])
    for part in ("台账：bishan-keji-2022", "序号：1", "责任领导：党组书记", "责任科室：办公室"):
        assert part in description
    triggers = [a.decoded("TRIGGER") for a in issue.walk("VALARM")]
    # where duban reminds first: 5 working days before 2022-09-30 (a Friday), at 09:00
    assert triggers == [dt.timedelta(days=-7, hours=9)]
    assert all(a["ACTION"] == "DISPLAY" for a in issue.walk("VALARM"))
    # the same export again gives the same UIDs (calendar programs update, not duplicate)
    again = project / "again.ics"
    assert bishan("calendar", "export", "-o", again, "--at", AT).code == 0
    assert sorted(str(e["UID"]) for e in Calendar.from_ical(again.read_bytes()).walk("VEVENT")) == sorted(uids)


def test_calendar_export_for_one_department(bishan, project):
    from icalendar import Calendar

    result = bishan("calendar", "export", "--department", "财务室", "--at", AT)
    assert result.code == 0, result.err
    events = Calendar.from_ical(result.out).walk("VEVENT")
    deadlines, duties = _open_counts(project, "财务室")
    assert len(events) == deadlines + duties > 0
    assert all("财务室" in str(e["DESCRIPTION"]) for e in events)


def test_a_long_feed_lists_the_earliest_due_and_says_it_is_cut(bishan, project, monkeypatch):
    from icalendar import Calendar

    from engine.ics import feed

    whole = Calendar.from_ical(bishan("calendar", "export", "--at", AT).out)
    assert "X-WR-CALDESC" not in whole
    monkeypatch.setattr(feed, "MAX_EVENTS", 5)
    result = bishan("calendar", "export", "--at", AT)
    assert result.code == 0, result.err
    cal = Calendar.from_ical(result.out)
    events = cal.walk("VEVENT")
    total = sum(_open_counts(project))
    assert len(events) == 5 < total == len(whole.walk("VEVENT"))
    assert str(cal["X-WR-CALDESC"]) == "只列出最早到期的5项，其余请在督办看板查看"
    earliest = sorted(e.decoded("DTSTART") for e in whole.walk("VEVENT"))[:5]
    assert sorted(e.decoded("DTSTART") for e in events) == earliest


def test_ics_over_http_and_its_guard(bishan, project):
    import httpx
    from icalendar import Calendar

    from engine.app.http.app import create_app

    from .conftest import serving, site_for

    remote = {"X-Forwarded-For": "192.0.2.7"}  # what a reverse proxy on this machine sends
    with serving(create_app(site_for(project / "config.toml", at=AT))) as base:
        answer = httpx.get(f"{base}/calendar.ics", params={"department": "财务室"})
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/calendar")
        assert len(Calendar.from_ical(answer.content).walk("VEVENT")) == sum(_open_counts(project, "财务室"))
        assert httpx.get(f"{base}/calendar.ics", headers=remote).status_code == 403
    with serving(create_app(site_for(project / "config.toml", at=AT, token="s3cret"))) as base:
        assert httpx.get(f"{base}/calendar.ics", headers=remote).status_code == 401
        assert httpx.get(f"{base}/calendar.ics", params={"token": "s3cret"}, headers=remote).status_code == 200


def test_the_docx_has_no_tracking_line_by_default_the_md_has(bishan, project):
    from docx import Document

    out = project / "report.docx"
    assert bishan("report", "-o", out, "--at", AT).code == 0
    assert not [p.text for p in Document(str(out)).paragraphs if p.text.startswith("整改状态：")]
    assert "整改状态：长期坚持" in bishan("report", "--format", "md", "--at", AT).out


def test_the_unit_comes_from_the_ledger_else_the_report_says_so(cli, project, tmp_path):
    assert cli("init", "--at", "2026-11-02T10:00").code == 0
    # the shipped example carries its unit in a 单位 column
    assert cli("ledger", "import", SEED_CSV, "--feedback-date", "2022-07-15", "--at", "2026-11-02T10:00").code == 0
    shipped = cli("report", "--ledger", "bishan-keji-2022", "--format", "md", "--at", "2026-11-02T11:00")
    assert shipped.out.startswith("# 中共重庆市璧山区科学技术局党组关于落实巡察组反馈意见整改情况的报告")
    body = shipped.out.split("台账校验值")[0]  # the chain head's footer names the ledger for `audit verify`
    assert "bishan-keji-2022" not in body and "本单位" not in shipped.err
    rows = SEED_CSV.read_text(encoding="utf-8").splitlines()
    bare = tmp_path / "no-unit.csv"
    bare.write_text("\n".join(line.rsplit(",", 1)[0] for line in rows) + "\n", encoding="utf-8")
    assert cli("ledger", "import", bare, "--feedback-date", "2022-07-15", "--at", "2026-11-02T10:00").code == 0
    report = cli("report", "--ledger", "no-unit", "--format", "md", "--at", "2026-11-02T11:00")
    assert report.code == 0, report.err
    assert report.out.startswith("# 本单位关于落实巡察组反馈意见整改情况的报告")
    assert "no-unit" not in report.out.split("\n", 1)[0]
    assert "names no unit: the report says 本单位" in report.err


def test_the_workflow_sets_the_reports_wording(cli, project, tmp_path):
    wf = project / "workflows" / "inspection-rectification.yaml"
    wf.write_text(wf.read_text(encoding="utf-8") + (
        "\nreport:\n  inspector: 区审计局\n  part1_heading: 高度重视，认真落实审计整改责任\n"), encoding="utf-8")
    assert cli("init", "--at", "2026-11-02T10:00").code == 0
    assert cli("ledger", "import", SEED_CSV, "--feedback-date", "2022-07-15", "--at", "2026-11-02T10:00").code == 0
    text = cli("report", "--format", "md", "--at", "2026-11-02T11:00").out
    assert "关于落实区审计局反馈意见整改情况的报告" in text and "高度重视，认真落实审计整改责任" in text
    assert "巡察组" not in text.split("\n", 1)[0]

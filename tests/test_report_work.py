"""The report says what was done (issue #20, item 3): a ledger worked through the workspace (real
uvicorn, a department signed in by its link) and the CLI, then reported on.

Also here: the unit's Party organisation and the inspection team from the config, numbering kept
in ledger cells never doubled, and the appendix's period being the ledger's own.
"""

from __future__ import annotations

import re

import httpx
import pytest

from .conftest import ROOT, SEED_CSV, serving, site_for

EXAMPLE = ROOT / "examples" / "2026-区审计局.csv"
LEDGER = "2026-区审计局"
UNIT = "中共重庆市璧山区审计局党组"
T0 = "2026-12-01T09:00"
HEADERS = "序号,方面,问题类别,具体问题,整改措施,责任领导,责任科室,整改时限,整改状态,单位\n"


def _paragraph_after(report: str, heading_part: str) -> str:
    """The paragraph under the problem heading holding ``heading_part`` (md report)."""
    lines = report.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("##### ") and heading_part in line)
    return next(line for line in lines[at + 1:] if line.strip())


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def _action(html: str, form: str) -> str:
    found = re.search(rf'<form [^>]*action="([^"]+)"[^>]* id="{form}"', html)
    assert found, html[:500]
    return found.group(1).replace("&amp;", "&")


def _progress_on_the_web(project, cli, at: str, note: str) -> None:
    """办公室 opens its link on the workspace (its clock at ``at``) and records progress on item 7."""
    link = cli("user", "link", "办公室", "--at", at)
    assert link.code == 0, link.err
    path = link.out.strip().splitlines()[-1].removeprefix("http://127.0.0.1:9")
    with serving(_app(project, at)) as base, httpx.Client(base_url=base, timeout=30, follow_redirects=True) as web:
        assert "我的待办" in web.get(path).text
        page = web.get(f"/ws/issues/{LEDGER}/7").text
        done = web.post(_action(page, "progress"), data={"note": note, "csrf": _csrf(page)})
        assert done.status_code == 200 and note.splitlines()[0] in done.text


def _app(project, at: str):
    from engine.app.http.app import create_app

    return create_app(site_for(project / "config.toml", at=at))


@pytest.fixture
def audit(project, cli):
    with open(project / "config.toml", "a", encoding="utf-8") as f:
        f.write('[board]\npublic_url = "http://127.0.0.1:9"\n[report]\ninspector = "区委第一巡察组"\n')
    assert cli("init", "--at", T0).code == 0
    result = cli("ledger", "import", EXAMPLE, "--feedback-date", "2026-11-20", "--at", T0)
    assert result.code == 0, result.err
    assert cli("user", "add", "纪检组长", "--role", "reviewer").code == 0
    return cli


def test_the_report_quotes_the_recorded_work_newest_first_dated(audit, project):
    cli = audit
    before = cli("report", "--format", "md", "--at", "2026-12-10T10:00").out
    plan = "对上轮反馈问题开展回头看，建立长效机制"
    assert _paragraph_after(before, "上轮巡察反馈问题整改不彻底") == (
        f"整改措施：{plan}。正在整改，计划于2026年12月31日前完成。")

    _progress_on_the_web(project, cli, "2026-12-14T10:00", "已召开党组会专题研究，梳理上轮反馈问题12个")
    _progress_on_the_web(project, cli, "2026-12-18T15:00", "已完成9个问题的回头看；\n其余3个正在推进")
    minutes = project / "回头看情况报告.pdf"
    minutes.write_bytes(b"%PDF-1.4 look-back report")
    submitted = cli("issue", "transition", f"{LEDGER}/7", "submit", "--by", "办公室", "--evidence", minutes,
                    "--note", "上轮反馈的12个问题已全部完成回头看，建立长效机制3项", "--at", "2026-12-22T10:00")
    assert submitted.code == 0, submitted.err

    waiting = cli("report", "--format", "md", "--at", "2026-12-24T10:00").out
    recorded = ("2026年12月22日提交整改完成情况：上轮反馈的12个问题已全部完成回头看，建立长效机制3项。"
                "2026年12月18日，已完成9个问题的回头看。其余3个正在推进。"
                "2026年12月14日，已召开党组会专题研究，梳理上轮反馈问题12个。")
    assert _paragraph_after(waiting, "上轮巡察反馈问题整改不彻底") == recorded + "目前待审核销号。"
    assert plan not in _paragraph_after(waiting, "上轮巡察反馈问题整改不彻底")  # the plan gives way to the work
    # what nobody recorded on: the plan, and where it stands in plain words
    assert _paragraph_after(waiting, "党组理论学习中心组学习计划未按期制定") == (
        "整改措施：制定年度学习计划，全年集体学习不少于12次。正在整改，计划于2026年12月31日前完成。")
    overdue = _paragraph_after(waiting, "往来款项长期挂账未清理")
    assert overdue.startswith("整改措施：开展往来款项专项清理，按月对账。正在整改，原计划于2026年12月15日前完成，已逾期")
    assert re.search(r"已逾期\d+个工作日。$", overdue)
    assert _paragraph_after(waiting, "党费收缴台账不健全") == "建立党费收缴台账，按季公示。"  # done: no status words
    # every problem's paragraph ends a sentence
    for heading in re.findall(r"^##### .*$", waiting, re.M):
        assert _paragraph_after(waiting, heading[6:]).endswith("。"), heading

    assert cli("issue", "transition", f"{LEDGER}/7", "approve", "--by", "纪检组长",
               "--at", "2026-12-24T15:00").code == 0
    signed = cli("report", "--format", "md", "--at", "2026-12-25T10:00").out
    assert _paragraph_after(signed, "上轮巡察反馈问题整改不彻底") == recorded
    # the same paragraph in the html and the docx
    assert recorded in cli("report", "--format", "html", "--at", "2026-12-25T10:00").out
    from docx import Document

    out = project / "report.docx"
    assert cli("report", "-o", out, "--at", "2026-12-25T10:00").code == 0
    assert recorded in [p.text for p in Document(str(out)).paragraphs]


def test_the_party_organisation_and_the_inspection_team_come_from_the_ledger_or_the_config(cli, project, tmp_path):
    assert cli("init", "--at", T0).code == 0
    bare = tmp_path / "区教委.csv"
    bare.write_text(HEADERS + "1,党的建设方面,组织建设,问题甲,措施,书记,办公室,2026-12-31,已完成,区教育委员会\n",
                    encoding="utf-8")
    led = tmp_path / "区卫健委.csv"
    led.write_text(HEADERS + "1,党的建设方面,组织建设,问题甲,措施,书记,办公室,2026-12-31,已完成,中共区卫生健康委员会党委\n",
                   encoding="utf-8")
    for path in (bare, led):
        assert cli("ledger", "import", path, "--at", T0).code == 0, path

    def title(ledger: str) -> str:
        result = cli("report", "--ledger", ledger, "--format", "md", "--at", T0)
        assert result.code == 0, result.err
        return result.out.splitlines()[0]

    assert title("区教委") == "# 中共区教育委员会党组关于落实巡察组反馈意见整改情况的报告"  # the defaults
    assert title("区卫健委") == "# 中共区卫生健康委员会党委关于落实巡察组反馈意见整改情况的报告"  # the ledger's own
    with open(project / "config.toml", "a", encoding="utf-8") as f:
        f.write('[report]\ninspector = "区委第一巡察组"\nparty_body = "党委"\n'
                '[report.ledgers."区卫健委"]\ninspector = "区委第二巡察组"\n')
    assert title("区教委") == "# 中共区教育委员会党委关于落实区委第一巡察组反馈意见整改情况的报告"
    assert title("区卫健委") == "# 中共区卫生健康委员会党委关于落实区委第二巡察组反馈意见整改情况的报告"
    body = cli("report", "--ledger", "区教委", "--format", "md", "--at", T0).out
    assert "根据区委第一巡察组反馈意见，区教育委员会党委" in body
    with open(project / "config.toml", "a", encoding="utf-8") as f:
        f.write('party_body = "党小组"\n')  # inside [report.ledgers."区卫健委"]
    wrong = cli("report", "--ledger", "区卫健委", "--at", T0)
    assert wrong.code == 2 and "party_body" in wrong.err and "党委" in wrong.err and "Traceback" not in wrong.err


def test_numbering_kept_in_the_cells_is_not_doubled(cli, tmp_path):
    assert cli("init", "--at", T0).code == 0
    path = tmp_path / "numbered.csv"
    tail = ",措施,书记,办公室,2026-12-31,已完成,区民政局"
    rows = ["1,一、贯彻落实党的路线方针政策方面,（一）政治理论学习,1.养老服务补贴发放不及时",
            "2,一、贯彻落实党的路线方针政策方面,（一）政治理论学习,（2）关于“学习不深入”问题",
            "3,二、全面从严治党方面,2．作风建设,1.5万元经费未入账",
            "4,二、全面从严治党方面,,公务用车管理不规范"]
    path.write_text(HEADERS + "".join(row + tail + "\n" for row in rows), encoding="utf-8")
    assert cli("ledger", "import", path, "--at", T0).code == 0
    text = cli("report", "--format", "md", "--at", T0).out
    headings = [line for line in text.splitlines() if line.startswith("###")]
    assert headings == [
        "### （一）贯彻落实党的路线方针政策方面存在的问题。",
        "#### 1．　政治理论学习。",
        "##### （1）关于“养老服务补贴发放不及时”问题的整改情况。",
        "##### （2）关于“学习不深入”问题的整改情况。",
        "### （二）全面从严治党方面存在的问题。",
        "#### 2．　作风建设。",
        "##### （3）关于“1.5万元经费未入账”问题的整改情况。",  # an amount, not a number
        "##### （4）关于“公务用车管理不规范”问题的整改情况。",  # a blank category: no empty "3．　。"
    ]


def test_the_appendix_follows_the_ledgers_own_period(cli, project):
    # a 2022 ledger taken on in 2026: the appendix runs from its feedback date, and says from when
    # the recurring duties are on record
    assert cli("init", "--at", "2026-11-02T10:00").code == 0
    assert cli("ledger", "import", SEED_CSV, "--feedback-date", "2022-07-15", "--at", "2026-11-02T10:00").code == 0
    text = cli("report", "--format", "md", "--at", "2026-11-02T11:00").out
    assert "2026年1月1日以来" not in text
    assert "2022年7月15日以来已完成" in text
    assert "经常性工作落实情况（2022年7月15日至2026年11月2日）" in text
    assert "注：经常性工作自2026年1月1日起纳入督办记录，此前的落实情况未计入。" in text


@pytest.mark.parametrize("cell, expected", [
    ("1．政治理论学习", (1, "政治理论学习")), ("（一）政治理论学习", (1, "政治理论学习")),
    ("十二、其他方面", (12, "其他方面")), ("(3) 作风", (3, "作风")), ("2、作风", (2, "作风")),
    ("1.5万元未入账", (None, "1.5万元未入账")), ("十个一抓手", (None, "十个一抓手")), ("2022年度", (None, "2022年度")),
])
def test_numbering_prefixes(cell, expected):
    from engine.report.wording import split_number

    assert split_number(cell) == expected


@pytest.mark.parametrize("note, expected", [
    ("已完成", "已完成。"), ("已完成；", "已完成。"), ("已完成。", "已完成。"), ("已印发《办法》。”", "已印发《办法》。”"),
    ("一是开会，\n二是印发", "一是开会。二是印发。"), ("done.", "done。"), ("  ", ""), ("已\x01完成\x1f", "已完成。"),
])
def test_every_sentence_ends_with_a_full_stop(note, expected):
    from engine.report.wording import sentence

    assert sentence(note) == expected


def test_a_sentence_drops_exactly_unicodes_control_characters():
    """Category Cc goes (the tab stays), every other character of a line is kept as it was."""
    import unicodedata

    from engine.report.wording import sentence

    for code in range(0x3000):
        ch = chr(code)
        line = f"甲{ch}乙"
        if len(line.splitlines()) > 1:  # a line break of some kind: two sentences, tested above
            continue
        control = unicodedata.category(ch) == "Cc" and ch != "\t"
        assert sentence(line) == ("甲乙。" if control else f"{line}。"), hex(code)

"""The digest renderer: ordering, wording per language, template overrides, sandbox and escaping."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from jinja2.sandbox import SecurityError

from notifications.render import (
    TEMPLATES,
    URGENCY,
    Digest,
    DigestItem,
    Renderer,
    sample_digest,
    urgency_key,
)

TZ = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2022, 11, 1, 9, 0, tzinfo=TZ)
LEDGER = "bishan-keji-2022"


def issue(kind: str, ref: str, title: str, due: dt.date, days_overdue: int = 0, level: int = 0,
          rule: str | None = None, template: str | None = None, what: str = "整改时限",
          actions: tuple[str, ...] = ("整改完成",), url: str | None = None) -> DigestItem:
    return DigestItem(kind=kind, rule=rule or kind, subject=f"{LEDGER}/{ref}", title=title, ledger=LEDGER,
                      ref=ref, due=due, days_overdue=days_overdue, level=level, item_template=template,
                      what=what, actions=actions, url=url)


def duty(key: str, title: str, due: dt.date, period: str, rule: str = "duty") -> DigestItem:
    return DigestItem(kind="duty", rule=rule, subject=key, title=title, ledger=None, ref=None, due=due,
                      days_overdue=0, level=0, period=period)


def digest(items: list[DigestItem], folded: dict[str, list[DigestItem]] | None = None,
           recipient: str = "党组书记") -> Digest:
    return Digest(recipient=recipient, channel_kind="email", generated_at=NOW, tz=TZ, items=items,
                  folded=folded or {})


def every_kind() -> list[DigestItem]:
    # Deliberately not in urgency order: the renderer must sort.
    return [
        issue("before", "9", "科技项目经费监管不到位", dt.date(2022, 11, 2), rule="before-1"),
        duty("quarterly-supervision-report", "向派驻纪检监察组报送事项明细", dt.date(2022, 11, 8), "2022-Q3",
             rule="before-5"),
        issue("checkin", "1", "中心组学习不够深入", dt.date(2022, 11, 4), rule="before-3"),
        issue("due", "4", "制定惠企政策思考不深", dt.date(2022, 11, 1)),
        issue("overdue", "12", "政府采购程序执行不严格", dt.date(2022, 10, 31), days_overdue=2),
        issue("escalation", "7", "往来款项长期未清理", dt.date(2022, 9, 30), days_overdue=12, level=1,
              rule="escalate-first-responsible"),
    ]


# -- rendering in both languages ---------------------------------------------------------------


def test_zh_cn_digest_of_every_kind() -> None:
    out = Renderer("zh-CN").render(digest(every_kind()))
    assert out.subject == ("【督办提醒】党组书记：1项升级督办、1项已逾期、1项今日到期、1项待回头看、"
                           "1项经常性工作待办、1项即将到期")
    text = out.text
    assert text.startswith("党组书记：\n")
    positions = [text.index(s) for s in ("一、升级督办", "二、已逾期", "三、今日到期", "四、长期坚持回头看",
                                          "五、经常性工作", "六、即将到期")]
    assert positions == sorted(positions)
    assert "【bishan-keji-2022 第7项】往来款项长期未清理——整改时限2022年9月30日，已逾期12个工作日，第1级升级督办" in text
    assert "已逾期2个工作日" in text
    assert "向派驻纪检监察组报送事项明细（2022-Q3）——截止日期2022年11月8日，还有5个工作日到期" in text
    assert "3个工作日后应开展回头看" in text
    assert "今日到期" in text
    # What to do next comes from the workflow, as its step labels; nobody is told to run a command.
    assert "往来款项长期未清理——整改时限2022年9月30日，已逾期12个工作日，第1级升级督办；下一步：整改完成" in text
    assert "duban " not in text and "duban " not in out.markdown and "duban " not in out.html
    assert "<table" in out.html and "升级督办（1项）" in out.html
    # the subject is the robots' own title (each channel shows it once): not in the body again
    assert out.subject not in out.markdown and out.markdown.startswith("**党组书记**：")
    assert "##### 升级督办（1项）" in out.markdown
    assert "- 【bishan-keji-2022 第12项】政府采购程序执行不严格" in out.markdown


def test_en_digest_of_every_kind() -> None:
    out = Renderer("en").render(digest(every_kind()))
    assert out.subject == ("[Duban reminder] 党组书记: 1 escalated, 1 overdue, 1 due today, 1 look-back, "
                           "1 recurring duty, 1 due soon")
    text = out.text
    assert text.startswith("Dear 党组书记,")
    positions = [text.index(s) for s in ("1. Escalated", "2. Overdue", "3. Due today", "4. Look-back",
                                          "5. Recurring duties", "6. Due soon")]
    assert positions == sorted(positions)
    assert ("[bishan-keji-2022 #7] 往来款项长期未清理 — deadline 2022-09-30, 12 working days overdue, "
            "escalation level 1") in text
    assert "due in 1 working day" in text and "due in 5 working days" in text
    assert "escalation level 1; next: 整改完成" in text and "duban " not in text
    assert "##### Escalated (1)" in out.markdown
    assert '<html lang="en">' in out.html


@pytest.mark.parametrize("language, shown, not_shown", [
    ("zh-CN", ["2022年9月30日", "2022年11月1日 09:00"], ["2022-09-30"]),
    ("en", ["2022-09-30", "2022-11-01 09:00"], ["2022年"]),
])
def test_dates_are_written_per_language(language: str, shown: list[str], not_shown: list[str]) -> None:
    out = Renderer(language).render(digest(every_kind()))
    for form in (out.text, out.html, out.markdown):
        for s in shown:
            assert s in form
        for s in not_shown:
            assert s not in form


def test_generated_at_is_shown_in_the_digest_zone() -> None:
    utc = dt.datetime(2022, 11, 1, 1, 0, tzinfo=dt.UTC)  # 09:00 in Beijing
    out = Renderer().render(Digest("办公室", "console", utc, TZ, every_kind()))
    assert "2022年11月1日 09:00" in out.text


# -- ordering and counts -----------------------------------------------------------------------


def test_items_are_ordered_by_urgency() -> None:
    items = [
        issue("before", "30", "三天后到期", dt.date(2022, 11, 4), rule="before-3"),
        issue("before", "31", "明天到期", dt.date(2022, 11, 2), rule="before-1"),
        issue("overdue", "20", "逾期两天", dt.date(2022, 10, 28), days_overdue=2),
        issue("overdue", "21", "逾期五天", dt.date(2022, 10, 25), days_overdue=5),
        issue("escalation", "10", "一级升级逾期二十天", dt.date(2022, 10, 1), days_overdue=20, level=1),
        issue("escalation", "11", "二级升级逾期十一天", dt.date(2022, 10, 14), days_overdue=11, level=2),
        issue("escalation", "12", "一级升级逾期四天", dt.date(2022, 10, 25), days_overdue=4, level=1),
        issue("due", "40", "当日到期事项", dt.date(2022, 11, 1)),
        issue("checkin", "50", "回头看事项", dt.date(2022, 11, 3), rule="before-2"),
        duty("central-group-study", "中心组学习", dt.date(2022, 11, 1), "2022-10"),
    ]
    expected = ["11", "10", "12", "21", "20", "40", "50", "central-group-study", "31", "30"]
    ordered = sorted(items, key=urgency_key)
    assert [i.ref or i.subject for i in ordered] == expected
    assert [i.kind for i in ordered] == sorted((i.kind for i in items), key=URGENCY.index)

    text = Renderer().render(digest(items)).text
    positions = [text.index("】" + i.title) for i in ordered]
    assert positions == sorted(positions)


def test_refs_sort_as_numbers() -> None:
    items = [issue("overdue", r, f"问题{r}", dt.date(2022, 10, 31), days_overdue=1) for r in ("10", "9", "2-1")]
    assert [i.ref for i in sorted(items, key=urgency_key)] == ["2-1", "9", "10"]


@pytest.mark.parametrize("language, expected", [
    ("zh-CN", "【督办提醒】党组书记：2项已逾期、1项即将到期"),
    ("en", "[Duban reminder] 党组书记: 2 overdue, 1 due soon"),
])
def test_subject_counts_by_category(language: str, expected: str) -> None:
    items = [
        issue("overdue", "1", "甲", dt.date(2022, 10, 28), days_overdue=2),
        issue("before", "2", "乙", dt.date(2022, 11, 4), rule="before-3"),
        issue("overdue", "3", "丙", dt.date(2022, 10, 31), days_overdue=1),
    ]
    assert Renderer(language).render(digest(items)).subject == expected


@pytest.mark.parametrize("language, expected", [
    ("zh-CN", "【督办提醒】办公室：暂无待办事项"),
    ("en", "[Duban reminder] 办公室: nothing to do"),
])
def test_empty_digest(language: str, expected: str) -> None:
    out = Renderer(language).render(digest([], recipient="办公室"))
    assert out.subject == expected
    assert "duban issue transition" not in out.text


def test_each_item_names_its_own_deadline_and_links_to_its_page() -> None:
    plan = issue("overdue", "3", "中心组学习不够深入", dt.date(2022, 8, 5), days_overdue=8, what="制定整改方案",
                 actions=("制定整改方案",), url="https://duban.example/issues/bishan-keji-2022/3")
    out = Renderer("zh-CN").render(digest([plan]))
    assert "制定整改方案时限2022年8月5日，已逾期8个工作日；下一步：制定整改方案" in out.text
    assert "整改时限2022年8月5日" not in out.text  # that is the plan's deadline, not the 整改时限
    assert "\n     https://duban.example/issues/bishan-keji-2022/3\n" in out.text
    assert "[办理](https://duban.example/issues/bishan-keji-2022/3)" in out.markdown
    assert '<a href="https://duban.example/issues/bishan-keji-2022/3">' in out.html


# -- folded items (inhibition) -------------------------------------------------------------------


def test_folded_items_appear_under_the_ledger_escalation() -> None:
    ledger_escalation = DigestItem("escalation", "escalate-supervising-group", LEDGER, "报送整改情况报告", LEDGER,
                                   None, dt.date(2022, 9, 23), 25, 2)
    other = issue("overdue", "12", "政府采购程序执行不严格", dt.date(2022, 10, 31), days_overdue=2)
    folded = [issue("overdue", "15", "三公经费支出审批不严", dt.date(2022, 10, 28), days_overdue=3),
              issue("before", "16", "公务接待管理不规范", dt.date(2022, 11, 4), rule="before-3")]
    out = Renderer().render(digest([other, ledger_escalation], {LEDGER: folded}))

    lines = out.text.splitlines()
    host = next(n for n, line in enumerate(lines) if "报送整改情况报告" in line)
    first = next(n for n, line in enumerate(lines) if "三公经费支出审批不严" in line)
    second = next(n for n, line in enumerate(lines) if "公务接待管理不规范" in line)
    overdue_section = next(n for n, line in enumerate(lines) if line.startswith("二、已逾期"))
    assert host < first < second < overdue_section  # under the escalation, not in their own sections
    assert lines[first].startswith("     └ ") and lines[host].startswith("  1. ")
    assert "即将到期（" not in out.text  # the folded 'before' item made no section of its own
    # Only top-level items are counted: the folded ones are part of the escalation.
    assert out.subject == "【督办提醒】党组书记：1项升级督办、1项已逾期"
    assert "  - └ 【bishan-keji-2022 第15项】三公经费支出审批不严" in out.markdown
    assert "└ bishan-keji-2022 第16项" in out.html

    en = Renderer("en").render(digest([other, ledger_escalation], {LEDGER: folded})).text
    assert en.index("报送整改情况报告") < en.index("     └ [bishan-keji-2022 #15]") < en.index("2. Overdue")


def test_folded_items_without_an_escalation_are_not_lost() -> None:
    folded = [issue("overdue", "15", "三公经费支出审批不严", dt.date(2022, 10, 28), days_overdue=3)]
    out = Renderer().render(digest([], {LEDGER: folded}))
    assert "一、已逾期（1项）" in out.text and "三公经费支出审批不严" in out.text
    assert out.subject == "【督办提醒】党组书记：1项已逾期"


# -- escaping ---------------------------------------------------------------------------------


def test_html_escapes_everything_text_and_markdown_stay_plain() -> None:
    title = "<script>alert('x')</script> & 经费"
    items = [issue("overdue", "7", title, dt.date(2022, 10, 28), days_overdue=3),
             issue("due", "8", "正常", dt.date(2022, 11, 1), template="<b>{{ title }}</b>")]
    out = Renderer().render(digest(items, recipient="<i>党组书记</i>"))
    assert "<script>" not in out.html and "<i>党组书记" not in out.html and "<b>" not in out.html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; 经费" in out.html
    assert "&lt;b&gt;正常&lt;/b&gt;" in out.html
    assert title in out.text and title in out.markdown
    assert "<b>正常</b>" in out.text


# -- per-rule item line overrides ------------------------------------------------------------------


def test_item_template_override_is_used_in_every_form() -> None:
    template = "{{ ledger }}第{{ ref }}项「{{ title }}」逾期{{ days_overdue }}天（{{ due_text }}，规则{{ rule }}）"
    items = [issue("overdue", "12", "政府采购程序执行不严格", dt.date(2022, 10, 31), days_overdue=2, template=template),
             issue("due", "4", "制定惠企政策思考不深", dt.date(2022, 11, 1))]
    out = Renderer().render(digest(items))
    line = "bishan-keji-2022第12项「政府采购程序执行不严格」逾期2天（2022年10月31日，规则overdue）"
    assert line in out.text and line in out.markdown and line in out.html
    assert "【bishan-keji-2022 第4项】制定惠企政策思考不深——" in out.text  # others keep the shipped line


def test_unknown_variable_in_override_is_reported_by_name() -> None:
    problems = Renderer().check_item_template("{{ title }} {{ responsible_leader }}", "workflow.yaml overdue")
    assert len(problems) == 1
    assert problems[0].startswith("workflow.yaml overdue: line 1: UndefinedError:")
    assert "'responsible_leader' is undefined" in problems[0]


def test_override_failing_only_for_some_kinds_names_them() -> None:
    problems = Renderer().check_item_template("{{ period.upper() }}", "r")
    assert len(problems) == 1 and "kind " in problems[0] and "before" in problems[0]
    assert "duty" not in problems[0].split("(items of")[1]  # duties have a period


def test_override_syntax_error_is_reported_with_its_line() -> None:
    source = "{{ title }}\n{% if days_overdue > 3 %}\n{{ ref }\n{% endif %}"
    problems = Renderer().check_item_template(source, "workflows/x.yaml:reminders.escalations[0]")
    assert len(problems) == 1
    assert problems[0].startswith("workflows/x.yaml:reminders.escalations[0]: line 3: TemplateSyntaxError:")


def test_good_override_has_no_problems() -> None:
    renderer = Renderer("en")
    assert renderer.check_item_template("{{ subject }}: {{ title }} ({{ due_text }}, {{ days_left }})", "r") == []
    assert renderer.check_item_template('{% import "macros.j2" as m %}{{ m.status(item) }}', "r") == []


def test_broken_override_falls_back_to_the_shipped_line() -> None:
    # check_item_template reports it at load time; a reminder is still better sent plainly than lost.
    item = issue("overdue", "12", "政府采购程序执行不严格", dt.date(2022, 10, 31), days_overdue=2,
                 template="{{ nonexistent }}")
    out = Renderer().render(digest([item]))
    assert "【bishan-keji-2022 第12项】政府采购程序执行不严格——整改时限2022年10月31日，已逾期2个工作日" in out.text


# -- the sandbox ------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["{{ ''.__class__.__mro__ }}", "{{ cycler.__init__.__globals__ }}",
                                    "{{ title.__class__.__base__.__subclasses__() }}"])
def test_sandbox_blocks_walks_to_python_internals(source: str) -> None:
    renderer = Renderer()
    with pytest.raises(SecurityError):
        renderer.env.from_string(source).render(title="x")
    problems = renderer.check_item_template(source, "rule")
    assert len(problems) == 1 and "SecurityError" in problems[0] and "unsafe" in problems[0]

    out = renderer.render(digest([issue("overdue", "1", "甲", dt.date(2022, 10, 31), 2, template=source)]))
    for form in (out.text, out.html, out.markdown):
        assert "<class" not in form and "__builtins__" not in form and "&lt;class" not in form
    assert "【bishan-keji-2022 第1项】甲——" in out.text


# -- template files ---------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_shipped_templates_check_clean(language: str) -> None:
    assert Renderer(language).check() == []


def test_both_languages_ship_the_same_templates() -> None:
    zh = sorted(p.name for p in (TEMPLATES / "zh-CN").iterdir())
    en = sorted(p.name for p in (TEMPLATES / "en").iterdir())
    assert zh == en
    assert {"subject.txt.j2", "digest.txt.j2", "digest.html.j2", "digest.md.j2"} <= set(zh)


def test_template_dir_override_of_subject_wins(tmp_path: Path) -> None:
    (tmp_path / "subject.txt.j2").write_text("督办：{{ recipient }}共{{ total }}项\n", encoding="utf-8")
    renderer = Renderer("zh-CN", template_dir=tmp_path)
    out = renderer.render(digest(every_kind()))
    assert out.subject == "督办：党组书记共6项"
    assert out.text.startswith("党组书记：\n")  # the other templates are still the shipped ones
    assert "<title>督办：党组书记共6项</title>" in out.html
    assert renderer.check() == []


def test_check_names_the_overriding_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "subject.txt.j2").write_text("{{ recipient }}\n{{ urgent_count }}\n", encoding="utf-8")
    (tmp_path / "digest.md.j2").write_text("# 督办\n\n{% for s in sections %}\n{{ s.kind }\n", encoding="utf-8")
    problems = Renderer("zh-CN", template_dir=tmp_path).check()
    assert any(p.startswith(f"{tmp_path / 'digest.md.j2'}:4: TemplateSyntaxError") for p in problems), problems
    # With a syntax error nothing is rendered; fix it and the runtime error shows up with its line.
    (tmp_path / "digest.md.j2").unlink()
    problems = Renderer("zh-CN", template_dir=tmp_path).check()
    assert problems and all(p.startswith(f"{tmp_path / 'subject.txt.j2'}:2: UndefinedError") for p in problems)
    assert "'urgent_count' is undefined" in problems[0]


def test_check_catches_errors_only_reached_with_folded_items(tmp_path: Path) -> None:
    (tmp_path / "digest.txt.j2").write_text(
        "{% for s in sections %}{% for e in s.entries %}{{ e.line }}\n"
        "{% for c in e.folded %}{{ c.owner }}{% endfor %}{% endfor %}{% endfor %}\n", encoding="utf-8")
    problems = Renderer("en", template_dir=tmp_path).check()
    assert len(problems) == 1 and problems[0].startswith(f"{tmp_path / 'digest.txt.j2'}:2: UndefinedError")
    assert "owner" in problems[0]


# -- the value types ---------------------------------------------------------------------------


def test_digest_needs_an_aware_time_and_items_a_known_kind() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Digest("党组书记", "email", dt.datetime(2022, 11, 1, 9), TZ, [])
    with pytest.raises(ValueError, match="kind"):
        DigestItem("reminder", "x", "s", "t", None, None, None, 0, 0)
    with pytest.raises(ValueError, match="language"):
        Renderer("fr")


def test_sample_digest_renders_in_both_languages() -> None:
    for language in ("zh-CN", "en"):
        out = Renderer(language).render(sample_digest())
        assert out.subject and out.text.endswith("\n") and out.html.startswith("<!DOCTYPE html>")


def test_check_reports_a_macros_override_missing_a_macro(tmp_path: Path) -> None:
    (tmp_path / "macros.j2").write_text("{% macro where(item) %}{{ item.ledger }}{% endmacro %}\n", encoding="utf-8")
    problems = Renderer("zh-CN", template_dir=tmp_path).check()
    assert len(problems) == 1 and "macros.j2 has no macro what, deadline, status, section_title" in problems[0]


def test_folded_items_hang_under_an_item_escalation_when_the_ledger_has_no_ledger_level_one() -> None:
    host = issue("escalation", "7", "往来款项长期未清理", dt.date(2022, 9, 30), days_overdue=12, level=1)
    folded = [issue("overdue", "15", "三公经费支出审批不严", dt.date(2022, 10, 28), days_overdue=3)]
    text = Renderer().render(digest([host], {LEDGER: folded})).text
    assert "  1. 【bishan-keji-2022 第7项】往来款项长期未清理" in text
    assert "     └ 【bishan-keji-2022 第15项】三公经费支出审批不严" in text
    assert "已逾期（" not in text


def test_an_overdue_ledger_level_reminder_also_hosts_folded_items() -> None:
    # The pipeline folds per-item nags under an overdue milestone (the rectification report) too.
    report = DigestItem("overdue", "overdue", "rectification-report", "报送整改情况报告", LEDGER, None,
                        dt.date(2022, 10, 20), 8, 0)
    folded = [issue("before", "16", "公务接待管理不规范", dt.date(2022, 11, 4), rule="before-3")]
    text = Renderer().render(digest([report], {LEDGER: folded})).text
    assert text.index("报送整改情况报告") < text.index("     └ 【bishan-keji-2022 第16项】公务接待管理不规范")
    assert "即将到期（" not in text

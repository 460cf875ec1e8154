"""The CLI in Chinese by default and in English on request (issue #23 item 4).

"Untranslated" is decided by :func:`english_runs`: a line holds an untranslated message when, once the
literal tokens are set aside, three English words follow each other. Literal tokens are what a
person types or reads back verbatim and what no translation changes:

- anything in backticks, quotes (``'x'``, ``"x"``, ``「x」``) or square brackets (``[database] url``),
- any word holding a character other than a letter (``--by``, ``-h``, ``config.toml``, ``ROLE:SCOPE``,
  ``/ws/login``, ``e.g.``, ``LEDGER/序号``, ``keep_days``, ``$DUBAN_CONFIG``),
- words in capitals (metavars such as ``PATH``, ``REF``, ``TRIGGER``; ``SIGTERM``, ``CSV``),
- names of products and formats (:data:`NAMES`: duban, SQLite, WeCom, Excel, md, html, docx...).

A literal token breaks a run, so ``运行 `duban init` first`` has no run (its English words are a
literal); ``Show this message and exit.`` is a run of five.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import click
import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from engine import i18n
from engine.app.cli.main import cli as root
from tests.conftest import SEED_CSV, run_cli

LOCALE = Path(i18n.__file__).resolve().parent.parent / "locale"
PO = LOCALE / "zh_CN" / "LC_MESSAGES" / "duban.po"
MO = PO.with_suffix(".mo")

NAMES = {
    "duban", "sqlite", "postgresql", "wecom", "dingtalk", "feishu", "excel", "wps", "word", "graphviz",
    "systemd", "systemctl", "alembic", "md", "html", "docx", "xlsx", "csv", "svg", "png", "ics", "json", "yaml",
    "utf", "gbk", "sha", "api", "oauth", "oidc", "ctrl", "pdf", "txt", "gb", "rfc", "iso", "id", "ids",
}
LITERAL = re.compile(r"`[^`]*`|'[^']*'|\"[^\"]*\"|「[^」]*」|\[[^\]]*\]")
WORD = re.compile(r"[A-Za-z]{2,}")


def english_runs(text: str, command: str = "") -> list[str]:
    """Runs of three or more English words outside literal tokens (see the module docstring).

    ``command`` (``duban ledger milestone done``) is literal too: the usage line names it as typed.
    """
    found = []
    for line in text.splitlines():
        if command:
            line = line.replace(command, " \x00 ")
        run: list[str] = []
        for token in LITERAL.sub(" \x00 ", line).split():
            bare = token.strip(",.;:()（）、，。；：!?")
            if WORD.fullmatch(bare) and not bare.isupper() and bare.lower() not in NAMES:
                run.append(bare)
                continue
            if len(run) >= 3:
                found.append(f"{' '.join(run)}   <- {line.strip()}")
            run = []
        if len(run) >= 3:
            found.append(f"{' '.join(run)}   <- {line.strip()}")
    return found


def test_english_runs_is_what_the_docstring_says():
    assert english_runs("Show this message and exit.") == ["Show this message and exit   <- Show this message and exit."]
    assert english_runs("运行 `duban init` first；PATH 或 --config FILE（例如 config.toml）") == []
    assert english_runs("提示：[database] url 写错了；see LEDGER/序号") == []


@pytest.fixture
def chinese(monkeypatch):
    """A shell whose locale is zh_CN.UTF-8 and nothing else says otherwise."""
    for name in ("DUBAN_LANG", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")


@pytest.fixture
def english(monkeypatch):
    for name in ("DUBAN_LANG", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "en_US.UTF-8")


def command_paths(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command under ``group`` (lazy groups load their modules here), groups included."""
    ctx = click.Context(group)
    found = [path]
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            found += command_paths(command, (*path, name))
        elif command is not None:
            found.append((*path, name))
    return found


COMMANDS = command_paths(root)


def test_every_command_is_walked():
    assert len(COMMANDS) > 80 and ("ledger", "import") in COMMANDS and ("user", "token", "revoke") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "duban")
def test_help_of_every_command_is_chinese(chinese, path):
    result = run_cli(*path, "--help")
    assert result.code == 0, result
    assert english_runs(result.out, " ".join(("duban", *path))) == [], result.out
    assert "用法：" in result.out and "选项：" in result.out


def test_help_in_english_with_lang_en(english):
    result = run_cli("ledger", "import", "--help")
    assert result.code == 0 and "Usage:" in result.out and "Show this message and exit." in result.out
    assert "用法" not in result.out


def test_lang_option_and_duban_lang_win_over_the_locale(chinese, monkeypatch):
    assert "Show this message and exit." in run_cli("--lang", "en", "status", "--help").out
    assert "显示此帮助信息并退出" in run_cli("--lang=zh", "status", "--help").out
    monkeypatch.setenv("DUBAN_LANG", "en")
    assert "Show this message and exit." in run_cli("status", "--help").out


@pytest.mark.parametrize(("value", "language"), [
    (None, "zh_CN"), ("C", "zh_CN"), ("POSIX", "zh_CN"), ("C.UTF-8", "zh_CN"), ("zh_CN.UTF-8", "zh_CN"),
    ("en_US.UTF-8", "en"), ("en", "en"), ("en_GB", "en"), ("de_DE.UTF-8", "zh_CN"),
])
def test_language_of_the_environment(value, language):
    environ = {} if value is None else {"LANG": value}
    assert i18n.language_from(environ) == language


def test_the_first_variable_set_wins():
    assert i18n.language_from({"LC_ALL": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}) == "zh_CN"
    assert i18n.language_from({"LC_MESSAGES": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"}) == "en"
    assert i18n.language_from({"DUBAN_LANG": "zh", "LC_ALL": "en_US.UTF-8"}) == "zh_CN"
    assert i18n.language_from({"DUBAN_LANG": "zh"}, option="en") == "en"


def error_paths(tmp_path: Path) -> list[tuple[tuple[object, ...], int, str, str]]:
    """Ten mistakes a person makes: arguments, exit code, a piece of the Chinese and of the English."""
    typo = tmp_path / "typo.toml"
    typo.write_text('[calender]\ntimezone = "Asia/Shanghai"\n', encoding="utf-8")
    bad_row = tmp_path / "bad.csv"
    bad_row.write_text(SEED_CSV.read_text(encoding="utf-8").replace("2022-09-30", "2022-13-45", 1), encoding="utf-8")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nstates: [\n", encoding="utf-8")
    shapeless = tmp_path / "shapeless.yaml"
    shapeless.write_text("name: x\nstates:\n  a: {label: A}\ntransitions: 3\n", encoding="utf-8")
    return [
        (("--config", typo, "status"), 2, "不允许的配置项", "Extra inputs are not permitted"),
        (("issue", "list", "--ledger", "nope"), 2, "没有名为 'nope' 的台账", "no ledger named 'nope'"),
        (("ledger", "import", bad_row, "--feedback-date", "2022-07-15", "--ledger", "bad"), 2,
         "不是有效日期", "is not a real date"),
        (("issue", "transition", "1", "approve", "--by", "admin"), 1, "不能", "cannot 'approve' from state"),
        (("issue", "transition", "1", "plan"), 2, "缺少选项 '--by'", "Missing option '--by'"),
        (("issue", "transition", "1", "plan", "--by", "nobody"), 2, "没有名为 'nobody' 的用户",
         "no user named 'nobody'"),
        (("issue", "transition", "7", "reopen", "--by", "admin", "--note", "n", "--at", "yesterday"), 2,
         "不是日期或时间", "not a date or time"),
        (("status", "--bogus"), 2, "没有此选项", "No such option '--bogus'"),
        (("issue", "transition", "7"), 2, "缺少参数", "Missing argument"),
        (("workflow", "validate", broken, shapeless), 2, "工作流文件有误", "invalid workflow"),
    ]


def test_ten_error_paths_in_chinese_then_english(seeded, tmp_path, monkeypatch):
    for name in ("DUBAN_LANG", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    for args, code, chinese, english in error_paths(tmp_path):
        zh = seeded(*args, LANG="zh_CN.UTF-8")
        assert zh.code == code, (args, zh)
        assert chinese in zh.err and english_runs(zh.err) == [], (args, zh.err)
        assert "Traceback" not in zh.err
        en = seeded(*args, LANG="en_US.UTF-8")
        assert en.code == code and english in en.err, (args, en.err)


def test_a_real_process_reads_its_locale(tmp_path):
    """The console script in a process of its own: LANG alone decides (no DUBAN_LANG)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DUBAN_LANG", "LC_ALL", "LC_MESSAGES")}
    script = "from engine.app.cli.main import entry; entry()"
    zh = subprocess.run([sys.executable, "-c", script, "status", "--bogus"], env={**env, "LANG": "zh_CN.UTF-8"},
                        capture_output=True, text=True, cwd=tmp_path, check=False)
    assert zh.returncode == 2 and "错误：没有此选项 '--bogus'" in zh.stderr, zh.stderr
    en = subprocess.run([sys.executable, "-c", script, "status", "--bogus"], env={**env, "LANG": "en_US.UTF-8"},
                        capture_output=True, text=True, cwd=tmp_path, check=False)
    assert en.returncode == 2 and "Error: No such option '--bogus'" in en.stderr, en.stderr


# --- the catalogue ------------------------------------------------------------------------------

def catalogue():
    with PO.open("rb") as fh:
        return read_po(fh)


def test_the_committed_mo_is_the_po_compiled():
    """`scripts/catalogue.sh compile` after every change of the .po: the two never drift."""
    compiled = BytesIO()
    write_mo(compiled, catalogue())
    assert compiled.getvalue() == MO.read_bytes(), "run scripts/catalogue.sh compile"


PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def translated_patterns():
    return [(m.id, m.string) for m in catalogue()
            if isinstance(m.id, str) and m.string and PLACEHOLDER.search(m.id.replace("{{", "").replace("}}", ""))]


def test_every_translation_keeps_the_placeholders():
    """No value is invented or lost; only English grammar (``entr{'y' if n == 1 else 'ies'}``) may go."""
    for msgid, msgstr in translated_patterns():
        given, used = set(PLACEHOLDER.findall(msgid)), set(PLACEHOLDER.findall(msgstr))
        assert used <= given, (msgid, msgstr)
        assert all(" if " in lost and "else" in lost for lost in given - used), (msgid, msgstr)


def fill(text: str, values: dict[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: values[m.group()], text).replace("{{", "{").replace("}}", "}")


def test_every_message_with_values_is_found_again():
    """A message as the engine makes it (its placeholders filled) comes out as its own translation.

    This also holds translators to one rule: two placeholders with nothing between them (where the
    engine's text cannot be split back) stay side by side, in the same order, in the msgstr.
    """
    i18n.choose(i18n.CHINESE)
    try:
        for msgid, msgstr in translated_patterns():
            values = {name: repr(f"v{n}") if name.endswith("!r}") else f"«v{n}»"
                      for n, name in enumerate(dict.fromkeys(PLACEHOLDER.findall(msgid)))}
            made, wanted = fill(msgid, values), fill(msgstr, values)
            if i18n._pattern(msgid, msgstr) is None:  # too little fixed text to be a pattern: exact ids only
                continue
            assert i18n.translate(made) == wanted, msgid
    finally:
        i18n.choose(None)


def test_a_message_with_a_place_in_front_is_translated_by_its_tail():
    i18n.choose(i18n.CHINESE)
    try:
        line = "w2.yaml:3:3: transitions: Input should be a valid list"
        assert i18n.translate(line) == "w2.yaml:3:3: transitions: 应为列表"
        line = "w.yaml:3:1: YAML syntax error: expected the node content, but found '<stream end>'"
        assert i18n.translate(line) == "w.yaml:3:1: YAML 语法错误：缺少应有的内容，文件却已结束"
        assert i18n.translate("data that is no message at all") == "data that is no message at all"
    finally:
        i18n.choose(None)


def test_english_passes_messages_through():
    i18n.choose(i18n.ENGLISH)
    try:
        assert i18n.translate("no ledger named 'x'") == "no ledger named 'x'"
    finally:
        i18n.choose(None)


PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[sdrifx%]")


def test_log_messages_keep_their_conversions_in_order():
    for message in catalogue():
        if isinstance(message.id, str) and message.string and "python-format" in message.flags:
            assert PERCENT.findall(message.id) == PERCENT.findall(message.string), message.id


def test_log_lines_are_translated_before_their_arguments_go_in():
    import logging

    from engine.app.cli.main import LogFormatter

    record = logging.LogRecord("duban", logging.WARNING, __file__, 1, "outbox message %s: channel %r is not configured",
                               (7, "钉钉群"), None)
    i18n.choose(i18n.CHINESE)
    try:
        assert LogFormatter().format(record) == "警告：发件箱消息 7：渠道 '钉钉群' 未配置"
    finally:
        i18n.choose(i18n.ENGLISH)
    try:
        assert LogFormatter().format(record) == "WARNING: outbox message 7: channel '钉钉群' is not configured"
    finally:
        i18n.choose(None)


def extracted(folder: str) -> set[str]:
    from babel.messages.extract import extract_from_dir

    root = Path(i18n.__file__).resolve().parent.parent.parent
    found = extract_from_dir(str(root / folder), method_map=[("**.py", "engine.i18n.extract:extract")])
    return {message if isinstance(message, str) else message[0] for _file, _line, message, _c, _ctx in found}


def translated(messages: set[str]) -> set[str]:
    book = catalogue()
    return {m for m in messages if (entry := book.get(m)) is not None and entry.string
            and (entry.string if isinstance(entry.string, str) else entry.string[0])}


def test_every_message_of_the_cli_is_in_the_catalogue_and_translated():
    """The commands' own messages (help, errors, summaries, table headers) are all translated; the
    engine's may lag behind by a few (programming errors a person never reads are left in English)."""
    cli = extracted("engine/app/cli") | extracted("engine/i18n")
    assert cli - translated(cli) == set()
    engine = extracted("engine") | extracted("notifications")
    assert len(translated(engine)) / len(engine) > 0.95


def test_how_an_import_read_a_sheet_reads_in_chinese(seeded, tmp_path, monkeypatch):
    """The readings list (a title row, a section heading, numbering moved out, a blank carried down,
    deadline phrases, 立行立改, an Excel serial, a footer) and a row's problem, in Chinese."""
    for name in ("DUBAN_LANG", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    sheet = tmp_path / "教育局.csv"
    sheet.write_text("巡察整改台账\n序号,方面,问题类别,具体问题,整改措施,责任领导,责任科室,整改时限,整改状态\n"
                     "一、落实主体责任方面,,,,,,,,\n"
                     "1,,（一）学习不深入,1.中心组学习不够,制定学习计划,党组书记,办公室,2027年6月底前并长期坚持,正在整改\n"
                     "2,,,集体学习有漏项,落实第一议题,党组书记,办公室,立行立改,正在整改\n"
                     "3,,,专题研讨少,每季度研讨,党组书记,办公室,46387,正在整改\n"
                     "4,,,公务接待清单不全,附公函,党组书记,办公室,长期坚持,长期坚持\n"
                     "5,,,会议记录不全,完善记录,党组书记,办公室,2027年3月底前,正在整改\n"
                     "填表人：张三\n", encoding="utf-8")
    read = seeded("ledger", "import", sheet, "--ledger", "edu", "--dry-run", "--feedback-date", "2026-11-02",
                  LANG="zh_CN.UTF-8")
    assert read.code == 0, read.err
    shown = read.out + read.err
    for piece in ("第 1 行: 表头以上，已跳过", "第 4 行: 具体问题", "第 5–8 行: 问题类别", "分节标题", "已移出",
                  "沿用第 4 行", "完成后转入长期坚持", "立行立改：反馈日期",
                  "Excel 日期序列号", "每 3 个月回头看一次", "表尾，已跳过",
                  # a reading with no message of ours: only its place is translated
                  "第 8 行: 整改时限: 2027年3月底前 → 2027-03-31", "问题类别: （空白） → 沿用第 4 行"):
        assert piece in shown, (piece, shown)
    assert english_runs(shown) == [] and not re.search(r"\brows?\b|\(blank\)", shown), shown
    wrong = sheet.read_text(encoding="utf-8").replace("长期坚持,长期坚持", "长期坚持,正在整改")
    sheet.write_text(wrong, encoding="utf-8")
    refused = seeded("ledger", "import", sheet, "--ledger", "edu", "--feedback-date", "2026-11-02", LANG="zh_CN.UTF-8")
    assert refused.code == 2 and "是长期坚持事项" in refused.err and english_runs(refused.err) == [], refused.err


def test_a_sheet_without_the_problem_column_is_told_in_chinese_which_of_its_columns_could_be_it(seeded, tmp_path,
                                                                                                 monkeypatch):
    """A sheet whose problem column has a name of its own (问题详情): the refusal lists the spellings
    read, all in Chinese, and names the sheet's unread columns and the two ways to have one read."""
    for name in ("DUBAN_LANG", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    sheet = tmp_path / "住建委.csv"
    sheet.write_text("问题序号,问题详情,整改举措,分管领导,牵头科室,完成时间,备注\n"
                     "1,工程变更审批不严,修订办法,副主任,建管科,2027-02-28,\n", encoding="utf-8")
    refused = seeded("ledger", "import", sheet, "--ledger", "zjw", "--feedback-date", "2026-10-20", LANG="zh_CN.UTF-8")
    assert refused.code == 2, refused.err
    for piece in ("第 1 行：缺少 具体问题 / 问题 / 问题描述 列（也没有 问题表现 /", "未能识别的列：问题详情、备注",
                  "columns: title:"):
        assert piece in refused.err, (piece, refused.err)
    assert english_runs(refused.err) == [] and "nor" not in refused.err, refused.err
    assert "Traceback" not in refused.err


def test_a_sheets_status_the_workflow_refuses_is_told_in_chinese(seeded, tmp_path, monkeypatch):
    """A re-import whose 整改状态 says 已完成 for an issue with no evidence: the claim is not applied,
    and why — the workflow's own refusal inside the message — reads in Chinese, as do the step it
    did take for another row and the summary's counts."""
    for name in ("DUBAN_LANG", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    sheet = tmp_path / "卫健委.csv"
    head = "序号,具体问题,整改措施,责任领导,责任科室,整改时限,整改状态\n"
    sheet.write_text(head + "1,公务接待审批手续不全,修订办法,副主任,财务科,2027-02-26,\n"
                     "2,医疗废物处置监管存在漏洞,专项检查,副主任,医政科,2027-03-31,\n", encoding="utf-8")
    first = seeded("ledger", "import", sheet, "--ledger", "wjw", "--feedback-date", "2026-11-02", LANG="zh_CN.UTF-8")
    assert first.code == 0, first.err
    sheet.write_text(head + "1,公务接待审批手续不全,修订办法,副主任,财务科,2027-02-26,已完成\n"
                     "2,医疗废物处置监管存在漏洞,专项检查,副主任,医政科,2027-03-31,整改中\n", encoding="utf-8")
    again = seeded("ledger", "import", sheet, "--ledger", "wjw", LANG="zh_CN.UTF-8")
    assert again.code == 0, again.err
    for piece in ("第 2 行：整改状态：表中为“已完成”，duban 中为“待整改”；未采用：提交销号申请",
                  "需上传本轮佐证材料：请先上传"):
        assert piece in again.err, (piece, again.err)
    assert "其中 1 个按工作流推进，1 项整改状态未采用" in again.out, again.out
    assert "evidence is required" not in again.err and "sheet says" not in again.err, again.err


def test_every_problem_a_ledger_import_names_is_translated():
    """A 台账 is imported by the people who keep it in Excel: each row's problem and each reading
    of a cell reads in Chinese."""
    ledger = extracted("engine/ledger")
    assert "missing 序号" in ledger  # RowReader.problem's messages are found, and the readings'
    assert "{title} (numbering {prefix} moved out)" in ledger and "above the header, skipped" in ledger
    # and the warnings an import gathers (a column read as no field, a clash, a unit kept)
    assert "{path}: column {header!r} is not a ledger field; kept as an extra column" in ledger
    assert ledger - translated(ledger) == set()


def test_an_issue_is_shown_in_the_pages_words_with_the_steps_command_name(seeded, monkeypatch):
    """`issue show` names the state, the next steps and the history in the words of the pages
    (已制定方案, 开始整改, 网页/命令行), each next step with the name `issue transition` takes, and the
    history says through which door each change came."""
    for name in ("DUBAN_LANG", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    assert seeded("issue", "transition", "bishan-keji-2022/1", "reopen", "--by", "admin", "--note", "问题反弹",
                  "--at", "2026-12-03T10:00").code == 0
    shown = seeded("issue", "show", "bishan-keji-2022/1", LANG="zh_CN.UTF-8")
    assert shown.code == 0, shown.err
    assert "状态：整改中（in_progress），自 2026-12-03T10:00:00+08:00 起" in shown.out, shown.out
    assert "可执行操作：提交销号申请（submit）\n" in shown.out, shown.out
    last = [line for line in shown.out.splitlines() if "2026-12-03T10:00" in line and "│" in line][-1]
    assert [c.strip() for c in last.split("│")[2:7]] == ["admin", "命令行", "问题反弹，重新整改", "长期坚持", "整改中"], last

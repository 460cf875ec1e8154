"""Ledger import and export: counts, all-or-nothing, re-import, other layouts, round trips."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import openpyxl

from .conftest import SEED_CSV


def seed_rows() -> list[dict[str, str]]:
    with SEED_CSV.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write_csv(path: Path, headers: list[str], rows: list[dict[str, str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=headers, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_shipped_ledger_gives_the_seed_reports_counts(seeded):
    status = seeded("status", "--json").json
    units = status.pop("units")
    assert status == {"issues": 26, "areas": 4, "categories": 10, "by_state": {
        "identified": 0, "planned": 0, "in_progress": 0, "awaiting_review": 0, "completed": 17, "long_term_sustained": 9}}
    assert units == [{"unit": "中共重庆市璧山区科学技术局党组", **status}]  # one unit: the same counts
    text = seeded("status").out
    assert "4个方面共26个具体问题，已完成17个，长期坚持9个" in text


def test_reimport_is_idempotent(seeded):
    again = seeded("ledger", "import", SEED_CSV)
    assert again.code == 0
    assert "0 new, 0 updated, 26 unchanged" in again.out
    assert len(seeded("issue", "list", "--json").json) == 26


def test_reimport_updates_fields_by_ref_and_never_moves_a_state_back(seeded, tmp_path):
    rows = seed_rows()
    rows[6]["整改状态"] = "整改中"  # the sheet says 序号 7 rebounded: a backward move
    rows[0]["责任科室"] = "综合科"
    changed = write_csv(tmp_path / "bishan-keji-2022.csv", list(rows[0]), rows)
    result = seeded("ledger", "import", changed, "--at", "2022-08-01T09:00")
    assert result.code == 0, result.err
    assert "0 new, 1 updated, 25 unchanged, 1 state claim(s) not applied" in result.out
    assert (f"{changed}: row 8: 整改状态: sheet says 整改中, duban has 已完成; not applied: a sheet cannot move "
            "an issue back (已完成 → 整改中)") in result.err
    seven = seeded("issue", "show", "bishan-keji-2022/7", "--json").json
    assert seven["state"] == "completed" and [h["trigger"] for h in seven["history"]] == ["import"]
    assert seeded("issue", "show", "1", "--json").json["department"] == "综合科"


def test_bad_rows_are_all_reported_and_nothing_is_written(cli, tmp_path):
    assert cli("init").code == 0
    rows = seed_rows()
    rows[2]["整改时限"] = "2022-13-40"
    rows[4]["整改状态"] = "差不多"
    rows[9]["具体问题"] = ""
    rows[11]["序号"] = "2"
    bad = write_csv(tmp_path / "bad.csv", list(rows[0]), rows)
    result = cli("ledger", "import", bad)
    assert result.code == 2
    assert "Traceback" not in result.err
    assert f"{bad}: row 4: 整改时限: '2022-13-40' is not a real date" in result.err
    assert f"{bad}: row 6: 整改状态: unknown status '差不多'" in result.err
    assert f"{bad}: row 11: 具体问题: missing the problem title (具体问题)" in result.err
    assert f"{bad}: row 13: 序号: 序号 '2' already used in row 3" in result.err
    assert "nothing was imported" in result.err
    assert cli("issue", "list", "--json").json == []
    assert cli("status", "--json").json["issues"] == 0


def test_bad_rows_in_a_reimport_leave_the_ledger_as_it_was(seeded, tmp_path):
    rows = seed_rows()
    rows[0]["整改状态"] = "整改中"
    rows[1]["整改时限"] = "明年"
    bad = write_csv(tmp_path / "bishan-keji-2022.csv", list(rows[0]), rows)
    assert seeded("ledger", "import", bad).code == 2
    assert seeded("issue", "show", "1", "--json").json["state"] == "long_term_sustained"


def test_missing_required_column(cli, tmp_path):
    cli("init")
    rows = seed_rows()
    headers = [h for h in rows[0] if h != "具体问题"]
    bad = write_csv(tmp_path / "x.csv", headers, rows)
    result = cli("ledger", "import", bad)
    assert result.code == 2
    assert f"{bad}: row 1: missing the 具体问题 / 问题 / 问题描述 column" in result.err


def test_a_status_column_under_a_name_not_read_as_one_is_pointed_out(cli, tmp_path):
    """完成情况 holding 整改中 / 已完成 is the status under another name: nothing is claimed from it,
    and the import says which column it is and how to have it read; a 完成情况 of free text is an
    extra column like any other."""
    cli("init")
    worded = tmp_path / "worded.csv"
    worded.write_text("序号,具体问题,整改措施,责任领导,责任科室,整改时限,完成情况\n"
                      "1,问题一,措施,书记,办公室,2027-01-29,已完成\n2,问题二,措施,书记,办公室,2027-01-29,\n"
                      "3,问题三,措施,书记,办公室,2027-01-29,整改中\n", encoding="utf-8")
    result = cli("ledger", "import", worded, "--feedback-date", "2026-11-02")
    assert result.code == 0, result.err
    assert (f"{worded}: column '完成情况' holds status words only (已完成、整改中) but was not read as the status"
            in result.err), result.err
    assert "is not a ledger field" not in result.err
    assert cli("status", "--ledger", "worded", "--json").json["by_state"]["identified"] == 3  # nothing claimed

    free = tmp_path / "free.csv"
    free.write_text("序号,具体问题,整改措施,责任领导,责任科室,整改时限,完成情况\n"
                    "1,问题一,措施,书记,办公室,2027-01-29,已完成\n2,问题二,措施,书记,办公室,2027-01-29,已召开会议部署\n",
                    encoding="utf-8")
    result = cli("ledger", "import", free, "--feedback-date", "2026-11-02")
    assert result.code == 0, result.err
    assert "column '完成情况' is not a ledger field; kept as an extra column" in result.err
    assert "status words" not in result.err


def test_xlsx_from_another_organisation_in_another_column_order(cli, tmp_path):
    """Another unit's ledger: columns shuffled, synonyms for headers, an extra 备注 column, real dates."""
    cli("init")
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "整改台账"
    headers = ["责任单位", "编号", "整改状态", "问题描述", "方面", "问题类别", "整改时限", "备注", "整改措施", "责任领导"]
    ws.append(headers)
    import datetime as dt

    states = ["已完成", "整改中", "待整改", "长期坚持", "已制定方案"]
    for i in range(1, 13):
        ws.append([f"科室{i % 3}", i, states[i % 5], f"问题{i}", f"方面{(i - 1) // 4}", f"类别{(i - 1) // 2}",
                   dt.datetime(2026, 12, i), "需跟踪" if i == 3 else None, f"措施{i}", "局长"])
    path = tmp_path / "县审计局-2026.xlsx"
    book.save(path)
    result = cli("ledger", "import", path, "--feedback-date", "2026-11-01")
    assert result.code == 0, result.err
    assert "column '备注' is not a ledger field; kept as an extra column" in result.err
    status = cli("status", "--ledger", "县审计局-2026", "--json").json
    assert status == {"issues": 12, "areas": 3, "categories": 6, "by_state": {
        "identified": 3, "planned": 2, "in_progress": 3, "awaiting_review": 0, "completed": 2, "long_term_sustained": 2}}
    issue = cli("issue", "show", "县审计局-2026/3", "--json").json
    assert (issue["deadline"], issue["department"], issue["state"]) == ("2026-12-03", "科室0", "long_term_sustained")


def test_xlsx_round_trip(seeded, tmp_path):
    out = tmp_path / "out.xlsx"
    assert seeded("ledger", "export", out).code == 0
    sheet = openpyxl.load_workbook(out).active
    title, *rows = list(sheet.iter_rows(values_only=True))
    assert title[0] == "中共重庆市璧山区科学技术局党组巡察整改台账" and not any(title[1:])
    assert list(rows[0]) == list(seed_rows()[0])
    assert rows[7][:3] == (7, "聚焦贯彻落实党的路线方针政策和党中央决策部署方面", "3．落实上级决策部署不够有力")
    assert rows[1][8] == "长期坚持"
    result = seeded("ledger", "import", out, "--ledger", "copy")
    assert result.code == 0, result.err
    original = {(i["number"], i["title"], i["deadline"], i["state"], i["department"])
                for i in seeded("issue", "list", "--ledger", "bishan-keji-2022", "--json").json}
    copied = {(i["number"], i["title"], i["deadline"], i["state"], i["department"])
              for i in seeded("issue", "list", "--ledger", "copy", "--json").json}
    assert original == copied and len(copied) == 26


def test_csv_round_trip_is_exact(seeded, tmp_path):
    out = tmp_path / "out.csv"
    assert seeded("ledger", "export", out).code == 0
    assert out.read_text(encoding="utf-8-sig") == SEED_CSV.read_text(encoding="utf-8")


def test_gb18030_csv_from_excel_on_windows(cli, tmp_path):
    cli("init")
    rows = seed_rows()[:5]
    path = write_csv(tmp_path / "gbk.csv", list(rows[0]), rows, encoding="gb18030")
    assert cli("ledger", "import", path).code == 0
    assert cli("issue", "show", "gbk/1", "--json").json["title"] == "中心组学习不够深入"


def test_dates_in_the_formats_people_type(cli, tmp_path):
    cli("init")
    rows = seed_rows()[:4]
    for row, value in zip(rows, ["2022/9/30", "2022年10月8日", "20221231", "长期坚持"], strict=False):
        row["整改时限"] = value
    assert cli("ledger", "import", write_csv(tmp_path / "d.csv", list(rows[0]), rows)).code == 0
    got = [i["deadline"] for i in cli("issue", "list", "--json").json]
    assert got == ["2022-09-30", "2022-10-08", "2022-12-31", None]


def test_dry_run_writes_nothing(cli):
    cli("init")
    result = cli("ledger", "import", SEED_CSV, "--dry-run")
    assert result.code == 0 and "would import 26 rows" in result.out
    assert cli("status", "--json").json["issues"] == 0


def test_large_shuffled_ledger_counts(cli, tmp_path):
    rows = []
    for i in range(1, 3001):
        rows.append({"序号": str(i), "方面": f"方面{i % 7}", "问题类别": f"类别{i % 23}", "具体问题": f"问题{i}",
                     "整改状态": random.Random(i).choice(["待整改", "整改中", "已完成"]), "整改时限": "2027-01-15"})
    cli("init")
    path = write_csv(tmp_path / "big.csv", ["整改状态", "具体问题", "序号", "问题类别", "方面", "整改时限"], rows)
    assert cli("ledger", "import", path).code == 0
    status = cli("status", "--json").json
    assert (status["issues"], status["areas"], status["categories"]) == (3000, 7, 23)
    assert sum(status["by_state"].values()) == 3000

"""The command line as a new user meets it: every verb, JSON shapes, and no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import engine

from .conftest import ROOT, SEED_CSV, run_cli


def test_engine_is_this_projects_own_package():
    assert Path(engine.__file__).resolve().is_relative_to(ROOT)


def test_console_script_end_to_end(project):
    """The installed ``duban`` script, as a person runs it."""
    exe = Path(sys.executable).parent / "duban"
    env = {**os.environ, "DUBAN_CONFIG": str(project / "config.toml")}
    for args in (["init"], ["ledger", "import", str(SEED_CSV)]):
        done = subprocess.run([exe, *args], env=env, capture_output=True, text=True, cwd=project)
        assert done.returncode == 0, done.stderr
    done = subprocess.run([exe, "status"], env=env, capture_output=True, text=True, cwd=project)
    assert "4个方面共26个具体问题，已完成17个，长期坚持9个" in done.stdout
    bad = subprocess.run([exe, "issue", "transition", "1", "plan", "--by", "admin"], env=env, capture_output=True,
                         text=True, cwd=project)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr


def test_issue_json_shapes(seeded):
    listed = seeded("issue", "list", "--json").json
    assert len(listed) == 26
    assert set(listed[0]) >= {"ref", "area", "category", "title", "measures", "leader", "department", "deadline",
                              "state"}
    assert "history" not in listed[0]
    shown = seeded("issue", "show", "bishan-keji-2022/10", "--json").json
    assert shown["title"] == "区纪委监委派驻纪检监察组落实监督责任不够扎实"
    assert [h["trigger"] for h in shown["history"]] == ["import"]  # the import is the first entry
    filtered = seeded("issue", "list", "--department", "财务室", "--json").json
    assert [i["number"] for i in filtered] == ["14", "15", "16"]
    assert len(seeded("issue", "list", "--state", "long_term_sustained", "--json").json) == 9


def test_human_output(seeded):
    listing = seeded("issue", "list", "--ledger", "bishan-keji-2022")
    assert listing.code == 0 and "26 issue(s)" in listing.out
    shown = seeded("issue", "show", "16")
    assert "往来款项清理不及时" in shown.out and "长期坚持" in shown.out


def test_workflow_list_show_and_graph(seeded, tmp_path):
    shown = seeded("workflow", "show", "inspection-rectification")
    assert shown.code == 0 and "long_term_sustained" in shown.out and "has_new_evidence" in shown.out
    svg = tmp_path / "wf.svg"
    assert seeded("workflow", "show", "inspection-rectification", "--graph", svg).code == 0
    body = svg.read_text(encoding="utf-8")
    assert body.startswith("<?xml") and "长期坚持" in body and "问题反弹，重新整改" in body  # edges in Chinese
    assert seeded("workflow", "show", "inspection-rectification", "--graph", tmp_path / "x.gif").code == 2
    assert seeded("workflow", "list", "--json").json[0]["issues"] == 26


def test_db_commands(cli):
    assert cli("db", "upgrade").code == 0
    assert "database: 0021; this duban: 0021" in cli("db", "status").out


def test_bad_input_never_gives_a_traceback(seeded, tmp_path):
    cases = [
        (("issue", "transition", "7", "reopen", "--by", "x", "--note", "n", "--at", "yesterday"), 2, "not a date or time"),
        (("issue", "transition", "1", "plan", "--by", "x", "--deadline", "2026-02-30"), 2, "not a date"),
        (("issue", "transition", "7", "complete", "--by", "x", "--evidence", tmp_path / "none.pdf"), 2,
         "evidence file not found"),
        (("ledger", "import", tmp_path / "missing.csv"), 2, "file not found"),
        (("ledger", "import", SEED_CSV, "--feedback-date", "2022-7-15"), 2, "not a date"),
        (("issue", "list", "--ledger", "nope"), 2, "no ledger named 'nope'"),
        (("ledger", "export", tmp_path / "x.pdf"), 2, "unsupported file type"),
        (("issue", "show", "999"), 2, "no issue '999'"),
        (("frobnicate",), 2, "No such command"),
        (("ledger", "export", tmp_path / "no" / "such" / "x.csv"), 2, "No such file or directory"),
        (("report", "-o", tmp_path / "no" / "such" / "r.md"), 2, "No such file or directory"),
        (("issue", "transition", "7"), 2, "Missing argument"),
    ]
    for args, code, message in cases:
        result = seeded(*args)
        assert (result.code, "Traceback" not in result.err) == (code, True), (args, result)
        assert message in result.err, (args, result.err)


def test_config_and_database_problems(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[database\nurl = 1\n", encoding="utf-8")
    result = run_cli("--config", bad, "status")
    assert result.code == 2 and f"{bad}: " in result.err
    typo = tmp_path / "typo.toml"
    typo.write_text('[calender]\ntimezone = "Asia/Shanghai"\n', encoding="utf-8")
    result = run_cli("--config", typo, "status")
    assert result.code == 2 and "calender: Extra inputs are not permitted" in result.err
    zone = tmp_path / "zone.toml"
    zone.write_text('[calendar]\ntimezone = "Mars/Olympus"\n', encoding="utf-8")
    assert "unknown time zone 'Mars/Olympus'" in run_cli("--config", zone, "status").err
    fresh = run_cli("status", env={"DUBAN_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"})
    assert fresh.code == 2 and "run `duban init` first" in fresh.err
    missing = run_cli("--config", tmp_path / "nope.toml", "status")
    assert missing.code == 2 and "config file not found" in missing.err
    unreachable = run_cli("status", env={"DUBAN_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"})
    assert unreachable.code == 2 and "cannot reach the database" in unreachable.err


def test_a_relative_sqlite_file_in_the_config_is_beside_the_config(tmp_path, monkeypatch):
    """As the config's folders are: `duban --config /srv/duban/config.toml status` run from
    elsewhere once looked for the database where it stood, found no schema, and left an empty
    file there. DUBAN_DATABASE_URL's own relative path stays the shell's."""
    from engine.config import load_config

    monkeypatch.delenv("DUBAN_DATABASE_URL", raising=False)
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    (site / "var").mkdir(parents=True)
    elsewhere.mkdir()
    config = site / "config.toml"
    config.write_text('[database]\nurl = "sqlite:///var/duban.db"\n', encoding="utf-8")
    monkeypatch.chdir(elsewhere)
    assert run_cli("--config", config, "init").code == 0
    assert run_cli("--config", config, "status").code == 0
    assert (site / "var" / "duban.db").is_file() and list(elsewhere.iterdir()) == []
    assert load_config(config).database.url == f"sqlite:///{(site / 'var' / 'duban.db').resolve()}"
    monkeypatch.setenv("DUBAN_DATABASE_URL", "sqlite:///here.db")
    assert load_config(config).database.url == "sqlite:///here.db"

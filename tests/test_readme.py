"""Every command of the README's "Using it", "Deadlines" and "Report" blocks runs as written, in
order, on what the repository ships (issue #10)."""

from __future__ import annotations

import importlib
import re
import shlex
import shutil
from pathlib import Path

from freezegun import freeze_time

from .conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("## Using it", "### Deadlines, reminders and duties", "### The workspace: accounts, sign-off, the API",
            "### Report, calendar, board")
LONG_RUNNING = {("board",), ("run",)}


def commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    out = []
    for heading in SECTIONS:
        start = text.index(heading + "\n")
        block = re.search(r"```sh\n(.*?)```", text[start:], re.S)
        assert block, heading
        for line in block.group(1).splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["duban"] and tuple(words[1:2]) not in LONG_RUNNING:
                out.append(words[1:])
    return out


def test_the_readme_commands_run_as_written(tmp_path, monkeypatch):
    for name in ("workflows", "examples"):
        shutil.copytree(ROOT / name, tmp_path / name)
    config = (ROOT / "config.toml").read_text(encoding="utf-8")
    (tmp_path / "config.toml").write_text(config.replace('url = "sqlite:///var/duban.db"',
                                                         f'url = "sqlite:///{tmp_path / "duban.db"}"'), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DUBAN_CONFIG", str(tmp_path / "config.toml"))
    ran = commands()
    # every command module imported before the clock is frozen: FastAPI and pydantic build their
    # models at import, and a frozen clock's fake datetime classes break that
    from engine.app.cli import main

    for name in main.COMMANDS:  # each command's module is named after it
        importlib.import_module(f"engine.app.cli.{name}")
    assert len(ran) >= 25 and ["init"] in ran
    with freeze_time("2026-12-02T02:00:00Z"):  # 10:00 in Beijing: the day the README was written for
        for args in ran:
            args = [w2 for w in args for w2 in (sorted(str(p) for p in Path().glob(w)) if "*" in w else [w])]  # as sh does
            result = run_cli(*args)
            assert result.code == 0, f"duban {shlex.join(args)}\n{result.out}\n{result.err}"
            assert "Traceback" not in result.err
    assert (tmp_path / "wf.svg").is_file() and (tmp_path / "out.xlsx").is_file()
    assert (tmp_path / "整改情况报告.docx").is_file() and (tmp_path / "duban.ics").is_file()

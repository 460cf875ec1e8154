"""duban as a user installs it: a wheel in a fresh venv, run from an empty folder outside the repo."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


def test_the_wheel_installs_and_runs_from_an_empty_folder(tmp_path):
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, ROOT, cwd=tmp_path)
    [wheel] = dist.glob("duban-*.whl")
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel, cwd=tmp_path)
    # The dependencies come from this environment (a path line, so its editable duban is not loaded);
    # duban itself only from the wheel.
    purelib = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path)
                   .stdout.strip())
    (purelib / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUBAN_") and k != "PYTHONPATH"}
    work = tmp_path / "empty"
    work.mkdir()
    where = run(python, "-c", "import engine; print(engine.__file__)", cwd=work, env=env).stdout.strip()
    assert where.startswith(str(venv)), where
    duban = venv / "bin" / "duban"
    run(duban, "init", "--at", "2026-12-01T10:00", cwd=work, env=env)  # no config.toml: the shipped defaults
    ledger = Path(where).parent / "_shipped" / "examples" / "bishan-keji-2022.csv"
    assert ledger.is_file()  # the example ledger ships in the wheel
    run(duban, "ledger", "import", ledger, "--feedback-date", "2022-07-15", "--report-submitted", "2022-09-15",
        "--at", "2026-12-01T10:00", cwd=work, env=env)
    status = run(duban, "status", cwd=work, env=env).stdout
    assert "4个方面共26个具体问题，已完成17个，长期坚持9个" in status
    # the catalogue ships in the wheel: a Chinese locale reads Chinese, an English one English
    chinese = {k: v for k, v in env.items() if k not in ("LC_ALL", "LC_MESSAGES")} | {"LANG": "zh_CN.UTF-8"}
    swept = run(duban, "sweep", "--at", "2026-12-02T09:30", cwd=work, env=chinese).stdout
    assert "写出提醒" in swept, swept
    assert "reminder(s) written" in run(duban, "--lang", "en", "sweep", cwd=work, env=env).stdout
    assert (work / "duban.db").is_file()
    # a project of one's own, from the shipped files
    run(duban, "config", "init", work / "proj", cwd=work, env=env)
    project_env = {**env, "DUBAN_CONFIG": str(work / "proj" / "config.toml")}
    run(duban, "init", cwd=work, env=project_env)
    assert (work / "proj" / "workflows" / "inspection-rectification.yaml").is_file()
    assert (work / "proj" / "duban.db").is_file()


def test_a_config_that_only_adds_channels_keeps_the_shipped_workflows(cli, tmp_path):
    config = tmp_path / "only-channels.toml"
    config.write_text('[database]\nurl = "sqlite:///' + str(tmp_path / "d.db") + '"\n'
                      '[channels.console]\nkind = "console"\n', encoding="utf-8")
    from .conftest import run_cli

    result = run_cli("--config", str(config), "init", "--at", "2026-12-01T10:00")
    assert result.code == 0, result.err
    assert "inspection-rectification" in result.out
    assert "duties: 10 defined" in result.out

"""Every benchmark still runs: its ``--help`` and its smallest size, so a bench cannot rot unnoticed.

The figures are not checked (a shared CI machine is no place to time things); what is checked is that
each script gets to the end, exits 0 and writes its JSON. Databases and figures go to the test's own
folder, never to bench/out/ (a developer's last figures stay, and no cached database hides a broken
build step).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.slow

# The smallest run of each script that still does all of its steps.
SMALLEST = {
    "board.py": ["--sizes", "500", "--ledger-size", "100", "--repeat", "1", "--db-dir", "{tmp}"],
    "daemon.py": ["--issues", "200", "--due", "10", "--idle", "1", "--settle", "0.5"],
    "delivery.py": ["--messages", "50", "--warmup", "10", "--repeat", "1"],
    "ledger_import.py": ["--sizes", "1000", "--repeat", "1", "--transitions", "20"],
    "sweep.py": ["--sizes", "1000", "--due", "10", "--repeat", "1"],
    "workspace.py": ["--db", "sqlite", "--issues", "500", "--seconds", "1", "--users", "2", "--db-dir", "{tmp}"],
}


def test_every_bench_script_is_listed():
    scripts = {p.name for p in (ROOT / "bench").glob("*.py")} - {"common.py"}
    assert scripts == set(SMALLEST)


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUBAN_")}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=280)


@pytest.mark.parametrize("script", sorted(SMALLEST))
def test_bench_runs_at_its_smallest_size(script, tmp_path):
    path = ROOT / "bench" / script
    helped = _run([str(path), "--help"], ROOT)
    assert helped.returncode == 0, helped.stderr
    assert "usage:" in helped.stdout

    out = tmp_path / "figures.json"  # an absolute --out: bench/out/ / out is out
    args = [a.replace("{tmp}", str(tmp_path)) for a in SMALLEST[script]]
    done = _run([str(path), *args, "--out", str(out)], ROOT)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert json.loads(out.read_text(encoding="utf-8"))

"""The offline bundle (issue #23): `scripts/bundle.sh` builds one archive per platform; on a machine
with no package index, `install.sh` installs it with `pip --no-index` and duban runs from it —
init, a ledger import, status and a sweep. The network is cut for the install and the run where
this machine allows it (`unshare -n`, as root), so "offline" is a fact of the test, not a flag."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.slow


def _offline() -> list[str]:
    """A prefix that runs a command in a network namespace of its own: no route to any index."""
    unshare = shutil.which("unshare")
    if unshare and os.geteuid() == 0:
        probe = subprocess.run([unshare, "-n", "true"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [unshare, "-n"]
    return []


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run([str(ROOT / "scripts" / "bundle.sh"), "--platform", "all", "-o", str(out)],
                           capture_output=True, text=True, timeout=900, check=False)
    assert built.returncode == 0, built.stdout + built.stderr
    return out


def test_bundle_installs_and_runs_with_no_index(bundles, tmp_path):
    archives = sorted(p.name for p in bundles.iterdir())
    version_abi = archives[0].rsplit("-", 1)[0]
    assert archives == [f"{version_abi}-aarch64.tar.gz", f"{version_abi}-x86_64.tar.gz"]
    with tarfile.open(bundles / f"{version_abi}-aarch64.tar.gz") as tar:
        arm = [n for n in tar.getnames() if n.endswith(".whl")]
    # the compiled dependencies are there for the other platform too, and nothing of this one's
    assert any("pydantic_core" in n and "aarch64" in n for n in arm), arm
    assert any("psycopg_binary" in n and "aarch64" in n for n in arm), arm
    assert not any("x86_64" in n for n in arm)

    with tarfile.open(bundles / f"{version_abi}-x86_64.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    bundle = tmp_path / f"{version_abi}-x86_64"
    offline = _offline()
    # belt and braces where the network cannot be cut: an index that does not answer, no find-links
    env = {**os.environ, "PIP_INDEX_URL": "http://127.0.0.1:9/nowhere", "PIP_FIND_LINKS": "",
           "PIP_EXTRA_INDEX_URL": "", "PYTHON": ""}
    env.pop("DUBAN_DATABASE_URL", None)
    prefix, conf = tmp_path / "opt", tmp_path / "etc"
    done = subprocess.run([*offline, str(bundle / "install.sh"), "--prefix", str(prefix), "--config-dir", str(conf)],
                          capture_output=True, text=True, env=env, timeout=900, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (conf / "config.toml").is_file()
    duban = [*offline, str(prefix / ".venv" / "bin" / "duban"), "--config", str(conf / "config.toml")]

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*duban, *args], capture_output=True, text=True, env={**env, **extra},
                              timeout=300, check=False)

    assert run("init", "--at", "2026-12-01T09:00").returncode == 0
    imported = run("ledger", "import", str(conf / "examples" / "2026-区审计局.csv"), "--at", "2026-12-01T09:00")
    assert imported.returncode == 0 and "8 new" in imported.stdout, imported.stdout + imported.stderr
    status = run("status", "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["issues"] == 8, status.stdout
    swept = run("sweep", "--at", "2027-01-10T10:00")
    assert swept.returncode == 0 and "reminder(s) written" in swept.stdout, swept.stdout + swept.stderr
    assert " 0 reminder(s) written" not in swept.stdout
    # installed without the postgres extra: a PostgreSQL URL is a clear error, not a traceback
    no_driver = run("db", "status", DUBAN_DATABASE_URL="postgresql://postgres@127.0.0.1:5432/test")
    assert no_driver.returncode == 2 and "duban[postgres]" in no_driver.stderr
    assert "Traceback" not in no_driver.stderr

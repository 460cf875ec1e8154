"""What every benchmark records about where it ran (the figures are only comparable on one machine)."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT).stdout.strip()


def machine() -> dict:
    """Versions, cores and the commit under test (marked when engine/ has uncommitted changes)."""
    import sqlalchemy

    dirty = " (+ uncommitted changes)" if git("status", "--porcelain", "engine") else ""
    return {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version, "sqlalchemy": sqlalchemy.__version__,
            "cpus": os.cpu_count(), "platform": platform.platform(),
            "commit": git("rev-parse", "--short", "HEAD") + dirty}

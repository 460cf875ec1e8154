"""Shared fixtures: a real SQLite file, the real PostgreSQL, and the CLI run in-process."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
SEED_CSV = ROOT / "examples" / "bishan-keji-2022.csv"
WORKFLOWS = ROOT / "workflows"
PG_ADMIN_URL = os.environ.get("DUBAN_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self):
        import json

        return json.loads(self.out)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test sees the developer's config or database."""
    monkeypatch.delenv("DUBAN_CONFIG", raising=False)
    monkeypatch.delenv("DUBAN_DATABASE_URL", raising=False)
    monkeypatch.setenv("DUBAN_LANG", "en")  # the suite asserts English messages; tests/test_cli_language.py the Chinese
    monkeypatch.chdir(tmp_path)
    from engine.calendar import forget_warnings

    forget_warnings()  # the provisional-year warning is once per process: each test starts as a new one


@pytest.fixture
def project(tmp_path) -> Path:
    """A project folder: config.toml pointing at a copy of the shipped workflows."""
    shutil.copytree(WORKFLOWS, tmp_path / "workflows")
    (tmp_path / "config.toml").write_text(
        '[database]\nurl = "sqlite:///' + str(tmp_path / "duban.db") + '"\n'
        '[workflows]\npaths = ["workflows"]\nadmins = ["admin"]\n',
        encoding="utf-8",
    )
    return tmp_path


def run_cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run ``duban ARGS`` in this process, as the console script would, capturing its output."""
    from engine.app.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in args])
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli(project):
    """``cli("status", "--json")`` against the project's own config and SQLite file."""

    def call(*args: str, **env: str) -> Result:
        return run_cli("--config", str(project / "config.toml"), *args, env=env or None)

    return call


@pytest.fixture
def seeded(cli):
    """A project with the shipped example ledger imported."""
    assert cli("init").code == 0
    result = cli("ledger", "import", SEED_CSV, "--feedback-date", "2022-07-15", "--at", "2022-07-20T10:00")
    assert result.code == 0, result.err
    return cli


def mail_settings(public_url: str, smtp_port: int) -> str:
    """config.toml lines: a public URL, no jitter, and an e-mail channel ``mail`` to a local SMTP port."""
    return f"""
[board]
public_url = "{public_url}"

[notifications]
jitter_seconds = 0

[channels.mail]
kind = "email"
host = "127.0.0.1"
port = {smtp_port}
sender = "duban@example.org"
starttls = false
timeout = 5
"""


def add_reviewer(cli, name: str = "巡察办", scope: str | None = None) -> None:
    """A reviewer account (销号 sign-off) over every ledger, or over ``scope``."""
    role = f"reviewer:{scope}" if scope else "reviewer"
    result = cli("user", "add", name, "--role", role)
    assert result.code == 0, result.err


def _postgres_reachable() -> str | None:
    try:
        eng = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with eng.connect() as conn:
            conn.execute(text("select 1"))
        eng.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return str(exc).splitlines()[0]


@pytest.fixture
def pg_url():
    """A fresh, empty PostgreSQL database for one test, dropped afterwards.

    CI sets DUBAN_REQUIRE_POSTGRES=1 so a missing server fails the run instead of skipping.
    """
    problem = _postgres_reachable()
    if problem:
        if os.environ.get("DUBAN_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required (DUBAN_REQUIRE_POSTGRES=1) but not reachable: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {problem}")
    name = f"duban_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """The same test on a real SQLite file and on the real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_url")


class Store(NamedTuple):
    engine: Any
    sessions: Any
    runtime: Any


@pytest.fixture
def store(db_url, project, monkeypatch):
    """The API on this backend: a migrated database, its session factory and a Runtime."""
    from engine.config import load_config
    from engine.runtime import Runtime
    from engine.store import db

    monkeypatch.setenv("DUBAN_DATABASE_URL", db_url)
    config = load_config(project / "config.toml")
    engine = db.make_engine(config.database.url)
    db.upgrade(engine)
    yield Store(engine, db.session_factory(engine), Runtime(config))
    engine.dispose()


@contextlib.contextmanager
def serving(app: Any):
    """An ASGI application served by the real uvicorn on 127.0.0.1 (a free port); yields its base URL."""
    from engine.app.http.server import HttpServer

    server = HttpServer(app, "127.0.0.1:0")
    server.start()
    try:
        yield f"http://{server.address}"
    finally:
        server.close()


def site_for(config_path: Path, *, at: str | None = None, token: str | None = None):
    """The HTTP application's ``Site`` over a project's config and database, its clock at ``at``."""
    from engine.app.cli.context import App
    from engine.app.http.app import Site
    from engine.clock import Clock, FixedClock, parse_instant

    app = App(str(config_path))
    clock = FixedClock(parse_instant(at, app.config.tz)) if at else Clock()
    runtime = app.runtime
    return Site(runtime=lambda: runtime, sessions=app.readers, clock=clock, token=lambda: token, writers=app.sessions)

"""Shared fixtures: a real SQLite file, the real PostgreSQL, and the CLI run in-process.

The suite runs in parallel (pytest-xdist, ``-n``): nothing here may be shared between workers but
what each names uniquely (a PostgreSQL database per test, files under each test's ``tmp_path``).
"""

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
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import OperationalError

ROOT = Path(__file__).resolve().parent.parent
SEED_CSV = ROOT / "examples" / "bishan-keji-2022.csv"
WORKFLOWS = ROOT / "workflows"
PG_ADMIN_URL = os.environ.get("DUBAN_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# Hypothesis profiles: "ci" (CI=true, as .ci/run sets) runs every property test with the examples it
# asks for (``examples(300)``: the counts the issues asked for, >= 200); "dev", the default on a
# developer's machine, a fifth of them (at least 20) and Hypothesis' default 100 down to 30.
# HYPOTHESIS_PROFILE=ci|dev chooses either. No deadline: a loaded 2-core machine is not a failure.
PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or (
    "ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev")
hypothesis_settings.register_profile("ci", max_examples=100, deadline=None, print_blob=True)
hypothesis_settings.register_profile("dev", max_examples=30, deadline=None)
hypothesis_settings.load_profile(PROFILE)


def examples(wanted: int) -> int:
    """A property test's example count under the active profile: ``wanted`` in CI."""
    return wanted if PROFILE == "ci" else max(20, wanted // 5)


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


# -- one migrated template per worker ----------------------------------------------------------------
# Running the migrations takes 1–3 s a database, and most tests start from an empty one (`duban init`,
# the `store` fixture). Each worker migrates one template per backend through the real path once, then
# a test's `db.upgrade(engine)` to head on an *empty* database gets the template's pages first (SQLite's
# backup API into the test's own file; `CREATE DATABASE … TEMPLATE` on PostgreSQL) and the real upgrade
# then finds the schema at head and only refreshes the statistics, as it would after migrating. Upgrades
# to a named revision, or of a database that holds anything, run the migrations as before.
# DUBAN_TEST_MIGRATE=1 turns the shortcut off.


class _Templates:
    def __init__(self, folder: Path, worker: str) -> None:
        self.folder, self.worker = folder, worker
        self.sqlite: Path | None = None
        self.postgres: str | None = None

    def sqlite_file(self, real_upgrade) -> Path:
        if self.sqlite is None:
            from engine.store import db

            path = self.folder / "template.db"
            engine = db.make_engine(f"sqlite:///{path}")
            real_upgrade(engine)
            engine.dispose()  # the last connection out checkpoints the WAL into the file
            self.sqlite = path
        return self.sqlite

    def postgres_name(self, real_upgrade) -> str:
        if self.postgres is None:
            from engine.store import db

            name = f"duban_tmpl_{self.worker}_{uuid.uuid4().hex[:8]}"
            admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
            engine = db.make_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
            real_upgrade(engine)
            engine.dispose()  # CREATE DATABASE … TEMPLATE needs the template without connections
            self.postgres = name
        return self.postgres

    def drop(self) -> None:
        if self.postgres is not None:
            admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.postgres}" WITH (FORCE)'))
            admin.dispose()


@pytest.fixture(scope="session")
def _templates(tmp_path_factory):
    templates = _Templates(tmp_path_factory.mktemp("template"), os.environ.get("PYTEST_XDIST_WORKER", "main"))
    yield templates
    _dropper.drain()
    templates.drop()


def _templated(engine) -> bool:
    if engine.dialect.name == "sqlite":
        return engine.url.database not in (None, "", ":memory:")
    # only a database this suite made for one test (pg_url, test_backup's extra one): it is dropped
    # and made again from the template, which must never happen to anyone else's
    return engine.dialect.name == "postgresql" and (engine.url.database or "").startswith(("duban_t_", "duban_r_"))


def _is_empty(engine) -> bool:
    with engine.connect() as conn:
        return not inspect(conn).get_table_names()


def _from_template(engine, templates: _Templates, real_upgrade) -> None:
    """Give an empty database the template's schema (at head, no rows) in place."""
    import sqlite3

    if engine.dialect.name == "sqlite":
        source = sqlite3.connect(templates.sqlite_file(real_upgrade))
        try:
            with engine.connect() as conn:
                source.backup(conn.connection.driver_connection)
        finally:
            source.close()
    elif engine.dialect.name == "postgresql":
        template = templates.postgres_name(real_upgrade)
        name = engine.url.database
        engine.dispose()
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:  # FORCE: another engine of the test may hold an idle connection
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        admin.dispose()


@pytest.fixture(autouse=True)
def _migrate_from_template(monkeypatch, _templates):
    from engine.store import db

    real_upgrade = db.upgrade
    if os.environ.get("DUBAN_TEST_MIGRATE") == "1":
        return

    def upgrade(engine, revision: str = "head") -> None:
        if revision == "head" and _templated(engine):
            try:
                empty = _is_empty(engine)
            except OperationalError:  # unreachable: the real upgrade says so in its own words
                empty = False
            if empty:
                _from_template(engine, _templates, real_upgrade)
        real_upgrade(engine, revision)

    monkeypatch.setattr(db, "upgrade", upgrade)


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
    name = f"duban_t_{uuid.uuid4().hex[:12]}"  # unique across xdist workers and concurrent runs
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        admin.dispose()
        _dropper.drop(name)


class _Dropper:
    """Drops finished tests' databases on a thread: a DROP of a migrated database takes 1–3 s of the
    server's time (it waits on disk), and the next test need not wait for it. Drained at the end."""

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-drop")
        self.pending: list[Any] = []

    def drop(self, name: str) -> None:
        self.pending.append(self.pool.submit(self._drop, name))

    @staticmethod
    def _drop(name: str) -> None:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            admin.dispose()

    def drain(self) -> None:
        for future in self.pending:
            future.result()  # a failed drop fails the session, not silently
        self.pending.clear()


_dropper = _Dropper()


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

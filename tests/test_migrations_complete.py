"""Autogenerate against a database at head proposes nothing, on SQLite and on PostgreSQL.

So ``env.py`` knows every table, and the models and the migrations agree on columns, types,
server defaults, indexes, unique and foreign keys. The comparison runs in a fresh interpreter
that imports only what ``env.py`` imports: in this process other tests (and the CLI) have
imported every model module already, which would hide a table ``env.py`` forgets.
"""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import ROOT, run_cli

# Runs env.py as alembic does, on a connection, and compares the database with the metadata and
# options env.py itself configured; then asks `alembic check` (the developer's command) too.
PROBE = r"""
import json, sys
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from engine.store import db

# the modules that may declare tables; engine.store.db and its writer queue declare none
models = sorted(m for m in sys.modules
                if m.startswith("notifications")
                or (m.startswith("engine.store.") and m not in ("engine.store.db", "engine.store.writers")))
engine = db.make_engine(sys.argv[1])
cfg = db.alembic_config(engine)
script = ScriptDirectory.from_config(cfg)
seen = {"imported_before_env": models}

def compare(_revision, context):
    metadata = context.opts["target_metadata"]
    seen["metadata_tables"] = sorted(metadata.tables)
    seen["diff"] = [repr(d) for d in compare_metadata(context, metadata)]
    return []  # no migration steps: this only looks

with engine.connect() as conn:
    cfg.attributes["connection"] = conn
    with EnvironmentContext(cfg, script, fn=compare):
        script.run_env()
    # the FTS5 table and its shadow tables are the search index's own (engine.store.autogen.FTS_PREFIX), not models
    seen["database_tables"] = sorted(t for t in set(inspect(conn).get_table_names()) - {"alembic_version"}
                                     if not t.startswith("issue_search_fts"))

del cfg.attributes["connection"]  # `alembic check` connects by URL, as on a developer's machine
try:
    command.check(cfg)
    seen["alembic_check"] = "ok"
except Exception as exc:
    seen["alembic_check"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(seen))
"""


def test_autogenerate_at_head_proposes_nothing(db_url, project, monkeypatch):
    monkeypatch.setenv("DUBAN_DATABASE_URL", db_url)
    init = run_cli("--config", str(project / "config.toml"), "init")
    assert init.code == 0, init.err

    probe = subprocess.run([sys.executable, "-c", PROBE, db_url], cwd=ROOT, capture_output=True, text=True,
                           timeout=300, check=False)
    assert probe.returncode == 0, probe.stderr
    seen = json.loads(probe.stdout.splitlines()[-1])  # `alembic check` says its verdict on a line before

    assert seen["imported_before_env"] == []  # the tables below came from env.py's own imports
    # The outbox tables (notifications.store) and the accounts tables (engine.store.accounts)
    # live outside engine.store.models; env.py must bring them in.
    assert {"outbox", "delivery_attempts", "users", "user_roles", "issues"} <= set(seen["metadata_tables"])
    assert seen["metadata_tables"] == seen["database_tables"]
    assert seen["diff"] == []
    assert seen["alembic_check"] == "ok"

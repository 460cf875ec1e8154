"""The JSON API as its OpenAPI document describes it: schemathesis against the real server (issue #12).

Every operation of ``/api/v1/openapi.json`` is called with generated inputs, as an administrator
and as one department, over real HTTP on 127.0.0.1: no response is a 5xx, every response matches
its documented schema, status code and content type.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from .conftest import SEED_CSV, serving, site_for

AT = "2026-12-02T10:00"


@pytest.fixture
def api(project, cli):
    from engine.app.http.app import create_app

    assert cli("init", "--at", AT).code == 0
    assert cli("ledger", "import", SEED_CSV, "--feedback-date", "2022-07-15", "--at", AT).code == 0
    tokens = {}
    for name in ("admin", "办公室"):
        made = cli("user", "token", name, "--label", "schemathesis", "--at", AT)
        assert made.code == 0, made.err
        tokens[name] = made.out.strip().splitlines()[-1]
    with serving(create_app(site_for(project / "config.toml", at=AT))) as base:
        yield base, tokens


def schemathesis(base: str, token: str, tmp_path: Path, seconds: int,
                 issue: tuple[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run schemathesis's CLI; with ``issue``, every ``{ledger}/{ref}`` is that real issue (so the
    actions, progress and evidence operations reach the services), else generated."""
    exe = Path(sys.executable).parent / "schemathesis"
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'[parameters]\n"path.ledger" = "{issue[0]}"\n"path.ref" = "{issue[1]}"\n' if issue else "",
                      encoding="utf-8")
    return subprocess.run(
        [str(exe), "--config-file", str(config), "run", f"{base}/api/v1/openapi.json",
         "-H", f"Authorization: Bearer {token}",
         # no 5xx; bodies, status codes, content types and headers as documented
         "--checks", "not_a_server_error,response_schema_conformance,status_code_conformance,"
                     "content_type_conformance,response_headers_conformance",
         "--max-examples", "25", "--max-time", str(seconds), "--seed", "12", "--workers", "1",
         "--phases", "examples,coverage,fuzzing", "--request-timeout", "20", "--no-color",
         "--report", "junit", "--report-dir", str(tmp_path / "report")],
        capture_output=True, text=True, timeout=seconds + 120, cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""})


def test_the_document_names_every_door_of_the_api(api):
    base, tokens = api
    doc = httpx.get(f"{base}/api/v1/openapi.json", timeout=10).json()
    paths = set(doc["paths"])
    assert {"/issues", "/issues/{ledger}/{ref}", "/issues/{ledger}/{ref}/history", "/issues/{ledger}/{ref}/evidence",
            "/issues/{ledger}/{ref}/actions", "/duties", "/users", "/me", "/todo"} <= {p.removeprefix("/api/v1")
                                                                                      for p in paths}
    assert "bearer" in str(doc.get("components", {}).get("securitySchemes", {})).lower()


@pytest.mark.parametrize(("who", "issue"), [("admin", ("bishan-keji-2022", "7")), ("办公室", ("bishan-keji-2022", "1")),
                                            ("办公室", None)])
def test_no_5xx_and_every_response_as_documented(api, tmp_path, who, issue):
    base, tokens = api
    done = schemathesis(base, tokens[who], tmp_path, seconds=30, issue=issue)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    cases = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    assert cases and int(cases.group(1)) > 200, done.stdout[-3000:]
    if issue:  # the real issue was reached: its operations did not all answer 404
        assert "operations repeatedly returned 404" not in done.stdout, done.stdout[-3000:]


def test_every_api_route_hops_to_a_worker_thread_once():
    """Each ``/api/v1`` route is a coroutine whose work runs in ``api._run``'s one worker-thread
    hop; a plain ``def`` route would run in the pool and then hop again for FastAPI to check its
    answer against the response model (the hand-offs were a tenth of a PostgreSQL write's server
    time)."""
    import inspect

    from fastapi.routing import APIRoute

    from engine.app.http.api import router

    routes = [r for r in router.routes if isinstance(r, APIRoute)]
    assert len(routes) >= 15
    plain = [f"{sorted(r.methods)} {r.path}" for r in routes if not inspect.iscoroutinefunction(r.endpoint)]
    assert plain == []

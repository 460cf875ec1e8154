"""Fuzzing what people feed duban (issue #11): workflow YAML, ledgers (CSV and XLSX, broken zips
included) and CLI arguments. Every case ends in a clean refusal (the domain's own error, exit 2)
or a success; never another exception, never a partial write.

The budget here is fixed for CI (``FUZZ_EXAMPLES`` per kind, default 400); ``scripts/fuzz.sh
--minutes N`` runs the same properties much longer and prints the counts.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import zipfile
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import DubanError

from .conftest import SEED_CSV, WORKFLOWS, examples, run_cli

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", examples(400)))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SHIPPED = (WORKFLOWS / "inspection-rectification.yaml").read_text(encoding="utf-8")
SEED = SEED_CSV.read_text(encoding="utf-8")
NOW = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)
YAML_BITS = ["&a ", "*a", "<<: *a", "!!python/object:os.system", "- ", ": ", "{", "}", "[", "]", "'", '"', "\n  ",
             "\t", "#", "%YAML 1.1\n", "---\n", "~", "9" * 5000, "\x00", "長", "\ufeff", "? ", "|\n", ">\n"]
CSV_BITS = [",", '"', "\n", "\r", "\x00", "=1+1", "9999-12-31", "2022-13-40", "已完成", "", "\ufeff", "序号", "長" * 50]


def mutate(data: st.DataObject, text: str, bits: list[str], rounds: int = 4) -> str:
    for _ in range(data.draw(st.integers(1, rounds))):
        at = data.draw(st.integers(0, len(text)))
        how = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = data.draw(st.sampled_from(bits) | st.text(max_size=8))
        span = data.draw(st.integers(0, 40))
        if how == "insert":
            text = text[:at] + piece + text[at:]
        elif how == "delete":
            text = text[:at] + text[at + span:]
        else:
            text = text[:at] + piece + text[at + span:]
    return text


@FUZZ
@given(st.data())
def test_workflow_yaml(data):
    from engine.workflow.loader import load_workflow_text

    text = mutate(data, SHIPPED, YAML_BITS)
    try:
        load_workflow_text(text, "fuzz.yaml")
    except DubanError as exc:
        assert all(line.startswith("fuzz.yaml") for line in exc.details), exc.details


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from engine.config import Config
    from engine.runtime import Runtime
    from engine.store import db

    path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    runtime = Runtime(Config.model_validate({"database": {"url": f"sqlite:///{path}"},
                                             "workflows": {"paths": [str(WORKFLOWS)]}}))
    sessions = db.session_factory(engine)
    with db.transaction(sessions) as session:
        runtime.registry.sync(session, "inspection-rectification", NOW)
    yield sessions, runtime
    engine.dispose()


def _import(store, path: Path) -> None:
    """Import ``path``; on refusal, check that nothing of it was kept."""
    from sqlalchemy import func, select

    from engine.ledger.importer import import_ledger
    from engine.store import db
    from engine.store.models import Issue, Ledger

    sessions, runtime = store
    with sessions() as session:
        before = (session.scalar(select(func.count()).select_from(Issue)),
                  session.scalar(select(func.count()).select_from(Ledger)))
    try:
        with db.transaction(sessions) as session:
            import_ledger(session, runtime, path, now=NOW, workflow_name="inspection-rectification",
                          ledger_name="fuzz", feedback_date=dt.date(2022, 7, 15))
            raise _Rollback  # keep the store as it was for the next case
    except _Rollback:
        pass
    except DubanError as exc:
        assert str(path) in exc.message
    with sessions() as session:
        after = (session.scalar(select(func.count()).select_from(Issue)),
                 session.scalar(select(func.count()).select_from(Ledger)))
    assert after == before  # nothing half-written


class _Rollback(Exception):
    pass


@FUZZ
@given(st.data())
def test_csv_ledgers(store, tmp_path_factory, data):
    path = tmp_path_factory.mktemp("csv") / "ledger.csv"
    path.write_text(mutate(data, SEED, CSV_BITS, rounds=6), encoding="utf-8", errors="surrogatepass")
    _import(store, path)


def _workbook() -> bytes:
    import csv

    book = openpyxl.Workbook()
    ws = book.active
    for row in csv.reader(io.StringIO(SEED)):
        ws.append(row)
    ws.merge_cells("B2:B6")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


WORKBOOK = _workbook()


@FUZZ
@given(st.data())
def test_xlsx_ledgers(store, tmp_path_factory, data):
    raw = bytearray(WORKBOOK)
    how = data.draw(st.sampled_from(["flip", "truncate", "part", "random"]))
    if how == "flip":
        for _ in range(data.draw(st.integers(1, 20))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255))
    elif how == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    elif how == "part":  # a well-formed zip whose sheet XML is damaged
        with zipfile.ZipFile(io.BytesIO(WORKBOOK)) as src:
            parts = {n: src.read(n) for n in src.namelist()}
        name = "xl/worksheets/sheet1.xml"
        xml = parts[name].decode("utf-8")
        parts[name] = mutate(data, xml, ["<", ">", "&", "&lt;", "<!ENTITY x 'y'>", '"', "</row>", "<c r='A1'>"],
                             rounds=3).encode("utf-8", "surrogatepass")
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as dst:
            for n, content in parts.items():
                dst.writestr(n, content)
        raw = bytearray(out.getvalue())
    else:
        raw = bytearray(data.draw(st.binary(max_size=4096)))
    path = tmp_path_factory.mktemp("xlsx") / "ledger.xlsx"
    path.write_bytes(bytes(raw))
    _import(store, path)


OPTIONS = [("sweep", "--at"), ("remind", "preview", "--at"), ("duty", "list", "--from"), ("duty", "list", "--until"),
           ("issue", "show"), ("issue", "list", "--state"), ("outbox", "retry"), ("calendar", "show"),
           ("calendar", "export", "--department"), ("status", "--ledger"), ("snooze", "add", "--until")]
VALUES = st.sampled_from(["0001-01-01T00:00+14:00", "9999-12-31", "2026-02-30", "-1", "0", "1" * 400, "", " ",
                          "bishan-keji-2022/7", "../../etc/passwd", "NaN", "2026-12-01T25:00", "长期", "\x00",
                          "2026-W49", "99999999999999999999", "2026-12-01T10:00+99:00"]) | st.text(max_size=30)


@pytest.fixture(scope="module")
def project_cli(tmp_path_factory):
    import shutil

    root = tmp_path_factory.mktemp("cli")
    shutil.copytree(WORKFLOWS, root / "workflows")
    config = root / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{root / "d.db"}"\n[workflows]\npaths = ["workflows"]\n',
                      encoding="utf-8")
    assert run_cli("--config", config, "init").code == 0
    assert run_cli("--config", config, "ledger", "import", SEED_CSV, "--feedback-date", "2022-07-15").code == 0
    return config


@FUZZ
@given(st.sampled_from(OPTIONS), VALUES)
def test_cli_arguments(project_cli, option, value):
    if "\x00" in value:
        value = value.replace("\x00", "")
    result = run_cli("--config", project_cli, *option, value)
    assert result.code in (0, 1, 2), (option, value, result.code, result.err)
    assert "Traceback" not in result.err and "internal error" not in result.err, (option, value, result.err)


PATHS = ["/", "/index.html", "/duties", "/report", "/calendar.ics", "/issues/bishan-keji-2022/7", "/healthz",
         "/api/v1", "/metrics"]
PARAMS = ["ledger", "department", "month", "page", "ledgers_page", "format", "token", "overdue", "area", "state"]


@pytest.fixture(scope="module")
def web(project_cli):
    import httpx

    from engine.app.http.app import create_app
    from engine.app.http.server import HttpServer

    from .conftest import site_for

    server = HttpServer(create_app(site_for(project_cli, at="2026-12-01T10:00")), "127.0.0.1:0")
    server.start()
    with httpx.Client(base_url=f"http://{server.address}", timeout=30) as client:
        yield client
    server.close()


@FUZZ
@given(st.sampled_from(PATHS), st.dictionaries(st.sampled_from(PARAMS), VALUES, max_size=3),
       st.sampled_from(["", "/x", "%00", "/../../etc/passwd", "%E5%8C%BA"]))
def test_http_requests_never_answer_5xx(web, path, params, tail):
    params = {k: v.replace("\x00", "") for k, v in params.items()}
    answer = web.get(path + (tail if path.startswith("/issues") else ""), params=params)
    assert answer.status_code < 500, (path, params, tail, answer.status_code, answer.text[:300])

"""The status board: its WSGI app over real HTTP, driven in a real headless Chromium.

The data: the shipped ledger imported on 2022-07-20; on 2022-08-01 problem 1 (长期坚持) rebounds
and problem 4 (已完成) is reopened; problem 2 rebounds and is completed again with evidence on
2022-09-15. On 2022-10-20 problem 1 is 11 working days past its 整改时限 of 2022-09-30 (the National
Day week in between) and so escalated to 第一责任人 and 派驻纪检监察组; problem 4 falls due on
2022-10-31, within the next 14 days.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.util import setup_testing_defaults

import pytest

from tests.conftest import ROOT, SEED_CSV

AT = "2022-10-20T10:00"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SENTENCE = "4个方面共26个具体问题，已整改完成24个，正在整改2个，需长期坚持7个"


@pytest.fixture
def ledger(project, cli):
    assert cli("init", "--at", "2022-07-20T10:00").code == 0
    assert cli("ledger", "import", SEED_CSV, "--feedback-date", "2022-07-15", "--at", "2022-07-20T10:00").code == 0
    steps = [("1", "reopen", "党组书记", "问题反弹：集体学习次数不足", "2022-08-01T10:00"),
             ("2", "reopen", "党组书记", "问题反弹", "2022-08-01T10:00"),
             ("4", "reopen", "分管副局长", "政策修订尚未完成", "2022-08-01T10:00")]
    for ref, trigger, by, note, at in steps:
        result = cli("issue", "transition", f"bishan-keji-2022/{ref}", trigger, "--by", by, "--note", note, "--at", at)
        assert result.code == 0, result.err
    (project / "学习记录.pdf").write_bytes(b"%PDF-1.4 minutes")
    assert cli("issue", "transition", "bishan-keji-2022/2", "complete", "--by", "办公室", "--evidence",
               project / "学习记录.pdf", "--at", "2022-09-15T10:00").code == 0
    assert cli("duty", "list", "--at", AT).code == 0  # store duty occurrences as of then
    return project


def _board(project: Path, token: str | None = None):
    from engine.board import make_board_app
    from engine.cli.app import App
    from engine.clock import FixedClock, parse_instant

    app = App(str(project / "config.toml"))
    return make_board_app(app.runtime, app.sessions, token, clock=FixedClock(parse_instant(AT, app.config.tz)))


def call(wsgi, path: str, query: str = "", method: str = "GET", remote: str = "127.0.0.1", **headers: str):
    environ = {"PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": method, "REMOTE_ADDR": remote, **headers}
    setup_testing_defaults(environ)
    seen: dict[str, object] = {}

    def start_response(status, response_headers, exc_info=None):
        seen["status"], seen["headers"] = status, response_headers

    body = b"".join(wsgi(environ, start_response)).decode("utf-8")
    return seen["status"], dict(seen["headers"]), body


def test_pages_render(ledger):
    wsgi = _board(ledger)
    status, headers, body = call(wsgi, "/")
    assert status == "200 OK" and headers["Content-Type"] == "text/html; charset=utf-8"
    csp = headers["Content-Security-Policy"]
    assert "script-src" not in csp and "default-src 'none'" in csp
    assert SENTENCE in body
    assert 'data-ref="bishan-keji-2022/1"' in body and "升级：第一责任人、派驻纪检监察组" in body
    assert "<svg" in body and 'class="open"' in body
    status, _, body = call(wsgi, "/issues/bishan-keji-2022/1")
    assert status == "200 OK" and "问题反弹：集体学习次数不足" in body and "已逾期11个工作日" in body
    status, _, body = call(wsgi, "/issues/bishan-keji-2022/2")
    assert "学习记录.pdf" in body
    status, _, body = call(wsgi, "/duties", "month=2022-10")
    assert status == "200 OK" and "2022年10月" in body and "往来款项清理" in body
    assert call(wsgi, "/report")[0] == "200 OK"
    assert call(wsgi, "/calendar.ics")[1]["Content-Type"].startswith("text/calendar")
    assert call(wsgi, "/issues/bishan-keji-2022/999")[0] == "404 Not Found"
    assert call(wsgi, "/nowhere")[0] == "404 Not Found"
    assert call(wsgi, "/", method="POST")[0] == "405 Method Not Allowed"  # read-only
    status, _, body = call(wsgi, "/", "department=财务室")
    assert status == "200 OK" and 'data-ref="bishan-keji-2022/1"' not in body  # 办公室's problem filtered out


def test_mounted_under_a_prefix_links_stay_inside(ledger):
    status, _, body = call(_board(ledger), "/", SCRIPT_NAME="/board")
    assert status == "200 OK" and 'href="/board/issues/bishan-keji-2022/1"' in body


def test_remote_requests_need_the_token(ledger):
    open_board, guarded = _board(ledger), _board(ledger, token="s3cret")
    assert call(open_board, "/", remote="127.0.0.1")[0] == "200 OK"
    assert call(open_board, "/", remote="::1")[0] == "200 OK"
    assert call(open_board, "/", remote="192.0.2.10")[0] == "403 Forbidden"  # no token configured
    assert call(guarded, "/", remote="192.0.2.10")[0] == "401 Unauthorized"
    assert call(guarded, "/", "token=wrong", remote="192.0.2.10")[0] == "401 Unauthorized"
    assert call(guarded, "/", remote="192.0.2.10", HTTP_AUTHORIZATION="Bearer s3cret")[0] == "200 OK"
    status, headers, _ = call(guarded, "/", "token=s3cret", remote="192.0.2.10")
    assert status == "200 OK" and "HttpOnly" in headers["Set-Cookie"]
    assert call(guarded, "/", remote="192.0.2.10", HTTP_COOKIE="duban_board=s3cret")[0] == "200 OK"
    # a reverse proxy on this machine does not make its visitors local
    assert call(guarded, "/", remote="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.4")[0] == "401 Unauthorized"


def test_token_comes_from_the_environment_variable_named_in_config(project):
    from typing import Any

    from engine.board.auth import board_token
    from engine.config import Config

    class WithBoard(Config):  # the model once engine/config.py declares [board]
        board: dict[str, Any] = {}

    config = WithBoard.model_validate({"board": {"token_env": "MY_BOARD_TOKEN"}})
    assert board_token(config, {"MY_BOARD_TOKEN": "abc", "DUBAN_BOARD_TOKEN": "other"}) == "abc"
    assert board_token(config, {"MY_BOARD_TOKEN": " "}) is None
    assert board_token(Config(), {"DUBAN_BOARD_TOKEN": "xyz"}) == "xyz"  # the default variable
    assert board_token(Config(), {}) is None


def test_burndown_replays_the_history(ledger):
    from engine.board.data import ledger_board
    from engine.cli.app import App
    from engine.queries import find_ledger

    app = App(str(ledger / "config.toml"))
    with app.transaction() as session:
        board = ledger_board(session, app.runtime, find_ledger(session, "bishan-keji-2022"), dt.date(2022, 10, 20))
    assert board.burndown == [(dt.date(2022, 7, 20), 0, 26), (dt.date(2022, 8, 1), 3, 23),
                              (dt.date(2022, 9, 15), 2, 24), (dt.date(2022, 10, 20), 2, 24)]
    assert (board.overview.areas, board.overview.issues, board.overview.long_term) == (4, 26, 7)


# -- over real HTTP ----------------------------------------------------------------------------


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serve(wsgi) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, wsgi, server_class=_Server, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def _browser_or_skip():
    """Playwright driving Debian's Chromium; skip without them unless CI demands them."""
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem, sync_playwright = "the playwright package is not installed (pip install -e '.[dev]')", None
    if problem is None and not Path(CHROMIUM).exists():
        problem = f"{CHROMIUM} is missing (scripts/setup.sh installs Debian's chromium)"
    if problem:
        if os.environ.get("DUBAN_REQUIRE_BROWSER_TOOLS") == "1":
            pytest.fail(f"DUBAN_REQUIRE_BROWSER_TOOLS=1 but {problem}")
        pytest.skip(problem)
    return sync_playwright


def test_board_in_a_real_browser(ledger):
    sync_playwright = _browser_or_skip()
    with serve(_board(ledger)) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
            page.goto(base + "/")
            assert SENTENCE in page.locator("p.overview").inner_text()
            totals = page.locator("table.areas tr.total td").all_inner_texts()
            assert totals[0] == "合计" and totals[-4:] == ["24", "2", "7", "26"]  # done, open, long-term, all
            overdue = page.locator("#overdue tr.overdue-item")
            assert overdue.count() == 1
            row = overdue.first.inner_text()
            assert "bishan-keji-2022/1" in row and "升级：第一责任人、派驻纪检监察组" in row and "11" in row
            assert "bishan-keji-2022/4" in page.locator("#upcoming").inner_text()
            assert page.locator("svg.burndown polyline.open").count() == 1
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "board.png"), full_page=True)

            overdue.first.locator("a").click()  # the issue page, reached the way a person would
            page.wait_for_url("**/issues/bishan-keji-2022/1")
            assert page.locator("#state").inner_text() == "整改中"
            history = page.locator("#history").inner_text()
            assert "问题反弹：集体学习次数不足" in history and "长期坚持" in history
            assert "已逾期11个工作日" in page.locator("#issue").inner_text()

            page.goto(base + "/issues/bishan-keji-2022/2")
            assert "学习记录.pdf" in page.locator("#evidence").inner_text()

            page.get_by_role("link", name="经常性工作日历").click()
            page.wait_for_url("**/duties")
            assert page.locator("section.calendar").count() == 2
            assert "往来款项清理" in page.locator("section.calendar").first.inner_text()
            ARTIFACTS.joinpath("board-duties.png").write_bytes(page.screenshot(full_page=True))
        finally:
            browser.close()
    assert (ARTIFACTS / "board.png").stat().st_size > 20_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_duban_board_serves_standalone(ledger):
    port = _free_port()
    env = {**os.environ, "DUBAN_CONFIG": str(ledger / "config.toml")}
    proc = subprocess.Popen([sys.executable, "-c", "from engine.cli.main import entry; entry()", "board",
                             "--listen", f"127.0.0.1:{port}", "--at", AT], env=env, cwd=ledger,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
                    body = resp.read().decode("utf-8")
                break
            except (urllib.error.URLError, ConnectionError) as exc:
                if time.monotonic() > deadline or proc.poll() is not None:
                    why = proc.stderr.read().decode() if proc.poll() is not None else "no answer"
                    raise AssertionError(why) from exc
                time.sleep(0.2)
        assert SENTENCE in body
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/calendar.ics", timeout=5) as resp:
            assert resp.read().startswith(b"BEGIN:VCALENDAR")
    finally:
        proc.terminate()
        proc.wait(timeout=10)

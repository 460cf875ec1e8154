"""The status board: the HTTP application on the real uvicorn, driven in a real headless Chromium.

The data: the shipped ledger imported on 2022-07-20; on 2022-08-01 problem 1 (长期坚持) rebounds
and problem 4 (已完成) is reopened; problem 2 rebounds and is completed again on 2022-09-15 (办公室
submits it with evidence, admin signs it off). On 2022-10-20 problem 1 is 11 working days past its
整改时限 of 2022-09-30 (the National Day week in between) and so escalated to 第一责任人 and
派驻纪检监察组; problem 4 falls due on 2022-10-31, within the next 14 days.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, SEED_CSV, serving, site_for

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
    assert cli("issue", "transition", "bishan-keji-2022/2", "submit", "--by", "办公室", "--evidence",
               project / "学习记录.pdf", "--at", "2022-09-15T10:00").code == 0
    assert cli("issue", "transition", "bishan-keji-2022/2", "approve", "--by", "admin",
               "--at", "2022-09-15T11:00").code == 0
    assert cli("duty", "list", "--at", AT).code == 0  # store duty occurrences as of then
    return project


@contextmanager
def board(project: Path, token: str | None = None, mount: str | None = None) -> Iterator[httpx.Client]:
    """The application on the real uvicorn (under ``mount`` when given); a client of it."""
    from fastapi import FastAPI

    from engine.app.http.app import create_app

    app = create_app(site_for(project / "config.toml", at=AT, token=token))
    if mount:
        outer = FastAPI()
        outer.mount(mount, app)
        app = outer
    with serving(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        yield client


REMOTE = {"X-Forwarded-For": "192.0.2.10"}  # a visitor through a reverse proxy on this machine


def test_pages_render(ledger):
    with board(ledger) as web:
        answer = web.get("/")
        assert answer.status_code == 200 and answer.headers["content-type"] == "text/html; charset=utf-8"
        csp = answer.headers["content-security-policy"]
        assert "script-src" not in csp and "default-src 'none'" in csp
        assert answer.headers["x-content-type-options"] == "nosniff"
        body = answer.text
        assert SENTENCE in body
        assert 'data-ref="bishan-keji-2022/1"' in body and "升级：第一责任人、派驻纪检监察组" in body
        assert "<svg" in body and 'class="open"' in body
        answer = web.get("/issues/bishan-keji-2022/1")
        assert answer.status_code == 200 and "问题反弹：集体学习次数不足" in answer.text
        assert "已逾期11个工作日" in answer.text
        second = web.get("/issues/bishan-keji-2022/2").text
        assert "学习记录.pdf" in second
        # the history's steps by the names people read (the workflow's labels, 导入台账), in a stated zone
        history = second.split('<section id="history">', 1)[1].split("</section>", 1)[0]
        steps = re.findall(r"<tr><td>[^<]*</td><td[^>]*>[^<]*</td><td>([^<]*)</td>", history)
        assert "导入台账" in steps and len(steps) >= 2 and not any(re.search("[A-Za-z]", s) for s in steps), steps
        assert "时间均为 UTC+08:00" in history
        answer = web.get("/duties", params={"month": "2022-10"})
        assert answer.status_code == 200 and "2022年10月" in answer.text and "往来款项清理" in answer.text
        assert web.get("/report").status_code == 200
        assert web.get("/calendar.ics").headers["content-type"].startswith("text/calendar")
        assert web.get("/issues/bishan-keji-2022/999").status_code == 404
        assert web.get("/nowhere").status_code == 404
        assert web.post("/").status_code == 405  # read-only
        assert web.head("/").status_code == 200
        answer = web.get("/", params={"department": "财务室"})
        assert answer.status_code == 200 and 'data-ref="bishan-keji-2022/1"' not in answer.text  # 办公室's
        for bad in ({"month": "9999-12"}, {"month": "x"}):
            assert web.get("/duties", params=bad).status_code == 400
        assert web.get("/", params={"page": "0"}).status_code == 400


def test_issue_pages_of_a_ledger_with_a_chinese_name(project, cli):
    """UTF-8 paths: /issues/2026-区审计局/1, as the README's example names its ledger."""
    assert cli("init").code == 0
    assert cli("ledger", "import", SEED_CSV, "--ledger", "2026-区审计局", "--feedback-date", "2026-11-01").code == 0
    with board(project) as web:
        answer = web.get("/issues/2026-区审计局/1")
        assert answer.status_code == 200 and "中心组学习不够深入" in answer.text
        assert web.get("/issues/2026-%E5%8C%BA%E5%AE%A1%E8%AE%A1%E5%B1%80/1").status_code == 200


def test_mounted_under_a_prefix_links_stay_inside(ledger):
    with board(ledger, mount="/board") as web:
        answer = web.get("/board/")
        assert answer.status_code == 200 and 'href="/board/issues/bishan-keji-2022/1"' in answer.text


def test_remote_requests_need_the_token(ledger):
    with board(ledger) as web:
        assert web.get("/").status_code == 200
        assert web.get("/", headers=REMOTE).status_code == 403  # no token configured
        assert web.get("/healthz", headers=REMOTE).status_code == 200
        assert web.get("/healthz", headers=REMOTE).json() == {"status": "ok"}  # liveness only for strangers
        assert "version" in web.get("/healthz").json()  # the details for loopback
        assert web.get("/metrics", headers=REMOTE).status_code == 403
        assert web.get("/metrics").status_code == 200
    with board(ledger, token="s3cret") as web:
        assert web.get("/metrics", headers=REMOTE).status_code == 401
        assert web.get("/metrics", headers={**REMOTE, "Authorization": "Bearer s3cret"}).status_code == 200
        assert "version" in web.get("/healthz", headers={**REMOTE, "Authorization": "Bearer s3cret"}).json()
        assert web.get("/", headers=REMOTE).status_code == 401
        assert web.get("/", params={"token": "wrong"}, headers=REMOTE).status_code == 401
        assert web.get("/", headers={**REMOTE, "Authorization": "Bearer s3cret"}).status_code == 200
        answer = web.get("/", params={"token": "s3cret"}, headers=REMOTE)
        assert answer.status_code == 200 and "httponly" in answer.headers["set-cookie"].lower()
        assert "max-age=2592000" in answer.headers["set-cookie"].lower()
        web.cookies.clear()
        assert web.get("/", headers={**REMOTE, "Cookie": "duban_board=s3cret"}).status_code == 200


def test_token_comes_from_the_environment_variable_named_in_config(project):

    from engine.app.http.auth import board_token
    from engine.config import Config

    config = Config.model_validate({"board": {"token_env": "MY_BOARD_TOKEN"}})
    assert board_token(config, {"MY_BOARD_TOKEN": "abc", "DUBAN_BOARD_TOKEN": "other"}) == "abc"
    assert board_token(config, {"MY_BOARD_TOKEN": " "}) is None
    assert board_token(Config(), {"DUBAN_BOARD_TOKEN": "xyz"}) == "xyz"  # the default variable
    assert board_token(Config(), {}) is None


def test_burndown_replays_the_history(ledger):
    from engine.app.cli.context import App
    from engine.issues.board import ledger_board
    from engine.issues.queries import find_ledger

    app = App(str(ledger / "config.toml"))
    with app.reading() as session:
        board = ledger_board(session, app.runtime, find_ledger(session, "bishan-keji-2022"), dt.date(2022, 10, 20))
    assert board.burndown == [(dt.date(2022, 7, 20), 0, 26), (dt.date(2022, 8, 1), 3, 23),
                              (dt.date(2022, 9, 15), 2, 24), (dt.date(2022, 10, 20), 2, 24)]
    assert (board.overview.areas, board.overview.issues, board.overview.long_term) == (4, 26, 7)


# -- in a real browser -------------------------------------------------------------------------


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
    with board(ledger) as web, sync_playwright() as pw:
        base = str(web.base_url).rstrip("/")
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

            phone = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True)
            for path in ("/", "/issues/bishan-keji-2022/1", "/duties"):
                phone.goto(base + path)
                wide = phone.evaluate("document.documentElement.scrollWidth")
                assert wide <= 390, f"{path} is {wide} px wide on a 390 px phone"
            phone.goto(base + "/")
            ARTIFACTS.joinpath("board-phone.png").write_bytes(phone.screenshot(full_page=True))
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
    proc = subprocess.Popen([sys.executable, "-c", "from engine.app.cli.main import entry; entry()", "board",
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


def test_long_lists_are_pages_with_their_total(ledger, monkeypatch):
    from engine.app.http import pages
    from engine.issues import board as data

    monkeypatch.setattr(data, "PAGE", 3)
    monkeypatch.setattr(pages, "PAGE", 3)
    with board(ledger) as web:
        first = web.get("/").text
        second = web.get("/", params={"page": "2"}).text
    assert first.count('class="upcoming-item"') == 3 and second.count('class="upcoming-item"') == 3
    section = first.split('id="upcoming"')[1].split("</section>")[0]
    assert "第1页，显示3项，共8项。" in section and "未来14天到期（11）" in section and 'href="/?page=2">下一页' in first
    assert 'href="/?page=1">上一页' in second
    def refs(page: str) -> set[str]:
        upcoming = page.split('id="upcoming"')[1].split("</section>")[0]
        return set(re.findall(r'href="/issues/([^"]+)"', upcoming))

    assert len(refs(first)) == len(refs(second)) == 3 and not refs(first) & refs(second)  # page 2 goes on

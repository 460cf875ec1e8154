"""Issue #23 item 1: signing in from inside WeCom, DingTalk and Feishu.

Two units' ledgers imported; each unit's 办公室 has the same person's id on the platform (as
``duban user set`` records it for the notices). In Chromium acting as the app (its User-Agent, and
the emulated client's word on who uses it): the reminder's 去处理 button opens the workspace
through the app's web login and lands on 我的待办 with that unit's items only; the other unit's
person opens the workspace's address (the app's workbench link) and sees only theirs; a member of
the organisation with no duban account is refused with a page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.app_servers import APP_USER, SIGN_IN, _Platform, addressee, button
from tests.peers import LoopbackHTTP, free_port
from tests.test_board import CHROMIUM, CHROMIUM_ARGS, _browser_or_skip
from tests.test_district import LEDGERS, UNITS, _ledger
from tests.test_workspace import workspace

T0 = "2026-12-01T09:00"
NOW = "2026-12-24T10:00"
SECRET = {"APP_SECRET": "s3cret"}
# the app's built-in browser, as each names itself
AGENTS = {
    "wecom": "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/120 Mobile wxwork/4.1.30 MicroMessenger/7.0.1",
    "dingtalk": "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/120 Mobile AliApp(DingTalk/7.6.0)",
    "feishu": "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/120 Mobile Lark/7.20.0 LarkLocale/zh_CN",
}
PEOPLE = {UNITS[0]: "zhangsan", UNITS[1]: "lisi"}
STRANGER = "wangwu"  # in the organisation's app, with no duban account


def _channel(platform: str, server: LoopbackHTTP) -> str:
    base = server.url("")
    keys = {"wecom": f'corp_id = "{SIGN_IN["wecom"].corp_id}"\nagent_id = {SIGN_IN["wecom"].agent_id}\n'
                     'corp_secret_env = "APP_SECRET"',
            "dingtalk": f'client_id = "{SIGN_IN["dingtalk"].app_key}"\nagent_id = {SIGN_IN["dingtalk"].agent_id}\n'
                        f'client_secret_env = "APP_SECRET"\napi_base_url = "{base}"',
            "feishu": f'app_id = "{SIGN_IN["feishu"].app_id}"\napp_secret_env = "APP_SECRET"'}[platform]
    return f"""
[channels.app]
kind = "{platform}_app"
base_url = "{base}"
login_base_url = "{base}"
signin = true
{keys}
"""


@pytest.fixture(params=sorted(SIGN_IN))
def app_office(request, project, cli, monkeypatch) -> Iterator[tuple[str, _Platform, str, Path]]:
    """Two units imported, the app channel configured with ``signin = true``, one sweep sent."""
    monkeypatch.setenv("APP_SECRET", SECRET["APP_SECRET"])  # the workspace's process has the app's secret
    platform_name = request.param
    platform = SIGN_IN[platform_name](users={*PEOPLE.values(), STRANGER})
    port = free_port()
    with LoopbackHTTP(platform) as server:
        config = project / "config.toml"
        config.write_text(config.read_text(encoding="utf-8") + f"""
[board]
public_url = "http://127.0.0.1:{port}"

[notifications]
jitter_seconds = 0
""" + _channel(platform_name, server), encoding="utf-8")
        assert cli("init", "--at", T0).code == 0
        for index in (0, 1):
            imported = cli("ledger", "import", _ledger(project, index), "--at", T0)
            assert imported.code == 0, imported.err
        for unit, person in PEOPLE.items():
            done = cli("user", "set", f"{unit}/办公室", f"--{platform_name}", person)
            assert done.code == 0, done.err
        swept = cli("sweep", "--at", "2026-12-24T09:30", **SECRET)
        assert swept.code == 0, swept.err
        yield platform_name, platform, f"http://127.0.0.1:{port}", project


def _refs(text: str, ledger: str) -> set[str]:
    return set(re.findall(rf"{re.escape(ledger)}/\d+", text))


def test_the_app_signs_its_user_in_to_their_units_items(app_office):
    platform_name, platform, base, project = app_office
    sync_playwright = _browser_or_skip()
    # the reminder's button is the app's door, not a signed link: nothing in it opens an account
    buttons = {addressee(platform, n): button(platform, n) for n in platform.notices}
    assert buttons.get(PEOPLE[UNITS[0]]) == f"{base}/ws/app/app", buttons
    assert not any("/w/" in json.dumps(n, ensure_ascii=False) for n in platform.notices)  # no signed link at all
    with workspace(project, int(base.rsplit(":", 1)[1]), at=NOW), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

        def inside_the_app(person: str):
            context = browser.new_context(locale="zh-CN", user_agent=AGENTS[platform_name],
                                          extra_http_headers={APP_USER: person})
            return context.new_page()

        # WeCom's #wechat_redirect stays on the URL through the redirects, as in the real client
        todo_url = re.compile(rf"{re.escape(base)}/ws/(#wechat_redirect)?$")
        try:
            # the first unit's person taps 去处理 in the notice
            page = inside_the_app(PEOPLE[UNITS[0]])
            page.goto(buttons[PEOPLE[UNITS[0]]])
            page.wait_for_url(todo_url)
            todo = page.locator("#todo").inner_text()
            assert "我的待办" in todo
            assert _refs(todo, LEDGERS[0]) and not _refs(todo, LEDGERS[1]), todo
            assert PEOPLE[UNITS[0]] in platform.login.pages
            # the other unit's person opens the workspace from the app's workbench
            page = inside_the_app(PEOPLE[UNITS[1]])
            page.goto(f"{base}/ws/")
            page.wait_for_url(todo_url)
            todo = page.locator("#todo").inner_text()
            assert _refs(todo, LEDGERS[1]) and not _refs(todo, LEDGERS[0]), todo
            # a member of the organisation whom no account names: a page, and no session
            page = inside_the_app(STRANGER)
            answer = page.goto(f"{base}/ws/")
            page.wait_for_load_state()
            assert "/ws/app/app/back" in page.url and answer is not None
            assert "无法登录" in page.locator("h2").inner_text()
            assert "没有督办账号登记了您的这个身份" in page.locator("#error").inner_text()
            page.goto(f"{base}/ws/")
            page.wait_for_url(re.compile(r".*/ws/app/app/back.*"))  # sent round again, refused again
            assert page.context.cookies() and "无法登录" in page.content()
        finally:
            browser.close()
    assert platform.problems == [], platform.problems


def test_a_forged_or_replayed_answer_signs_nobody_in(app_office):
    """The way back must carry the state this browser was given, once; outside the app there is no door."""
    platform_name, platform, base, project = app_office
    port = int(base.rsplit(":", 1)[1])
    with workspace(project, port, at=NOW):
        with httpx.Client(base_url=base, timeout=30, headers={APP_USER: PEOPLE[UNITS[0]]}) as web:
            to_platform = web.get("/ws/app/app", params={"next": "/ws/issues"})
            assert to_platform.status_code == 302
            back = httpx.get(to_platform.headers["location"], headers={APP_USER: PEOPLE[UNITS[0]]})
            assert back.status_code == 302
            answer = back.headers["location"]
            forged = re.sub(r"state=[0-9a-f]+", "state=" + "0" * 32, answer)
            assert web.get(forged).status_code == 400  # not the state we gave: and the trip is spent
            assert web.get(answer).status_code == 400
            # a fresh trip signs in, and lands where it was going; the app token the notices left in the
            # database has meanwhile expired at the platform: refreshed once, as a send would do
            platform.expire()
            to_platform = web.get("/ws/app/app", params={"next": "/ws/issues"})
            answer = httpx.get(to_platform.headers["location"], headers={APP_USER: PEOPLE[UNITS[0]]}).headers["location"]
            landed = web.get(answer)
            assert landed.status_code == 303 and landed.headers["location"] == "/ws/issues"
            assert "问题清单" in web.get("/ws/issues").text
        # a browser outside the app (no app User-Agent) is offered the password form, not the door
        with httpx.Client(base_url=base, timeout=30, follow_redirects=True) as outside:
            page = outside.get("/ws/")
            assert page.url.path == "/ws/login" and 'name="password"' in page.text
    refreshed = platform_name != "feishu"  # Feishu's login takes no app token
    assert [p[:5] for p in platform.problems] == (["42001"] if refreshed else []), platform.problems
    assert platform.tokens_issued == (2 if refreshed else 1)

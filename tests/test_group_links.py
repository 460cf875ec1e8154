"""A reminder read by a group carries no one's signed link (issue #18).

One sweep over the shipped example ledger sends 办公室's reminder (issue 7, five working days from
its deadline) through every kind of channel at once: the DingTalk, WeCom and Feishu group robots, a
webhook and a file (read by others) get the item's page behind the login; the e-mail and the WeCom
app's work notice (read by 办公室 alone) still carry 办公室's signed ``/w/`` link. The bodies are
the ones the loopback platforms and the SMTP server received.
"""

from __future__ import annotations

import json
import re
from contextlib import ExitStack
from urllib.parse import quote

import httpx

from .app_servers import WeComApp, button
from .conftest import ROOT
from .peers import DingTalkRobot, FeishuBot, LoopbackHTTP, WeComRobot, free_port, smtp_server_at
from .test_workspace import workspace

EXAMPLE = ROOT / "examples" / "2026-区审计局.csv"
LEDGER = "2026-区审计局"
T0 = "2026-12-01T09:00"


def test_group_channels_get_the_login_page_and_personal_ones_the_signed_link(project, cli, monkeypatch):
    port, smtp = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    page = f"{base}/ws/issues/{quote(LEDGER, safe='')}/7"
    monkeypatch.setenv("WX_SECRET", "s3cret")
    robots = {"ding": DingTalkRobot(), "wecom": WeComRobot(), "feishu": FeishuBot()}
    app = WeComApp(users={"bgs"})
    sent = project / "sent.jsonl"
    with ExitStack() as stack:
        servers = {name: stack.enter_context(LoopbackHTTP(bot)) for name, bot in robots.items()}
        hook = stack.enter_context(LoopbackHTTP())
        wx = stack.enter_context(LoopbackHTTP(app))
        _, mail = stack.enter_context(smtp_server_at(smtp))
        config = project / "config.toml"
        config.write_text(config.read_text(encoding="utf-8") + f"""
[board]
public_url = "{base}"

[notifications]
jitter_seconds = 0

[channels.mail]
kind = "email"
host = "127.0.0.1"
port = {smtp}
sender = "duban@example.org"
starttls = false

[channels.ding]
kind = "dingtalk"
url = "{servers['ding'].url('/robot/send', 'access_token=ding-token')}"

[channels.wecom]
kind = "wecom"
url = "{servers['wecom'].url('/cgi-bin/webhook/send', 'key=wecom-key')}"

[channels.feishu]
kind = "feishu"
url = "{servers['feishu'].url('/open-apis/bot/v2/hook/feishu-hook')}"

[channels.hook]
kind = "webhook"
url = "{hook.url()}"

[channels.out]
kind = "file"
path = {json.dumps(str(sent))}

[channels.wx]
kind = "wecom_app"
base_url = "{wx.url('')}"
corp_id = "{WeComApp.corp_id}"
agent_id = {WeComApp.agent_id}
corp_secret_env = "WX_SECRET"

[recipients."办公室"]
mail = "bgs@example.org"
ding = ""
wecom = ""
feishu = ""
hook = "办公室"
out = "办公室"
""", encoding="utf-8")
        assert cli("init", "--at", T0).code == 0
        assert cli("ledger", "import", EXAMPLE, "--at", T0).code == 0
        assert cli("user", "set", "办公室", "--wecom", "bgs").code == 0
        swept = cli("sweep", "--at", "2026-12-24T09:30")
        assert swept.code == 0, swept.err

        def to_office(seen: list) -> list[str]:
            return [s.body.decode("utf-8") for s in seen if "办公室" in json.dumps(s.json(), ensure_ascii=False)]

        group = {name: to_office(server.seen) for name, server in servers.items()}
        group["hook"] = to_office(hook.seen)
        group["file"] = [line for line in sent.read_text(encoding="utf-8").splitlines() if '"办公室"' in line]
        for name, bodies in group.items():
            assert len(bodies) == 1, (name, bodies)
            body = json.loads(bodies[0])
            shown = json.dumps(body, ensure_ascii=False)
            assert "/w/" not in bodies[0] and "/w/" not in shown, name  # no one's signed link
            assert page in shown, (name, shown[:600])  # the item's page, behind the login
            assert f"{base}/ws/login" in shown, name  # 去处理: the login page
        assert all(bot.problems == [] for bot in robots.values())

        [letter] = [e for e in mail.received if e.rcpt_tos == ["bgs@example.org"]]
        text = letter.parsed().get_body(("plain",)).get_content()
        assert re.search(rf"{re.escape(base)}/w/[\w.\-]+\?next=", text) and f"去处理：{base}/w/" in text
        [notice] = [n for n in app.notices if n["touser"] == "bgs"]
        assert re.fullmatch(rf"{re.escape(base)}/w/[\w.\-]+", button(app, notice) or "")

    with workspace(project, port):  # the robots' link asks a stranger to sign in
        answer = httpx.get(page, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/ws/login?next=%2Fws%2Fissues%2F")


def test_a_wecom_app_notice_to_a_whole_department_carries_no_signed_link():
    from notifications.channels.base import channel_class

    app = channel_class("wecom_app")
    assert app.reaches_one("bgs") and app.reaches_one("bgs|cws")
    assert not app.reaches_one("dept:12") and not app.reaches_one("bgs|dept:12")
    assert channel_class("email").reaches_one("bgs@example.org")
    for kind in ("dingtalk", "wecom", "feishu", "webhook", "console", "file"):
        assert not channel_class(kind).reaches_one(""), kind

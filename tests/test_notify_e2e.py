"""Reminders reaching people: one digest per person and channel, once, through outages and quiet hours.

A real SMTP server (aiosmtpd) and a real HTTP server on 127.0.0.1; the CLI as an operator runs it.
"""

from __future__ import annotations

import shutil
from contextlib import ExitStack

import pytest

from tests.peers import KeyCounter, LoopbackHTTP, free_port, smtp_server_at

HEADERS = "序号,方面,问题类别,具体问题,整改措施,责任领导,责任科室,整改时限,整改状态"
ROWS = [
    "1,作风建设方面,1．服务意识不强,窗口服务不规范,制定服务规范,局长,办公室,2026-10-13,整改中",
    "2,作风建设方面,1．服务意识不强,办事流程繁琐,精简流程,局长,审批科,2026-10-13,整改中",
    "3,财务管理方面,2．财务制度执行不严,报销审核不严,三级审核,副局长,财务科,2026-10-13,整改中",
    "4,财务管理方面,2．财务制度执行不严,资产台账不全,盘点资产,副局长,财务科,2026-10-13,整改中",
]


@pytest.fixture
def office(project, cli, tmp_path):
    """Two leaders with mail and webhook addresses; departments without any (undeliverable)."""
    shutil.rmtree(project / "workflows" / "duties")
    shutil.rmtree(project / "workflows" / "routing")
    stack = ExitStack()
    smtp_port = free_port()
    counter = KeyCounter()
    hook = stack.enter_context(LoopbackHTTP(counter))
    config = project / "config.toml"
    config.write_text(config.read_text(encoding="utf-8") + f"""
[notifications]
jitter_seconds = 0
backoff_base_seconds = 1
backoff_max_seconds = 5

[channels.mail]
kind = "email"
host = "127.0.0.1"
port = {smtp_port}
sender = "duban@example.org"
starttls = false
timeout = 2

[channels.hook]
kind = "webhook"
url = "{hook.url()}"

[recipients."局长"]
mail = "juzhang@example.org"
hook = "局长"

[recipients."副局长"]
mail = "fujuzhang@example.org"
hook = "副局长"
""", encoding="utf-8")
    ledger = tmp_path / "县市场监管局.csv"
    ledger.write_text("\n".join([HEADERS, *ROWS]) + "\n", encoding="utf-8")
    assert cli("init", "--at", "2026-10-12T10:00").code == 0
    assert cli("ledger", "import", ledger, "--at", "2026-10-12T10:00").code == 0
    yield cli, smtp_port, hook, counter, stack
    stack.close()


def mails_by_recipient(sink) -> dict[str, object]:
    return {e.rcpt_tos[0]: e.parsed() for e in sink.received}


def test_one_digest_per_leader_once_and_none_lost_in_an_outage(office):
    cli, smtp_port, hook, counter, stack = office
    # 2026-10-14 09:30: every item is one working day overdue. The mail server is down.
    first = cli("sweep", "--at", "2026-10-14T09:30")
    assert first.code == 0, first.err
    assert "4 reminder(s) written" in first.out
    assert "delivered 2, retrying 2" in first.out  # the two webhook posts went; the two mails wait
    assert len(counter.keys) == 2 and not counter.duplicates
    posts = {s.json()["recipient"]: s.json() for s in hook.seen}
    assert sorted(i["title"] for i in posts["局长"]["data"]["items"]) == ["办事流程繁琐", "窗口服务不规范"]
    undeliverable = cli("outbox", "list", "--status", "undeliverable", "--json").json
    assert sorted(m["recipient"] for m in undeliverable) == ["办公室", "审批科", "财务科"]
    assert all("no address for" in m["last_error"] for m in undeliverable)

    _, sink = stack.enter_context(smtp_server_at(smtp_port))
    second = cli("sweep", "--at", "2026-10-14T09:40")
    assert "0 reminder(s) written" in second.out and "delivered 2" in second.out
    mails = mails_by_recipient(sink)
    assert sorted(mails) == ["fujuzhang@example.org", "juzhang@example.org"]
    boss = mails["juzhang@example.org"]
    assert boss["Subject"] == "【督办提醒】局长：2项已逾期"
    body = boss.get_body(("plain",)).get_content()
    assert "窗口服务不规范" in body and "办事流程繁琐" in body and "已逾期1个工作日" in body
    assert "报销审核不严" not in body
    deputy = mails["fujuzhang@example.org"].get_body(("plain",)).get_content()
    assert "报销审核不严" in deputy and "资产台账不全" in deputy
    assert boss["Message-ID"].startswith("<dg-")

    third = cli("sweep", "--at", "2026-10-14T09:40")
    assert "0 reminder(s) written" in third.out and "delivered 0" in third.out
    assert len(sink.received) == 2 and len(counter.keys) == 2 and not counter.duplicates
    sent = cli("outbox", "list", "--status", "sent", "--json").json
    assert len(sent) == 4 and {m["attempts"] for m in sent} <= {1, 2}


def test_quiet_hours_hold_and_release(office):
    cli, smtp_port, hook, counter, stack = office
    _, sink = stack.enter_context(smtp_server_at(smtp_port))
    evening = cli("sweep", "--at", "2026-10-14T20:00")  # after working hours
    assert "4 reminder(s) written" in evening.out and "delivered 0" in evening.out
    assert sink.received == [] and counter.keys == {}
    waiting = cli("outbox", "list", "--status", "pending", "--json").json
    assert {m["next_attempt_at"] for m in waiting} == {"2026-10-15T08:30:00+08:00"}
    morning = cli("sweep", "--at", "2026-10-15T08:31")
    assert "delivered 4" in morning.out
    assert len(sink.received) == 2 and len(counter.keys) == 2


def test_dead_letter_and_retry(office):
    cli, smtp_port, hook, counter, stack = office
    counter.status = 400  # the webhook refuses: permanent
    cli("sweep", "--at", "2026-10-14T09:30")
    dead = cli("outbox", "list", "--status", "failed", "--json").json
    hooks = [m for m in dead if m["channel"] == "hook"]
    assert len(hooks) == 2 and all("400" in m["last_error"] for m in hooks)
    counter.status = 200
    assert cli("outbox", "retry", str(hooks[0]["id"]), "--at", "2026-10-14T09:35").code == 0
    cli("sweep", "--at", "2026-10-14T09:36")
    assert len(counter.keys) == 1
    assert cli("outbox", "retry", "99999").code == 2


def test_snooze_silences_until_the_date(office):
    cli, smtp_port, hook, counter, stack = office
    assert cli("snooze", "add", "--department", "财务科", "--until", "2026-10-16", "--reason", "审计进场",
               "--by", "admin", "--at", "2026-10-13T10:00").code == 0
    listed = cli("snooze", "list", "--at", "2026-10-14T09:00", "--json").json
    assert [(s["kind"], s["target"], s["until"]) for s in listed] == [("department", "财务科", "2026-10-16")]
    out = cli("sweep", "--at", "2026-10-14T09:30").out
    assert "4 reminder(s) written" in out and "(2 silenced)" in out
    assert sorted(counter.keys) and {s.json()["recipient"] for s in hook.seen} == {"局长"}
    assert cli("snooze", "list", "--at", "2026-10-16T09:00", "--json").json == []
    cli("sweep", "--at", "2026-10-16T09:30")
    assert {s.json()["recipient"] for s in hook.seen} == {"局长", "副局长"}


def test_a_broken_template_fails_at_validate(project, cli):
    wf = project / "workflows" / "inspection-rectification.yaml"
    wf.write_text(wf.read_text(encoding="utf-8").replace(
        '  at: "09:00"\n', '  at: "09:00"\n  item_template: "{{ title }}（{{ responsible_leader }}）"\n'),
        encoding="utf-8")
    result = cli("workflow", "validate", wf)
    assert result.code == 2
    assert f"{wf}:" in result.err and "responsible_leader" in result.err and "is undefined" in result.err
    good = project / "workflows" / "good.yaml"
    good.write_text(wf.read_text(encoding="utf-8").replace("responsible_leader", "ledger"), encoding="utf-8")
    assert cli("workflow", "validate", good).code == 0


def test_config_check_names_unreachable_recipients(office):
    cli = office[0]
    result = cli("config", "check")
    assert result.code == 2
    for name in ("办公室", "审批科", "财务科", "第一责任人", "派驻纪检监察组", "admin"):
        assert f"recipient '{name}' has no address" in result.out
    assert "'局长' has no address" not in result.out


def test_notify_test_sends_through_the_channel(office):
    cli, smtp_port, hook, counter, stack = office
    assert cli("notify", "test", "hook", "局长").code == 0
    assert hook.seen[-1].json()["recipient"] == "局长" and "测试消息" in hook.seen[-1].json()["subject"]
    down = cli("notify", "test", "mail", "局长")  # nothing listens on the mail port
    assert down.code == 2 and "test message failed" in down.err
    assert cli("notify", "test", "hook", "办公室").code == 2


def test_ledger_escalation_folds_the_items_of_that_ledger(office, project):
    cli, smtp_port, hook, counter, stack = office
    config = project / "config.toml"
    config.write_text(config.read_text(encoding="utf-8") + '\n[recipients."第一责任人"]\nhook = "书记"\n',
                      encoding="utf-8")
    # feedback long ago: the rectification report (a ledger milestone) is overdue and escalated
    ledger = project / "县市场监管局.csv"
    ledger.write_text("\n".join([HEADERS, *ROWS]) + "\n", encoding="utf-8")
    assert cli("ledger", "import", ledger, "--feedback-date", "2026-07-01", "--at", "2026-10-12T10:00").code == 0
    cli("sweep", "--at", "2026-10-20T09:30")
    to_head = [s.json() for s in hook.seen if s.json()["recipient"] == "第一责任人"]
    assert len(to_head) == 1  # one message: the report escalation with the items folded inside
    text = to_head[0]["text"]
    assert "报送整改情况报告" in text and "并入本项督办" in text and "窗口服务不规范" in text


@pytest.fixture
def robots(project, cli, tmp_path, monkeypatch):
    """The three group robots on loopback (DingTalk signed, WeCom, Feishu signed) for 局长."""
    from tests.peers import DingTalkRobot, FeishuBot, WeComRobot

    shutil.rmtree(project / "workflows" / "duties")
    shutil.rmtree(project / "workflows" / "routing")
    monkeypatch.setenv("DING_SECRET", "ding-secret")
    monkeypatch.setenv("FEISHU_SECRET", "feishu-secret")
    bots = {"ding": DingTalkRobot(secret="ding-secret"), "wecom": WeComRobot(), "feishu": FeishuBot(secret="feishu-secret")}
    with ExitStack() as stack:
        servers = {name: stack.enter_context(LoopbackHTTP(bot)) for name, bot in bots.items()}
        config = project / "config.toml"
        config.write_text(config.read_text(encoding="utf-8") + f"""
[notifications]
jitter_seconds = 0

[channels.ding]
kind = "dingtalk"
url = "{servers['ding'].url('/robot/send', 'access_token=ding-token')}"
secret_env = "DING_SECRET"

[channels.wecom]
kind = "wecom"
url = "{servers['wecom'].url('/cgi-bin/webhook/send', 'key=wecom-key')}"

[channels.feishu]
kind = "feishu"
url = "{servers['feishu'].url('/open-apis/bot/v2/hook/feishu-hook')}"
secret_env = "FEISHU_SECRET"

[recipients."局长"]
ding = ""
wecom = ""
feishu = ""
""", encoding="utf-8")
        ledger = tmp_path / "县市场监管局.csv"
        ledger.write_text("\n".join([HEADERS, *ROWS[:2]]) + "\n", encoding="utf-8")
        assert cli("init", "--at", "2026-10-12T10:00").code == 0
        assert cli("ledger", "import", ledger, "--at", "2026-10-12T10:00").code == 0
        result = cli("sweep", "--at", "2026-10-14T09:30")
        assert result.code == 0 and "delivered 3" in result.out, result.out + result.err
        assert all(bot.problems == [] for bot in bots.values())
        yield {name: server.seen[0].json() for name, server in servers.items()}


SUBJECT = "【督办提醒】局长：2项已逾期"
LINES = ["**局长**：截至2026年10月14日 09:30，您有以下督办事项：",
         "##### 已逾期（2项）",
         "- 【县市场监管局 第1项】窗口服务不规范——整改时限2026年10月13日，已逾期1个工作日；下一步：提交销号申请",
         "- 【县市场监管局 第2项】办事流程繁琐——整改时限2026年10月13日，已逾期1个工作日；下一步：提交销号申请"]


def test_robot_payloads_through_a_real_sweep(robots):
    """Each robot gets its own format; the subject appears once; Feishu gets no markup at all."""
    ding, wecom, feishu = robots["ding"], robots["wecom"], robots["feishu"]

    def key_line(text: str) -> str:  # each channel's message has its own key
        line = f"（编号 {text.rsplit('（编号 ', 1)[1]}"
        assert line.startswith("（编号 dg-") and line.endswith("）")
        return line

    assert ding["msgtype"] == "markdown" and ding["markdown"]["title"] == SUBJECT
    text = ding["markdown"]["text"]
    assert text.startswith(f"#### {SUBJECT}\n\n") and text.endswith(key_line(text))
    assert all(line in text for line in LINES)

    content = wecom["markdown"]["content"]
    assert wecom["msgtype"] == "markdown" and content.startswith(f"**{SUBJECT}**\n") and content.endswith(key_line(content))
    assert all(line in content for line in LINES)

    assert set(feishu) == {"timestamp", "sign", "msg_type", "content"} and feishu["msg_type"] == "post"
    post = feishu["content"]["post"]["zh_cn"]
    assert post["title"] == SUBJECT
    shown = [element["text"] for paragraph in post["content"] for element in paragraph]
    assert "局长：" in shown and shown[-1] == key_line(shown[-1])
    assert ("1. 【县市场监管局 第1项】窗口服务不规范——整改时限2026年10月13日，已逾期1个工作日；下一步：提交销号申请"
            in [s.strip() for s in shown])
    for markup in ("#", "**", "`", "- 【"):
        assert not any(markup in s for s in shown), markup

    for body in (text, content, "\n".join(shown) + post["title"]):
        assert body.count(SUBJECT) == 1  # the subject once, whatever the channel

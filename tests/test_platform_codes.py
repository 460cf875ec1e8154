"""Issue #24: the platforms' answers as documented, against emulators that give them.

DingTalk's ``errcode`` 88 with the token's problem in ``sub_code``; the work notices' 143103 and the
robot's 660026 waiting as documented; every payload within its platform's limit whatever the digest
(a property over item counts and lengths); WeCom's lowercased ``invaliduser`` and its
``unlicenseduser``, and DingTalk's later ``getsendresult``, recorded as "sent but not delivered";
the per-person windows kept on duban's side; and docs/platform-codes.md naming every code handled.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from prometheus_client import generate_latest
from sqlalchemy import select

from engine.app.vitals import Metrics
from engine.store.db import make_engine, session_factory, transaction, upgrade
from notifications.channels import build_channel, dingtalk_codes, feishu_codes, wecom_codes
from notifications.channels._app import Addressees
from notifications.channels.codes import Kind
from notifications.channels.dingtalk import DingTalkChannel
from notifications.channels.dingtalk_app import MSG_BYTES, DingTalkAppChannel
from notifications.channels.feishu import FeishuChannel
from notifications.channels.feishu_app import CARD_BYTES, TEXT_BYTES, FeishuAppChannel
from notifications.channels.text import MARKER, json_bytes
from notifications.channels.wecom import WeComChannel
from notifications.channels.wecom_app import WeComAppChannel
from notifications.message import OutgoingMessage
from notifications.outbox import DeliveryPolicy, DeliveryStats, Outbox
from notifications.reports import follow_up, gaps, missed_by_platform
from notifications.store import DeliveryReport
from tests.app_servers import DingTalkApp, WeComApp
from tests.peers import DingTalkRobot, FeishuBot, LoopbackHTTP, WeComRobot
from tests.test_app_channels import ENV, LINK, SUBJECT, channel, settings
from tests.test_outbox import NOW, load, queue, seconds_after

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def sessions(db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    yield session_factory(engine)
    engine.dispose()


def digest(lines: list[str], *, key: str = "dg-big", address: str = "bgs", link: str | None = LINK,
           subject: str = SUBJECT, extra: int = 0) -> OutgoingMessage:
    return OutgoingMessage(key=key, recipient="办公室", address=address, subject=subject, text="\n".join(lines),
                           data={"card": {"lines": lines, "total": len(lines) + extra, "link": link}})


# -- DingTalk: errcode 88 + sub_code, 143103, 660026 -----------------------------------------


def test_a_dingtalk_88_with_sub_code_40014_refreshes_the_token_and_sends_once():
    app = DingTalkApp(users={"bgs"})
    with LoopbackHTTP(app) as http, channel("dingtalk_app", http) as ch:
        ch.send(digest(["第一项"], key="dg-1"))
        app.valid.clear()  # DingTalk no longer knows the token we hold: 88 with sub_code "40014"
        ch.send(digest(["第二项"], key="dg-2"))
    assert app.problems == ["88/40014 不合法的access_token"]
    assert app.tokens_issued == 2 and len(app.notices) == 2  # fetched anew, sent once


def test_an_88_whose_sub_code_is_not_a_token_problem_is_permanent():
    verdict = dingtalk_codes.read({"errcode": 88, "sub_code": "60011", "sub_msg": "没有调用该接口的权限",
                                   "errmsg": "ding talk error[subcode=60011,submsg=没有调用该接口的权限]"},
                                  dingtalk_codes.APP)
    assert verdict is not None and verdict.kind is Kind.PERMANENT and "60011" in verdict.text
    refresh = dingtalk_codes.read({"errcode": 88, "sub_code": "42001"}, dingtalk_codes.APP)
    assert refresh is not None and refresh.kind is Kind.REFRESH


def test_a_work_notice_over_the_qpm_waits_the_minute_and_is_then_sent(sessions):
    app = DingTalkApp(users={"bgs"})
    app.fail_next = [143103]
    with LoopbackHTTP(app) as http, channel("dingtalk_app", http) as ch:
        message = queue(sessions, "dg-qpm", "ding", address="bgs")
        outbox = Outbox(sessions, {"ding": ch}, limits={})
        assert outbox.deliver_due(NOW) == DeliveryStats(retried=1)
        row = load(sessions, message)
        assert seconds_after(row.next_attempt_at, NOW) == pytest.approx(60, abs=1) and "143103" in row.last_error
        assert outbox.deliver_due(NOW + dt.timedelta(seconds=61)) == DeliveryStats(sent=1)


def robot_channel(server: LoopbackHTTP) -> DingTalkChannel:
    built = build_channel("群", {"kind": "dingtalk", "url": server.url("/robot/send", "access_token=ding-token")})
    assert isinstance(built, DingTalkChannel)
    return built


def test_the_dingtalk_robot_throttle_waits_the_documented_ten_minutes_and_never_dies(sessions):
    """Over 20 a minute the robot is blocked for 10 minutes (660026): the message waits those 10
    minutes each time, however often, instead of being dead-lettered after max_attempts."""
    robot = DingTalkRobot(per_minute=0)  # already over its minute: every send answers 660026
    policy = DeliveryPolicy(max_attempts=2)
    with LoopbackHTTP(robot) as server, robot_channel(server) as ch:
        message = queue(sessions, "dg-throttled", "群")
        outbox = Outbox(sessions, {"群": ch}, policy=policy, limits={})
        at = NOW
        for _ in range(4):  # twice max_attempts: still waiting
            assert outbox.deliver_due(at) == DeliveryStats(retried=1)
            row = load(sessions, message)
            assert seconds_after(row.next_attempt_at, at) == pytest.approx(600, abs=1)
            assert row.status == "pending" and "660026" in row.last_error
            assert outbox.deliver_due(at + dt.timedelta(seconds=599)) == DeliveryStats()
            at = row.next_attempt_at
        robot.per_minute, robot.blocked_until = 20, 0.0  # the block is over
        assert outbox.deliver_due(at) == DeliveryStats(sent=1)


# -- every payload within its limit ----------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=600)


@hypothesis_settings(max_examples=60, deadline=None)
@given(lines=st.lists(_text, min_size=1, max_size=120), subject=st.text(min_size=1, max_size=200),
       extra=st.integers(0, 5000), linked=st.booleans())
def test_an_oversized_digest_is_cut_to_fit_on_every_platform(lines, subject, extra, linked):
    """Whatever the number and length of the items, each platform's payload keeps within the limit the
    platform documents, counted as it counts (bytes of the JSON sent, or characters), and the 编号
    line survives where the platform shows text."""
    message = digest(lines, subject=subject, extra=extra, link=LINK if linked else None, address="bgs")
    key_line = "（编号 dg-big）"
    to = Addressees(("bgs",))

    ding = DingTalkAppChannel("d", settings("dingtalk_app", "http://127.0.0.1:9"), ENV).payload(message, to)
    assert json_bytes(ding["msg"]) <= MSG_BYTES
    if "action_card" in ding["msg"]:
        card = ding["msg"]["action_card"]
        assert len(card["title"]) <= 64 and len(card["single_title"]) <= 20
        assert card["markdown"].endswith(key_line)
    else:
        assert ding["msg"]["text"]["content"].endswith(key_line)

    wecom = WeComAppChannel("w", settings("wecom_app", "http://127.0.0.1:9"), ENV).payload(message, to)
    if wecom["msgtype"] == "textcard":
        assert len(wecom["textcard"]["title"].encode()) <= 128 and len(wecom["textcard"]["description"].encode()) <= 512
        assert len(wecom["textcard"]["btntxt"]) <= 4
    else:
        assert len(wecom["text"]["content"].encode()) <= 2048 and wecom["text"]["content"].endswith(key_line)

    feishu = FeishuAppChannel("f", settings("feishu_app", "http://127.0.0.1:9"), ENV).request(message, "bgs")
    assert json_bytes(feishu) <= (CARD_BYTES if linked else TEXT_BYTES)

    robot = OutgoingMessage(key="dg-big", recipient="办公室", address="", subject=subject, text=message.text)
    ding_robot = DingTalkChannel("d", {"url": "http://127.0.0.1:9/robot/send?access_token=t"}).payload(robot)
    assert json_bytes(ding_robot) <= 18_000 and ding_robot["markdown"]["text"].endswith(key_line)
    wecom_robot = WeComChannel("w", {"url": "http://127.0.0.1:9/cgi-bin/webhook/send?key=k"}).payload(robot)
    assert len(wecom_robot["markdown"]["content"].encode()) <= 4096
    assert wecom_robot["markdown"]["content"].endswith(key_line)
    feishu_robot = FeishuChannel("f", {"url": "http://127.0.0.1:9/open-apis/bot/v2/hook/h"}).payload(robot)
    assert json_bytes(feishu_robot) <= 20_000
    assert feishu_robot["content"]["post"]["zh_cn"]["content"][-1][0]["text"] == key_line


def test_a_huge_digest_is_accepted_by_every_emulator_and_marked_as_cut():
    lines = [f"【bishan-keji-2022/{n}】{'整改措施未落实到位，台账资料不全' * 12}" for n in range(300)]
    big = digest(lines, address="bgs")
    for platform, kind in ((DingTalkApp, "dingtalk_app"), (WeComApp, "wecom_app")):
        app = platform(users={"bgs"})
        with LoopbackHTTP(app) as http, channel(kind, http) as ch:
            ch.send(big)
            ch.send(digest(lines, key="dg-plain", link=None))
        assert app.problems == [] and len(app.notices) == 2, (kind, app.problems)
    robot = OutgoingMessage(key="dg-big", recipient="群", address="", subject=SUBJECT, text="\n".join(lines))
    bot, wecom = FeishuBot(), WeComRobot()
    with LoopbackHTTP(bot) as server:
        FeishuChannel("飞书群", {"url": server.url("/open-apis/bot/v2/hook/feishu-hook")}).send(robot)
    with LoopbackHTTP(wecom) as server:
        sent = WeComChannel("企微群", {"url": server.url("/cgi-bin/webhook/send", "key=wecom-key")})
        sent.send(robot)
        assert MARKER in sent.payload(robot)["markdown"]["content"]
    assert bot.problems == [] and wecom.problems == []


def test_wecom_robot_mentions_everyone_only_as_documented():
    robot = WeComRobot()
    message = OutgoingMessage(key="k", recipient="群", address="@all", subject=SUBJECT, text="第一项")
    with LoopbackHTTP(robot) as server:
        ch = WeComChannel("企微群", {"url": server.url("/cgi-bin/webhook/send", "key=wecom-key")})
        payload = ch.payload(message)
        ch.send(message)
    assert payload["msgtype"] == "text" and payload["text"]["mentioned_list"] == ["@all"]
    assert robot.problems == []


# -- delivery results --------------------------------------------------------------------------


def report(sessions, message: int) -> DeliveryReport | None:
    with sessions() as session:
        return session.scalars(select(DeliveryReport).where(DeliveryReport.message_id == message)).one_or_none()


def test_a_mixed_case_wecom_id_reported_missed_is_recorded_as_not_delivered(sessions):
    app = WeComApp(users={"bgs", "LiSi"})
    app.unlicensed = {"LiSi"}
    with LoopbackHTTP(app) as http, channel("wecom_app", http) as ch:
        message = queue(sessions, "dg-mixed", "wecom", address="bgs|ZhangSan|LiSi")
        assert Outbox(sessions, {"wecom": ch}, limits={}).deliver_due(NOW) == DeliveryStats(sent=1)
    assert http.seen[-1].body and app.notices[0]["touser"] == "bgs|ZhangSan|LiSi"
    got = report(sessions, message)
    assert got is not None and (got.recipients, got.missed) == (3, 2)
    assert got.missed_ids == "ZhangSan|LiSi"  # WeCom answered "zhangsan" and "lisi"
    assert "不在应用可见范围" in got.reason and "许可" in got.reason and got.task is None
    assert load(sessions, message).status == "sent"
    with sessions() as session:
        assert gaps(session, [message])[message].summary().startswith("已发出，但 3 人中 2 人未收到")
        counts = missed_by_platform(session)
    assert counts == {"wecom": (1, 2)}
    scraped = generate_latest(Metrics(delivery_gaps=lambda: counts).registry).decode()
    assert 'duban_messages_not_delivered{platform="wecom"} 1.0' in scraped
    assert 'duban_recipients_not_delivered{platform="wecom"} 2.0' in scraped


def test_dingtalk_reports_later_whom_its_daily_cap_dropped(sessions):
    app = DingTalkApp(users={"bgs", "cws"})
    app.daily_cap = 1
    with LoopbackHTTP(app) as http, channel("dingtalk_app", http) as ch:
        first = queue(sessions, "dg-a", "ding", address="bgs")
        second = queue(sessions, "dg-b", "ding", address="bgs|cws")
        outbox = Outbox(sessions, {"ding": ch}, limits={})
        assert outbox.deliver_due(NOW) == DeliveryStats(sent=2)  # DingTalk accepts both
        pending = report(sessions, second)
        assert pending is not None and pending.task is not None and pending.missed == 0
        assert follow_up(sessions, {"ding": ch}, NOW) == 0  # not before check_at
        assert follow_up(sessions, {"ding": ch}, NOW + dt.timedelta(minutes=6)) == 2
    done = report(sessions, second)
    assert done is not None and (done.recipients, done.missed, done.missed_ids) == (2, 1, "bgs")
    assert done.reason == "超过每人每日上限" and done.task is None and done.check_at is None
    kept = report(sessions, first)
    assert kept is not None and (kept.recipients, kept.missed) == (1, 0)


def test_a_result_dingtalk_cannot_give_is_asked_again_until_it_forgets_the_task(sessions):
    app = DingTalkApp(users={"bgs"})
    with LoopbackHTTP(app) as http, channel("dingtalk_app", http) as ch:
        message = queue(sessions, "dg-lost", "ding", address="bgs")
        assert Outbox(sessions, {"ding": ch}, limits={}).deliver_due(NOW) == DeliveryStats(sent=1)
        app.tasks.clear()  # the platform no longer knows the task
        later = NOW + dt.timedelta(minutes=6)
        assert follow_up(sessions, {"ding": ch}, later) == 0
        waiting = report(sessions, message)
        assert waiting is not None and waiting.task is not None
        assert waiting.check_at == later + dt.timedelta(minutes=5)  # asked again later
        assert follow_up(sessions, {"ding": ch}, NOW + dt.timedelta(hours=25)) == 0
    given_up = report(sessions, message)
    assert given_up is not None and (given_up.task, given_up.check_at, given_up.missed) == (None, None, 0)


def test_outbox_list_says_sent_but_not_delivered(project, cli):
    assert cli("init").code == 0
    engine = make_engine(f"sqlite:///{project / 'duban.db'}")
    sessions = session_factory(engine)
    app = WeComApp(users={"bgs"})
    try:
        with LoopbackHTTP(app) as http, channel("wecom_app", http) as ch:
            message = queue(sessions, "dg-cli", "wecom", address="bgs|Gone")
            Outbox(sessions, {"wecom": ch}, limits={}).deliver_due(NOW)
    finally:
        engine.dispose()
    listed = cli("outbox", "list", "--json")
    assert listed.code == 0
    row = next(r for r in listed.json if r["id"] == message)
    assert row["status"] == "sent"
    assert row["delivery"] == {"recipients": 2, "missed": 1, "missed_ids": ["Gone"],
                               "reason": "不在应用可见范围或不存在", "pending": False,
                               "summary": "已发出，但 2 人中 1 人未收到（不在应用可见范围或不存在）"}
    table = cli("outbox", "list")
    assert "2 人中 1 人未收到" in table.out


# -- per-person windows on duban's side --------------------------------------------------------


def test_over_thirty_a_minute_to_one_wecom_member_waits_for_the_next_minute(sessions):
    app = WeComApp(users={"bgs"})
    with LoopbackHTTP(app) as http, channel("wecom_app", http) as ch:
        ids = [queue(sessions, f"dg-{n:02}", "wecom", address="BGS" if n % 2 else "bgs") for n in range(31)]
        outbox = Outbox(sessions, {"wecom": ch}, limits={})
        assert outbox.deliver_due(NOW) == DeliveryStats(sent=30, postponed=1)
        late = load(sessions, ids[-1])
        minute = NOW.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        assert late.status == "pending" and late.next_attempt_at == minute
        assert outbox.deliver_due(minute) == DeliveryStats(sent=1)
    assert len(app.notices) == 31


def test_dingtalk_counts_a_persons_day_by_beijing_time():
    from notifications.ratelimit import aligned_start

    eight_am_utc = dt.datetime(2026, 12, 6, 8, 0, tzinfo=dt.UTC)  # 16:00 in Beijing
    assert aligned_start(eight_am_utc, 86400, 8 * 3600) == dt.datetime(2026, 12, 5, 16, 0, tzinfo=dt.UTC)
    assert DingTalkAppChannel.recipient_windows == ((500, 86400.0, 8 * 3600.0),)
    assert WeComAppChannel.recipient_windows == ((30, 60.0, 0.0), (1000, 3600.0, 0.0))


def test_two_dingtalk_notices_never_share_content():
    """DingTalk delivers the same content to a user once a day: every notice carries its 编号."""
    to = Addressees(("bgs",))
    ch = DingTalkAppChannel("d", settings("dingtalk_app", "http://127.0.0.1:9"), ENV)
    one, two = (ch.payload(digest(["同一项"], key=key), to)["msg"] for key in ("dg-1", "dg-2"))
    assert one != two


# -- the table in docs/ ------------------------------------------------------------------------


def test_docs_list_every_code_duban_handles_with_its_class_and_source():
    doc = (ROOT / "docs" / "platform-codes.md").read_text(encoding="utf-8")
    rows = {(m.group(1), int(m.group(2))): (m.group(3), m.group(4))
            for m in re.finditer(r"^\| (\S+) \| (-?\d+) \| ([a-z-]+) \| [^|]*\| [^|]*\| <?(https?://[^ |>]+)>? \|$",
                                 doc, re.M)}
    tables = {"dingtalk_app": dingtalk_codes.APP, "dingtalk": dingtalk_codes.ROBOT_CODES,
              "wecom_app": wecom_codes.APP, "wecom": wecom_codes.ROBOT_CODES,
              "feishu_app": feishu_codes.APP, "feishu": feishu_codes.BOT_CODES}
    expected = {(kind, code): (entry.kind.value, entry.source)
                for kind, table in tables.items() for code, entry in table.items()}
    assert rows == expected


def test_the_reports_table_is_in_the_schema(sessions):
    with transaction(sessions) as session:
        assert session.scalars(select(DeliveryReport)).all() == []

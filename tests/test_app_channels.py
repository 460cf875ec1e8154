"""The organisation-app channels (wecom_app, dingtalk_app, feishu_app) against loopback servers that
implement each platform's token and work-notice endpoints (tests/app_servers.py)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from engine.store.db import make_engine, session_factory, transaction, upgrade
from notifications.channels import build_channel
from notifications.channels._app import Addressees, AppChannel
from notifications.channels._tokens import Token, TokenCache
from notifications.channels.feishu_app import message_uuid
from notifications.message import OutgoingMessage
from notifications.outbox import DeliveryStats, Outbox
from notifications.store import AppToken, OutboxMessage
from notifications.tokens import DatabaseTokens
from tests.app_servers import DingTalkApp, FeishuApp, WeComApp, _Platform
from tests.conftest import examples
from tests.peers import LoopbackHTTP
from tests.test_outbox import NOW, load, seconds_after

ENV = {"APP_SECRET": "s3cret"}
LINK = "http://127.0.0.1:8080/w/signed-token"
SUBJECT = "【督办提醒】办公室：2项已逾期"
LINES = ["【bishan-keji-2022/7】整改时限——2026年12月31日，已逾期3天", "【bishan-keji-2022/9】整改时限——已逾期1天"]


def settings(kind: str, base: str) -> dict[str, Any]:
    return {
        "wecom_app": {"kind": kind, "base_url": base, "corp_id": WeComApp.corp_id, "agent_id": WeComApp.agent_id,
                      "corp_secret_env": "APP_SECRET", "timeout": 5},
        "dingtalk_app": {"kind": kind, "base_url": base, "client_id": DingTalkApp.app_key,
                         "agent_id": DingTalkApp.agent_id, "client_secret_env": "APP_SECRET", "timeout": 5},
        "feishu_app": {"kind": kind, "base_url": base, "app_id": FeishuApp.app_id, "app_secret_env": "APP_SECRET",
                       "timeout": 5},
    }[kind]


PLATFORMS = {"wecom_app": WeComApp, "dingtalk_app": DingTalkApp, "feishu_app": FeishuApp}


def channel(kind: str, http: LoopbackHTTP, tokens: TokenCache | None = None) -> AppChannel:
    built = build_channel(kind, settings(kind, http.url("")), ENV)
    assert isinstance(built, AppChannel)
    built.tokens = tokens or TokenCache()
    return built


def notice(key: str = "dg-0123456789abcdef", address: str = "bgs", link: str | None = LINK) -> OutgoingMessage:
    return OutgoingMessage(key=key, recipient="办公室", address=address, subject=SUBJECT, text="\n".join(LINES),
                           data={"card": {"lines": LINES, "total": 2, "link": link, "pressing": True}})


@pytest.fixture(params=list(PLATFORMS))
def platform(request):
    app: _Platform = PLATFORMS[request.param](users={"bgs", "cws"})
    with LoopbackHTTP(app) as http:
        yield request.param, app, http


def test_the_token_request_and_the_notice_are_what_each_platform_documents(platform):
    kind, app, http = platform
    with channel(kind, http) as ch:
        ch.send(notice())
    token_call, send_call = http.seen
    assert app.problems == [] and len(app.notices) == 1
    body = send_call.json()
    if kind == "wecom_app":
        assert (token_call.method, token_call.path) == ("GET", "/cgi-bin/gettoken")
        assert token_call.query == {"corpid": [WeComApp.corp_id], "corpsecret": ["s3cret"]}
        assert send_call.query == {"access_token": ["wx-0"]}
        assert body == {"touser": "bgs", "toparty": "", "agentid": WeComApp.agent_id, "enable_duplicate_check": 1,
                        "duplicate_check_interval": 14400, "msgtype": "textcard",
                        "textcard": {"title": SUBJECT, "url": LINK, "btntxt": "去处理",
                                     "description": "".join(f'<div class="normal">{ln}</div>' for ln in LINES)}}
    elif kind == "dingtalk_app":
        assert (token_call.method, token_call.path) == ("GET", "/gettoken")
        assert token_call.query == {"appkey": [DingTalkApp.app_key], "appsecret": ["s3cret"]}
        assert send_call.query == {"access_token": ["dt-0"]}
        assert body == {"agent_id": DingTalkApp.agent_id, "userid_list": "bgs", "msg": {
            "msgtype": "action_card", "action_card": {
                "title": SUBJECT, "single_title": "去处理", "single_url": LINK,
                "markdown": f"#### {SUBJECT}\n\n- {LINES[0]}\n\n- {LINES[1]}\n\n（编号 dg-0123456789abcdef）"}}}
    else:
        assert (token_call.method, token_call.path) == ("POST", "/open-apis/auth/v3/tenant_access_token/internal")
        assert token_call.json() == {"app_id": FeishuApp.app_id, "app_secret": "s3cret"}
        assert send_call.query == {"receive_id_type": ["user_id"]}
        assert send_call.headers["authorization"] == "Bearer t-0"
        assert set(body) == {"receive_id", "msg_type", "content", "uuid"}
        assert (body["receive_id"], body["msg_type"]) == ("bgs", "interactive")
        assert body["uuid"] == message_uuid("dg-0123456789abcdef", "bgs") and len(body["uuid"]) <= 50
        assert json.loads(body["content"]) == {
            "config": {"wide_screen_mode": True},
            "header": {"template": "red", "title": {"tag": "plain_text", "content": SUBJECT}},
            "elements": [
                {"tag": "div", "text": {"tag": "plain_text", "content": "\n".join(LINES)}},
                {"tag": "action", "actions": [{"tag": "button", "type": "primary",
                                               "text": {"tag": "plain_text", "content": "去处理"}, "url": LINK}]},
                {"tag": "note", "elements": [{"tag": "plain_text", "content": "（编号 dg-0123456789abcdef）"}]}]}
    for seen in http.seen:  # the secret travels only to the token endpoint
        assert "s3cret" not in seen.raw_query + seen.body.decode() or seen is token_call


def test_a_token_is_reused_across_sends_and_refreshed_once_after_an_expiry_code(platform):
    kind, app, http = platform
    with channel(kind, http) as ch:
        for n in range(3):
            ch.send(notice(key=f"dg-{n}"))
        assert app.tokens_issued == 1 and len(app.notices) == 3
        app.expire()  # the platform now answers the token-expired code to the token we hold
        ch.send(notice(key="dg-after-expiry"))
        assert app.tokens_issued == 2 and len(app.notices) == 4
        assert len(app.problems) == 1 and ("42001" in app.problems[0] or "99991677" in app.problems[0])
        ch.send(notice(key="dg-next"))
    assert app.tokens_issued == 2 and len(app.notices) == 5


def test_without_a_link_the_notice_is_plain_text_with_the_key(platform):
    kind, app, http = platform
    with channel(kind, http) as ch:
        ch.send(notice(link=None))
    sent = app.notices[0]
    text = {"wecom_app": lambda: sent["text"]["content"], "dingtalk_app": lambda: sent["msg"]["text"]["content"],
            "feishu_app": lambda: sent["content"]["text"]}[kind]()
    assert text.startswith(SUBJECT) and LINES[1] in text and text.endswith("（编号 dg-0123456789abcdef）")


def test_a_long_digest_shows_the_most_urgent_items_and_how_many_more(platform):
    kind, app, http = platform
    lines = [f"【bishan-keji-2022/{n}】{'整改措施未落实到位' * 4}——已逾期{30 - n}天" for n in range(1, 31)]
    message = OutgoingMessage(key="dg-long", recipient="办公室", address="bgs", subject=SUBJECT, text="\n".join(lines),
                              data={"card": {"lines": lines, "total": 30, "link": LINK}})
    with channel(kind, http) as ch:
        ch.send(message)
    assert app.problems == []
    shown = json.dumps(app.notices[0], ensure_ascii=False)
    assert lines[0] in shown and lines[29] not in shown
    assert "另有" in shown and "项" in shown


@pytest.fixture
def sessions(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
    upgrade(engine)
    yield session_factory(engine)
    engine.dispose()


def queue(sessions, key: str, channel_name: str, address: str) -> int:
    with transaction(sessions) as session:
        row = OutboxMessage(key=key, channel=channel_name, recipient="办公室", address=address, subject=SUBJECT,
                            text="\n".join(LINES), html=None, data={"card": {"lines": LINES, "total": 2, "link": LINK}},
                            status="pending", urgent=False, attempts=0, next_attempt_at=NOW, last_error="",
                            created_at=NOW)
        session.add(row)
        session.flush()
        return row.id


def test_an_unknown_person_is_dead_lettered_on_the_first_try(platform, sessions):
    kind, app, http = platform
    message = queue(sessions, "dg-nobody", kind, "nobody")
    with channel(kind, http) as ch:
        assert Outbox(sessions, {kind: ch}).deliver_due(NOW) == DeliveryStats(dead=1)
    row = load(sessions, message)
    assert (row.status, row.attempts) == ("dead", 1)
    assert any(code in row.last_error for code in ("81013", "33012", "230013")), row.last_error
    assert "s3cret" not in row.last_error and "access_token" not in row.last_error


def test_a_rate_limit_code_is_retried_after_the_platforms_wait(platform, sessions):
    kind, app, http = platform
    app.fail_next = [{"wecom_app": 45009, "dingtalk_app": 143103, "feishu_app": 99991400}[kind]]
    message = queue(sessions, "dg-busy", kind, "bgs")
    with channel(kind, http) as ch:
        outbox = Outbox(sessions, {kind: ch}, limits={})
        assert outbox.deliver_due(NOW) == DeliveryStats(retried=1)
        wait = seconds_after(load(sessions, message).next_attempt_at, NOW)
        expected = {"wecom_app": 60, "dingtalk_app": 60, "feishu_app": 2}[kind]  # Feishu's header says 2 s
        assert wait == pytest.approx(expected, abs=1)
        assert outbox.deliver_due(NOW) == DeliveryStats()  # not before the wait
        later = NOW + dt.timedelta(seconds=expected + 1)
        assert outbox.deliver_due(later) == DeliveryStats(sent=1)
    assert len(app.notices) == 1 and load(sessions, message).status == "sent"


def test_feishu_sends_each_member_once_and_a_retry_does_not_repeat_the_ones_sent():
    app = FeishuApp(users={"u1", "u2", "u3"})
    with LoopbackHTTP(app) as http, channel("feishu_app", http) as ch:
        app.fail_next = []
        first = notice(address="u1|u2|u3")
        ch.send(first)
        ch.send(first)  # a retry after a lost answer: same uuids
    assert sorted(n["receive_id"] for n in app.notices) == ["u1", "u2", "u3"]


def test_a_wrong_secret_is_permanent_and_names_no_secret(platform):
    kind, app, http = platform
    app.secret = "another"
    with channel(kind, http) as ch, pytest.raises(Exception) as caught:
        ch.send(notice())
    assert getattr(caught.value, "permanent", None) is True
    assert "s3cret" not in str(caught.value)


def test_settings_are_checked_when_built():
    with pytest.raises(ValueError, match="corp_secret"):
        build_channel("w", {"kind": "wecom_app", "corp_id": "x", "agent_id": 1, "corp_secret": "inline"})
    with pytest.raises(ValueError, match="agent_id"):
        build_channel("w", {"kind": "wecom_app", "corp_id": "x", "corp_secret_env": "S"})
    with pytest.raises(ValueError, match="id_type"):
        build_channel("f", {"kind": "feishu_app", "app_id": "x", "app_secret_env": "S", "id_type": "phone"})
    with pytest.raises(ValueError, match="base_url"):
        build_channel("d", {"kind": "dingtalk_app", "client_id": "k", "agent_id": 1, "client_secret_env": "S",
                            "base_url": "ftp://x"})


def test_threads_of_one_process_fetch_one_token():
    cache, fetched = TokenCache(), []
    gate = threading.Event()

    def fetch() -> Token:
        gate.wait(2)
        fetched.append(1)
        return Token("tok", cache.clock() + 7200)

    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(cache.get("k", fetch))) for _ in range(8)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(5)
    assert got == ["tok"] * 8 and fetched == [1]


def test_a_token_is_given_up_before_it_expires():
    now = [1000.0]
    cache = TokenCache(clock=lambda: now[0], margin=300)
    tokens = iter(["a", "b"])
    fetch = lambda: Token(next(tokens), now[0] + 7200)  # noqa: E731
    assert cache.get("k", fetch) == "a"
    now[0] += 7200 - 301
    assert cache.get("k", fetch) == "a"
    now[0] += 2
    assert cache.get("k", fetch) == "b"


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_several_daemons_on_one_database_fetch_the_token_once(backend, tmp_path, request):
    url = f"sqlite:///{tmp_path / 't.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    engine = make_engine(url)
    upgrade(engine)
    sessions = session_factory(engine)
    app = WeComApp(users={"bgs"})
    with LoopbackHTTP(app) as http:
        daemons = []
        for _ in range(4):  # four processes: each its own cache, all on the one database
            cache = TokenCache()
            cache.shared = DatabaseTokens(sessions)
            daemons.append(channel("wecom_app", http, cache))
        errors: list[BaseException] = []

        def run(ch: AppChannel, n: int) -> None:
            try:
                ch.send(notice(key=f"dg-{n}"))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(d, n)) for n, d in enumerate(daemons * 3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert errors == [] and app.tokens_issued == 1 and len(app.notices) == 12
        with transaction(sessions) as session:
            stored = session.get(AppToken, next(iter(daemons[0].tokens._tokens)))
            assert stored is not None and stored.token == "wx-0"
        app.expire()  # one daemon meets the expiry code: it forgets the stored token, fetches anew
        daemons[0].send(notice(key="dg-x"))
        daemons[1].tokens._tokens.clear()  # a daemon started later reads the new one from the database
        daemons[1].send(notice(key="dg-y"))
        assert app.tokens_issued == 2
        for d in daemons:
            d.close()
    engine.dispose()


def test_a_department_id_is_addressed_where_the_platform_has_departments():
    for kind, cls in (("wecom_app", WeComApp), ("dingtalk_app", DingTalkApp)):
        app = cls(users={"bgs"})
        with LoopbackHTTP(app) as http, channel(kind, http) as ch:
            ch.send(notice(address="dept:12|bgs"))
        sent = app.notices[0]
        if kind == "wecom_app":
            assert (sent["touser"], sent["toparty"]) == ("bgs", "12")
        else:
            assert (sent["userid_list"], sent["dept_id_list"]) == ("bgs", "12")
    app = FeishuApp(users={"bgs"})
    with LoopbackHTTP(app) as http, channel("feishu_app", http) as ch, pytest.raises(Exception) as caught:
        ch.send(notice(address="dept:12"))
    assert getattr(caught.value, "permanent", None) is True and http.seen == []


_line = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=400)


@hypothesis_settings(max_examples=examples(200), deadline=None)
@given(lines=st.lists(_line, min_size=1, max_size=40), subject=st.text(min_size=1, max_size=300),
       extra=st.integers(0, 500))
def test_every_card_fits_its_platform_and_keeps_the_button_and_the_key(lines, subject, extra):
    """Whatever the digest holds, each card stays within its platform's limits, shows the most urgent
    item first and keeps the button; the robots' key line survives where the card has text."""
    from notifications.channels.dingtalk_app import MSG_BYTES, DingTalkAppChannel
    from notifications.channels.feishu_app import CARD_BYTES, FeishuAppChannel
    from notifications.channels.text import json_bytes
    from notifications.channels.wecom_app import WeComAppChannel

    message = OutgoingMessage(key="dg-k", recipient="办公室", address="bgs", subject=subject, text="\n".join(lines),
                              data={"card": {"lines": lines, "total": len(lines) + extra, "link": LINK}})
    to = Addressees(("bgs",))
    wecom = WeComAppChannel("w", settings("wecom_app", "http://127.0.0.1:9"), ENV).payload(message, to)
    if wecom["msgtype"] == "textcard":
        card = wecom["textcard"]
        assert len(card["title"].encode()) <= 128 and len(card["description"].encode()) <= 512
        assert card["url"] == LINK and card["btntxt"] == "去处理"
    else:
        assert len(wecom["text"]["content"].encode()) <= 2048 and wecom["text"]["content"].endswith("（编号 dg-k）")
    ding = DingTalkAppChannel("d", settings("dingtalk_app", "http://127.0.0.1:9"), ENV).payload(message, to)
    markdown = ding["msg"]["action_card"]["markdown"]
    assert json_bytes(ding["msg"]) <= MSG_BYTES and markdown.endswith("（编号 dg-k）")
    assert len(ding["msg"]["action_card"]["title"]) <= 64 and len(ding["msg"]["action_card"]["single_title"]) <= 20
    assert ding["msg"]["action_card"]["single_url"] == LINK
    feishu = FeishuAppChannel("f", settings("feishu_app", "http://127.0.0.1:9"), ENV).request(message, "bgs")
    assert json_bytes(feishu) <= CARD_BYTES and LINK in feishu["content"]


def test_wecom_names_the_members_it_did_not_reach_when_others_got_the_notice(caplog):
    app = WeComApp(users={"bgs"})
    with LoopbackHTTP(app) as http, channel("wecom_app", http) as ch:
        receipt = ch.send(notice(address="bgs|gone"))
    assert len(app.notices) == 1
    assert "WeCom did not deliver to gone" in caplog.text
    assert receipt is not None and (receipt.recipients, receipt.missed) == (2, ("gone",))

"""DingTalk (钉钉) 工作通知: a notice from the organisation's internal app, shown in the person's
work-notification conversation.

* token: ``GET {base}/gettoken?appkey=KEY&appsecret=SECRET`` ->
  ``{"errcode": 0, "access_token": "…", "expires_in": 7200}``
* send: ``POST {base}/topapi/message/corpconversation/asyncsend_v2?access_token=TOKEN`` with
  ``agent_id``, ``userid_list`` (``id1,id2``), ``dept_id_list`` and ``msg``: an ``action_card``
  (``title``, ``markdown``, ``single_title`` 去处理, ``single_url``); without a link a ``text``
  message. DingTalk answers ``task_id`` once it has accepted the notice.

A 专有钉钉 (private DingTalk) deployment serves the same API on its own host: set ``base_url``.
政务钉钉 (e.g. 浙政钉) is a different gateway (its own endpoints and signed request headers) and is
not supported by this channel.

Codes: read by ``dingtalk_codes`` (errcode 88 carries the real reason in ``sub_code``): 40014/42001
token invalid or expired (refresh once), 143103/143104 the work notices' per-minute quota, -1
system busy, the rest permanent. ``docs/platform-codes.md`` has the table and its sources.

Limits (``dingtalk_codes.WORK_NOTICE``, ``MESSAGE_TYPES``): ``msg`` at most 2,048 bytes as sent
(its JSON counted whole), the action card's ``title`` at most 64 characters and ``single_title`` 20.
DingTalk delivers a notice with the same content to a user once a day and at most 500 of an app's
notices a day to one user, answering success either way: every notice carries its 编号 line, so
two notices never share content, and the per-user cap is kept on duban's side
(``recipient_windows``). What DingTalk did not deliver it reports later (``follow_up``).

Settings: ``client_id`` (DingTalk's Client ID, formerly AppKey), ``agent_id``, ``client_secret_env``
(Client Secret, formerly AppSecret), ``base_url``, ``timeout``. ``address``:
DingTalk userids (``manager1|manager2``) and/or ``dept:ID``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from notifications.channels import dingtalk_codes
from notifications.channels._app import BUTTON, Addressees, AppChannel, Card
from notifications.channels._tokens import Token, token_key
from notifications.channels.codes import Kind, Table, Verdict
from notifications.channels.receipt import Receipt
from notifications.channels.text import compose, fit_chars, fit_json, key_line
from notifications.message import OutgoingMessage

MSG_BYTES = 2048  # the whole ``msg`` object, as sent
TITLE_CHARS, SINGLE_TITLE_CHARS = 64, 20
DAY = 86400.0
CHINA = 8 * 3600.0  # DingTalk's day is Beijing's


class DingTalkAppChannel(AppChannel):
    kind: ClassVar[str] = "dingtalk_app"
    platform: ClassVar[str] = "dingtalk"
    default_base: ClassVar[str] = "https://oapi.dingtalk.com"
    keys: ClassVar[frozenset[str]] = AppChannel.common_keys | {"client_id", "agent_id", "client_secret_env",
                                                                  "api_base_url"}
    codes: ClassVar[Table] = dingtalk_codes.APP
    # (count, seconds, offset): 500 notices a day per user from an organisation's own app
    recipient_windows: ClassVar[tuple[tuple[int, float, float], ...]] = ((500, DAY, CHINA),)

    def __init__(self, name: str, settings: Mapping[str, Any], env: Mapping[str, str] = os.environ):
        super().__init__(name, settings, env)
        self.client_id: str = str(self.setting_str("client_id"))
        if "agent_id" not in self.settings:
            raise self.config_error("missing 'agent_id' (the app's AgentId)")
        self.agent_id = self.setting_number("agent_id", 1, integer=True)
        self.setting_str("client_secret_env")

    def app_id(self) -> str:
        return self.client_id

    def fetch_token(self) -> Token:
        secret = self.secret("client_secret_env") or ""
        return self.gettoken("/gettoken", {"appkey": self.client_id, "appsecret": secret}, "DingTalk")

    def payload(self, message: OutgoingMessage, to: Addressees) -> dict[str, Any]:
        card = Card.of(message)
        body: dict[str, Any] = {"agent_id": self.agent_id}
        if to.users:
            body["userid_list"] = ",".join(to.users)
        if to.departments:
            body["dept_id_list"] = ",".join(to.departments)
        tail = f"\n\n{key_line(message.key)}"
        if card.link:
            # DingTalk markdown joins single newlines; a blank line keeps each item on its own.
            items = "\n\n".join(f"- {line}" for line in card.lines)
            more = f"\n\n{card.more_line()}" if card.more else ""
            title = fit_chars(card.title, TITLE_CHARS)
            head = f"#### {title}\n\n"

            def action_card(room: int) -> dict[str, Any]:
                return {"msgtype": "action_card", "action_card": {
                    "title": title, "markdown": compose(head, items + more, tail, room),
                    "single_title": fit_chars(BUTTON, SINGLE_TITLE_CHARS), "single_url": card.link}}

            body["msg"] = fit_json(action_card, MSG_BYTES)
        else:
            body["msg"] = fit_json(lambda room: {"msgtype": "text", "text": {"content": card.plain(message.key, room)}},
                                   MSG_BYTES)
        return body

    def read_reply(self, reply: dict[str, Any], response: httpx.Response) -> Verdict | None:
        return dingtalk_codes.read(reply, self.codes)

    def deliver(self, message: OutgoingMessage, to: Addressees, token: str) -> Receipt | None:
        body = self.payload(message, to)
        reply, response = self.call("POST", "/topapi/message/corpconversation/asyncsend_v2",
                                    params={"access_token": token}, body=body)
        verdict = self.read_reply(reply, response)
        if verdict is not None:
            raise self.reply_error(verdict)
        task = reply.get("task_id")
        if task is None or not to.users:
            return None
        # Accepted is not delivered: the daily cap and the same-content rule drop notices silently;
        # getsendresult says which (``follow_up``).
        return Receipt("dingtalk", len(to.users), task=str(task))

    def follow_up(self, task: str) -> Receipt | None:
        token = self.api_token()
        reply, response = self.call("POST", "/topapi/message/corpconversation/getsendresult",
                                    params={"access_token": token},
                                    body={"agent_id": self.agent_id, "task_id": int(task)})
        verdict = self.read_reply(reply, response)
        if verdict is not None:
            if verdict.kind is Kind.REFRESH:  # the next ask (or send) fetches a new one
                self.tokens.invalidate(token_key(self.platform, self.base, self.app_id()), token)
            raise self.failure(verdict.text, permanent=verdict.kind is Kind.PERMANENT)
        result = reply.get("send_result")
        if not isinstance(result, dict):
            return None

        def ids(name: str) -> list[str]:
            value = result.get(name) or []
            return [str(v) for v in value] if isinstance(value, list) else [v for v in str(value).split(",") if v]
        missed = list(dict.fromkeys(ids("invalid_user_id_list") + ids("forbidden_user_id_list")
                                    + ids("failed_user_id_list")))
        reasons = []
        if ids("invalid_user_id_list"):
            reasons.append("无效的userid")
        for entry in result.get("forbidden_list") or []:
            if isinstance(entry, dict):
                reasons.append(dingtalk_codes.FORBIDDEN.get(str(entry.get("code")), f"流控 {entry.get('code')}"))
        if ids("forbidden_user_id_list") and not result.get("forbidden_list"):
            reasons.append("被流控（每日上限或同一内容）")
        if ids("failed_user_id_list"):
            reasons.append("发送失败")
        reached = len(ids("read_user_id_list")) + len(ids("unread_user_id_list"))
        return Receipt("dingtalk", reached + len(missed), tuple(missed), "；".join(dict.fromkeys(reasons)))

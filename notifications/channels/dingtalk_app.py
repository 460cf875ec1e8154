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

Codes: 40014/42001 token invalid or expired (refresh once); 90018 (per-second), 90005/90006
(per-minute), 41047/41048 (message quotas per minute) rate limits; -1 system busy; 33012 no such
userid, 40056 bad agent_id, 60011 no privilege, 60020 IP not whitelisted, 40089 wrong app key or
secret, and the rest permanent.

Settings: ``client_id`` (DingTalk's Client ID, formerly AppKey), ``agent_id``, ``client_secret_env``
(Client Secret, formerly AppSecret), ``base_url``, ``timeout``. ``address``:
DingTalk userids (``manager1|manager2``) and/or ``dept:ID``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

from notifications.channels._app import BUTTON, Addressees, AppChannel, Card
from notifications.channels._tokens import Token
from notifications.channels.text import compose, key_line
from notifications.message import OutgoingMessage

# DingTalk documents 5000 characters for a work notice's markdown; keep within bytes, well below.
MARKDOWN_BYTES = 6000
TEXT_BYTES = 6000


class DingTalkAppChannel(AppChannel):
    kind: ClassVar[str] = "dingtalk_app"
    platform: ClassVar[str] = "dingtalk"
    default_base: ClassVar[str] = "https://oapi.dingtalk.com"
    keys: ClassVar[frozenset[str]] = AppChannel.common_keys | {"client_id", "agent_id", "client_secret_env",
                                                                  "api_base_url"}
    token_codes: ClassVar[frozenset[int]] = frozenset({40014, 42001})
    busy_codes: ClassVar[frozenset[int]] = frozenset({-1})
    rate_codes: ClassVar[Mapping[int, float]] = {90018: 1.0, 90005: 60.0, 90006: 60.0, 41047: 60.0, 41048: 60.0}

    def __init__(self, name: str, settings: Mapping[str, Any], env: Mapping[str, str] = os.environ):
        super().__init__(name, settings, env)
        self.client_id = self.setting_str("client_id")
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
        if card.link:
            # DingTalk markdown joins single newlines; a blank line keeps each item on its own.
            items = "\n\n".join(f"- {line}" for line in card.lines)
            more = f"\n\n{card.more_line()}" if card.more else ""
            markdown = compose(f"#### {card.title}\n\n", items + more, f"\n\n{key_line(message.key)}",
                               MARKDOWN_BYTES)
            body["msg"] = {"msgtype": "action_card", "action_card": {
                "title": card.title, "markdown": markdown, "single_title": BUTTON, "single_url": card.link}}
        else:
            body["msg"] = {"msgtype": "text", "text": {"content": card.plain(message.key, TEXT_BYTES)}}
        return body

    def deliver(self, message: OutgoingMessage, to: Addressees, token: str) -> None:
        reply, _ = self.call("POST", "/topapi/message/corpconversation/asyncsend_v2",
                             params={"access_token": token}, body=self.payload(message, to))
        code = reply.get("errcode")
        if not isinstance(code, int):
            raise self.failure(f"{self.host} answered without an errcode")
        if code != 0:
            raise self.reply_error(code, f"DingTalk errcode {code}: {reply.get('errmsg', '')}")

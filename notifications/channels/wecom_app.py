"""WeCom (企业微信) 应用消息: a notice from the organisation's self-built app to members.

* token: ``GET {base}/cgi-bin/gettoken?corpid=ID&corpsecret=SECRET`` ->
  ``{"errcode": 0, "access_token": "…", "expires_in": 7200}``
* send: ``POST {base}/cgi-bin/message/send?access_token=TOKEN`` with ``touser`` (``id1|id2``),
  ``toparty`` (department ids), ``agentid`` and a ``textcard``: title (≤ 128 bytes), description
  (≤ 512 bytes, WeCom's ``<div class="gray|normal|highlight">``), url, ``btntxt`` 去处理. Without a
  link there is no card (WeCom's textcard needs one): a ``text`` message (≤ 2048 bytes) instead.
  ``enable_duplicate_check`` asks WeCom to drop the same notice re-sent within four hours (a retry
  after a lost answer).

Codes: read by ``wecom_codes``: 40014/42001 token invalid or expired (refresh once), 45009/45033
frequency limits, -1 system busy, 81013 (nobody in range) and the rest permanent. An answer of 0 may
name addressees it missed (``invaliduser``, ``unlicenseduser``, lowercased by WeCom): the message is
sent, and its ``Receipt`` says to whom it was not delivered.

Limits (``wecom_codes.SEND``): text ``content`` 2,048 bytes; textcard ``title`` 128 bytes,
``description`` 512 bytes, ``url`` 2,048 bytes, ``btntxt`` 4 characters. Per member, an app may
send 30 messages a minute and 1,000 an hour (``wecom_codes.FREQUENCY``); WeCom drops the excess
while answering success, so duban keeps those counts itself (``recipient_windows``).

Settings: ``corp_id``, ``agent_id``, ``corp_secret_env``, ``base_url`` (a private deployment's),
``timeout``. ``address``: WeCom userids (``zhangsan|lisi``) and/or ``dept:2``.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from notifications.channels import wecom_codes
from notifications.channels._app import BUTTON, Addressees, AppChannel, Card
from notifications.channels._tokens import Token
from notifications.channels.codes import Table, Verdict
from notifications.channels.receipt import Receipt
from notifications.channels.text import fit_chars, fit_utf8
from notifications.message import OutgoingMessage

log = logging.getLogger("duban.channels")

TITLE_BYTES, DESCRIPTION_BYTES, TEXT_BYTES, URL_BYTES, BUTTON_CHARS = 128, 512, 2048, 2048, 4
MARKDOWN_BYTES = 2048  # an app's markdown message (not sent by duban; kept with the others)
DUPLICATE_WINDOW = 4 * 3600  # WeCom's largest duplicate_check_interval


class WeComAppChannel(AppChannel):
    kind: ClassVar[str] = "wecom_app"
    platform: ClassVar[str] = "wecom"
    default_base: ClassVar[str] = "https://qyapi.weixin.qq.com"
    keys: ClassVar[frozenset[str]] = AppChannel.common_keys | {"corp_id", "agent_id", "corp_secret_env"}
    codes: ClassVar[Table] = wecom_codes.APP
    recipient_windows: ClassVar[tuple[tuple[int, float, float], ...]] = ((30, 60.0, 0.0), (1000, 3600.0, 0.0))

    def __init__(self, name: str, settings: Mapping[str, Any], env: Mapping[str, str] = os.environ):
        super().__init__(name, settings, env)
        self.corp_id = self.setting_str("corp_id")
        self.agent_id = self.setting_number("agent_id", 1, integer=True) if "agent_id" in self.settings else None
        if self.agent_id is None:
            raise self.config_error("missing 'agent_id' (the app's AgentId)")
        self.setting_str("corp_secret_env")

    def app_id(self) -> str:
        return f"{self.corp_id}/{self.agent_id}"

    def fetch_token(self) -> Token:
        secret = self.secret("corp_secret_env") or ""
        return self.gettoken("/cgi-bin/gettoken", {"corpid": self.corp_id, "corpsecret": secret}, "WeCom")

    def payload(self, message: OutgoingMessage, to: Addressees) -> dict[str, Any]:
        card = Card.of(message)
        body: dict[str, Any] = {"touser": "|".join(to.users), "toparty": "|".join(to.departments),
                                "agentid": self.agent_id, "enable_duplicate_check": 1,
                                "duplicate_check_interval": DUPLICATE_WINDOW}
        description = _description(card)
        if card.link and description is not None and len(card.link.encode("utf-8")) <= URL_BYTES:
            body.update(msgtype="textcard", textcard={
                "title": fit_utf8(card.title, TITLE_BYTES), "description": description,
                "url": card.link, "btntxt": fit_chars(BUTTON, BUTTON_CHARS)})
        else:
            body.update(msgtype="text", text={"content": card.plain(message.key, TEXT_BYTES)})
        return body

    def read_reply(self, reply: dict[str, Any], response: httpx.Response) -> Verdict | None:
        return wecom_codes.read(reply, self.codes)

    def deliver(self, message: OutgoingMessage, to: Addressees, token: str) -> Receipt | None:
        reply, response = self.call("POST", "/cgi-bin/message/send", params={"access_token": token},
                                    body=self.payload(message, to))
        verdict = self.read_reply(reply, response)
        if verdict is not None:
            raise self.reply_error(verdict)
        missed = wecom_codes.missed(reply, to.users, to.departments)
        if not (missed.users or missed.departments):
            return None
        everyone = len(to.users) + len(to.departments)
        lost = missed.users + tuple(f"dept:{d}" for d in missed.departments)
        log.warning("channel %r: WeCom did not deliver to %s (%s)", self.name, "|".join(lost), missed.reason)
        return Receipt("wecom", everyone, lost, missed.reason)


def _description(card: Card) -> str | None:
    """The textcard's description within 512 bytes: as many of the most urgent items as fit (the
    first cut if it must), then how many more; None when there is no item to show."""
    total = len(card.lines) + card.more
    for shown in range(len(card.lines), 0, -1):
        rest = total - shown
        tail = f'<div class="gray">……另有 {rest} 项，请点“{BUTTON}”查看</div>' if rest else ""
        lines = [html.escape(line, quote=False) for line in card.lines[:shown]]
        if shown == 1:
            room = DESCRIPTION_BYTES - len((tail + '<div class="normal"></div>').encode("utf-8"))
            lines = [fit_utf8(card.lines[0], room).replace("&", "＆").replace("<", "＜").replace(">", "＞")]
        out = "".join(f'<div class="normal">{line}</div>' for line in lines) + tail
        if len(out.encode("utf-8")) <= DESCRIPTION_BYTES:
            return out
    return None

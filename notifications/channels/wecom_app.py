"""WeCom (企业微信) 应用消息: a notice from the organisation's self-built app to members.

* token: ``GET {base}/cgi-bin/gettoken?corpid=ID&corpsecret=SECRET`` ->
  ``{"errcode": 0, "access_token": "…", "expires_in": 7200}``
* send: ``POST {base}/cgi-bin/message/send?access_token=TOKEN`` with ``touser`` (``id1|id2``),
  ``toparty`` (department ids), ``agentid`` and a ``textcard``: title (≤ 128 bytes), description
  (≤ 512 bytes, WeCom's ``<div class="gray|normal|highlight">``), url, ``btntxt`` 去处理. Without a
  link there is no card (WeCom's textcard needs one): a ``text`` message (≤ 2048 bytes) instead.
  ``enable_duplicate_check`` asks WeCom to drop the same notice re-sent within four hours (a retry
  after a lost answer).

Codes: 40014/42001 token invalid or expired (refresh once); 45009 frequency limit, 45033 too many
concurrent calls (transient); -1 system busy; 81013 no valid user/department, 60011 no privilege
for that member, 40056 bad agentid, 60020 IP not trusted and the rest permanent. An answer of 0
whose ``invaliduser`` lists every addressee is permanent too: nobody got it.

Settings: ``corp_id``, ``agent_id``, ``corp_secret_env``, ``base_url`` (a private deployment's),
``timeout``. ``address``: WeCom userids (``zhangsan|lisi``) and/or ``dept:2``.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Mapping
from typing import Any, ClassVar

from notifications.channels._app import BUTTON, Addressees, AppChannel, Card
from notifications.channels._tokens import Token
from notifications.channels.text import fit_utf8
from notifications.message import OutgoingMessage

log = logging.getLogger("duban.channels")

TITLE_BYTES, DESCRIPTION_BYTES, TEXT_BYTES = 128, 512, 2048
DUPLICATE_WINDOW = 4 * 3600  # WeCom's largest duplicate_check_interval


class WeComAppChannel(AppChannel):
    kind: ClassVar[str] = "wecom_app"
    platform: ClassVar[str] = "wecom"
    default_base: ClassVar[str] = "https://qyapi.weixin.qq.com"
    keys: ClassVar[frozenset[str]] = AppChannel.common_keys | {"corp_id", "agent_id", "corp_secret_env"}
    token_codes: ClassVar[frozenset[int]] = frozenset({40014, 42001})
    busy_codes: ClassVar[frozenset[int]] = frozenset({-1})
    rate_codes: ClassVar[Mapping[int, float]] = {45009: 60.0, 45033: 5.0}

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
        if card.link and description is not None:
            body.update(msgtype="textcard", textcard={
                "title": fit_utf8(card.title, TITLE_BYTES), "description": description,
                "url": card.link, "btntxt": BUTTON})
        else:
            body.update(msgtype="text", text={"content": card.plain(message.key, TEXT_BYTES)})
        return body

    def deliver(self, message: OutgoingMessage, to: Addressees, token: str) -> None:
        reply, _ = self.call("POST", "/cgi-bin/message/send", params={"access_token": token},
                             body=self.payload(message, to))
        code = reply.get("errcode")
        if not isinstance(code, int):
            raise self.failure(f"{self.host} answered without an errcode")
        if code != 0:
            raise self.reply_error(code, f"WeCom errcode {code}: {reply.get('errmsg', '')}")
        invalid = {u for u in str(reply.get("invaliduser") or "").split("|") if u}
        invalid_parties = {p for p in str(reply.get("invalidparty") or "").split("|") if p}
        if invalid and invalid >= set(to.users) and invalid_parties >= set(to.departments):
            raise self.failure(f"WeCom knows no member {'|'.join(sorted(invalid))} in this app's range", permanent=True)
        if invalid or invalid_parties:  # the others got it: sent, but someone should fix the ids
            log.warning("channel %r: WeCom did not reach %s (not in the app's range)", self.name,
                        "|".join(sorted(invalid | {f"dept:{p}" for p in invalid_parties})))


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

"""Feishu/Lark (飞书) app messages: a message card from the organisation's app to one person.

* token: ``POST {base}/open-apis/auth/v3/tenant_access_token/internal`` with ``app_id`` and
  ``app_secret`` -> ``{"code": 0, "tenant_access_token": "t-…", "expire": 7200}``
* send: ``POST {base}/open-apis/im/v1/messages?receive_id_type=user_id`` (``Authorization: Bearer
  t-…``) with ``receive_id``, ``msg_type`` ``interactive`` and ``content`` (the card, as a JSON
  string): a header with the subject, the most urgent items, a "去处理" button opening the signed
  workspace link, and the key line as a note; without a link a ``text`` message. ``uuid`` is
  derived from the message key: Feishu sends one message per uuid within an hour, so a retry after
  a lost answer is not a second notice. Feishu addresses people one at a time: a department's
  members get one call each.

Codes: 99991663/99991668/99991677 token invalid or expired (refresh once); 99991400 and 230020
rate limits (the ``x-ogw-ratelimit-reset`` header says when); 230013 the person is outside the app's
availability, 99992351/99992361 no such id, 99991672 scope not granted, and the rest permanent.

Settings: ``app_id``, ``app_secret_env``, ``id_type`` (``user_id``, ``open_id``, ``union_id`` or
``email``; default ``user_id``), ``base_url`` (Lark: https://open.larksuite.com), ``timeout``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from notifications.channels._app import BUTTON, Addressees, AppChannel, Card
from notifications.channels._tokens import Token
from notifications.channels.base import DeliveryError
from notifications.channels.text import fit_utf8, key_line
from notifications.message import OutgoingMessage, dumps

ID_TYPES = ("user_id", "open_id", "union_id", "email")
CARD_BYTES = 28_000  # Feishu refuses cards over 30 KB
TEXT_BYTES = 28_000


def message_uuid(key: str, receiver: str) -> str:
    """Feishu's idempotency handle (at most 50 characters) for one receiver of one message."""
    return "dg-" + hashlib.sha256(f"{key}\n{receiver}".encode()).hexdigest()[:40]


class FeishuAppChannel(AppChannel):
    kind: ClassVar[str] = "feishu_app"
    platform: ClassVar[str] = "feishu"
    default_base: ClassVar[str] = "https://open.feishu.cn"
    keys: ClassVar[frozenset[str]] = AppChannel.common_keys | {"app_id", "app_secret_env", "id_type"}
    token_codes: ClassVar[frozenset[int]] = frozenset({99991663, 99991668, 99991677})
    busy_codes: ClassVar[frozenset[int]] = frozenset({-1, 1500})
    rate_codes: ClassVar[Mapping[int, float]] = {99991400: 1.0, 230020: 1.0}

    def __init__(self, name: str, settings: Mapping[str, Any], env: Mapping[str, str] = os.environ):
        super().__init__(name, settings, env)
        self.feishu_app = self.setting_str("app_id")
        self.setting_str("app_secret_env")
        self.id_type = self.setting_str("id_type", "user_id")
        if self.id_type not in ID_TYPES:
            raise self.config_error(f"'id_type' must be one of {', '.join(ID_TYPES)}")

    def app_id(self) -> str:
        return self.feishu_app

    def fetch_token(self) -> Token:
        secret = self.secret("app_secret_env") or ""
        reply, _ = self.call("POST", "/open-apis/auth/v3/tenant_access_token/internal",
                             body={"app_id": self.feishu_app, "app_secret": secret})
        code = reply.get("code", 0)
        if code != 0:
            raise self.token_error(code, f"Feishu token code {code}: {reply.get('msg', '')}")
        return self.token_of(reply, "tenant_access_token", "expire")

    def rate_wait(self, response: httpx.Response) -> float | None:
        # Feishu says when its window opens again in seconds, in its own header.
        reset = response.headers.get("x-ogw-ratelimit-reset", "")
        return float(reset) if reset.isdigit() else super().rate_wait(response)

    def addressees(self, address: str) -> Addressees:
        to = super().addressees(address)
        if to.departments:
            raise self.failure("Feishu app messages go to people, not to departments (dept:…)", permanent=True)
        return to

    def content(self, message: OutgoingMessage) -> tuple[str, str]:
        """(msg_type, content as the JSON string Feishu wants)."""
        card = Card.of(message)
        if not card.link:
            return "text", dumps({"text": card.plain(message.key, TEXT_BYTES)})
        items = "\n".join(card.lines) + (f"\n{card.more_line()}" if card.more else "")
        pressing = card.pressing
        body = {
            "config": {"wide_screen_mode": True},
            "header": {"template": "red" if pressing else "blue",
                       "title": {"tag": "plain_text", "content": card.title}},
            "elements": [
                {"tag": "div", "text": {"tag": "plain_text", "content": fit_utf8(items, CARD_BYTES)}},
                {"tag": "action", "actions": [{"tag": "button", "type": "primary",
                                               "text": {"tag": "plain_text", "content": BUTTON},
                                               "url": card.link}]},
                {"tag": "note", "elements": [{"tag": "plain_text", "content": key_line(message.key)}]},
            ],
        }
        return "interactive", dumps(body)

    def deliver(self, message: OutgoingMessage, to: Addressees, token: str) -> None:
        msg_type, content = self.content(message)
        failures: list[DeliveryError] = []
        for receiver in to.users:
            reply, response = self.call(
                "POST", "/open-apis/im/v1/messages", params={"receive_id_type": self.id_type},
                headers={"Authorization": f"Bearer {token}"},
                body={"receive_id": receiver, "msg_type": msg_type, "content": content,
                      "uuid": message_uuid(message.key, receiver)})
            code = reply.get("code")
            if not isinstance(code, int):
                raise self.failure(f"{self.host} answered without a code")
            if code == 0:
                continue
            error = self.reply_error(code, f"Feishu code {code} for {receiver}: {reply.get('msg', '')}",
                                     wait=self.rate_wait(response))
            if not isinstance(error, DeliveryError) or not error.permanent:
                raise error  # a new token or a wait helps everyone: the uuid keeps sent ones single
            failures.append(error)
        if failures:
            raise self.failure("; ".join(f.message.removeprefix(self._prefix("")) for f in failures), permanent=True)

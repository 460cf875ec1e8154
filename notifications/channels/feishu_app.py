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

Codes: read by ``feishu_codes`` (HTTP status and ``code`` together): 99991663/99991668/99991677
token invalid or expired (refresh once); 99991400 and 230020 rate limits (the
``x-ogw-ratelimit-reset`` header says when); 230013 the person is outside the app's availability,
99992351/99992361 no such id, 99991672 scope not granted, and the rest permanent.

Limits (``feishu_codes.CREATE``): a card's (or rich text's) request body at most 30 KB, a text's
150 KB, counted on the request as sent (the card travels as a JSON string inside the JSON body, so
its quotes are escaped twice).

Settings: ``app_id``, ``app_secret_env``, ``id_type`` (``user_id``, ``open_id``, ``union_id`` or
``email``; default ``user_id``), ``base_url`` (Lark: https://open.larksuite.com), ``timeout``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from notifications.channels import feishu_codes
from notifications.channels._app import BUTTON, Addressees, AppChannel, Card
from notifications.channels._tokens import Token
from notifications.channels.base import DeliveryError
from notifications.channels.codes import Table, Verdict
from notifications.channels.receipt import Receipt
from notifications.channels.text import fit_json, fit_utf8, key_line
from notifications.message import OutgoingMessage, dumps

ID_TYPES = ("user_id", "open_id", "union_id", "email")
CARD_BYTES = 30 * 1000  # "30 KB" read as the smaller thousand: a byte count that fits either way
TEXT_BYTES = 150 * 1000


def message_uuid(key: str, receiver: str) -> str:
    """Feishu's idempotency handle (at most 50 characters) for one receiver of one message."""
    return "dg-" + hashlib.sha256(f"{key}\n{receiver}".encode()).hexdigest()[:40]


class FeishuAppChannel(AppChannel):
    kind: ClassVar[str] = "feishu_app"
    platform: ClassVar[str] = "feishu"
    default_base: ClassVar[str] = "https://open.feishu.cn"
    keys: ClassVar[frozenset[str]] = AppChannel.common_keys | {"app_id", "app_secret_env", "id_type"}
    codes: ClassVar[Table] = feishu_codes.APP

    def __init__(self, name: str, settings: Mapping[str, Any], env: Mapping[str, str] = os.environ):
        super().__init__(name, settings, env)
        self.feishu_app: str = str(self.setting_str("app_id"))
        self.setting_str("app_secret_env")
        self.id_type = self.setting_str("id_type", "user_id")
        if self.id_type not in ID_TYPES:
            raise self.config_error(f"'id_type' must be one of {', '.join(ID_TYPES)}")

    def app_id(self) -> str:
        return self.feishu_app

    def fetch_token(self) -> Token:
        secret = self.secret("app_secret_env") or ""
        reply, response = self.call("POST", "/open-apis/auth/v3/tenant_access_token/internal",
                                    body={"app_id": self.feishu_app, "app_secret": secret})
        verdict = self.read_reply(reply, response)
        if verdict is not None:
            raise self.token_error(Verdict(verdict.code, verdict.kind, f"Feishu token: {verdict.text}", verdict.wait))
        return self.token_of(reply, "tenant_access_token", "expire")

    def read_reply(self, reply: dict[str, Any], response: httpx.Response) -> Verdict | None:
        return feishu_codes.read(response, reply, self.codes)

    def rate_wait(self, response: httpx.Response) -> float | None:
        # Feishu says when its window opens again in seconds, in its own header.
        reset = feishu_codes.reset_seconds(response)
        return reset if reset is not None else super().rate_wait(response)

    def addressees(self, address: str) -> Addressees:
        to = super().addressees(address)
        if to.departments:
            raise self.failure("Feishu app messages go to people, not to departments (dept:…)", permanent=True)
        return to

    def content(self, message: OutgoingMessage, room: int) -> tuple[str, str]:
        """(msg_type, content as the JSON string Feishu wants), its text cut to ``room`` bytes."""
        card = Card.of(message)
        if not card.link:
            return "text", dumps({"text": card.plain(message.key, room)})
        items = "\n".join(card.lines) + (f"\n{card.more_line()}" if card.more else "")
        pressing = card.pressing
        body = {
            "config": {"wide_screen_mode": True},
            "header": {"template": "red" if pressing else "blue",
                       "title": {"tag": "plain_text", "content": card.title}},
            "elements": [
                {"tag": "div", "text": {"tag": "plain_text", "content": fit_utf8(items, room)}},
                {"tag": "action", "actions": [{"tag": "button", "type": "primary",
                                               "text": {"tag": "plain_text", "content": BUTTON},
                                               "url": card.link}]},
                {"tag": "note", "elements": [{"tag": "plain_text", "content": key_line(message.key)}]},
            ],
        }
        return "interactive", dumps(body)

    def request(self, message: OutgoingMessage, receiver: str) -> dict[str, Any]:
        """The request body for one receiver, within Feishu's limit for its type (JSON counted whole)."""
        limit = CARD_BYTES if Card.of(message).link else TEXT_BYTES

        def build(room: int) -> dict[str, Any]:
            msg_type, content = self.content(message, room)
            return {"receive_id": receiver, "msg_type": msg_type, "content": content,
                    "uuid": message_uuid(message.key, receiver)}

        return dict(fit_json(build, limit))

    def deliver(self, message: OutgoingMessage, to: Addressees, token: str) -> Receipt | None:
        failures: list[DeliveryError] = []
        for receiver in to.users:
            reply, response = self.call(
                "POST", "/open-apis/im/v1/messages", params={"receive_id_type": self.id_type},
                headers={"Authorization": f"Bearer {token}"}, body=self.request(message, receiver))
            verdict = self.read_reply(reply, response)
            if verdict is None:
                continue
            error = self.reply_error(Verdict(verdict.code, verdict.kind, f"{verdict.text} (for {receiver})",
                                             verdict.wait))
            if not isinstance(error, DeliveryError) or not error.permanent:
                raise error  # a new token or a wait helps everyone: the uuid keeps sent ones single
            failures.append(error)
        if failures:
            raise self.failure("; ".join(f.message.removeprefix(self._prefix("")) for f in failures), permanent=True)
        return None

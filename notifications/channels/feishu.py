"""Feishu/Lark (飞书) custom bot: ``POST https://open.feishu.cn/open-apis/bot/v2/hook/…``.

Sends a ``post`` (rich text) message: the subject as its title, each line of the plain-text digest as
a paragraph (no markup: Feishu shows ``#`` and ``*`` literally), an optional @-mention and the key
line as the last paragraphs. With
``secret_env`` (the bot's 签名校验 secret) the body also carries ``timestamp`` (seconds, as a string)
and ``sign`` = base64(HMAC-SHA256(key="{timestamp}\\n{secret}", msg="")), Feishu's documented scheme
(the string-to-sign is the HMAC key and the message is empty). Feishu rejects a timestamp more than
an hour off.

``address``: an open_id / user_id to @ (``<at user_id="…">``), ``all``, or "" for nobody.

Feishu refuses a request body over 20 KB (``feishu_codes.BOT``): the budget is the body as sent,
its JSON (a paragraph's wrapper costs more than its text) and signature included. Its rate limit
answers 11232 (``feishu_codes.BOT_CODES``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from typing import Any, ClassVar

from notifications.channels import feishu_codes
from notifications.channels._http import HttpChannel
from notifications.channels.text import compose, fit_json, key_line
from notifications.message import OutgoingMessage

MAX_BODY_BYTES = 20 * 1000  # "20 KB", read as the smaller thousand

_USER_ID = re.compile(r"[A-Za-z0-9_\-]+")


def sign(secret: str, timestamp: int) -> str:
    """Feishu's signature for ``timestamp`` (seconds)."""
    digest = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class FeishuChannel(HttpChannel):
    """Settings: ``url`` (the bot's hook URL), ``secret_env``, ``timeout`` (default 10 s)."""

    kind: ClassVar[str] = "feishu"
    spread: ClassVar[bool] = True

    def payload(self, message: OutgoingMessage, timestamp: int | None = None) -> dict[str, Any]:
        """The JSON body for ``message``; signed when ``secret_env`` is set."""
        address = message.address.strip()
        tail: list[list[dict[str, str]]] = []
        if address:
            if not _USER_ID.fullmatch(address):
                raise self.failure(f"address {address!r} is not a Feishu user id", permanent=True)
            # Feishu shows the member's real name; user_name is only a fallback.
            name = "所有人" if address == "all" else re.sub(r"[<>\"]", "", message.recipient)
            tail.append([{"tag": "at", "user_id": address, "user_name": name}])
        tail.append([{"tag": "text", "text": key_line(message.key)}])
        signed: dict[str, Any] = {}
        secret = self.secret("secret_env")
        if secret is not None:
            ts = int(time.time()) if timestamp is None else timestamp
            signed = {"timestamp": str(ts), "sign": sign(secret, ts)}
        text = message.text.strip()

        def build(room: int) -> dict[str, Any]:
            body = compose("", text, "", room)
            paragraphs = [[{"tag": "text", "text": line}] for line in body.splitlines()] + tail
            return {**signed, "msg_type": "post",
                    "content": {"post": {"zh_cn": {"title": message.subject, "content": paragraphs}}}}

        return dict(fit_json(build, MAX_BODY_BYTES))

    def send(self, message: OutgoingMessage) -> None:
        response = self.post_json(self.payload(message))
        reply = self.robot_json(response)
        verdict = feishu_codes.read(response, reply, feishu_codes.BOT_CODES)
        if verdict is not None:
            raise self.verdict_error(verdict)

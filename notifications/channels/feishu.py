"""Feishu/Lark (飞书) custom bot: ``POST https://open.feishu.cn/open-apis/bot/v2/hook/…``.

Sends a ``post`` (rich text) message: the subject as its title, each line of the plain-text digest as
a paragraph (no markup: Feishu shows ``#`` and ``*`` literally), an optional @-mention and the key
line as the last paragraphs. With
``secret_env`` (the bot's 签名校验 secret) the body also carries ``timestamp`` (seconds, as a string)
and ``sign`` = base64(HMAC-SHA256(key="{timestamp}\\n{secret}", msg="")), Feishu's documented scheme
(the string-to-sign is the HMAC key and the message is empty). Feishu rejects a timestamp more than
an hour off.

``address``: an open_id / user_id to @ (``<at user_id="…">``), ``all``, or "" for nobody.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from typing import Any, ClassVar

from notifications.channels._http import RATE_LIMIT_PAUSE, HttpChannel
from notifications.channels.text import compose, key_line
from notifications.message import OutgoingMessage

# Feishu refuses request bodies over 20 KB; keep the text well below.
MAX_TEXT_BYTES = 18_000

_USER_ID = re.compile(r"[A-Za-z0-9_\-]+")

# 9499 "too many request", 11232 "frequency limited".
_RATE_LIMITED = {9499, 11232}


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
        room = MAX_TEXT_BYTES - len(message.subject.encode("utf-8"))
        body = compose("", message.text.strip(), "", max(room, 0))
        paragraphs = [[{"tag": "text", "text": line}] for line in body.splitlines()] + tail
        payload: dict[str, Any] = {}
        secret = self.secret("secret_env")
        if secret is not None:
            ts = int(time.time()) if timestamp is None else timestamp
            payload = {"timestamp": str(ts), "sign": sign(secret, ts)}
        payload.update({"msg_type": "post",
                        "content": {"post": {"zh_cn": {"title": message.subject, "content": paragraphs}}}})
        return payload

    def send(self, message: OutgoingMessage) -> None:
        failure = self.robot_reply(self.post_json(self.payload(message)), "code", "StatusCode")
        if failure is None:
            return
        code, msg = failure
        text = f"Feishu code {code}: {msg}"
        if code in _RATE_LIMITED:
            raise self.failure(text, retry_after=RATE_LIMIT_PAUSE)
        # 19021 (sign), 19022 (IP whitelist), 19024 (keyword) and the rest: fix the config first.
        raise self.failure(text, permanent=True)

"""DingTalk (钉钉) custom group robot: ``POST https://oapi.dingtalk.com/robot/send?access_token=…``.

Sends a markdown message titled with the subject. With ``secret_env`` (the robot's 加签 secret) the
URL also gets ``timestamp`` (ms) and ``sign`` = urlencode(base64(HMAC-SHA256(secret,
"{timestamp}\\n{secret}"))), DingTalk's documented scheme; the server rejects timestamps more than an
hour off, so the host clock must be right.

``address`` says whom to @: an 11-digit mobile number (``atMobiles``), ``all`` (``isAtAll``), another
token (a DingTalk userid, ``atUserIds``) or "" for nobody. DingTalk only highlights an @ whose
``@target`` also appears in the text, so it is added before the key line.

Codes (``dingtalk_codes.ROBOT_CODES``): over 20 messages a minute DingTalk blocks the robot for 10
minutes and answers 660026 (older robots 130101): the message waits those 10 minutes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from typing import Any, ClassVar

from notifications.channels import dingtalk_codes
from notifications.channels._http import HttpChannel
from notifications.channels.base import Body
from notifications.channels.text import compose, fit_json, key_line
from notifications.message import OutgoingMessage

# DingTalk's robot pages give no size; duban keeps the whole request body (JSON counted) within
# the 20 KB Feishu documents for its bots, less a margin.
MAX_BODY_BYTES = 18_000

_MOBILE = re.compile(r"(?:\+?86-?)?(1\d{10})")
_USERID = re.compile(r"[A-Za-z0-9_.\-$]+")


def sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature before URL encoding (httpx percent-encodes it as a query value)."""
    digest = hmac.new(
        secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode("ascii")


class DingTalkChannel(HttpChannel):
    """Settings: ``url`` (with ``access_token``), ``secret_env``, ``timeout`` (default 10 s)."""

    kind: ClassVar[str] = "dingtalk"
    spread: ClassVar[bool] = True
    body: ClassVar[Body] = Body.MARKDOWN

    def check(self) -> list[str]:
        problems = super().check()
        if "access_token=" not in self.url:
            problems.append(self._prefix("'url' has no access_token (copy the whole robot URL)"))
        return problems

    def payload(self, message: OutgoingMessage) -> dict[str, Any]:
        """The JSON body for ``message`` (public so tests and previews can show it)."""
        at: dict[str, Any] = {}
        mention = ""
        address = message.address.strip()
        if address:
            mobile = _MOBILE.fullmatch(address)
            if address.lower() in ("all", "@all"):
                at, mention = {"isAtAll": True}, "@所有人"
            elif mobile:
                at, mention = {"atMobiles": [mobile.group(1)]}, f"@{mobile.group(1)}"
            elif _USERID.fullmatch(address):
                at, mention = {"atUserIds": [address]}, f"@{address}"
            else:
                raise self.failure(
                    f"address {address!r} is not a mobile number, userid or 'all'", permanent=True
                )
        # DingTalk markdown joins single newlines into one paragraph; a blank line keeps each line.
        body = "\n\n".join(line.rstrip() for line in message.text.strip().splitlines())
        tail = "\n\n" + (f"{mention}\n\n" if mention else "") + key_line(message.key)

        def build(room: int) -> dict[str, Any]:
            payload: dict[str, Any] = {
                "msgtype": "markdown",
                "markdown": {"title": message.subject,
                             "text": compose(f"#### {message.subject}\n\n", body, tail, room)},
            }
            if at:
                payload["at"] = at
            return payload

        return dict(fit_json(build, MAX_BODY_BYTES))

    def send(self, message: OutgoingMessage) -> None:
        payload = self.payload(message)
        params = None
        secret = self.secret("secret_env")
        if secret is not None:
            timestamp = int(time.time() * 1000)
            params = {"timestamp": str(timestamp), "sign": sign(secret, timestamp)}
        reply = self.robot_json(self.post_json(payload, params=params))
        verdict = dingtalk_codes.read(reply, dingtalk_codes.ROBOT_CODES)
        if verdict is not None:
            raise self.verdict_error(verdict)

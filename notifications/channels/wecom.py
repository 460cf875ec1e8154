"""WeCom (企业微信) group robot: ``POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…``.

Sends markdown ``**subject**``, the text, an optional ``<@userid>`` mention and the key line. WeCom
refuses markdown content over 4,096 UTF-8 bytes (text content: 2,048), so a long body is cut (at a
character boundary, marked ``……``) while the subject and the key line are kept (``wecom_codes.ROBOT``).

``address``: a WeCom userid to @, ``@all``, or "" for nobody. WeCom documents @all only for text
messages (``mentioned_list: ["@all"]``), not in markdown, so a message to everyone goes as text.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from notifications.channels import wecom_codes
from notifications.channels._http import HttpChannel
from notifications.channels.base import Body
from notifications.channels.text import compose, key_line
from notifications.message import OutgoingMessage

MAX_CONTENT_BYTES = 4096  # markdown.content
MAX_TEXT_BYTES = 2048  # text.content

_USERID = re.compile(r"@?[A-Za-z0-9_.\-@]+")


class WeComChannel(HttpChannel):
    """Settings: ``url`` (with ``key``), ``timeout`` (default 10 s). WeCom robots have no signing."""

    kind: ClassVar[str] = "wecom"
    spread: ClassVar[bool] = True
    body: ClassVar[Body] = Body.MARKDOWN

    def check(self) -> list[str]:
        problems = super().check()
        if "key=" not in self.url:
            problems.append(self._prefix("'url' has no key (copy the whole robot URL)"))
        return problems

    def payload(self, message: OutgoingMessage) -> dict[str, Any]:
        """The JSON body for ``message``."""
        address = message.address.strip()
        if address.lower() in ("all", "@all"):
            content = compose(f"{message.subject}\n", message.text.strip(), f"\n{key_line(message.key)}",
                              MAX_TEXT_BYTES)
            return {"msgtype": "text", "text": {"content": content, "mentioned_list": ["@all"]}}
        mention = ""
        if address:
            if not _USERID.fullmatch(address):
                raise self.failure(f"address {address!r} is not a WeCom userid", permanent=True)
            mention = f"<@{address}>\n"
        content = compose(
            f"**{message.subject}**\n",
            message.text.strip(),
            f"\n{mention}{key_line(message.key)}",
            MAX_CONTENT_BYTES,
        )
        return {"msgtype": "markdown", "markdown": {"content": content}}

    def send(self, message: OutgoingMessage) -> None:
        reply = self.robot_json(self.post_json(self.payload(message)))
        verdict = wecom_codes.read(reply, wecom_codes.ROBOT_CODES)
        if verdict is not None:
            raise self.verdict_error(verdict)

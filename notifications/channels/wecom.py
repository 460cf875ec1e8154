"""WeCom (企业微信) group robot: ``POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…``.

Sends markdown ``**subject**``, the text, an optional ``<@address>`` mention and the key line. WeCom
refuses markdown content over 4096 UTF-8 bytes, so a long body is cut (at a character boundary,
marked ``…（内容过长，已截断）``) while the subject and the key line are kept.

``address``: a WeCom userid to @, ``@all``, or "" for nobody.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from notifications.channels._http import RATE_LIMIT_PAUSE, HttpChannel
from notifications.channels.base import Body
from notifications.channels.text import compose, key_line
from notifications.message import OutgoingMessage

MAX_CONTENT_BYTES = 4096

_USERID = re.compile(r"@?[A-Za-z0-9_.\-@]+")

# 45009 "api freq out of limit" (20 messages a minute per robot); -1 "system busy".
_RATE_LIMITED = {45009}
_BUSY = {-1}


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
        mention = ""
        if address:
            if address.lower() in ("all", "@all"):
                mention = "<@all>\n"
            elif _USERID.fullmatch(address):
                mention = f"<@{address}>\n"
            else:
                raise self.failure(f"address {address!r} is not a WeCom userid", permanent=True)
        content = compose(
            f"**{message.subject}**\n",
            message.text.strip(),
            f"\n{mention}{key_line(message.key)}",
            MAX_CONTENT_BYTES,
        )
        return {"msgtype": "markdown", "markdown": {"content": content}}

    def send(self, message: OutgoingMessage) -> None:
        failure = self.robot_reply(self.post_json(self.payload(message)), "errcode")
        if failure is None:
            return
        code, errmsg = failure
        text = f"WeCom errcode {code}: {errmsg}"
        if code in _RATE_LIMITED:
            raise self.failure(text, retry_after=RATE_LIMIT_PAUSE)
        if code in _BUSY:
            raise self.failure(text)
        # 93000 (invalid key), 40058 (content too long) and the rest need a config or code change.
        raise self.failure(text, permanent=True)

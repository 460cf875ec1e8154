"""Print messages to the terminal: for trying a workflow out before any real channel exists."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any, ClassVar, TextIO

from notifications.channels.base import Channel
from notifications.message import OutgoingMessage


class ConsoleChannel(Channel):
    """Writes one block per message to stdout, stderr (``stream = "stderr"``) or a given stream."""

    kind: ClassVar[str] = "console"
    keys: ClassVar[frozenset[str]] = frozenset({"stream"})

    def __init__(
        self,
        name: str,
        settings: Mapping[str, Any],
        env: Mapping[str, str] = os.environ,
        *,
        stream: TextIO | None = None,
    ):
        super().__init__(name, settings, env)
        self._which = self.setting_str("stream", "stdout")
        if self._which not in ("stdout", "stderr"):
            raise self.config_error("'stream' must be \"stdout\" or \"stderr\"")
        self._stream = stream

    def send(self, message: OutgoingMessage) -> None:
        # Looked up per send, not at build time, so a replaced sys.stdout (pytest, the CLI) is used.
        stream = self._stream or getattr(sys, self._which)
        to = f"{message.recipient} <{message.address}>" if message.address else message.recipient
        stream.write(
            f"=== {message.subject}\n"
            f"收件人：{to}    编号：{message.key}\n"
            f"{message.text.rstrip()}\n\n"
        )
        stream.flush()

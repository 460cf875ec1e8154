"""Append each message as one JSON line: an audit trail, or a hand-off to another system."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from notifications.channels.base import Channel
from notifications.message import OutgoingMessage, dumps


class FileChannel(Channel):
    """Appends ``{"key", "recipient", "address", "subject", "text", "data", "sent_at"}`` lines."""

    kind: ClassVar[str] = "file"
    keys: ClassVar[frozenset[str]] = frozenset({"path"})

    def __init__(self, name: str, settings: Mapping[str, Any], env: Mapping[str, str] = os.environ):
        super().__init__(name, settings, env)
        self.path = Path(self.setting_str("path")).expanduser()

    def send(self, message: OutgoingMessage) -> None:
        record = {
            "key": message.key,
            "recipient": message.recipient,
            "address": message.address,
            "subject": message.subject,
            "text": message.text,
            "data": message.data,
            "sent_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        try:
            line = dumps(record) + "\n"
        except (TypeError, ValueError) as exc:
            raise self.failure(f"message {message.key!r} is not JSON: {exc}", permanent=True) from exc
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Opened per message in append mode: one write() per line keeps lines whole even when
            # two processes share the file, and a log rotator can move the file at any time.
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)
        except (PermissionError, IsADirectoryError, NotADirectoryError) as exc:
            raise self.failure(f"cannot write {self.path}: {exc}", permanent=True) from exc
        except OSError as exc:  # a full disk or a flaky network share may recover
            raise self.failure(f"cannot write {self.path}: {exc}") from exc

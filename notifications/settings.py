"""The ``[notifications]``, ``[channels.*]`` and ``[recipients.*]`` parts of config.toml, checked."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine.config import Config
from engine.errors import ConfigError
from notifications.channels.base import Channel, build_channel, platform_of
from notifications.quiet import parse_hours


class NotifySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    language: str = Field(default="zh-CN", pattern=r"^(zh-CN|en)$")
    working_hours: str = "08:30-18:00"
    # Sends that fall due at the same instant (09:00) are spread over this many seconds, because
    # robot platforms reject bursts (Feishu on the hour and half-hour).
    jitter_seconds: float = Field(default=90, ge=0)
    max_attempts: int = Field(default=8, ge=1)
    backoff_base_seconds: float = Field(default=60, gt=0)
    backoff_max_seconds: float = Field(default=3600, gt=0)
    routing_paths: list[str] | None = None  # None: the routing/ folder beside the workflows
    templates: str | None = None  # folder of template overrides, relative to config.toml
    rate_limits: dict[str, str] = Field(default_factory=dict)  # channel name -> "20/minute"
    # Finished outbox messages older than this are deleted by the leader (0 keeps them for ever);
    # the reminders they carried, and the history, are kept.
    keep_days: int = Field(default=180, ge=0)

    @field_validator("working_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        parse_hours(value)  # raises ValueError with a message pydantic reports
        return value


@dataclass(frozen=True)
class Notify:
    """Everything the pipeline needs from the configuration."""

    settings: NotifySettings
    channel_settings: dict[str, dict[str, Any]]
    recipients: dict[str, dict[str, str]]  # role -> {channel name: address}
    base_dir: Path
    routing_dirs: list[Path]

    @property
    def template_dir(self) -> Path | None:
        return (self.base_dir / self.settings.templates).resolve() if self.settings.templates else None

    def working_hours(self) -> tuple[dt.time, dt.time]:
        return parse_hours(self.settings.working_hours)

    def build_channels(self, env: Mapping[str, str] = os.environ) -> dict[str, Channel]:
        out = {}
        for name, table in self.channel_settings.items():
            try:
                out[name] = build_channel(name, table, env)
            except ValueError as exc:
                raise ConfigError(f"[channels.{name}]: {exc}") from None
        return out

    def addresses(self, recipient: str, email: str = "", im: Mapping[str, str] | None = None) -> dict[str, str]:
        """Where ``recipient`` can be reached: channel name -> address, configured channels only.

        ``[recipients."NAME"]`` first; then the person's account: its e-mail for every ``email``
        channel, its IM ids (by platform: wecom, dingtalk, feishu) for that platform's app channel
        (``wecom_app``…). Robots post to a group, so no personal id goes to them."""
        table = self.recipients.get(recipient, {})
        out = {ch: addr for ch, addr in table.items() if ch in self.channel_settings}
        for ch, settings in self.channel_settings.items():
            if ch in out:
                continue
            kind = str(settings.get("kind", ""))
            platform = platform_of(kind)
            if kind == "email" and email:
                out[ch] = email
            elif platform is not None and (im or {}).get(platform):
                out[ch] = str((im or {})[platform])
        return out


def load_notify(config: Config) -> Notify:
    try:
        settings = NotifySettings.model_validate(config.notifications)
    except ValidationError as exc:
        lines = [f"{config.source or 'config'}: notifications.{'.'.join(map(str, e['loc']))}: {e['msg']}"
                 for e in exc.errors()]
        raise ConfigError(f"{config.source or 'config'}: invalid [notifications]", details=lines) from None
    problems = []
    for role, table in config.recipients.items():
        for channel, address in table.items():
            if not isinstance(address, str):
                problems.append(f"[recipients.\"{role}\"] {channel}: the address must be text")
            elif channel not in config.channels:
                problems.append(f"[recipients.\"{role}\"] {channel}: there is no [channels.{channel}]")
    for name, table in config.channels.items():
        if "kind" not in table:
            problems.append(f"[channels.{name}]: missing 'kind' (email, webhook, dingtalk, wecom, feishu, "
                            "wecom_app, dingtalk_app, feishu_app, console or file)")
    if problems:
        raise ConfigError(f"{config.source or 'config'}: invalid notification settings", details=problems)
    return Notify(settings, {k: dict(v) for k, v in config.channels.items()},
                  {k: dict(v) for k, v in config.recipients.items()}, config.base_dir,
                  config.routing_dirs(settings.routing_paths))

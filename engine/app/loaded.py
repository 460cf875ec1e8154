"""What ``duban run`` runs on: ``[daemon]`` settings, and every file read and checked together.

``load_all`` reads config.toml's ``[daemon]`` table, the workflows, duties, routing, channels and
templates, and returns them as one ``Loaded``; it raises ``DubanError`` naming the bad file. The
daemon (``engine.app.daemon``) runs on one ``Loaded`` and swaps it whole on a good SIGHUP, so a bad
file never leaves it half reloaded.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.orm import Session, sessionmaker

from notifications.service import Notifier

from ..config import Config
from ..duties.definitions import LoadedDuty
from ..errors import ConfigError
from ..runtime import Runtime
from ..workflow.loader import LoadedWorkflow
from .checks import check_rendering
from .http.server import parse_listen
from .notifying import build_notifier


class DaemonSettings(BaseModel):
    """``[daemon]`` in config.toml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sweep_every: float = Field(default=60, gt=0)  # seconds between sweeps (leader)
    deliver_every: float = Field(default=10, gt=0)  # seconds between outbox runs (every daemon)
    delivery_batch: int = Field(default=50, ge=1)  # messages claimed at once
    delivery_in_flight: int = Field(default=8, ge=1)  # sends on their way at once per channel
    lease_seconds: float | None = Field(default=None, gt=0)  # outbox claim lease; None: the outbox's own
    leader_retry_seconds: float = Field(default=5, gt=0)  # how often followers try to take over
    listen: str = "127.0.0.1:8790"  # /healthz and /metrics; "" turns HTTP off
    log_format: Literal["kv", "json"] = "kv"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    stop_timeout: float = Field(default=8, gt=0)  # SIGTERM: seconds in-flight work may take
    startup_wait: float = Field(default=60, ge=0)  # seconds to wait for an unreachable database

    @field_validator("listen")
    @classmethod
    def _address(cls, value: str) -> str:
        if value.strip():
            parse_listen(value)
        return value.strip()


def load_daemon_settings(config: Config) -> DaemonSettings:
    try:
        return DaemonSettings.model_validate(config.daemon)
    except ValidationError as exc:
        lines = [f"{config.source or 'config'}: daemon.{'.'.join(map(str, e['loc']))}: {e['msg']}"
                 for e in exc.errors()]
        raise ConfigError(f"{config.source or 'config'}: invalid [daemon]", details=lines) from None


@dataclass(frozen=True)
class Loaded:
    """Everything read from files, validated together; swapped whole on a good SIGHUP."""

    config: Config
    settings: DaemonSettings
    runtime: Runtime
    notifier: Notifier
    workflows: list[LoadedWorkflow]
    duties: list[LoadedDuty]


def load_all(config: Config, sessions: sessionmaker[Session]) -> Loaded:
    """Read and check every file the daemon runs on; raises DubanError naming the bad one."""
    settings = load_daemon_settings(config)
    runtime = Runtime(config)
    runtime.calendar  # noqa: B018 - checks [calendar] extra dates now rather than at the first sweep
    workflows = list(runtime.registry.files().values())
    duties = runtime.duty_definitions()
    notifier = build_notifier(runtime, sessions)
    outbox = notifier.outbox  # builds settings, channels, templates, routes and pipeline: all checked
    check_rendering(notifier.renderer, workflows)  # and renders every template with sample data
    if settings.lease_seconds is not None:
        outbox.policy = replace(outbox.policy, lease=settings.lease_seconds)
    return Loaded(config, settings, runtime, notifier, workflows, duties)


"""``[daemon]``: how ``duban run`` paces its work, where it answers, how it logs and stops."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


def parse_listen(text: str) -> tuple[str, int]:
    """``"127.0.0.1:8790"`` or ``"[::1]:8790"`` -> (host, port)."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not host or not 0 <= int(port) <= 65535:
        raise ValueError(f"listen must be HOST:PORT such as 127.0.0.1:8790, got {text!r}")
    return host.strip("[]"), int(port)


class DaemonConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sweep_every: float = Field(default=60, gt=0)  # seconds between sweeps (leader)
    deliver_every: float = Field(default=10, gt=0)  # seconds between outbox runs (every daemon)
    delivery_batch: int = Field(default=50, ge=1)  # messages leased at once
    delivery_in_flight: int = Field(default=8, ge=1)  # sends on their way at once per channel
    lease_seconds: float | None = Field(default=None, gt=0)  # outbox lease; None: the outbox's own
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

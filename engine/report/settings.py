"""``[report]`` settings: the wording, parts and state mapping of the rectification report.

``settings_for`` applies a ledger's ``[report.ledgers.NAME]`` overrides on top of ``[report]``.
How the states are counted is ``engine.issues.classes``.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..config import Config
from ..config.report import PARTY_BODIES, ReportSettings
from ..errors import ConfigError

__all__ = ["PARTY_BODIES", "ReportSettings", "settings_for"]


def settings_for(config: Config, ledger_name: str | None, workflow: dict[str, Any] | None = None) -> ReportSettings:
    """The report settings: the shipped defaults, the workflow's ``report:``, ``[report]``, then the
    ledger's own ``[report.ledgers.NAME]``."""
    data = config.report.model_dump(exclude_unset=True, exclude={"ledgers"})  # what [report] itself says
    per = config.report.ledgers.get(ledger_name or "", {})
    try:
        return ReportSettings.model_validate({**(workflow or {}), **data, **per})
    except ValidationError as exc:
        lines = [f"[report] {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(f"{config.source or 'config'}: invalid [report] settings", details=lines) from None


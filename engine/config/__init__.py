"""config.toml, read once into a frozen, validated model: one typed section per table.

Every section is a model here (``sections``, ``board``, ``daemon``, ``report``, ``sso``) except those the
notifications layer checks itself (``[notifications]``, ``[channels.*]``, ``[recipients.*]``:
``notifications.settings``). Where the file is: ``--config PATH``, else ``$DUBAN_CONFIG``, else ``./config.toml`` if present, else
built-in defaults. ``$DUBAN_DATABASE_URL`` overrides ``[database] url``. Secrets never live in this
file: settings that need one name the environment variable that holds it (``password_env``).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from .. import shipped
from ..calendar import OFFICIAL, ChineseCalendarData, WorkCalendar
from ..errors import ConfigError
from .board import BoardConfig
from .daemon import DaemonConfig, parse_listen
from .report import PARTY_BODIES, ReportSettings
from .sections import CalendarConfig, DatabaseConfig, DutiesConfig, EvidenceConfig, WorkflowsConfig, WorkspaceConfig
from .sso import SsoConfig

__all__ = ["PARTY_BODIES", "PROJECT_ROOT", "BoardConfig", "CalendarConfig", "Config", "DaemonConfig", "DatabaseConfig",
           "DutiesConfig", "EvidenceConfig", "ReportSettings", "SsoConfig", "WorkflowsConfig", "WorkspaceConfig",
           "find_config_file", "load_config", "parse_listen"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Config(BaseModel):
    """The whole configuration. Unknown top-level sections are errors, so a typo is not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    database: DatabaseConfig = DatabaseConfig()
    calendar: CalendarConfig = CalendarConfig()
    workflows: WorkflowsConfig = WorkflowsConfig()
    duties: DutiesConfig = DutiesConfig()
    evidence: EvidenceConfig = EvidenceConfig()
    workspace: WorkspaceConfig = WorkspaceConfig()
    daemon: DaemonConfig = DaemonConfig()
    report: ReportSettings = ReportSettings()
    board: BoardConfig = BoardConfig()
    sso: SsoConfig | None = None  # single sign-on, when configured
    # The notifications layer validates these itself (notifications.settings): its models name the
    # channel kinds, which the engine does not know.
    notifications: dict[str, Any] = Field(default_factory=dict)
    channels: dict[str, dict[str, Any]] = Field(default_factory=dict)
    recipients: dict[str, dict[str, Any]] = Field(default_factory=dict)

    source: Path | None = None

    @property
    def base_dir(self) -> Path:
        """Relative paths in the file are relative to the file, so the service finds them anywhere."""
        return self.source.parent if self.source else PROJECT_ROOT

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.calendar.timezone)

    def evidence_dir(self) -> Path:
        return (self.base_dir / self.evidence.folder).resolve()

    def workflow_dirs(self) -> list[Path]:
        return [(self.base_dir / p).resolve() for p in self.workflows.paths]

    def duty_dirs(self) -> list[Path]:
        if self.duties.paths is None:
            return [self.workflow_dirs()[0] / "duties"] if self.workflows.paths else [shipped.duties_dir()]
        return [(self.base_dir / p).resolve() for p in self.duties.paths]

    def routing_dirs(self, paths: list[str] | None) -> list[Path]:
        """``[notifications] routing_paths``; None: the routing/ folder of the first workflows path."""
        if paths is None:
            return [self.workflow_dirs()[0] / "routing"] if self.workflows.paths else [shipped.routing_dir()]
        return [(self.base_dir / p).resolve() for p in paths]

    def work_calendar(self) -> WorkCalendar:
        """The working-day calendar this configuration describes."""
        try:
            until = self.calendar.official_until
            return WorkCalendar(self.tz, self.calendar.extra_holidays, self.calendar.extra_workdays,
                                official=OFFICIAL if until is None else ChineseCalendarData(until))
        except ValueError as exc:
            raise ConfigError(f"{self.source or 'config'}: {exc}") from None


def find_config_file(explicit: str | os.PathLike[str] | None) -> Path | None:
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        return path.resolve()
    env = os.environ.get("DUBAN_CONFIG")
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found (from DUBAN_CONFIG)")
        return path.resolve()
    local = Path("config.toml")
    return local.resolve() if local.is_file() else None


def _anchor_sqlite_path(data: dict[str, Any], base: Path) -> None:
    """A relative SQLite file written in config.toml is relative to the file, as its folders are:
    ``duban --config /srv/duban/config.toml status`` run from elsewhere once found no schema (and
    left an empty database file where it stood). ``DUBAN_DATABASE_URL`` stays the shell's own."""
    section = data.get("database")
    if not isinstance(section, dict) or not isinstance(url := section.get("url"), str):
        return
    try:
        parsed = make_url(url)
    except ArgumentError:
        return  # the model's own check names the key
    name = parsed.database
    if (parsed.get_backend_name() == "sqlite" and name and name != ":memory:" and not name.startswith("file:")
            and not Path(name).is_absolute()):
        section["url"] = parsed.set(database=str((base / name).resolve())).render_as_string(hide_password=False)


def load_config(explicit: str | os.PathLike[str] | None = None) -> Config:
    """Read, validate and apply environment overrides. Errors name the file and the key."""
    path = find_config_file(explicit)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    if path is not None:
        _anchor_sqlite_path(data, path.parent)
    db_url = os.environ.get("DUBAN_DATABASE_URL")
    if db_url:
        data.setdefault("database", {})["url"] = db_url
    try:
        return Config.model_validate({**data, "source": path})
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            lines.append(f"{path or 'config'}: {key}: {err['msg']}")
        raise ConfigError(f"{path or 'config'}: invalid configuration", details=lines) from None

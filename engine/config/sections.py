"""The sections of config.toml the engine reads: database, calendar, workflows, duties, evidence, workspace."""

from __future__ import annotations

import ipaddress
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .. import shipped


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(_Section):
    url: str = "sqlite:///duban.db"
    echo: bool = False


class CalendarConfig(_Section):
    timezone: str = "Asia/Shanghai"
    extra_holidays: list[str] = Field(default_factory=list)
    extra_workdays: list[str] = Field(default_factory=list)
    # The last year the installed chinesecalendar may answer for; later years follow the law and
    # the lists above (an admin who distrusts a release; tests that mean a year to be unpublished).
    official_until: int | None = Field(default=None, ge=2004, le=2099)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Asia/Shanghai)") from None
        return value


class WorkflowsConfig(_Section):
    paths: list[str] = Field(default_factory=lambda: [str(shipped.workflows_dir())])
    default: str = "inspection-rectification"
    admins: list[str] = Field(default_factory=lambda: ["admin"])


class DutiesConfig(_Section):
    # None: the duties/ folder of the first workflows path (the shipped one unless [workflows] says)
    paths: list[str] | None = None
    # Occurrences are stored this far ahead, so `duty list` and reminders see them in advance.
    horizon_days: int = Field(default=400, ge=31)


class EvidenceConfig(_Section):
    # Files up to this size are kept in the database (one backup covers them); larger ones are copied
    # into ``folder`` under their SHA-256 (engine.issues.evidence).
    inline_max_bytes: int = Field(default=5 * 1024 * 1024, ge=0)
    max_bytes: int = Field(default=100 * 1024 * 1024, ge=1)  # larger evidence files are refused
    folder: str = "evidence-files"  # relative to the config file; back it up with the database
    quota_bytes: int = Field(default=2 * 1024**3, ge=1)  # what one user may add in all, inline or not
    # Below this much free space on the folder's disk every upload is refused (507), and /healthz
    # says "degraded": a full disk must not also stop the database and the logs.
    min_free_bytes: int = Field(default=512 * 1024**2, ge=0)


class WorkspaceConfig(_Section):
    # Reverse proxies in front of duban (their addresses): a request from one is counted, for
    # sign-in throttling, against the address its X-Forwarded-For says it forwarded. Without this,
    # behind a proxy every visitor shares the proxy's address.
    trusted_proxies: tuple[str, ...] = ()

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for address in value:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f"not an IP address: {address!r}") from None
        return value

    # A ledger import makes an account (no password) for each 责任领导 and 责任科室 it names, so
    # their reminders can carry a link to their items; false: only accounts an admin adds.
    auto_accounts: bool = True
    link_days: int = Field(default=14, ge=1, le=366)  # how long a reminder's signed link opens
    session_hours: int = Field(default=12, ge=1, le=24 * 90)  # a login lasts this long
    # The unit (被巡察单位) of a ledger imported without --unit and without a 单位 column: set it in a
    # one-unit installation so its accounts are that unit's. "" keeps such ledgers district-wide.
    unit: str = Field(default="", max_length=200)
    # Four eyes: whoever submitted a round may not sign it off or return it. True exempts
    # administrators (a one-person installation); by default they are bound like everyone else.
    admins_sign_own: bool = False

"""``[board]``: the status board and workspace as people reach them."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, HttpUrl


def _unset_if_empty(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


class BoardConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # The board answers loopback requests freely; anyone else needs the token this variable holds.
    token_env: str = "DUBAN_BOARD_TOKEN"
    # The address people reach duban at: the links in reminders, the ICS feed and `duban user link`.
    # An https:// address also makes the session cookie Secure and every response carry HSTS.
    public_url: Annotated[HttpUrl | None, BeforeValidator(_unset_if_empty)] = None
    templates: str | None = None  # a folder of page templates replacing the shipped ones, relative to config.toml

    @property
    def base_url(self) -> str:
        """``public_url`` without a trailing slash, for appending paths to; "" when it is not set."""
        return str(self.public_url).rstrip("/") if self.public_url is not None else ""

    @property
    def https(self) -> bool:
        return self.public_url is not None and self.public_url.scheme == "https"

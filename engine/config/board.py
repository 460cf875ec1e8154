"""``[board]``: the status board and workspace as people reach them."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, HttpUrl, ModelWrapValidatorHandler, PrivateAttr, model_validator


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
    # public_url as the admin wrote it: HttpUrl spells a Chinese domain in punycode (督办.政务.cn ->
    # xn--…), and the links people read in their reminders keep the name they know
    _written: str = PrivateAttr(default="")

    @model_validator(mode="wrap")
    @classmethod
    def _keep_spelling(cls, data: Any, handler: ModelWrapValidatorHandler[BoardConfig]) -> BoardConfig:
        model = handler(data)
        written = data.get("public_url") if isinstance(data, dict) else None
        if model.public_url is not None and isinstance(written, str):
            model._written = written.strip()
        return model

    @property
    def base_url(self) -> str:
        """``public_url`` without a trailing slash, for appending paths to; "" when it is not set."""
        if self.public_url is None:
            return ""
        return (self._written or str(self.public_url)).rstrip("/")

    @property
    def https(self) -> bool:
        return self.public_url is not None and self.public_url.scheme == "https"

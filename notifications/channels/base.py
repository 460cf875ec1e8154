"""What every transport promises, and how one is built from a ``[channels.NAME]`` table.

A channel validates its settings when it is built (a bad table is a ``ValueError`` naming the channel
and the key), reads secrets only from environment variables named in the settings (``*_env``), and
reports each failed send as a ``DeliveryError`` that says whether trying again can help.
"""

from __future__ import annotations

import importlib
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from enum import StrEnum
from types import TracebackType
from typing import Any, ClassVar

from notifications.channels.receipt import Receipt
from notifications.message import OutgoingMessage

# kind -> "module:Class"; imported on demand so a console-only setup never imports httpx.
_KINDS: dict[str, str] = {
    "console": "console:ConsoleChannel",
    "file": "file:FileChannel",
    "email": "smtp:EmailChannel",
    "webhook": "webhook:WebhookChannel",
    "dingtalk": "dingtalk:DingTalkChannel",
    "wecom": "wecom:WeComChannel",
    "feishu": "feishu:FeishuChannel",
    "wecom_app": "wecom_app:WeComAppChannel",
    "dingtalk_app": "dingtalk_app:DingTalkAppChannel",
    "feishu_app": "feishu_app:FeishuAppChannel",
}

# Settings that would put a secret into config.toml (which gets copied, committed and mailed): any
# key one of whose words names a secret, unless it ends in _env (it then names a variable).
_SECRET_WORDS = frozenset({"password", "passwd", "pwd", "secret", "token", "key", "apikey", "credential",
                           "credentials", "username", "user", "auth"})
_WORDS = re.compile(r"[^a-z0-9]+")

_MISSING: Any = object()


class DeliveryError(Exception):
    """A send failed.

    ``permanent`` means the same message will fail the same way (bad address, refused auth, a 4xx);
    otherwise the outbox should try again, not before ``retry_after`` seconds when that is given.
    ``rate_limited`` says the platform refused only for now, and ``retry_after`` is exactly when its
    window opens: the outbox waits that long instead of its (longer) backoff.
    """

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None,
                 rate_limited: bool = False):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after
        self.rate_limited = rate_limited

    def __repr__(self) -> str:
        return (
            f"DeliveryError({self.message!r}, permanent={self.permanent}, "
            f"retry_after={self.retry_after})"
        )


class Body(StrEnum):
    """The body a channel sends; the renderer makes it, the channel adds the subject its own way."""

    TEXT = "text"  # plain text: console, file, webhook, Feishu (as `post` rich text), email (+ HTML)
    MARKDOWN = "markdown"  # the robots' markdown: DingTalk, WeCom


class Channel(ABC):
    """One configured transport. Build it with ``build_channel``; call ``close`` when done.

    ``body`` says which rendering of a digest the channel sends (``OutgoingMessage.text``);
    ``html`` that it also sends the HTML one (``OutgoingMessage.html``). The subject travels apart
    (``OutgoingMessage.subject``) and no body repeats it: each channel shows it once.
    """

    kind: ClassVar[str]
    # The settings the kind reads besides ``kind``; any other key is a mistake worth naming.
    keys: ClassVar[frozenset[str]] = frozenset()
    body: ClassVar[Body] = Body.TEXT
    html: ClassVar[bool] = False
    # Sends due at one instant are spread over [notifications] jitter_seconds: the group robots
    # reject bursts (Feishu on the hour and half-hour).
    spread: ClassVar[bool] = False
    # The address reaches one person (an e-mail box, an app's work notice), so a message may carry
    # that person's signed workspace link (/w/…). A group robot, a webhook, the console or a file is
    # read by others, who would all act with the person's rights: they get pages behind the login.
    personal: ClassVar[bool] = False
    # What the platform allows per addressee, kept on duban's side because the platform drops the
    # excess while answering success: (count, seconds, offset of the window's start from UTC).
    recipient_windows: ClassVar[tuple[tuple[int, float, float], ...]] = ()
    # The organisation platform whose people ids the channel addresses (an account's ``im`` key:
    # wecom, dingtalk, feishu) and whose card it shows (``message.AppCard``); None for the others.
    platform: ClassVar[str | None] = None

    @classmethod
    def reaches_one(cls, address: str) -> bool:
        """Whether a message to ``address`` is read by one person only (see ``personal``)."""
        return cls.personal

    def __init__(self, name: str, settings: Mapping[str, Any], env: Mapping[str, str] = os.environ):
        self.name = name
        self.settings: dict[str, Any] = dict(settings)
        self.env = env
        declared = self.settings.get("kind", self.kind)
        if declared != self.kind:
            raise self.config_error(f"kind is {declared!r}, not {self.kind!r}")
        for key, value in self.settings.items():
            if key.endswith("_env"):
                continue
            words = set(_WORDS.split(key.lower())) | {key.lower().replace("_", "").replace("-", "")}
            if words & _SECRET_WORDS:
                raise self.config_error(
                    f"do not put {key!r} in the config; put it in an environment variable "
                    f"and name that variable in '{key}_env'"
                )
            if isinstance(value, str) and "://" in value and "@" in value.split("://", 1)[1].split("/", 1)[0]:
                raise self.config_error(f"{key!r} carries credentials (user:password@); give them through "
                                        "the channel's *_env settings instead")
        unknown = sorted(k for k in self.settings if k != "kind" and k not in self.keys)
        if unknown:
            known = ", ".join(sorted(self.keys)) or "none"
            raise self.config_error(f"unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                                    f"(a {self.kind} channel knows: {known})")
        for key, value in self.settings.items():
            if key.endswith("_env") and not (isinstance(value, str) and value.strip()):
                raise self.config_error(f"{key!r} must name an environment variable")

    @abstractmethod
    def send(self, message: OutgoingMessage) -> Receipt | None:
        """Deliver one message or raise ``DeliveryError``; a ``Receipt`` when some addressees were
        (or may have been) missed."""

    def follow_up(self, task: str) -> Receipt | None:
        """What the platform now says about an accepted message (``Receipt.task``); None: not yet."""
        return None

    def recipients(self, address: str) -> tuple[str, ...]:
        """The people ``address`` names, for the per-addressee limits (``recipient_windows``)."""
        return ()

    def close(self) -> None:  # noqa: B027 - optional: most channels hold nothing to release
        """Release connections; the channel may be used again afterwards (it reconnects)."""

    def check(self) -> list[str]:
        """Configuration problems that would make every send fail, found without sending."""
        problems = []
        for key, var in self.settings.items():
            if key.endswith("_env") and not self.env.get(var):
                problems.append(self._prefix(f"environment variable {var!r} ({key}) is not set"))
        return problems

    def __enter__(self) -> Channel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        # Never the settings: webhook URLs carry access tokens.
        return f"<{type(self).__name__} {self.name!r}>"

    # -- helpers for subclasses -------------------------------------------------------------

    def _prefix(self, text: str) -> str:
        return f"channel {self.name!r}: {text}"

    def config_error(self, text: str) -> ValueError:
        return ValueError(self._prefix(text))

    def failure(
        self, text: str, *, permanent: bool = False, retry_after: float | None = None, rate_limited: bool = False
    ) -> DeliveryError:
        return DeliveryError(self._prefix(text), permanent=permanent, retry_after=retry_after,
                             rate_limited=rate_limited)

    def setting_str(self, key: str, default: Any = _MISSING) -> Any:
        value = self.settings.get(key, _MISSING)
        if value is _MISSING or value is None or value == "":
            if default is _MISSING:
                raise self.config_error(f"missing {key!r}")
            return default
        if not isinstance(value, str):
            raise self.config_error(f"{key!r} must be a string")
        return value

    def setting_bool(self, key: str, default: bool) -> bool:
        value = self.settings.get(key, default)
        # TOML gives real booleans; a quoted "false" would be truthy and silently flip the meaning.
        if not isinstance(value, bool):
            raise self.config_error(f"{key!r} must be true or false")
        return value

    def setting_number(self, key: str, default: float, *, integer: bool = False) -> Any:
        value = self.settings.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise self.config_error(f"{key!r} must be a positive number")
        if integer:
            if value != int(value):
                raise self.config_error(f"{key!r} must be a whole number")
            return int(value)
        return float(value)

    def secret(self, key: str) -> str | None:
        """The value of the environment variable named by setting ``key`` (None if not configured).

        Raises a permanent ``DeliveryError`` when the setting names a variable that is unset: the
        send cannot work until someone fixes the environment, and ``check`` reports the same.
        """
        var = self.settings.get(key)
        if var is None:
            return None
        value = self.env.get(var)
        if not value:
            raise self.failure(f"environment variable {var!r} ({key}) is not set", permanent=True)
        return value


def channel_class(kind: str) -> type[Channel]:
    """The class of a channel kind (raises ValueError for an unknown one)."""
    if kind not in _KINDS:
        raise ValueError(f"unknown kind {kind!r} (one of {', '.join(sorted(_KINDS))})")
    module_name, class_name = _KINDS[kind].split(":")
    module = importlib.import_module(f"{__package__}.{module_name}")
    found: type[Channel] = getattr(module, class_name)
    return found


def platform_of(kind: str) -> str | None:
    """The platform a channel kind addresses people on (``Channel.platform``); None for a kind that
    has none, or that is unknown (the configuration check names that one)."""
    return channel_class(kind).platform if kind in _KINDS else None


def build_channel(
    name: str, settings: Mapping[str, Any], env: Mapping[str, str] = os.environ
) -> Channel:
    """Build the channel described by one ``[channels.NAME]`` table (dispatch on ``kind``)."""
    if not isinstance(settings, Mapping):
        raise ValueError(f"channel {name!r}: settings must be a table")
    kind = settings.get("kind")
    known = ", ".join(sorted(_KINDS))
    if not kind:
        raise ValueError(f"channel {name!r}: missing 'kind' (one of {known})")
    if kind not in _KINDS:
        raise ValueError(f"channel {name!r}: unknown kind {kind!r} (one of {known})")
    return channel_class(kind)(name, settings, env)

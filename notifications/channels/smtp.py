"""Email over SMTP (kind ``email``).

Settings: ``host`` (required), ``sender`` (required, ``x@y`` or ``督办系统 <x@y>``), ``port``
(default 465 with ``ssl``, 587 with ``starttls``, else 25), ``ssl`` / ``starttls`` (booleans, at most
one), ``username_env`` + ``password_env`` (names of environment variables holding the login),
``timeout`` (seconds, default 30), ``ca_file`` (a CA bundle for an intranet server's own CA) and
``helo`` (the name to greet with; default the host's FQDN, which can be slow to look up).

The Message-ID is ``<KEY@duban>`` with the key made safe for a header, so a re-sent reminder has the
same Message-ID and mail clients and archives can fold the duplicate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import smtplib
import ssl
import threading
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from typing import Any, ClassVar

from notifications.channels.base import Channel, DeliveryError
from notifications.message import OutgoingMessage

_ID_SAFE = re.compile(r"[A-Za-z0-9_\-]")
_MAX_ID_LEFT = 100


def message_id(key: str) -> str:
    """``<left@duban>`` for ``key``: same key, same id; different keys, different ids.

    Characters outside ``[A-Za-z0-9_-]`` become ``=XX`` per UTF-8 byte (reversible, so two keys
    cannot collide); an overlong result is replaced by its SHA-256 so the header stays one line.
    """
    left = "".join(
        ch if _ID_SAFE.fullmatch(ch) else "".join(f"={b:02X}" for b in ch.encode("utf-8"))
        for ch in key
    )
    if len(left) > _MAX_ID_LEFT:
        left = "sha256-" + hashlib.sha256(key.encode("utf-8")).hexdigest()
    return f"<{left}@duban>"


def _mailbox(value: str) -> str | None:
    """The bare ``x@y`` in ``value`` if it is one well-formed mailbox, else None."""
    if "\r" in value or "\n" in value:
        return None
    # One channel message is one recipient: "a@x, b@y" would silently widen the audience.
    found = getaddresses([value])
    if len(found) != 1:
        return None
    addr = found[0][1]
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in addr):
        return None
    return addr


class EmailChannel(Channel):
    """Sends each message as a MIME email; one SMTP connection is reused across sends."""

    kind: ClassVar[str] = "email"
    personal: ClassVar[bool] = True
    keys: ClassVar[frozenset[str]] = frozenset({"host", "port", "sender", "starttls", "ssl", "username_env",
                                                "password_env", "ca_file", "helo", "timeout"})
    html: ClassVar[bool] = True

    def __init__(self, name: str, settings: Mapping[str, Any], env: Mapping[str, str] = os.environ):
        super().__init__(name, settings, env)
        self.host: str = self.setting_str("host")
        self.sender: str = self.setting_str("sender")
        envelope_from = _mailbox(self.sender)
        if envelope_from is None:
            raise self.config_error(f"'sender' {self.sender!r} is not an email address")
        self.envelope_from = envelope_from
        self.ssl = self.setting_bool("ssl", False)
        self.starttls = self.setting_bool("starttls", False)
        if self.ssl and self.starttls:
            raise self.config_error("set either 'ssl' (port 465) or 'starttls' (port 587), not both")
        default_port = 465 if self.ssl else 587 if self.starttls else 25
        self.port: int = self.setting_number("port", default_port, integer=True)
        self.timeout: float = self.setting_number("timeout", 30.0)
        self.ca_file: str | None = self.setting_str("ca_file", None)
        self.helo: str | None = self.setting_str("helo", None)
        if ("username_env" in self.settings) != ("password_env" in self.settings):
            raise self.config_error("set both 'username_env' and 'password_env', or neither")
        self._smtp: smtplib.SMTP | None = None
        # smtplib connections are not thread-safe; the lock makes one channel safe to share.
        self._lock = threading.Lock()

    # -- configuration ------------------------------------------------------------------------

    def check(self) -> list[str]:
        problems = super().check()
        if self.ca_file and not os.path.isfile(self.ca_file):
            problems.append(self._prefix(f"ca_file {self.ca_file!r} does not exist"))
        local = self.host in ("localhost", "127.0.0.1", "::1")
        if "password_env" in self.settings and not (self.ssl or self.starttls or local):
            problems.append(
                self._prefix("the password would cross the network in clear; set 'starttls' or 'ssl'")
            )
        return problems

    # -- composing ----------------------------------------------------------------------------

    def compose(self, message: OutgoingMessage) -> tuple[EmailMessage, str]:
        """The MIME message and the envelope recipient for ``message``."""
        rcpt = _mailbox(message.address)
        if rcpt is None:
            raise self.failure(
                f"address {message.address!r} of {message.recipient} is not an email address",
                permanent=True,
            )
        mail = EmailMessage()  # policy.default: RFC 2047-encodes the Chinese subject and names
        # A stray newline from a template would make the header invalid; a subject is one line.
        mail["Subject"] = " ".join(message.subject.split())
        mail["From"] = self.sender
        mail["To"] = message.address
        mail["Date"] = format_datetime(dt.datetime.now(dt.UTC))
        mail["Message-ID"] = message_id(message.key)
        # base64 keeps the body 7-bit, so servers without 8BITMIME take it unchanged.
        mail.set_content(message.text, charset="utf-8", cte="base64")
        if message.html is not None:
            mail.add_alternative(message.html, subtype="html", charset="utf-8", cte="base64")
        return mail, rcpt

    # -- the connection -----------------------------------------------------------------------

    def _tls_context(self) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise self.failure(f"cannot load ca_file {self.ca_file!r}: {exc}", permanent=True) from exc

    def _connect(self) -> smtplib.SMTP:
        # Read first: an unset variable should fail before any network traffic.
        username = self.secret("username_env")
        password = self.secret("password_env")
        smtp: smtplib.SMTP
        if self.ssl:
            smtp = smtplib.SMTP_SSL(
                self.host, self.port, local_hostname=self.helo, timeout=self.timeout,
                context=self._tls_context(),
            )
        else:
            smtp = smtplib.SMTP(self.host, self.port, local_hostname=self.helo, timeout=self.timeout)
        try:
            smtp.ehlo()
            if self.starttls:
                smtp.starttls(context=self._tls_context())
                smtp.ehlo()
            if username is not None and password is not None:
                smtp.login(username, password)
        except BaseException:
            _quietly_close(smtp)
            raise
        return smtp

    def _connection(self) -> smtplib.SMTP:
        """The open connection if it still answers NOOP, else a fresh one.

        Probing before sending (rather than retrying a failed send) means a dropped idle connection
        is replaced without ever submitting the same message twice.
        """
        if self._smtp is not None:
            try:
                if self._smtp.noop()[0] == 250:
                    return self._smtp
            except (smtplib.SMTPException, OSError):
                pass
            self._drop()
        self._smtp = self._connect()
        return self._smtp

    def _drop(self) -> None:
        if self._smtp is not None:
            _quietly_close(self._smtp)
            self._smtp = None

    def close(self) -> None:
        with self._lock:
            if self._smtp is not None:
                try:
                    self._smtp.quit()
                except (smtplib.SMTPException, OSError):
                    pass
                self._drop()

    # -- sending ------------------------------------------------------------------------------

    def send(self, message: OutgoingMessage) -> None:
        mail, rcpt = self.compose(message)
        with self._lock:
            try:
                smtp = self._connection()
                smtp.send_message(mail, from_addr=self.envelope_from, to_addrs=[rcpt])
            except smtplib.SMTPRecipientsRefused as exc:
                # smtplib has already reset the transaction; the connection stays usable.
                raise self._refused(exc) from exc
            except DeliveryError:
                self._drop()
                raise
            except (smtplib.SMTPException, OSError, UnicodeError) as exc:
                # After any other failure the session state is unknown: start clean next time.
                self._drop()
                raise self._classify(exc) from exc

    def _refused(self, exc: smtplib.SMTPRecipientsRefused) -> DeliveryError:
        answers = [(code, _text(msg)) for code, msg in exc.recipients.values()]
        detail = "; ".join(f"{code} {msg}" for code, msg in answers)
        # 4xx (greylisting, mailbox busy) clears up by itself; 5xx does not.
        permanent = all(500 <= code < 600 for code, _ in answers)
        return self.failure(f"recipient refused: {detail}", permanent=permanent)

    def _classify(self, exc: BaseException) -> DeliveryError:
        where = f"{self.host}:{self.port}"
        if isinstance(exc, smtplib.SMTPResponseException):
            code = exc.smtp_code
            what = "login refused" if isinstance(exc, smtplib.SMTPAuthenticationError) else "SMTP"
            return self.failure(
                f"{what} by {where}: {code} {_text(exc.smtp_error)}",
                permanent=500 <= code < 600,
            )
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            # The server lacks STARTTLS, AUTH or SMTPUTF8: only a config change helps.
            return self.failure(f"{where}: {exc}", permanent=True)
        if isinstance(exc, ssl.SSLCertVerificationError):
            return self.failure(
                f"{where}: certificate not trusted ({exc.verify_message}); set 'ca_file'?",
                permanent=True,
            )
        if isinstance(exc, UnicodeError):
            return self.failure(f"{where}: cannot encode ({exc})", permanent=True)
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return self.failure(f"{where} closed the connection: {exc}")
        if isinstance(exc, TimeoutError):
            return self.failure(f"{where} did not answer within {self.timeout:g}s")
        return self.failure(f"cannot reach {where}: {exc or type(exc).__name__}")


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _quietly_close(smtp: smtplib.SMTP) -> None:
    try:
        smtp.close()
    except OSError:
        pass

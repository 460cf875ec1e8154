"""POST each message as JSON to an HTTP endpoint of your own (a portal, an OA system, a relay).

Body::

    {"idempotency_key": KEY, "recipient": ..., "address": ..., "subject": ..., "text": ...,
     "data": {...}}

with the header ``Idempotency-Key: KEY`` (percent-encoded where the key is not printable ASCII, as
HTTP headers must be). The receiver should treat a second request with the same key as a no-op:
duban re-sends after a crash or a timeout rather than risk losing a reminder.

With ``secret_env`` set, ``X-Duban-Signature: sha256=HEX`` carries HMAC-SHA256(secret, raw body)
so the receiver can check the request came from duban.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import ClassVar
from urllib.parse import quote

from notifications.channels._http import HttpChannel
from notifications.message import OutgoingMessage, dumps

# Printable ASCII except "%" stays as is, so ordinary keys are readable in the header.
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")


def header_key(key: str) -> str:
    """The ``Idempotency-Key`` header value for ``key`` (identity for printable ASCII keys)."""
    return quote(key, safe=_HEADER_SAFE)


class WebhookChannel(HttpChannel):
    """Settings: ``url`` (required), ``timeout`` (seconds, default 10), ``secret_env``."""

    kind: ClassVar[str] = "webhook"

    def send(self, message: OutgoingMessage) -> None:
        body = {
            "idempotency_key": message.key,
            "recipient": message.recipient,
            "address": message.address,
            "subject": message.subject,
            "text": message.text,
            "data": message.data,
        }
        headers = {"Idempotency-Key": header_key(message.key)}
        secret = self.secret("secret_env")
        if secret is not None:
            try:
                raw = dumps(body).encode("utf-8")
            except (TypeError, ValueError) as exc:
                raise self.failure(f"payload is not JSON: {exc}", permanent=True) from exc
            digest = hmac.new(secret.encode("utf-8"), raw, hashlib.sha256).hexdigest()
            headers["X-Duban-Signature"] = f"sha256={digest}"
        error = self.status_error(self.post_json(body, headers=headers))
        if error is not None:
            raise error

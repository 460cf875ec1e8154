"""Feishu's (飞书/Lark) answers, read in one place: the im/v1 API's and the custom bot's.

Feishu answers ``{"code": N, "msg": "…"}`` with an HTTP status that matters too: a refused request
is usually HTTP 400 with the code in the body, a rate limit HTTP 429 (older APIs: 400) with
``x-ogw-ratelimit-reset`` saying in how many seconds the window opens (``FREQUENCY``). So the code
decides, the header gives the wait, and a 5xx or a body without a code is transient.
"""

from __future__ import annotations

from typing import Any

import httpx

from notifications.channels.codes import Code, Kind, Table, Verdict, as_int, classify

ERRORS = "https://open.feishu.cn/document/server-docs/getting-started/server-error-codes"
FREQUENCY = "https://open.feishu.cn/document/server-docs/api-call-guide/frequency-control"
CREATE = "https://open.feishu.cn/document/server-docs/im-v1/message/create"
BOT = "https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot"

APP: Table = {
    99991663: Code(Kind.REFRESH, "Invalid access token for authorization", ERRORS),
    99991668: Code(Kind.REFRESH, "Invalid access token for authorization (user token)", ERRORS),
    99991677: Code(Kind.REFRESH, "token expired", ERRORS),
    99991400: Code(Kind.RATE, "request trigger frequency limit", FREQUENCY, 1.0),
    230020: Code(Kind.RATE, "This operation triggers the frequency limit (5 QPS per user)", CREATE, 1.0),
    10014: Code(Kind.PERMANENT, "app secret invalid", ERRORS),
    230001: Code(Kind.PERMANENT, "invalid request parameter", CREATE),
    230006: Code(Kind.PERMANENT, "Bot ability is not activated", CREATE),
    230013: Code(Kind.PERMANENT, "Bot has NO availability to this user", CREATE),
    230025: Code(Kind.PERMANENT, "message content too long", CREATE),
    99991672: Code(Kind.PERMANENT, "Access denied: scope not granted", ERRORS),
    99992351: Code(Kind.PERMANENT, "invalid open_id / user_id", ERRORS),
    99992361: Code(Kind.PERMANENT, "invalid user id", ERRORS),
    99992402: Code(Kind.PERMANENT, "field validation failed", ERRORS),
}

# The custom bot's frequency limit is 100 a minute and 5 a second per bot (BOT); waiting the minute
# passes both windows.
BOT_CODES: Table = {
    11232: Code(Kind.RATE, "frequency limited", BOT, 60.0),
    19001: Code(Kind.PERMANENT, "param invalid: incoming webhook access token invalid", BOT),
    19002: Code(Kind.PERMANENT, "params error", BOT),
    19021: Code(Kind.PERMANENT, "sign match fail or timestamp is not within one hour", BOT),
    19022: Code(Kind.PERMANENT, "Ip Not Allowed", BOT),
    19024: Code(Kind.PERMANENT, "Key Words Not Found", BOT),
}


def reset_seconds(response: httpx.Response) -> float | None:
    """Seconds until Feishu's rate window opens again (``x-ogw-ratelimit-reset``), None if not said."""
    reset = response.headers.get("x-ogw-ratelimit-reset", "").strip()
    return float(reset) if reset.isdigit() else None


def read(response: httpx.Response, reply: dict[str, Any], table: Table) -> Verdict | None:
    """The failure a Feishu answer reports (status and body together), None for success."""
    wait = reset_seconds(response)
    code = as_int(reply.get("code", reply.get("StatusCode")))
    if response.status_code >= 500:
        return Verdict(code or 0, Kind.TRANSIENT, f"Feishu answered HTTP {response.status_code}", wait)
    if code is None:
        if response.status_code == 429:
            return Verdict(0, Kind.RATE, "Feishu answered HTTP 429", wait if wait is not None else 1.0)
        return Verdict(0, Kind.TRANSIENT, f"Feishu answered HTTP {response.status_code} without a code")
    if code == 0 and response.is_success:
        return None
    text = f"Feishu code {code} (HTTP {response.status_code}): {reply.get('msg') or reply.get('StatusMessage') or ''}"
    if response.status_code == 429 and code not in table:
        return Verdict(code, Kind.RATE, text, wait if wait is not None else 1.0)
    return classify(table, code, text, wait=wait)

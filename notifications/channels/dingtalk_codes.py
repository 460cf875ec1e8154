"""DingTalk's answers, read in one place: the work-notice API's and the group robot's.

Both answer ``{"errcode": N, "errmsg": "…"}``. The ``topapi`` endpoints (work notices) answer an
authentication problem with ``errcode`` 88 and the real reason in ``sub_code`` (a string) and
``sub_msg``: "errcode 88: look at sub_code" (``ERRORS``), e.g. ``{"errcode": 88, "sub_code":
"40014", "sub_msg": "不合法的access_token"}``. So 88 is never a class of its own: its ``sub_code`` is
looked up in the same table as a top-level code.
"""

from __future__ import annotations

from typing import Any

from notifications.channels.codes import Code, Kind, Table, Verdict, as_int, classify

ERRORS = "https://open.dingtalk.com/document/orgapp/server-api-error-codes-1"
WORK_NOTICE = "https://open.dingtalk.com/document/orgapp/asynchronous-sending-of-enterprise-session-messages"
SEND_RESULT = ("https://open.dingtalk.com/document/orgapp/"
               "gets-the-result-of-sending-messages-asynchronously-to-the-enterprise")
MESSAGE_TYPES = "https://open.dingtalk.com/document/orgapp/message-types-and-data-format"
ROBOT = "https://open.dingtalk.com/document/orgapp/custom-robot-access"
# A published reply of the robot throttle's older code (its text is DingTalk's own).
ROBOT_130101 = "https://blog.csdn.net/jialiuyang/article/details/118615052"

# Over 20 messages a minute a robot is blocked for 10 minutes (ROBOT, 消息发送频率限制).
ROBOT_BLOCK = 600.0
# "QPM 超限": the per-minute quota of the app's work notices.
NOTICE_MINUTE = 60.0

APP: Table = {
    -1: Code(Kind.TRANSIENT, "系统繁忙", ERRORS),
    40014: Code(Kind.REFRESH, "不合法的access_token", ERRORS),
    42001: Code(Kind.REFRESH, "access_token超时", ERRORS),
    143103: Code(Kind.RATE, "工作通知 QPM 超限", WORK_NOTICE, NOTICE_MINUTE),
    143104: Code(Kind.RATE, "工作通知 QPM 超限", WORK_NOTICE, NOTICE_MINUTE),
    33012: Code(Kind.PERMANENT, "无效的userid", ERRORS),
    40035: Code(Kind.PERMANENT, "缺少参数", ERRORS),
    40056: Code(Kind.PERMANENT, "不合法的agentid", ERRORS),
    40089: Code(Kind.PERMANENT, "不合法的corpid或corpsecret（client_id/secret）", ERRORS),
    60011: Code(Kind.PERMANENT, "没有调用该接口的权限", ERRORS),
    60020: Code(Kind.PERMANENT, "访问ip不在白名单之中", ERRORS),
}

ROBOT_CODES: Table = {
    -1: Code(Kind.TRANSIENT, "系统繁忙", ERRORS),
    660026: Code(Kind.RATE, "sending too many messages per minute: the robot is blocked for 10 minutes",
                 ROBOT, ROBOT_BLOCK),
    130101: Code(Kind.RATE, "send too fast, exceed 20 times per minute", ROBOT_130101, ROBOT_BLOCK),
    300001: Code(Kind.PERMANENT, "token is not exist (wrong robot URL)", ROBOT),
    310000: Code(Kind.PERMANENT, "sign not match / keywords not in content / ip not in whitelist", ROBOT),
    400102: Code(Kind.PERMANENT, "robot is stopped", ROBOT),
}

# getsendresult's forbidden_list codes: why DingTalk accepted a notice but did not deliver it.
FORBIDDEN: dict[str, str] = {
    "143105": "超过每人每日上限",  # the app's daily cap per user (500 for an organisation's own app)
    "143106": "同一内容一天只发一次",  # identical content to the same user within a day
}


def read(reply: dict[str, Any], table: Table) -> Verdict | None:
    """The failure a DingTalk answer reports, None for success (``errcode`` 0)."""
    code = as_int(reply.get("errcode"))
    if code is None:
        # 200 without DingTalk's JSON: a proxy's page; whether the message arrived is unknown
        return Verdict(0, Kind.TRANSIENT, "DingTalk answered without an errcode")
    if code == 0:
        return None
    text = f"DingTalk errcode {code}: {reply.get('errmsg', '')}"
    if code == 88:
        sub = as_int(reply.get("sub_code"))
        text += f" (sub_code {reply.get('sub_code')}: {reply.get('sub_msg', '')})"
        return classify(table, sub, text) if sub is not None else Verdict(88, Kind.PERMANENT, text)
    return classify(table, code, text)

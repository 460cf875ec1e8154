"""WeCom's (企业微信) answers, read in one place: the app-message API's and the group robot's.

Both answer ``{"errcode": N, "errmsg": "…"}``. An app message answered 0 may still have missed
some addressees (``SEND``): ``invaliduser`` (not in the app's range or no such member),
``invalidparty``, and ``unlicenseduser`` (in range but without a licence: not delivered either).
WeCom lowercases every userid it returns there ("返回包中的userid，不区分大小写，统一转为小写"), so
they are matched against the addressees case-insensitively. When every addressee is invalid or
unlicensed WeCom answers 81013 instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from notifications.channels.codes import Code, Kind, Table, Verdict, as_int, classify

ERRORS = "https://developer.work.weixin.qq.com/document/path/90313"
SEND = "https://developer.work.weixin.qq.com/document/path/90236"
FREQUENCY = "https://developer.work.weixin.qq.com/document/path/90312"
ROBOT = "https://developer.work.weixin.qq.com/document/path/91770"

APP: Table = {
    -1: Code(Kind.TRANSIENT, "系统繁忙", ERRORS),
    40014: Code(Kind.REFRESH, "不合法的access_token", ERRORS),
    42001: Code(Kind.REFRESH, "access_token已过期", ERRORS),
    45009: Code(Kind.RATE, "接口调用超过限制", FREQUENCY, 60.0),
    45033: Code(Kind.RATE, "接口并发调用超过限制", FREQUENCY, 5.0),
    40001: Code(Kind.PERMANENT, "不合法的secret参数", ERRORS),
    40008: Code(Kind.PERMANENT, "不合法的消息类型", ERRORS),
    40013: Code(Kind.PERMANENT, "不合法的CorpID", ERRORS),
    40056: Code(Kind.PERMANENT, "不合法的agentid", ERRORS),
    44004: Code(Kind.PERMANENT, "文本消息content参数为空", ERRORS),
    45002: Code(Kind.PERMANENT, "消息内容大小超过限制", ERRORS),
    48002: Code(Kind.PERMANENT, "API接口无权限调用", ERRORS),
    60011: Code(Kind.PERMANENT, "指定的成员/部门/标签参数无权限", ERRORS),
    60020: Code(Kind.PERMANENT, "不安全的访问IP", ERRORS),
    81013: Code(Kind.PERMANENT, "UserID、部门ID、标签ID全部非法或无权限", SEND),
}

ROBOT_CODES: Table = {
    -1: Code(Kind.TRANSIENT, "系统繁忙", ERRORS),
    # 20 messages a minute per robot (ROBOT, 消息发送频率限制): the minute is used up
    45009: Code(Kind.RATE, "接口调用超过限制", ROBOT, 60.0),
    40008: Code(Kind.PERMANENT, "不合法的消息类型", ERRORS),
    40058: Code(Kind.PERMANENT, "不合法的参数（如 markdown.content 超过 4096 字节）", ERRORS),
    93000: Code(Kind.PERMANENT, "invalid webhook url", ROBOT),
}


@dataclass(frozen=True)
class Missed:
    """Addressees an accepted message did not reach, and why (WeCom's own words, in Chinese)."""

    users: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    reason: str = ""


def read(reply: dict[str, Any], table: Table) -> Verdict | None:
    """The failure a WeCom answer reports, None for success (``errcode`` 0, maybe partial)."""
    code = as_int(reply.get("errcode"))
    if code is None:
        return Verdict(0, Kind.TRANSIENT, "WeCom answered without an errcode")
    if code == 0:
        return None
    return classify(table, code, f"WeCom errcode {code}: {reply.get('errmsg', '')}")


def _ids(value: Any) -> set[str]:
    return {part.strip().lower() for part in str(value or "").split("|") if part.strip()}


def missed(reply: dict[str, Any], users: tuple[str, ...], departments: tuple[str, ...]) -> Missed:
    """Which of ``users`` and ``departments`` an accepted message missed (``invaliduser``,
    ``unlicenseduser``, ``invalidparty``), in the addressees' own spelling."""
    invalid, unlicensed = _ids(reply.get("invaliduser")), _ids(reply.get("unlicenseduser"))
    parties = _ids(reply.get("invalidparty"))
    lost = tuple(u for u in users if u.lower() in invalid | unlicensed)
    lost_parties = tuple(d for d in departments if d.lower() in parties)
    reasons = []
    if any(u.lower() in invalid for u in users) or lost_parties:
        reasons.append("不在应用可见范围或不存在")
    if any(u.lower() in unlicensed for u in users):
        reasons.append("未获企业微信接口许可")
    return Missed(lost, lost_parties, "；".join(reasons))

"""Loopback emulators of the three organisation-app APIs: the token endpoint and the work-notice one.

Each implements what the platform documents and duban relies on: the token request's exact
parameters, tokens that expire (``expire()`` makes the current one answer the expiry code), the
notice's required fields and size limits, unknown users, and rate limits on demand (``fail_next``).
Notices that pass every check are kept in ``notices``; problems found are kept in ``problems`` so a
test can show what was wrong.

They answer in the platforms' own shapes (docs/platform-codes.md has the sources): DingTalk's
``topapi`` wraps a refused token in ``errcode`` 88 with the reason in ``sub_code``, limits ``msg``
to 2,048 bytes and reports later (``getsendresult``) whom it did not deliver to: more than
``daily_cap`` notices a day to one user, or the same content twice; WeCom lowercases the ids it
returns in ``invaliduser`` and names members without a licence in ``unlicenseduser``; Feishu
answers with an HTTP status and a ``code`` together and refuses a card request over 30 KB.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from .peers import Reply, Seen, json_reply


@dataclass
class _Platform:
    users: set[str] = field(default_factory=set)  # the ids the app may reach
    secret: str = "s3cret"
    tokens_issued: int = 0
    valid: set[str] = field(default_factory=set)
    expired: set[str] = field(default_factory=set)
    fail_next: list[int] = field(default_factory=list)  # codes to answer instead of success, in order
    notices: list[dict[str, Any]] = field(default_factory=list)
    seen_uuids: dict[str, int] = field(default_factory=dict)  # Feishu's uuid -> the message it sent
    problems: list[str] = field(default_factory=list)
    _n: Any = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        pass

    def issue(self, prefix: str) -> str:
        self.tokens_issued += 1
        token = f"{prefix}-{next(self._n)}"
        self.valid.add(token)
        return token

    def expire(self) -> None:
        self.expired |= self.valid
        self.valid = set()

    def refuse(self, problem: str) -> None:
        self.problems.append(problem)


class WeComApp(_Platform):
    corp_id = "ww0123456789"
    agent_id = 1000002
    unlicensed: set[str]  # in the app's range but without a licence: accepted, not delivered

    def __post_init__(self) -> None:
        self.unlicensed = set()

    def __call__(self, seen: Seen) -> Reply:
        if seen.method == "GET" and seen.path == "/cgi-bin/gettoken":
            if seen.param("corpid") != self.corp_id:
                return self._err(40013, "invalid corpid")
            if seen.param("corpsecret") != self.secret:
                return self._err(40001, "invalid credential")
            return json_reply({"errcode": 0, "errmsg": "ok", "access_token": self.issue("wx"), "expires_in": 7200})
        if seen.method == "POST" and seen.path == "/cgi-bin/message/send":
            token = seen.param("access_token")
            if token in self.expired:
                return self._err(42001, "access_token expired")
            if token not in self.valid:
                return self._err(40014, "invalid access_token")
            if self.fail_next:
                code = self.fail_next.pop(0)
                return self._err(code, {45009: "api freq out of limit", 45033: "api concurrent out of limit",
                                        -1: "system busy"}.get(code, "error"))
            body = seen.json()
            if body.get("agentid") != self.agent_id:
                return self._err(40056, "invalid agentid")
            kind = body.get("msgtype")
            if kind == "textcard":
                card = body.get("textcard") or {}
                if len(card.get("title", "").encode()) > 128 or len(card.get("description", "").encode()) > 512 \
                        or not card.get("url") or len(card.get("btntxt", "")) > 4:
                    return self._err(44004, "textcard over its limits or without url")
            elif kind == "text":
                if len((body.get("text") or {}).get("content", "").encode()) > 2048:
                    return self._err(44004, "text content exceed max length 2048")
            else:
                return self._err(40008, "invalid message type")
            wanted = [u for u in body.get("touser", "").split("|") if u]
            # userids are case-insensitive; the answer gives them lowercased
            known = {u.lower() for u in self.users}
            unknown = [u.lower() for u in wanted if u.lower() not in known]
            unlicensed = [u.lower() for u in wanted if u.lower() in {x.lower() for x in self.unlicensed}]
            if wanted and len(unknown) + len(unlicensed) == len(wanted) and not body.get("toparty"):
                return self._err(81013, "user & party & tag all invalid")
            self.notices.append(body)
            return json_reply({"errcode": 0, "errmsg": "ok", "invaliduser": "|".join(unknown),
                               "unlicenseduser": "|".join(unlicensed), "msgid": "m"})
        return self._err(404, "no such API")

    def _err(self, code: int, message: str) -> Reply:
        self.refuse(f"{code} {message}")
        return json_reply({"errcode": code, "errmsg": message})


class DingTalkApp(_Platform):
    app_key = "dingabcdef"
    agent_id = 2233445566
    daily_cap = 500  # notices of one app to one user a day; the rest are accepted, not delivered
    tasks: dict[int, dict[str, Any]]
    _today: Counter[str]
    _contents: set[tuple[str, str]]

    def __post_init__(self) -> None:
        self.tasks, self._today, self._contents = {}, Counter(), set()

    def __call__(self, seen: Seen) -> Reply:
        if seen.method == "GET" and seen.path == "/gettoken":
            if seen.param("appkey") != self.app_key or seen.param("appsecret") != self.secret:
                return self._err(40089, "不合法的corpid或corpsecret")
            return json_reply({"errcode": 0, "errmsg": "ok", "access_token": self.issue("dt"), "expires_in": 7200})
        if seen.method == "POST" and seen.path == "/topapi/message/corpconversation/asyncsend_v2":
            refused = self._token_refused(seen.param("access_token"))
            if refused is not None:
                return refused
            if self.fail_next:
                code = self.fail_next.pop(0)
                return self._err(code, {143103: "企业内部应用QPM超限", 143104: "企业内部应用QPM超限",
                                        -1: "系统繁忙"}.get(code, "error"))
            body = seen.json()
            if body.get("agent_id") != self.agent_id:
                return self._err(40056, "不合法的agentid")
            msg = body.get("msg") or {}
            if len(json.dumps(msg, ensure_ascii=False, separators=(",", ":")).encode()) > 2048:
                return self._err(40035, "msg 超过 2048 字节")
            if msg.get("msgtype") == "action_card":
                card = msg.get("action_card") or {}
                if not (card.get("title") and card.get("markdown") and card.get("single_title")
                        and card.get("single_url")):
                    return self._err(40035, "缺少参数 action_card")
                if len(card["title"]) > 64 or len(card["single_title"]) > 20:
                    return self._err(40035, "action_card title 超过 64 字或 single_title 超过 20 字")
            elif msg.get("msgtype") != "text":
                return self._err(40035, "缺少参数 msg")
            wanted = [u for u in str(body.get("userid_list", "")).split(",") if u]
            if any(u not in self.users for u in wanted):
                return self._err(33012, "无效的USERID")
            self.notices.append(body)
            task = len(self.notices)
            self.tasks[task] = self._result(wanted, json.dumps(msg, sort_keys=True, ensure_ascii=False))
            return json_reply({"errcode": 0, "task_id": task, "request_id": "r"})
        if seen.method == "POST" and seen.path == "/topapi/message/corpconversation/getsendresult":
            refused = self._token_refused(seen.param("access_token"))
            if refused is not None:
                return refused
            body = seen.json()
            if body.get("agent_id") != self.agent_id or body.get("task_id") not in self.tasks:
                return self._err(40035, "不合法的参数 task_id")
            return json_reply({"errcode": 0, "errmsg": "ok", "send_result": self.tasks[body["task_id"]],
                               "request_id": "r"})
        return self._err(404, "no such API")

    def _token_refused(self, token: str | None) -> Reply | None:
        # topapi: "errcode 88: look at sub_code" (the token's problem is in sub_code, a string)
        for sub, text in (("42001", "access_token超时"), ("40014", "不合法的access_token")):
            if (token in self.expired) if sub == "42001" else (token not in self.valid):
                self.refuse(f"88/{sub} {text}")
                return json_reply({"errcode": 88, "sub_code": sub, "sub_msg": text,
                                   "errmsg": f"ding talk error[subcode={sub},submsg={text}]", "request_id": "r"})
        return None

    def _result(self, users: list[str], content: str) -> dict[str, Any]:
        """What getsendresult will say: the daily cap and the same-content rule drop, silently."""
        sent, forbidden, reasons = [], [], []
        for user in users:
            if self._today[user] >= self.daily_cap:
                forbidden.append(user)
                reasons.append({"code": "143105", "count": self.daily_cap, "userid": user})
            elif (user, content) in self._contents:
                forbidden.append(user)
                reasons.append({"code": "143106", "count": 1, "userid": user})
            else:
                self._today[user] += 1
                self._contents.add((user, content))
                sent.append(user)
        return {"invalid_user_id_list": [], "forbidden_user_id_list": forbidden, "failed_user_id_list": [],
                "read_user_id_list": [], "unread_user_id_list": sent, "invalid_dept_id_list": [],
                "forbidden_list": reasons}

    def _err(self, code: int, message: str) -> Reply:
        self.refuse(f"{code} {message}")
        return json_reply({"errcode": code, "errmsg": message})


class FeishuApp(_Platform):
    app_id = "cli_a1b2c3"

    def __call__(self, seen: Seen) -> Reply:
        if seen.method == "POST" and seen.path == "/open-apis/auth/v3/tenant_access_token/internal":
            body = seen.json()
            if body != {"app_id": self.app_id, "app_secret": self.secret}:
                return self._err(10014, "app secret invalid", 400)
            return json_reply({"code": 0, "msg": "ok", "tenant_access_token": self.issue("t"), "expire": 7200})
        if seen.method == "POST" and seen.path == "/open-apis/im/v1/messages":
            auth = seen.headers.get("authorization", "")
            token = auth.removeprefix("Bearer ")
            if token in self.expired:
                return self._err(99991677, "token expired", 400)
            if not auth.startswith("Bearer ") or token not in self.valid:
                return self._err(99991663, "Invalid access token for authorization", 400)
            if self.fail_next:
                code = self.fail_next.pop(0)
                if code == 99991400:
                    self.refuse("99991400 request trigger frequency limit")
                    return json_reply({"code": code, "msg": "request trigger frequency limit"}, status=429,
                                      headers={"x-ogw-ratelimit-reset": "2"})
                return self._err(code, "error", 400)
            if seen.param("receive_id_type") != "user_id":
                return self._err(99992402, "field validation failed: receive_id_type", 400)
            body = seen.json()
            if body.get("receive_id") not in self.users:
                return self._err(230013, "Bot has NO availability to this user.", 400)
            uuid = body.get("uuid", "")
            if not isinstance(uuid, str) or len(uuid) > 50:
                return self._err(99992402, "field validation failed: uuid", 400)
            if body.get("msg_type") not in ("interactive", "text"):
                return self._err(230001, "invalid msg_type", 400)
            if len(seen.body) > (30_000 if body["msg_type"] == "interactive" else 150_000):
                return self._err(230025, "The length of the message content reaches its limit.", 400)
            content = json.loads(body.get("content", "null"))
            if body["msg_type"] == "interactive" and not (content.get("header", {}).get("title", {}).get("content")
                                                          and content.get("elements")):
                return self._err(230001, "invalid card content", 400)
            if uuid and uuid in self.seen_uuids:  # Feishu: one message per uuid within an hour
                return json_reply({"code": 0, "msg": "success", "data": {"message_id": f"om_{self.seen_uuids[uuid]}"}})
            self.notices.append({**body, "content": content})
            if uuid:
                self.seen_uuids[uuid] = len(self.notices)
            return json_reply({"code": 0, "msg": "success", "data": {"message_id": f"om_{len(self.notices)}"}})
        return self._err(404, "no such API", 404)

    def _err(self, code: int, message: str, status: int = 200) -> Reply:
        self.refuse(f"{code} {message}")
        return json_reply({"code": code, "msg": message}, status=status)


def button(platform: _Platform, notice: dict[str, Any]) -> str | None:
    """The 去处理 button's URL of one notice, on any of the three platforms."""
    if isinstance(platform, WeComApp):
        return (notice.get("textcard") or {}).get("url")
    if isinstance(platform, DingTalkApp):
        return ((notice.get("msg") or {}).get("action_card") or {}).get("single_url")
    for element in notice["content"].get("elements", []):
        for action in element.get("actions", []):
            return action.get("url")
    return None


def addressee(platform: _Platform, notice: dict[str, Any]) -> str:
    if isinstance(platform, WeComApp):
        return notice["touser"]
    if isinstance(platform, DingTalkApp):
        return notice["userid_list"]
    return notice["receive_id"]


# -- the platforms' web login (OAuth), for the workspace's app sign-in ---------------------------
#
# Each ``…SignIn`` answers its platform's notice endpoints as above and, in new handlers, the web
# login: the authorisation page (inside the app it answers at once, with a one-time code for the
# person using the app) and the calls that turn the code into that person's user id. Who uses the
# app is what the app's client knows and the page does not: the emulated app (a Chromium context)
# says it in the ``APP_USER`` header. A redirect_uri outside the app's trusted domain, a wrong
# app id, a reused or unknown code are refused as the platforms refuse them.

APP_USER = "x-emulated-app-user"


@dataclass
class _WebLogin:
    trusted_host: str = "127.0.0.1"  # 可信域名 / 回调域名: where the platform may send the code
    codes: dict[str, tuple[str, str]] = field(default_factory=dict)  # code -> (user id, redirect_uri)
    user_tokens: dict[str, str] = field(default_factory=dict)  # a user's access token -> user id
    pages: list[str] = field(default_factory=list)  # user ids the authorisation page answered for
    _n: Any = field(default_factory=itertools.count)

    def page(self, seen: Seen, platform: _Platform, *, code_name: str = "code") -> Reply:
        """The authorisation page inside the app: straight back to ``redirect_uri`` with a code."""
        redirect = seen.param("redirect_uri") or ""
        parts = urlsplit(redirect)
        if parts.scheme not in ("http", "https") or parts.hostname != self.trusted_host:
            platform.refuse(f"redirect_uri {redirect!r} is outside the trusted domain")
            return _html(400, "redirect_uri 参数错误：与应用的可信域名不一致")
        user = seen.headers.get(APP_USER, "")
        if not user:  # a browser outside the app: the platform would ask for a QR scan
            return _html(200, "请在应用内打开，或扫码登录")
        code = f"code-{next(self._n)}-{user}"
        self.codes[code] = (user, redirect)
        self.pages.append(user)
        query = urlencode({code_name: code, "state": seen.param("state") or ""})
        return 302, {"Location": f"{redirect}{'&' if '?' in redirect else '?'}{query}"}, b""

    def take(self, code: str | None) -> tuple[str, str] | None:
        """A code's (user, redirect_uri), once (every platform's codes are single-use)."""
        return self.codes.pop(code or "", None)

    def token_for(self, user: str) -> str:
        token = f"u-{next(self._n)}"
        self.user_tokens[token] = user
        return token


def _html(status: int, text: str) -> Reply:
    return status, {"Content-Type": "text/html; charset=utf-8"}, f"<!doctype html><p>{text}</p>".encode()


@dataclass
class WeComSignIn(WeComApp):
    """WeCom 网页授权 (snsapi_base) and ``/cgi-bin/auth/getuserinfo``."""

    login: _WebLogin = field(default_factory=_WebLogin)

    def __call__(self, seen: Seen) -> Reply:
        if seen.method == "GET" and seen.path == "/connect/oauth2/authorize":
            return self.authorize(seen)
        if seen.method == "GET" and seen.path == "/cgi-bin/auth/getuserinfo":
            return self.getuserinfo(seen)
        return super().__call__(seen)

    def authorize(self, seen: Seen) -> Reply:
        state = seen.param("state") or ""
        if seen.param("appid") != self.corp_id or seen.param("response_type") != "code" \
                or seen.param("scope") not in ("snsapi_base", "snsapi_privateinfo") \
                or seen.param("agentid") not in (None, str(self.agent_id)) \
                or not re.fullmatch(r"[a-zA-Z0-9]{0,128}", state):
            self.refuse(f"authorize: bad parameters {seen.raw_query}")
            return _html(400, "参数错误")
        return self.login.page(seen, self)

    def getuserinfo(self, seen: Seen) -> Reply:
        token = seen.param("access_token")
        if token in self.expired:
            return self._err(42001, "access_token expired")
        if token not in self.valid:
            return self._err(40014, "invalid access_token")
        taken = self.login.take(seen.param("code"))
        if taken is None:
            return self._err(40029, "invalid code")
        user = taken[0]
        if user not in self.users:  # not a member: WeCom answers an openid only
            return json_reply({"errcode": 0, "errmsg": "ok", "openid": f"o-{user}"})
        return json_reply({"errcode": 0, "errmsg": "ok", "userid": user})


@dataclass
class DingTalkSignIn(DingTalkApp):
    """DingTalk's login page (login.dingtalk.com), the user token and ``users/me``
    (api.dingtalk.com) and ``topapi/user/getbyunionid`` (oapi): one loopback host serves all three."""

    login: _WebLogin = field(default_factory=_WebLogin)

    def __call__(self, seen: Seen) -> Reply:
        if seen.method == "GET" and seen.path == "/oauth2/auth":
            return self.authorize(seen)
        if seen.method == "POST" and seen.path == "/v1.0/oauth2/userAccessToken":
            return self.user_access_token(seen)
        if seen.method == "GET" and seen.path == "/v1.0/contact/users/me":
            return self.me(seen)
        if seen.method == "POST" and seen.path == "/topapi/user/getbyunionid":
            return self.getbyunionid(seen)
        return super().__call__(seen)

    def authorize(self, seen: Seen) -> Reply:
        if seen.param("client_id") != self.app_key or seen.param("response_type") != "code" \
                or "openid" not in (seen.param("scope") or "").split():
            self.refuse(f"authorize: bad parameters {seen.raw_query}")
            return _html(400, "参数错误")
        return self.login.page(seen, self, code_name="authCode")

    def user_access_token(self, seen: Seen) -> Reply:
        body = seen.json()
        if body.get("clientId") != self.app_key or body.get("clientSecret") != self.secret:
            self.refuse("userAccessToken: wrong clientId or clientSecret")
            return json_reply({"code": "invalidClientIdOrSecret", "message": "无效的clientId或clientSecret"}, 400)
        taken = self.login.take(body.get("code")) if body.get("grantType") == "authorization_code" else None
        if taken is None:
            self.refuse("userAccessToken: bad or reused authCode")
            return json_reply({"code": "invalidAuthCode", "message": "不合法的临时授权码"}, 400)
        return json_reply({"accessToken": self.login.token_for(taken[0]), "refreshToken": "r", "expireIn": 7200,
                           "corpId": "ding-corp"})

    def me(self, seen: Seen) -> Reply:
        user = self.login.user_tokens.get(seen.headers.get("x-acs-dingtalk-access-token", ""))
        if user is None:
            self.refuse("users/me: bad user token")
            return json_reply({"code": "InvalidAuthentication", "message": "不合法的access_token"}, 401)
        return json_reply({"nick": user, "unionId": f"union-{user}", "openId": f"open-{user}", "stateCode": "86"})

    def getbyunionid(self, seen: Seen) -> Reply:
        token = seen.param("access_token")
        if token in self.expired:
            return self._err(42001, "access_token超时")
        if token not in self.valid:
            return self._err(40014, "不合法的access_token")
        union = str(seen.json().get("unionid") or "")
        user = union.removeprefix("union-")
        if not union.startswith("union-") or user not in self.users:
            return json_reply({"errcode": 60121, "errmsg": "找不到该用户", "request_id": "r"})
        return json_reply({"errcode": 0, "errmsg": "ok", "result": {"contact_type": 0, "userid": user},
                           "request_id": "r"})


@dataclass
class FeishuSignIn(FeishuApp):
    """Feishu's authorisation page, ``authen/v2/oauth/token`` and ``authen/v1/user_info``."""

    login: _WebLogin = field(default_factory=_WebLogin)

    def __call__(self, seen: Seen) -> Reply:
        if seen.method == "GET" and seen.path == "/open-apis/authen/v1/authorize":
            if seen.param("client_id") != self.app_id:
                self.refuse(f"authorize: bad client_id {seen.param('client_id')}")
                return _html(400, "参数错误：client_id")
            return self.login.page(seen, self)
        if seen.method == "POST" and seen.path == "/open-apis/authen/v2/oauth/token":
            return self.token(seen)
        if seen.method == "GET" and seen.path == "/open-apis/authen/v1/user_info":
            return self.user_info(seen)
        return super().__call__(seen)

    def token(self, seen: Seen) -> Reply:
        body = seen.json()
        if body.get("client_id") != self.app_id or body.get("client_secret") != self.secret:
            self.refuse("oauth/token: wrong client")
            return json_reply({"code": 20002, "error": "invalid_client", "error_description": "client secret invalid"},
                              400)
        taken = self.login.take(body.get("code")) if body.get("grant_type") == "authorization_code" else None
        if taken is None or taken[1] != body.get("redirect_uri"):
            self.refuse("oauth/token: bad or reused code, or another redirect_uri")
            return json_reply({"code": 20003, "error": "invalid_grant", "error_description": "invalid code"}, 400)
        if taken[0] not in self.users:
            return json_reply({"code": 20010, "error": "invalid_grant",
                               "error_description": "user does not have app permission"}, 400)
        return json_reply({"code": 0, "access_token": self.login.token_for(taken[0]), "expires_in": 7200,
                           "token_type": "Bearer", "scope": ""})

    def user_info(self, seen: Seen) -> Reply:
        user = self.login.user_tokens.get(seen.headers.get("authorization", "").removeprefix("Bearer "))
        if user is None:
            return self._err(99991668, "Invalid access token for authorization", 400)
        return json_reply({"code": 0, "msg": "success", "data": {
            "name": user, "open_id": f"ou_{user}", "union_id": f"on_{user}", "user_id": user, "tenant_key": "t"}})


SIGN_IN = {"wecom": WeComSignIn, "dingtalk": DingTalkSignIn, "feishu": FeishuSignIn}

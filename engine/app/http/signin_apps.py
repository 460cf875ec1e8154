"""Signing in from inside WeCom, DingTalk or Feishu: the app's own web login.

A channel of kind ``wecom_app``, ``dingtalk_app`` or ``feishu_app`` with ``signin = true`` opens a
door ``/ws/app/NAME``: it sends the browser to the platform's authorisation page, which, inside the
app, answers at once with a code for the person using it; duban turns the code into that person's
platform user id and signs in the account whose ``im`` holds that id — the id its notices go to
(``engine.accounts.external``). The platform's calls take the app's access token from the token
cache the notices use (``notifications.service.tokens_for``: one token for the daemon's notices and
its sign-ins, refreshed once when the platform says it expired).

* **WeCom** (企业微信网页授权, snsapi_base): ``open.weixin.qq.com/connect/oauth2/authorize`` with
  ``appid`` (CorpID), ``redirect_uri``, ``response_type=code``, ``scope=snsapi_base``, ``state``,
  ``agentid`` and ``#wechat_redirect``; back with ``code``; ``GET /cgi-bin/auth/getuserinfo
  ?access_token&code`` answers ``userid`` for a member (``openid`` only for a non-member).
* **DingTalk** (钉钉登录第三方网站, also 免登 inside the DingTalk client): ``login.dingtalk.com/oauth2/auth``
  with ``redirect_uri``, ``response_type=code``, ``client_id``, ``scope=openid``, ``state``,
  ``prompt=consent``; back with ``authCode``; ``POST api.dingtalk.com/v1.0/oauth2/userAccessToken``
  (clientId, clientSecret, code, grantType) gives the user's token, ``GET /v1.0/contact/users/me``
  their ``unionId``, and ``POST /topapi/user/getbyunionid`` (the app's token) their ``userid``.
* **Feishu** (飞书网页应用免登): ``accounts.feishu.cn/open-apis/authen/v1/authorize`` with
  ``client_id``, ``redirect_uri``, ``state``; back with ``code``; ``POST
  /open-apis/authen/v2/oauth/token`` (grant_type, client_id, client_secret, code, redirect_uri) gives
  the user's token and ``GET /open-apis/authen/v1/user_info`` the person's ids: the one the channel's
  ``id_type`` names is compared (``user_id`` needs the app's 获取用户 user ID permission). Feishu's
  flow takes the app secret itself, not the tenant token, so it does not touch the token cache.

Opened inside the app, the workspace finds the door itself: ``/ws/login`` sends a browser whose
User-Agent names the app (``wxwork``, ``DingTalk``, ``Lark``/``Feishu``) through that app's door,
so the app's workbench (工作台) can simply link the workspace.

Keys of such a channel besides its sending ones: ``signin`` (true opens the door, and reminders'
buttons on this channel use it instead of the signed link), ``login_base_url`` (the authorisation
page's host: a private deployment's), and for DingTalk ``api_base_url`` (api.dingtalk.com).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from notifications.channels import build_channel
from notifications.channels._app import AppChannel
from notifications.channels._tokens import token_key
from notifications.channels.base import DeliveryError, platform_of
from notifications.channels.codes import Kind
from notifications.service import tokens_for

from ...accounts.external import by_app_id
from .outside import absolute, begin, finish, refused, returned, stale
from .workspace.routes import Ws, safe_next

log = logging.getLogger("duban.signin")
router = APIRouter(include_in_schema=False)

PLATFORM_NAMES = {"wecom": "企业微信", "dingtalk": "钉钉", "feishu": "飞书"}
# How each app's built-in browser names itself in its User-Agent
AGENTS = {"wecom": re.compile(r"\bwxwork/", re.I), "dingtalk": re.compile(r"\bDingTalk\b", re.I),
          "feishu": re.compile(r"\b(Lark|Feishu)\b", re.I)}
LOGIN_BASES = {"wecom": "https://open.weixin.qq.com", "dingtalk": "https://login.dingtalk.com",
               "feishu": "https://accounts.feishu.cn"}
DINGTALK_API = "https://api.dingtalk.com"


class NotConfirmed(Exception):
    """The platform did not confirm a member of the organisation (said in Chinese)."""


def doors(config_channels: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Channel name -> platform of every app channel with ``signin = true``."""
    out = {}
    for name, table in config_channels.items():
        kind = str(table.get("kind", ""))
        platform = platform_of(kind)
        if platform is not None and table.get("signin") is True:
            out[name] = platform
    return out


def door_for_agent(config_channels: dict[str, dict[str, Any]], user_agent: str) -> str | None:
    """The door of the app whose built-in browser sent this request, if one is configured."""
    for name, platform in doors(config_channels).items():
        if AGENTS[platform].search(user_agent or ""):
            return name
    return None


def _channel(ws: Ws, name: str) -> AppChannel | None:
    table = ws.runtime.config.channels.get(name)
    if table is None or name not in doors(ws.runtime.config.channels):
        return None
    try:
        channel = build_channel(name, table)
    except ValueError as exc:  # the channel's own mistake; `duban config check` names it too
        log.error("app sign-in: [channels.%s]: %s", name, exc)
        return None
    if not isinstance(channel, AppChannel):
        return None
    if ws.site.writers is not None:
        channel.tokens = tokens_for(ws.site.writers)
    return channel


def _base(channel: AppChannel, key: str, default: str) -> str:
    return str(channel.settings.get(key) or default).rstrip("/")


@router.get("/ws/app/{name}")
def app_door(request: Request, name: str, next: str = "") -> Response:
    ws = Ws(request)
    channel = _channel(ws, name)
    if channel is None:
        return ws.message(None, 404, "未找到", "没有这个应用登录入口（管理员需在该应用渠道中设置 signin = true）")
    try:
        state = begin(request, f"app:{name}", next)
        return RedirectResponse(_authorize_url(channel, absolute(ws, f"/ws/app/{quote(name)}/back"), state), 302)
    finally:
        channel.close()


@router.get("/ws/app/{name}/back")
async def app_back(request: Request, name: str, state: str = "") -> Response:
    ws = Ws(request)
    channel = _channel(ws, name)
    if channel is None:
        return ws.message(None, 404, "未找到", "没有这个应用登录入口")
    platform = channel.platform
    try:
        held = returned(request, f"app:{name}", state)
        if held is None:
            return stale(ws)
        # DingTalk sends the code as authCode; WeCom and Feishu as code
        code = (request.query_params.get("authCode") or request.query_params.get("code") or "")[:600]
        if not code:
            return refused(ws, f"{PLATFORM_NAMES[platform]}未授权登录")
        redirect = absolute(ws, f"/ws/app/{quote(name)}/back")
        try:
            user_id = await run_in_threadpool(_user_id, channel, code, redirect)
        except NotConfirmed as exc:
            return refused(ws, str(exc))
        except DeliveryError:
            return ws.message(None, 502, "暂时无法登录", f"暂时无法连接{PLATFORM_NAMES[platform]}，请稍后再试。")
        return await finish(ws, lambda session: by_app_id(session, platform, user_id), platform,
                            safe_next(str(held.get("next") or "")))
    finally:
        channel.close()


# -- the platforms ------------------------------------------------------------------------------


def _authorize_url(channel: AppChannel, redirect: str, state: str) -> str:
    login = _base(channel, "login_base_url", LOGIN_BASES[channel.platform])
    if channel.platform == "wecom":
        query = {"appid": getattr(channel, "corp_id", ""), "redirect_uri": redirect, "response_type": "code",
                 "scope": "snsapi_base", "state": state, "agentid": str(getattr(channel, "agent_id", ""))}
        return f"{login}/connect/oauth2/authorize?{urlencode(query)}#wechat_redirect"
    if channel.platform == "dingtalk":
        query = {"redirect_uri": redirect, "response_type": "code", "client_id": channel.app_id(),
                 "scope": "openid", "state": state, "prompt": "consent"}
        return f"{login}/oauth2/auth?{urlencode(query)}"
    query = {"client_id": channel.app_id(), "redirect_uri": redirect, "state": state}
    return f"{login}/open-apis/authen/v1/authorize?{urlencode(query)}"


def _user_id(channel: AppChannel, code: str, redirect: str) -> str:
    return {"wecom": _wecom, "dingtalk": _dingtalk, "feishu": _feishu}[channel.platform](channel, code, redirect)


def _with_app_token(channel: AppChannel,
                    ask: Callable[[str], tuple[dict[str, Any], httpx.Response]]) -> dict[str, Any]:
    """``ask(token)`` with the app's cached token; once more with a new one if the platform's reader
    (the one the notices use: DingTalk's errcode 88 + sub_code included) says the token is refused."""
    key = token_key(channel.platform, channel.base, channel.app_id())
    token = channel.tokens.get(key, channel.fetch_token)
    reply, response = ask(token)
    verdict = channel.read_reply(reply, response)
    if verdict is not None and verdict.kind == Kind.REFRESH:
        channel.tokens.invalidate(key, token)
        reply, response = ask(channel.tokens.get(key, channel.fetch_token))
    return reply


def _wecom(channel: AppChannel, code: str, redirect: str) -> str:
    reply = _with_app_token(channel, lambda token: channel.call(
        "GET", "/cgi-bin/auth/getuserinfo", params={"access_token": token, "code": code}))
    errcode = reply.get("errcode", 0)
    if errcode != 0:
        raise NotConfirmed(f"企业微信未能确认您的身份（错误码 {errcode}：{reply.get('errmsg', '')}）")
    userid = reply.get("userid")
    if not isinstance(userid, str) or not userid:
        raise NotConfirmed("企业微信确认您不是本单位通讯录中的成员")
    return userid


def _dingtalk(channel: AppChannel, code: str, redirect: str) -> str:
    api = _base(channel, "api_base_url", DINGTALK_API)
    body = {"clientId": channel.app_id(), "clientSecret": channel.secret("client_secret_env") or "",
            "code": code, "grantType": "authorization_code"}
    status, reply = _json(channel, "POST", f"{api}/v1.0/oauth2/userAccessToken", json=body)
    user_token = reply.get("accessToken")
    if status != 200 or not isinstance(user_token, str) or not user_token:
        raise NotConfirmed(f"钉钉未能确认您的身份（{reply.get('code', status)}：{reply.get('message', '')}）")
    status, me = _json(channel, "GET", f"{api}/v1.0/contact/users/me",
                       headers={"x-acs-dingtalk-access-token": user_token})
    union_id = me.get("unionId")
    if status != 200 or not isinstance(union_id, str) or not union_id:
        raise NotConfirmed(f"钉钉未返回您的身份（{me.get('code', status)}：{me.get('message', '')}）")
    found = _with_app_token(channel, lambda token: channel.call(
        "POST", "/topapi/user/getbyunionid", params={"access_token": token}, body={"unionid": union_id}))
    result = found.get("result") if isinstance(found.get("result"), dict) else {}
    userid = result.get("userid") if isinstance(result, dict) else None
    if found.get("errcode", 0) != 0 or not isinstance(userid, str) or not userid:
        raise NotConfirmed("钉钉确认您不是本单位通讯录中的成员")
    return userid


def _feishu(channel: AppChannel, code: str, redirect: str) -> str:
    body = {"grant_type": "authorization_code", "client_id": channel.app_id(),
            "client_secret": channel.secret("app_secret_env") or "", "code": code, "redirect_uri": redirect}
    status, reply = _json(channel, "POST", f"{channel.base}/open-apis/authen/v2/oauth/token", json=body)
    user_token = reply.get("access_token")
    if reply.get("code", 0) != 0 or not isinstance(user_token, str) or not user_token:
        raise NotConfirmed(f"飞书未能确认您的身份（{reply.get('code', status)}：{reply.get('error_description', '')}）")
    status, info = _json(channel, "GET", f"{channel.base}/open-apis/authen/v1/user_info",
                         headers={"Authorization": f"Bearer {user_token}"})
    data = info.get("data") if isinstance(info.get("data"), dict) else {}
    id_type = str(getattr(channel, "id_type", "user_id"))
    value = (data.get(id_type) or (data.get("enterprise_email") if id_type == "email" else None)) if data else None
    if info.get("code", 0) != 0 or not isinstance(value, str) or not value:
        raise NotConfirmed(f"飞书未返回您的 {id_type}（请确认应用已获得相应的通讯录权限）")
    return value


def _json(channel: AppChannel, method: str, url: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    """One call to a platform host other than the channel's own: (HTTP status, JSON object).
    Unreachable or an answer that is not JSON is ``DeliveryError`` (try again later)."""
    try:
        response = httpx.request(method, url, timeout=channel.timeout, follow_redirects=False, **kwargs)
        reply = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise channel.failure(f"{httpx.URL(url).host}: {type(exc).__name__}") from None
    if response.status_code >= 500 or not isinstance(reply, dict):
        raise channel.failure(f"{httpx.URL(url).host} answered HTTP {response.status_code}")
    return response.status_code, reply

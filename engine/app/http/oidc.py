"""Single sign-on (统一身份认证) through OpenID Connect: ``/ws/sso/login``, ``/ws/sso/back``.

The client is authlib's (Starlette integration): the provider's endpoints and keys come from its
discovery document (``ISSUER/.well-known/openid-configuration``); the authorisation request
carries a ``state`` and a ``nonce`` (kept in the signed session cookie and checked on the way
back) and a PKCE challenge (S256); the ID token's signature, issuer, audience, expiry and nonce are
checked before a claim of it is believed. The claim ``[sso] claim`` names the duban account — its
login name, or with ``[sso] unit_claim`` the unit's own account ``UNIT/NAME`` — and the session
that follows is the workspace's one kind (``outside.finish``). A subject that names no account is
refused with a page; nobody gets an account by signing in.

Logging out of a session begun here also ends it at the provider (RP-initiated logout: its
``end_session_endpoint`` with the ID token as hint), unless ``[sso] logout = false``.

``[sso]`` in config.toml: ``issuer``, ``client_id``, ``client_secret_env`` (the variable holding the
secret: never the secret itself), ``scope``, ``claim``, ``unit_claim``, ``label`` (the button),
``logout``, ``timeout``. CAS is not offered: see docs/signin.md.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...accounts.external import by_claim
from ...config import Config, SsoConfig
from .outside import absolute, begin, finish, refused, returned, stale
from .workspace.routes import Ws

log = logging.getLogger("duban.sso")
router = APIRouter(include_in_schema=False)

ID_TOKEN = "sso_id_token"  # kept in the session cookie for the logout's hint


def configured(config: Config) -> SsoConfig | None:
    """``[sso]``, None when it is not configured (config.toml's loading has validated it)."""
    return config.sso


def _authlib() -> tuple[Any, type[Exception]]:
    """authlib's Starlette client and its error, imported on first use (the CLI never needs them).
    authlib >= 1.7 warns that it would rather run on ``httpx2``; plain httpx is what duban ships."""
    import authlib.deprecate  # type: ignore[import-untyped]  # noqa: F401 - its "always" filter first, ours over it

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The httpx module is deprecated")
        from authlib.integrations.base_client import OAuthError  # type: ignore[import-untyped]
        from authlib.integrations.starlette_client import OAuth  # type: ignore[import-untyped]
    return OAuth, OAuthError


def _client(request: Request, settings: SsoConfig) -> Any:
    """The provider's client (authlib's ``StarletteOAuth2App``), made once per settings: the
    discovery document is fetched once."""
    secret = os.environ.get(settings.client_secret_env, "")
    key = (settings, secret)
    held: dict[Any, Any] = request.app.state.__dict__.setdefault("sso_clients", {})
    if key not in held:
        held.clear()  # a reload changed [sso]: the old client goes
        oauth = _authlib()[0]()
        held[key] = oauth.register(
            "sso", client_id=settings.client_id, client_secret=secret or None,
            server_metadata_url=settings.issuer.rstrip("/") + "/.well-known/openid-configuration",
            client_kwargs={"scope": settings.scope, "code_challenge_method": "S256", "timeout": settings.timeout})
    return held[key]


@router.get("/ws/sso/login")
async def sso_login(request: Request, next: str = "") -> Response:
    ws = Ws(request)
    settings = configured(ws.runtime.config)
    if settings is None:
        return ws.message(None, 404, "未找到", "未配置统一身份认证")
    state = begin(request, "sso", next)
    try:
        return await _client(request, settings).authorize_redirect(request, absolute(ws, "/ws/sso/back"), state=state)
    except Exception:  # discovery unreachable or malformed: a page, not a traceback
        log.exception("sso: cannot reach the identity provider")
        return ws.message(None, 502, "暂时无法登录", "暂时无法连接统一身份认证，请稍后再试，或使用用户名和密码登录。")


@router.get("/ws/sso/back")
async def sso_back(request: Request, state: str = "") -> Response:
    ws = Ws(request)
    settings = configured(ws.runtime.config)
    if settings is None:
        return ws.message(None, 404, "未找到", "未配置统一身份认证")
    held = returned(request, "sso", state)
    if held is None:
        return stale(ws)
    client = _client(request, settings)
    oauth_error = _authlib()[1]
    try:
        token = await client.authorize_access_token(request)
        claims = dict(token.get("userinfo") or {})
        if settings.claim not in claims or (settings.unit_claim and settings.unit_claim not in claims):
            claims.update(await client.userinfo(token=token))
    except oauth_error as exc:
        log.warning("sso: the provider refused or the answer did not check out: %s", getattr(exc, "error", exc))
        return refused(ws, "统一身份认证未完成登录")
    except Exception:  # the provider unreachable mid-way
        log.exception("sso: cannot complete the sign-in")
        return ws.message(None, 502, "暂时无法登录", "暂时无法连接统一身份认证，请稍后再试。")
    name = claims.get(settings.claim)
    unit = claims.get(settings.unit_claim) if settings.unit_claim else ""
    response = await finish(ws, lambda session: by_claim(session, str(name or ""), str(unit or "")), "oidc",
                            str(held.get("next") or ""))
    id_token = token.get("id_token")
    if response.status_code == 303 and settings.logout and isinstance(id_token, str) and len(id_token) < 3000:
        request.session[ID_TOKEN] = id_token
    return response


async def logout_redirect(request: Request, ws: Ws, id_token: str) -> Response | None:
    """Where the browser goes after duban's logout when the session came through the provider:
    its end-session page (which comes back to our login page); None to stay here."""
    settings = configured(ws.runtime.config)
    if settings is None or not settings.logout or not id_token:
        return None
    try:
        client = _client(request, settings)
        metadata = await client.load_server_metadata()
        if not metadata.get("end_session_endpoint"):
            return None
        return await client.logout_redirect(request, post_logout_redirect_uri=absolute(ws, "/ws/login"),
                                            id_token_hint=id_token, client_id=settings.client_id)
    except Exception:  # the provider unreachable: duban's own session is ended anyway
        log.exception("sso: cannot reach the provider to log out there")
        return None

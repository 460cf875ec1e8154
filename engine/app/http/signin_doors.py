"""The login page and the logout as the outside doors extend them (routed before the workspace's).

* ``GET /ws/login``: a browser that was sent here from a page (``?next=``) and whose User-Agent is an
  organisation app's built-in one goes through that app's web login (``signin_apps``) instead of
  seeing a password form it has no password for; anyone else gets the form, with the single
  sign-on button when ``[sso]`` is configured. The bare ``/ws/login`` (the refusal page's link)
  always shows the form: an app user refused once is not sent round again.
* ``POST /ws/logout``: the workspace's logout, then, for a session begun at the identity provider,
  its end-session page (``oidc.logout_redirect``).
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from .oidc import ID_TOKEN, configured, logout_redirect
from .signin_apps import door_for_agent
from .workspace.routes import Ws, safe_next
from .workspace.routes import logout as workspace_logout

router = APIRouter(include_in_schema=False)


@router.get("/ws/login")
def login_page(request: Request, next: str = "") -> Response:
    ws = Ws(request)
    door = door_for_agent(ws.runtime.config.channels, request.headers.get("user-agent", "")) if next else None
    if door is not None:
        return RedirectResponse(ws.url(f"/ws/app/{quote(door, safe='')}", next=safe_next(next)), 303)
    sso = configured(ws.runtime.config)
    return ws.render("ws_login.html.j2", None, next=safe_next(next), login_name="",
                     sso_label=sso.label if sso is not None else "")


@router.post("/ws/logout")
async def logout(request: Request) -> Response:
    held = request.session.get(ID_TOKEN)
    response = await workspace_logout(request)
    if isinstance(held, str) and response.status_code == 303:
        away = await logout_redirect(request, Ws(request), held)
        if away is not None:
            return away
    return response

"""Issue #23 item 2: single sign-on through OpenID Connect, against a real provider on loopback.

The provider is ``oidc-provider-mock`` (PyPI; a Flask application on authlib's server side) served
by werkzeug on 127.0.0.1 in a thread, with nonces required. Every request it receives is recorded,
so the test sees what duban sent: the PKCE challenge and, in the token request, the verifier that
answers it. The claim ``preferred_username`` with the claim ``unit`` names the unit's own account.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.peers import free_port
from tests.test_workspace import EXAMPLE, LEDGER, NOW, T0, UNIT, _csrf, workspace

# the provider's own use of authlib's server side is deprecated in places: not duban's to fix
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@dataclass
class Provider:
    url: str
    seen: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)  # method, path, params

    def params(self, path: str) -> list[dict[str, list[str]]]:
        return [p for _, seen_path, p in self.seen if seen_path == path]

    def user(self, sub: str, **claims: Any) -> None:
        assert httpx.put(f"{self.url}/users/{sub}", json=claims).status_code == 204


@contextmanager
def provider() -> Iterator[Provider]:
    import authlib.deprecate  # noqa: F401 - it installs an "always" filter; ours must come after it
    import werkzeug.serving

    with warnings.catch_warnings():  # the provider's imports of authlib's deprecated modules
        warnings.simplefilter("ignore")
        import oidc_provider_mock

    app = oidc_provider_mock.app(require_nonce=True)
    found = Provider("")

    def recording(environ: dict[str, Any], start_response: Any) -> Any:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        params = parse_qs(environ.get("QUERY_STRING", ""))
        if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            params.update(parse_qs(body.decode()))
        found.seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], params))
        return app(environ, start_response)

    server = werkzeug.serving.make_server("127.0.0.1", 0, recording, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    found.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield found
    finally:
        server.shutdown()
        thread.join(5)


@pytest.fixture
def sso_office(project, cli, monkeypatch) -> Iterator[tuple[str, Provider]]:
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # the provider's own rule: https, except on loopback tests
    monkeypatch.setenv("SSO_SECRET", "duban-client-secret")
    port = free_port()
    with provider() as idp:
        config = project / "config.toml"
        config.write_text(config.read_text(encoding="utf-8") + f"""
[board]
public_url = "http://127.0.0.1:{port}"

[sso]
issuer = "{idp.url}"
client_id = "duban"
client_secret_env = "SSO_SECRET"
claim = "preferred_username"
unit_claim = "unit"
""", encoding="utf-8")
        assert cli("init", "--at", T0).code == 0
        imported = cli("ledger", "import", EXAMPLE, "--at", T0)
        assert imported.code == 0, imported.err
        idp.user("alice", preferred_username="办公室", unit=UNIT, name="张三")
        idp.user("mallory", preferred_username="纪检组", unit="另一个单位")
        with workspace(project, port, at=NOW) as base:
            yield base, idp


def _sign_on(web: httpx.Client, idp: Provider, sub: str) -> httpx.Response:
    """Begin at duban, authorise ``sub`` at the provider's form, come back: duban's answer."""
    start = web.get("/ws/sso/login", params={"next": "/ws/"})
    assert start.status_code == 302 and start.headers["location"].startswith(f"{idp.url}/oauth2/authorize?")
    consent = httpx.post(start.headers["location"], data={"sub": sub})
    assert consent.status_code == 302, consent.text[:300]
    back = consent.headers["location"]
    assert back.startswith(str(web.base_url).rstrip("/") + "/ws/sso/back?")
    return web.get(back)


def test_sign_in_maps_the_claim_to_the_units_account_and_logout_ends_both_sessions(sso_office):
    base, idp = sso_office
    with httpx.Client(base_url=base, timeout=30) as web:
        login = web.get("/ws/login")
        assert 'id="sso"' in login.text and "统一身份认证登录" in login.text
        landed = _sign_on(web, idp, "alice")
        assert landed.status_code == 303 and landed.headers["location"] == "/ws/"
        todo = web.get("/ws/")
        assert todo.status_code == 200 and "我的待办" in todo.text
        assert f"{LEDGER}/7" in todo.text  # 办公室's item of that unit
        # discovery, state, nonce and PKCE: what duban sent, and that the verifier answers the challenge
        assert idp.params("/.well-known/openid-configuration")
        asked = idp.params("/oauth2/authorize")[0]
        assert asked["code_challenge_method"] == ["S256"] and asked["nonce"] and asked["state"]
        verifier = idp.params("/oauth2/token")[0]["code_verifier"][0]
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        assert asked["code_challenge"] == [digest]

        out = web.post("/ws/logout", params={"csrf": _csrf(todo.text)}, data={"csrf": _csrf(todo.text)})
        assert out.status_code == 302 and out.headers["location"].startswith(f"{idp.url}/oauth2/end_session?")
        ending = parse_qs(urlsplit(out.headers["location"]).query)
        assert ending["post_logout_redirect_uri"] == [f"{base}/ws/login"] and ending["id_token_hint"]
        confirmed = httpx.post(f"{idp.url}/oauth2/end_session/confirm",
                               data={"redirect_uri": ending["post_logout_redirect_uri"][0]})
        assert confirmed.status_code == 302 and confirmed.headers["location"] == f"{base}/ws/login"
        assert web.get("/ws/").status_code == 303  # the session ended on duban's side too


def test_an_unknown_subject_is_refused_with_a_page_and_no_session(sso_office):
    base, idp = sso_office
    with httpx.Client(base_url=base, timeout=30) as web:
        refused = _sign_on(web, idp, "mallory")
        assert refused.status_code == 403
        assert "无法登录" in refused.text and "没有与此身份对应的督办账号" in refused.text
        assert web.get("/ws/").status_code == 303
        # a subject the provider knows nothing about has no unit claim: refused as well
        assert _sign_on(web, idp, "nobody@example.org").status_code == 403
        # an answer that is not the one this browser asked for signs nobody in
        start = web.get("/ws/sso/login")
        back = httpx.post(start.headers["location"], data={"sub": "alice"}).headers["location"]
        forged = re.sub(r"state=[^&]+", "state=forged", back)
        assert web.get(forged).status_code == 400
        assert web.get(back).status_code == 400  # the round trip was spent by the forged one
        assert web.get("/ws/").status_code == 303

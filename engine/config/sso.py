"""``[sso]``: single sign-on (统一身份认证) by OpenID Connect, served by ``engine.app.http.oidc``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SsoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: str = Field(min_length=8)  # discovery: ISSUER/.well-known/openid-configuration
    client_id: str = Field(min_length=1)
    client_secret_env: str = "DUBAN_SSO_CLIENT_SECRET"  # the variable holding the secret, never the secret
    scope: str = "openid profile"
    claim: str = "preferred_username"  # names the account: its login name
    unit_claim: str = ""  # with it, the unit's own account UNIT/NAME
    label: str = "统一身份认证登录"  # the login page's button
    logout: bool = True  # logging out of duban also ends the provider's session
    timeout: float = Field(default=10.0, gt=0, le=120)

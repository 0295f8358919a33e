"""Intuit's OAuth 2.0 on its real paths: appcenter.intuit.com's authorize and consent page (the user picks one
company), oauth.platform.intuit.com's token endpoint (HTTP Basic client authentication only), developer.api.intuit.com's
revocation (a JSON body ``{"token": ...}``, as intuit-oauth sends it) and developer.intuit.com's OpenID discovery
document, which intuit-oauth's ``AuthClient`` reads first.

Reference (``provider-apis.md`` section 2, "OAuth2"): access tokens live an hour; refresh tokens 100 days, and a
refresh may answer a new one (here: always), so only the newest is safe to keep; the superseded one keeps working
for a day (an assumption: a refresh whose answer was lost can be retried). The callback carries ``realmId``, the
company the user chose; a token reaches that company only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from providers.quickbooks.sandbox.company import Company
from providers.quickbooks.sandbox_credentials import DEMO_USER_EMAIL
from providers.sandbox_kit.clock import DAY_S, Clock
from providers.sandbox_kit.metering import CallStats
from providers.sandbox_kit.oauth import AuthCode, Consent, Grant, OAuthError, OAuthPolicy, OAuthServer
from providers.sandbox_kit.oauth_http import ConsentPages, OAuthPaths, Prepare, add_oauth_routes, standard_error
from providers.sandbox_kit.wire import basic_credentials, bearer_token

ACCOUNTING = "com.intuit.quickbooks.accounting"
SCOPES = frozenset({ACCOUNTING, "com.intuit.quickbooks.payment", "openid", "profile", "email", "phone", "address"})
REFRESH_TOKEN_S = 100 * 86_400
POLICY = OAuthPolicy(
    access_token_s=3600,
    refresh_grace_s=DAY_S,
    refresh_idle_s=REFRESH_TOKEN_S,
    refresh_scope=None,
    client_auth=frozenset({"basic"}),
)
PATHS = OAuthPaths("/connect/oauth2", "/oauth2/v1/tokens/bearer")
REVOKE_PATH = "/v2/oauth2/tokens/revoke"
DISCOVERY_PATHS = ("/.well-known/openid_configuration", "/.well-known/openid_configuration/")
USERINFO_PATH = "/v1/openid_connect/userinfo"
JWKS_PATH = "/op/v1/jwks"
PAGES = ConsentPages(
    title="Intuit | Connect",
    heading="{app} wants to connect to your QuickBooks company",
    tenants_legend="Company",
    error_title="Intuit | Error",
    scope_text={ACCOUNTING: "Manage your accounting data", "openid": "Verify your identity"},
)


class IntuitIdentity(OAuthServer):
    def __init__(self, clock: Clock, stats: CallStats, companies: Mapping[str, Company]) -> None:
        super().__init__(clock, POLICY, stats)
        self.companies = companies  # the sandbox's, by realmId

    def user_of(self, login_hint: str | None) -> str:
        known = {company.user_email.lower() for company in self.companies.values()}
        return login_hint if login_hint and login_hint.lower() in known else DEMO_USER_EMAIL

    def known_scope(self, scope: str) -> bool:
        return scope in SCOPES

    def offered_tenants(self, consent: Consent) -> list[tuple[str, str]]:
        if ACCOUNTING not in consent.scopes:
            return []
        user = consent.user.lower()
        return [(realm, c.name) for realm, c in self.companies.items() if c.user_email.lower() == user]

    def decide(self, request_id: str, allow: bool, tenant_ids: Sequence[str]) -> tuple[str, dict[str, str]]:
        # One company per authorisation: the first the user picked.
        return super().decide(request_id, allow, list(tenant_ids)[:1])

    def redirect_params(self, code: AuthCode) -> dict[str, str]:
        return {"realmId": code.tenant_ids[0]} if code.tenant_ids else {}

    def token_extras(self, grant: Grant, now: float) -> dict[str, object]:
        return {"x_refresh_token_expires_in": REFRESH_TOKEN_S}

    def reaches(self, token: str | None, realm_id: str) -> bool:
        record = self.access_tokens.get(token or "")
        return record is not None and realm_id in self.grants[record.grant_id].tenant_ids


def register_identity_routes(
    app: FastAPI,
    identity: IntuitIdentity,
    lock: threading.RLock,
    *,
    prepare: Prepare,
    unauthorized: Callable[[Request], Response],
) -> None:
    errors = standard_error("Intuit")
    add_oauth_routes(
        app, identity, lock, paths=PATHS, pages=PAGES, prepare=prepare, user_of=identity.user_of, error_response=errors
    )

    @app.post(REVOKE_PATH)
    async def revoke(request: Request) -> Response:
        await prepare(request)
        try:
            body = await request.json()
        except ValueError:
            body = None
        if "json" not in request.headers.get("content-type", "") or not isinstance(body, dict):
            return errors(OAuthError("invalid_request", 'the body must be JSON: {"token": "..."}'))
        with lock:
            try:
                identity.revoke({"token": str(body.get("token", ""))}, basic_credentials(request))
            except OAuthError as exc:
                return errors(exc)
        return Response(status_code=200)

    async def discovery(request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return JSONResponse(_discovery(base))

    for path in DISCOVERY_PATHS:
        app.add_api_route(path, discovery, methods=["GET"], include_in_schema=False)

    @app.get(USERINFO_PATH)
    async def userinfo(request: Request) -> Response:
        await prepare(request)
        with lock:
            found = identity.authenticate(bearer_token(request))
            if isinstance(found, str):
                return unauthorized(request)
            return JSONResponse({"sub": found.grant_id, "email": found.user, "emailVerified": True})

    @app.get(JWKS_PATH)
    async def jwks() -> Response:
        return JSONResponse({"keys": []})


def _discovery(base: str) -> dict[str, Any]:
    """The OpenID configuration intuit-oauth's ``get_discovery_doc`` reads (reference "SDKs")."""
    return {
        "issuer": "https://oauth.platform.intuit.com/op/v1",
        "authorization_endpoint": f"{base}{PATHS.authorize}",
        "token_endpoint": f"{base}{PATHS.token}",
        "userinfo_endpoint": f"{base}{USERINFO_PATH}",
        "revocation_endpoint": f"{base}{REVOKE_PATH}",
        "jwks_uri": f"{base}{JWKS_PATH}",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": sorted(SCOPES),
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
    }

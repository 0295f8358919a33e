"""Stripe Connect OAuth (Standard accounts) on connect.stripe.com's paths: the kit's OAuth server with Stripe's
rules, and ``/oauth/deauthorize``.

https://docs.stripe.com/connect/oauth-reference:
- ``GET /oauth/authorize?response_type=code&client_id=ca_...&scope=read_write&state=...`` (scope defaults to
  ``read_only``) -> the consent page (the kit's) -> ``redirect_uri?code=ac_...&scope=...&state=...``.
- ``POST /oauth/token`` (``grant_type=authorization_code`` or ``refresh_token``), the platform's secret key as
  ``client_secret`` in the body or as the bearer/basic key (the official SDK sends it as ``Authorization: Bearer``)
  -> ``{"access_token": "sk_test_...", "livemode", "refresh_token", "scope", "stripe_publishable_key",
  "stripe_user_id": "acct_...", "token_type": "bearer"}``: no expiry. The platform then calls with its own key and
  ``Stripe-Account: acct_...``; the access token also works as the connected account's key.
- ``POST /oauth/deauthorize`` (``client_id``, ``stripe_user_id``, the platform's key) -> ``{"stripe_user_id"}``:
  every token of the grant stops working and ``Stripe-Account`` calls for it are refused.
- Errors are OAuth's ``{"error", "error_description"}`` (``invalid_grant``, ``invalid_client``, ...).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from providers.sandbox_kit.clock import DAY_S, Clock
from providers.sandbox_kit.metering import CallStats
from providers.sandbox_kit.oauth import App, Consent, Grant, OAuthError, OAuthPolicy, OAuthServer
from providers.sandbox_kit.oauth_http import ConsentPages, OAuthPaths, Prepare, add_oauth_routes
from providers.sandbox_kit.wire import basic_credentials, bearer_token, form_pairs
from providers.stripe.sandbox.account import StripeAccount

POLICY = OAuthPolicy(
    access_token_s=int(100 * 365 * DAY_S),  # Connect access tokens do not expire; they are revoked
    rotate_refresh_tokens=False, refresh_scope=None, client_auth=frozenset({"body"}), loopback_redirects=True,
)  # fmt: skip
TOKEN_PATH = "/oauth/token"  # noqa: S105 -- a path
PAGES = ConsentPages(
    title="Stripe | Connect", heading="{app} would like to connect to your Stripe account",
    tenants_legend="Stripe accounts", error_title="Stripe | Error",
    scope_text={"read_write": "Create and manage payments and data", "read_only": "View payments and data"},
)  # fmt: skip
SCOPES = frozenset({"read_write", "read_only"})


class StripeConnect(OAuthServer):
    """Platforms are OAuth apps (``client_id`` ``ca_...``) authenticated by their account's secret key."""

    def __init__(self, clock: Clock, stats: CallStats, accounts: Mapping[str, StripeAccount], user: str) -> None:
        super().__init__(clock, POLICY, stats)
        self.accounts, self.user = accounts, user
        self.platform_of: dict[str, str] = {}  # client id -> the platform account
        self.keys: dict[str, str] = {}  # access token -> the connected account it is a key of

    def known_scope(self, scope: str) -> bool:
        return scope in SCOPES

    def begin(self, params: Mapping[str, str], user: str) -> tuple[str, Consent]:
        return super().begin({**params, "scope": params.get("scope") or "read_only"}, user)

    def offered_tenants(self, consent: Consent) -> list[tuple[str, str]]:
        platform = self.platform_of.get(consent.client_id)
        return [(a.id, a.name) for a in self.accounts.values() if a.email == consent.user and a.id != platform][:1]

    def new_access_token(self, grant: Grant, now: float, lifetime: int) -> str:
        token = f"sk_test_51{secrets.token_urlsafe(48).replace('-', 'x').replace('_', 'y')}"
        if grant.tenant_ids:
            self.keys[token] = grant.tenant_ids[0]
        return token

    def token_answer(self, grant: Grant, body: dict[str, object]) -> dict[str, object]:
        account = self.accounts[grant.tenant_ids[0]] if grant.tenant_ids else None
        answer = {k: v for k, v in body.items() if k != "expires_in"}
        answer.update(token_type="bearer", livemode=False)  # noqa: S106 -- a token type
        if account is not None:
            answer.update(stripe_user_id=account.id, stripe_publishable_key=f"pk_test_{account.id.partition('_')[2]}")
        return answer

    def authenticate_app(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> App:
        """The platform by its secret key: ``client_secret`` in the body, or the bearer/basic key."""
        raise NotImplementedError("use authenticate_platform: Stripe authenticates platforms by their API key")

    def authenticate_platform(self, key: str | None, key_owner: Callable[[str], str | None]) -> App:
        owner = key_owner(key) if key else None
        client_id = next((c for c, platform in self.platform_of.items() if platform == owner), None)
        if client_id is None:
            raise OAuthError("invalid_client", "No such application, or the key is not the platform's", 401)
        return self.apps[client_id]

    def token_for(self, app: App, form: Mapping[str, str]) -> dict[str, object]:
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            found = self.codes.get(form.get("code", ""))
            if found is not None and "redirect_uri" not in form:
                form = {**form, "redirect_uri": found.consent.redirect_uri}  # Stripe does not require it
            return self._exchange_code(app, form)
        if grant_type == "refresh_token":
            return self._refresh(app, form)
        raise OAuthError("unsupported_grant_type", f"Unsupported grant type: {grant_type}")

    def connected(self, platform: str, account: str) -> bool:
        """Whether ``platform`` may act for ``account`` (a live grant of one of its apps reaches it)."""
        apps = {client for client, owner in self.platform_of.items() if owner == platform}
        return any(g.client_id in apps and not g.revoked and account in g.tenant_ids for g in self.grants.values())

    def deauthorize(self, app: App, account: str) -> bool:
        found = False
        for grant in self.grants.values():
            if grant.client_id == app.client_id and account in grant.tenant_ids and not grant.revoked:
                grant.revoked, found = True, True
        for record in self.access_tokens.values():
            if record.client_id == app.client_id and self.grants[record.grant_id].revoked:
                record.revoked = True
        return found

    def key_account(self, token: str) -> str | None:
        """The connected account an access token is a key of, while its grant lives."""
        record = self.access_tokens.get(token)
        if record is None or record.revoked or self.grants[record.grant_id].revoked:
            return None
        return self.keys.get(token)


def register_connect_routes(
    app: FastAPI, connect: StripeConnect, lock: threading.RLock, *, prepare: Prepare,
    key_owner: Callable[[str], str | None],
) -> None:  # fmt: skip
    add_oauth_routes(  # the authorize and consent pages; the token endpoint authenticates platforms by key
        app, connect, lock, paths=OAuthPaths("/oauth/authorize", None), pages=PAGES,
        prepare=prepare, user_of=lambda hint: connect.user, error_response=_oauth_error,
    )  # fmt: skip

    def platform_key(request: Request, form: Mapping[str, str]) -> str | None:
        basic = basic_credentials(request)
        return form.get("client_secret") or bearer_token(request) or (basic[0] if basic else None)

    @app.post(TOKEN_PATH)
    async def token(request: Request) -> Response:
        await prepare(request)
        form = dict(await form_pairs(request))
        with lock:
            try:
                platform = connect.authenticate_platform(platform_key(request, form), key_owner)
                body: dict[str, Any] = dict(connect.token_for(platform, form))
            except OAuthError as exc:
                return _oauth_error(exc)
        return JSONResponse(body)

    @app.post("/oauth/deauthorize")
    async def deauthorize(request: Request) -> Response:
        await prepare(request)
        form = dict(await form_pairs(request))
        with lock:
            try:
                platform = connect.authenticate_platform(platform_key(request, form), key_owner)
                if form.get("client_id") != platform.client_id:
                    raise OAuthError("invalid_client", "client_id does not belong to this key", 401)
                account = form.get("stripe_user_id", "")
                if not connect.deauthorize(platform, account):
                    raise OAuthError("invalid_client", f"This application is not connected to stripe_user_id {account}")
            except OAuthError as exc:
                return _oauth_error(exc)
        return JSONResponse({"stripe_user_id": account})


def _oauth_error(exc: OAuthError) -> Response:
    body = {"error": exc.error, "error_description": exc.description or exc.error}
    return JSONResponse(body, status_code=exc.status)

"""The Microsoft identity platform v2.0 on its real paths (https://learn.microsoft.com/en-us/entra/identity-platform/
v2-oauth2-auth-code-flow): ``/{tenant}/oauth2/v2.0/authorize`` and ``/{tenant}/oauth2/v2.0/token`` of
login.microsoftonline.com, the tenant segment being ``common``, ``organizations``, ``consumers``, or an
organisation's id or domain (another answers AADSTS90002).

- Refresh tokens only with ``offline_access``; they rotate: every refresh answers a new one, which the client must
  keep. The old one is not revoked and lives on until its own expiry, 90 days after it was issued
  (https://learn.microsoft.com/en-us/entra/identity-platform/refresh-tokens).
- Access tokens last 3600 s (Microsoft randomises 60-90 minutes: the sandbox gives the shortest) and are JWTs for
  Graph (``aud`` Graph's app id) carrying ``tid`` (the user's organisation), ``oid``, ``upn`` and ``scp``.
- Errors are AADSTS bodies (``errors``). The knob ``admin_consent_required`` plays an organisation whose users may not
  consent to the app's permissions themselves: AADSTS65001 on the way back from sign-in, or at the token endpoint.
- Scopes are Graph's, short (``Mail.Read``) or qualified (``https://graph.microsoft.com/Mail.Read``), any case.

Deviations: Microsoft requires PKCE of single-page apps only; the sandbox requires an S256 challenge of every app,
since VRTX's connect declares PKCE and must keep sending it. No revocation endpoint (there is none), no admin-consent
endpoint, no id tokens, and the tenant segment does not restrict who may sign in.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from providers.microsoft365.sandbox.directory import User
from providers.microsoft365.sandbox.errors import aadsts, identity_error_body
from providers.microsoft365.sandbox_credentials import DEMO_MAILBOX
from providers.sandbox_kit.clock import Clock
from providers.sandbox_kit.metering import CallStats
from providers.sandbox_kit.oauth import Consent, Grant, OAuthError, OAuthPolicy, OAuthServer, jwt, jwt_claims
from providers.sandbox_kit.oauth_http import ConsentPages, OAuthPaths, Prepare, add_oauth_routes

GRAPH = "https://graph.microsoft.com/"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"  # Microsoft Graph's own application id: the tokens' audience
GRAPH_SCOPES = frozenset(
    s.lower()
    for s in ("User.Read", "Mail.Read", "Mail.ReadWrite", "Mail.Send", "Calendars.Read", "Calendars.ReadWrite")
)
# Who may read mail, and calendars (either permission of each pair).
MAIL_SCOPES = frozenset({"mail.read", "mail.readwrite"})
CALENDAR_SCOPES = frozenset({"calendars.read", "calendars.readwrite"})
OPENID_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
SPECIAL_TENANTS = frozenset({"common", "organizations", "consumers"})
POLICY = OAuthPolicy(
    access_token_s=3600, rotate_refresh_tokens=True, refresh_grace_s=None, refresh_idle_s=90 * 86_400.0
)
PATHS = OAuthPaths("/{tenant}/oauth2/v2.0/authorize", "/{tenant}/oauth2/v2.0/token", consent="/common/Consent/Set")
PAGES = ConsentPages(
    title="Sign in to your account",
    heading="{app} needs permission to access resources in your organisation",
    tenants_legend="Organisation",
    error_title="Sign in to your account",
    scope_text={
        "offline_access": "Maintain access to data you have given it access to",
        "User.Read": "Sign you in and read your profile",
        "Mail.Read": "Read your mail",
        "Mail.ReadWrite": "Read and write access to your mail",
        "Mail.Send": "Send mail as you",
        "Calendars.Read": "Read your calendars",
        "Calendars.ReadWrite": "Have full access to your calendars",
    },
)
AdminConsent = Literal["redirect", "token"] | None


def graph_scope(scope: str) -> str:
    """A delegated scope by its short, lower-case name (``https://graph.microsoft.com/Mail.Read`` -> ``mail.read``)."""
    lowered = scope.lower()
    return lowered.removeprefix(GRAPH)


class MicrosoftIdentity(OAuthServer):
    def __init__(
        self,
        clock: Clock,
        stats: CallStats,
        users: Mapping[str, User],
        tenants: Mapping[str, str],
        admin_consent: Callable[[], AdminConsent],
    ) -> None:
        super().__init__(clock, POLICY, stats)
        self.users = users  # by lower-case mail or user principal name
        self.tenants = tenants  # organisation id -> its domain
        self.admin_consent = admin_consent  # the knob, read on every request

    def user_of(self, login_hint: str | None) -> str:
        """The signed-in user (by lower-case mail): the login hint's, else the demo user."""
        hinted = self.users.get((login_hint or "").lower())
        if hinted is not None:
            return self._key(hinted)
        demo = self.users.get(DEMO_MAILBOX.lower())
        return self._key(demo) if demo is not None else sorted(self.users)[0]

    def tenant_known(self, segment: str) -> bool:
        lowered = segment.lower()
        return lowered in SPECIAL_TENANTS or lowered in self.tenants or lowered in self.tenants.values()

    def known_scope(self, scope: str) -> bool:
        return graph_scope(scope) in GRAPH_SCOPES or scope.lower() in OPENID_SCOPES

    def begin(self, params: Mapping[str, str], user: str) -> tuple[str, Consent]:
        if not params.get("code_challenge"):
            raise OAuthError("invalid_request", aadsts(9002325, "Proof Key for Code Exchange is required."))
        return super().begin(params, user)

    def decide(self, request_id: str, allow: bool, tenant_ids: Sequence[str]) -> tuple[str, dict[str, str]]:
        consent = self.consents.get(request_id)
        if allow and consent is not None and self.admin_consent() == "redirect":
            del self.consents[request_id]
            state = {"state": consent.state} if consent.state is not None else {}
            return consent.redirect_uri, {
                "error": "consent_required",
                "error_description": aadsts(65001, self._not_consented(consent.client_id)),
                **state,
            }
        return super().decide(request_id, allow, tenant_ids)

    def token(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> dict[str, object]:
        if self.admin_consent() == "token" and form.get("grant_type") in ("authorization_code", "refresh_token"):
            app = self.authenticate_app(form, basic)
            raise OAuthError("invalid_grant", aadsts(65001, self._not_consented(app.client_id)))
        return super().token(form, basic)

    def new_access_token(self, grant: Grant, now: float, lifetime: int) -> str:
        user = self.users[grant.user]
        claims = {
            **jwt_claims(grant, now, lifetime, issuer=f"https://sts.windows.net/{user.tenant_id}/",
                         audience=GRAPH_APP_ID, subject=user.id),
            "iat": int(now), "ver": "1.0", "tid": user.tenant_id, "oid": user.id, "upn": user.user_principal_name,
            "name": user.display_name, "appid": grant.client_id,
            "scp": " ".join(s for s in grant.scopes if graph_scope(s) in GRAPH_SCOPES),
        }  # fmt: skip
        return jwt(claims, key_id="sandbox-graph")

    def token_extras(self, grant: Grant, now: float) -> dict[str, object]:
        return {"ext_expires_in": self.policy.access_token_s}

    def _not_consented(self, client_id: str) -> str:
        app = self.apps.get(client_id)
        name = app.name if app is not None else client_id
        return (
            f"The user or administrator has not consented to use the application with ID '{client_id}' named "
            f"'{name}'. Send an interactive authorization request for this user and resource."
        )

    @staticmethod
    def _key(user: User) -> str:
        return (user.mail or user.user_principal_name).lower()


class UnknownTenant(Exception):
    """A tenant segment naming no organisation the sandbox has."""

    def __init__(self, segment: str) -> None:
        super().__init__(segment)
        self.segment = segment

    def description(self) -> str:
        return aadsts(
            90002,
            f"Tenant '{self.segment}' not found. Check to make sure you have the correct tenant ID and are signing "
            "into the correct cloud.",
        )


def register_identity_routes(
    app: FastAPI, identity: MicrosoftIdentity, lock: threading.RLock, *, prepare: Prepare
) -> None:
    async def checked(request: Request) -> None:
        await prepare(request)
        segment = str(request.path_params.get("tenant", "common"))
        with lock:
            known = identity.tenant_known(segment)
        if not known:
            raise UnknownTenant(segment)

    def error_response(exc: OAuthError) -> Response:
        body = identity_error_body(exc.error, exc.description, identity.clock())
        return JSONResponse(body, status_code=exc.status, headers={"Cache-Control": "no-store"})

    @app.exception_handler(UnknownTenant)
    async def unknown_tenant(request: Request, exc: UnknownTenant) -> Response:
        if request.method == "GET":  # the authorize endpoint: a page for the user, never a redirect
            return HTMLResponse(
                f"<!doctype html><html><head><title>{PAGES.error_title}</title></head><body>"
                f'<h1>Sorry, but we\'re having trouble signing you in.</h1><p id="error_description">'
                f"{html.escape(exc.description())}</p></body></html>",
                status_code=400,
            )
        return error_response(OAuthError("invalid_request", exc.description()))

    add_oauth_routes(
        app, identity, lock, paths=PATHS, pages=PAGES, prepare=checked, user_of=identity.user_of,
        error_response=error_response,
    )  # fmt: skip

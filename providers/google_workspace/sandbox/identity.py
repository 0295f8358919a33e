"""Google's OAuth 2.0 on its real paths (https://developers.google.com/identity/protocols/oauth2/web-server):
accounts.google.com's authorize endpoint, oauth2.googleapis.com's token and revoke endpoints, and the signing keys
at www.googleapis.com/oauth2/v3/certs. Refresh tokens only with ``access_type=offline``; they do not rotate
(a refresh answers no new one) and die on revocation or after six months unused. Revoking any token of a grant,
access or refresh, revokes the grant; revoke needs no client authentication.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from providers.google_workspace.sandbox_credentials import DEMO_MAILBOX
from providers.sandbox_kit.clock import Clock
from providers.sandbox_kit.metering import CallStats
from providers.sandbox_kit.oauth import Consent, OAuthError, OAuthPolicy, OAuthServer
from providers.sandbox_kit.oauth_http import ConsentPages, OAuthPaths, Prepare, add_oauth_routes
from providers.sandbox_kit.wire import form_pairs

SCOPE_PREFIX = "https://www.googleapis.com/auth/"
GMAIL_READ = frozenset(
    {"https://mail.google.com/", *(SCOPE_PREFIX + s for s in ("gmail.readonly", "gmail.modify", "gmail.metadata"))}
)
GMAIL_SEND = frozenset(
    {"https://mail.google.com/", *(SCOPE_PREFIX + s for s in ("gmail.send", "gmail.compose", "gmail.modify"))}
)
CALENDAR_READ = frozenset(
    SCOPE_PREFIX + s for s in ("calendar", "calendar.readonly", "calendar.events", "calendar.events.readonly")
)
CALENDAR_WRITE = frozenset(SCOPE_PREFIX + s for s in ("calendar", "calendar.events"))
SCOPES = GMAIL_READ | GMAIL_SEND | CALENDAR_READ | {"openid", "email", "profile", SCOPE_PREFIX + "userinfo.email"}
POLICY = OAuthPolicy(access_token_s=3599, rotate_refresh_tokens=False, refresh_idle_s=183 * 86_400.0)
PATHS = OAuthPaths("/o/oauth2/v2/auth", "/token", consent="/o/oauth2/v2/auth/consent")
REVOKE_PATH = "/revoke"
CERTS_PATH = "/oauth2/v3/certs"
PAGES = ConsentPages(
    title="Sign in - Google Accounts",
    heading="{app} wants to access your Google Account",
    tenants_legend="Account",
    error_title="Error 400: invalid_request",
    scope_text={
        SCOPE_PREFIX + "gmail.readonly": "View your email messages and settings",
        SCOPE_PREFIX + "gmail.send": "Send email on your behalf",
        SCOPE_PREFIX + "calendar.events": "View and edit events on all your calendars",
        SCOPE_PREFIX + "calendar.events.readonly": "View events on all your calendars",
    },
)
# What Google's token endpoint says (https://developers.google.com/identity/protocols/oauth2#expiration).
_DESCRIPTIONS = {
    "invalid_grant": "Token has been expired or revoked.",
    "invalid_client": "The OAuth client was not found.",
    "unsupported_grant_type": "Invalid grant_type: ",
}


class GoogleIdentity(OAuthServer):
    def __init__(self, clock: Clock, stats: CallStats, users: Callable[[], set[str]]) -> None:
        super().__init__(clock, POLICY, stats)
        self.users = users  # the sandbox's mailbox addresses (lower case)

    def user_of(self, login_hint: str | None) -> str:
        known = self.users()
        if login_hint and login_hint.lower() in known:
            return login_hint.lower()
        return DEMO_MAILBOX if DEMO_MAILBOX in known or not known else sorted(known)[0]

    def known_scope(self, scope: str) -> bool:
        return scope in SCOPES

    def offline(self, consent: Consent) -> bool:
        return consent.params.get("access_type") == "offline"

    def token_extras(self, grant: object, now: float) -> dict[str, object]:
        return {"refresh_token_expires_in": int(POLICY.refresh_idle_s or 0)}

    def revoke_any(self, token: str) -> bool:
        """Revoke the app's access to the user ``token`` belongs to; False when no live token has that value.
        Google keeps one authorization per user and app: every token issued under any consent of theirs dies."""
        access = self.access_tokens.get(token)
        refresh = self.refresh_tokens.get(token)
        grant_id = access.grant_id if access is not None else refresh.grant_id if refresh is not None else None
        grant = self.grants.get(grant_id or "")
        if grant is None or grant.revoked:
            return False
        for other in self.grants.values():
            if (other.client_id, other.user) == (grant.client_id, grant.user):
                other.revoked = True
        for record in self.refresh_tokens.values():
            if self.grants[record.grant_id].revoked:
                record.revoked = True
        return True

    def revoke_user(self, user: str) -> int:
        """What a password change does to Gmail grants: every grant of ``user`` dies. Returns how many."""
        count = 0
        for grant in self.grants.values():
            if grant.user == user.lower() and not grant.revoked:
                grant.revoked = True
                count += 1
        for record in self.refresh_tokens.values():
            if self.grants[record.grant_id].revoked:
                record.revoked = True
        return count


def error_response(exc: OAuthError) -> Response:
    description = exc.description or _DESCRIPTIONS.get(exc.error, "Bad Request")
    return JSONResponse({"error": exc.error, "error_description": description}, status_code=exc.status,
                        headers={"Cache-Control": "no-store"})  # fmt: skip


def register_identity_routes(
    app: FastAPI,
    identity: GoogleIdentity,
    lock: threading.RLock,
    *,
    prepare: Prepare,
    jwks: Callable[[], dict[str, object]],
) -> None:
    add_oauth_routes(
        app, identity, lock, paths=PATHS, pages=PAGES, prepare=prepare, user_of=identity.user_of,
        error_response=error_response,
    )  # fmt: skip

    @app.post(REVOKE_PATH)
    async def revoke(request: Request) -> Response:
        await prepare(request)
        token = request.query_params.get("token") or dict(await form_pairs(request)).get("token", "")
        with lock:
            revoked = identity.revoke_any(token)
        if not revoked:
            return JSONResponse({"error": "invalid_token", "error_description": "Token expired or revoked"}, 400)
        return JSONResponse({})

    @app.get(CERTS_PATH)
    async def certs() -> Response:
        return JSONResponse(jwks(), headers={"Cache-Control": "public, max-age=19766, must-revalidate, no-transform"})

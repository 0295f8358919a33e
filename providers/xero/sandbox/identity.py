"""Xero's identity on its real paths: login.xero.com's authorize and consent page, identity.xero.com's token and
revocation endpoints (the kit's OAuth server with Xero's rules), and api.xero.com's ``/connections``.

Behaviour per the reference (section 1, "OAuth2") and https://developer.xero.com/faq/oauth2: access tokens live
30 minutes; refresh tokens rotate on every use, the replaced one still works for a 30-minute grace period after its
first use (a retry after a lost response), unused ones expire after 60 days; ``offline_access`` is needed for a
refresh token; only refresh tokens revoke. Connections belong to the (app, user) pair as at Xero: every token of
that user for that app reaches every organisation the user has connected to it, each connection remembers the auth
event that last made it, and revoking removes them all. Tokens are JWT-shaped, the access token carrying the
``authentication_event_id`` that ``GET /connections?authEventId=`` filters on.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

import providers.xero.sandbox.catalog as cat
from providers.sandbox_kit.clock import DAY_S, Clock
from providers.sandbox_kit.metering import CallStats
from providers.sandbox_kit.oauth import (
    AccessToken,
    Consent,
    Grant,
    OAuthPolicy,
    OAuthServer,
    id_token_claims,
    jwt,
    jwt_claims,
)
from providers.sandbox_kit.oauth_http import ConsentPages, OAuthPaths, Prepare, add_oauth_routes, standard_error
from providers.sandbox_kit.wire import bearer_token
from providers.xero.sandbox.org import Organisation
from providers.xero.sandbox_credentials import DEMO_USER_EMAIL

POLICY = OAuthPolicy(access_token_s=1800, refresh_grace_s=1800, refresh_idle_s=60 * DAY_S, revoke_access_tokens=False)
PATHS = OAuthPaths("/identity/connect/authorize", "/connect/token", "/connect/revocation")
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
PAGES = ConsentPages(
    title="Xero | Authorise app", heading="{app} wants to access your Xero organisations",
    tenants_legend="Organisations", error_title="Xero | Error",
    scope_text={
        "openid": "Verify your identity", "profile": "See your name", "email": "See your email address",
        "offline_access": "Stay connected when you are not using the app",
    },
)  # fmt: skip
_ISSUER = "https://identity.xero.com"
_KEY_ID = "1CAF8E66772D6DC028D6726FD0261581570EFC19"
_NOT_FOUND = "The resource you're looking for cannot be found"
Unauthorized = Callable[[Request], Response]  # Xero's 401


@dataclass
class Connection:
    id: str
    tenant_id: str
    client_id: str
    user: str
    auth_event_id: str
    created_at: float
    updated_at: float


class XeroIdentity(OAuthServer):
    def __init__(self, clock: Clock, stats: CallStats, organisations: Mapping[str, Organisation]) -> None:
        super().__init__(clock, POLICY, stats)
        self.organisations = organisations  # the sandbox's, by tenantId
        self.connections: dict[tuple[str, str, str], Connection] = {}

    def organisations_of(self, email: str) -> list[tuple[str, str]]:
        """(tenantId, name) of the organisations ``email`` belongs to."""
        return [(t, org.name) for t, org in self.organisations.items() if org.user_email.lower() == email.lower()]

    def organisation_name(self, tenant_id: str) -> str:
        org = self.organisations.get(tenant_id)
        return org.name if org is not None else ""

    def user_of(self, login_hint: str | None) -> str:
        """The signed-in user (a sandbox has no login form): the hinted one if known, else the demo user."""
        known = {org.user_email.lower() for org in self.organisations.values()}
        return login_hint if login_hint and login_hint.lower() in known else DEMO_USER_EMAIL

    def known_scope(self, scope: str) -> bool:
        if scope in OIDC_SCOPES or scope in cat.ACCOUNTING_SCOPES:
            return True
        return bool(cat.GRANULAR_REPORT_SCOPE.match(scope)) or scope.startswith(cat.OTHER_API_SCOPE_PREFIXES)

    def offered_tenants(self, consent: Consent) -> list[tuple[str, str]]:
        # Sign-in alone (OpenID scopes only) connects no organisation.
        return self.organisations_of(consent.user) if any(s not in OIDC_SCOPES for s in consent.scopes) else []

    def on_grant(self, grant: Grant, tenant_ids: Sequence[str]) -> None:
        now = self.clock()
        for tenant_id in tenant_ids:
            key = (grant.client_id, grant.user, tenant_id)
            existing = self.connections.get(key)
            if existing is None:
                self.connections[key] = Connection(
                    str(uuid.uuid4()), tenant_id, grant.client_id, grant.user, grant.id, now, now
                )
            else:
                existing.auth_event_id, existing.updated_at = grant.id, now

    def on_revoke(self, grant: Grant) -> None:
        # xero-python's TokenApi.revoke_token: the user's connections to the app go with the grant.
        for key in [k for k in self.connections if k[:2] == (grant.client_id, grant.user)]:
            del self.connections[key]

    def grant_tenants(self, grant: Grant) -> list[str]:
        return self.tenants_of(grant.client_id, grant.user)

    def new_access_token(self, grant: Grant, now: float, lifetime: int) -> str:
        audience = f"{_ISSUER}/resources"
        claims = {
            **jwt_claims(grant, now, lifetime, issuer=_ISSUER, audience=audience, subject=_user_id(grant.user).hex),
            **_session(grant),
            "client_id": grant.client_id,
            "jti": secrets.token_hex(16),
            "authentication_event_id": grant.id,
            "scope": list(grant.scopes),
        }
        return jwt(claims, key_id=_KEY_ID)

    def token_extras(self, grant: Grant, now: float) -> dict[str, object]:
        if "openid" not in grant.scopes:
            return {}
        claims = id_token_claims(grant, now, 300, issuer=_ISSUER, subject=_user_id(grant.user).hex)
        return {"id_token": jwt({**claims, **_session(grant)}, key_id=None)}

    # --- connections ---------------------------------------------------------------------------------------

    def tenants_of(self, client_id: str, user: str) -> list[str]:
        return [c.tenant_id for c in self.connections.values() if (c.client_id, c.user) == (client_id, user)]

    def connections_of(self, access: AccessToken) -> list[Connection]:
        return [c for c in self.connections.values() if (c.client_id, c.user) == (access.client_id, access.user)]

    def disconnect(self, access: AccessToken, connection_id: str) -> bool:
        """``DELETE /connections/{id}``: that organisation leaves the grant (the user's other ones stay)."""
        for key, connection in list(self.connections.items()):
            if connection.id == connection_id and key[:2] == (access.client_id, access.user):
                del self.connections[key]
                return True
        return False


def register_identity_routes(
    app: FastAPI, identity: XeroIdentity, lock: threading.RLock, *, prepare: Prepare, unauthorized: Unauthorized
) -> None:
    """The OAuth endpoints and ``/connections``; ``prepare`` runs first on each request, ``unauthorized`` renders
    Xero's 401."""
    errors = standard_error("identity.xero.com")
    add_oauth_routes(
        app, identity, lock, paths=PATHS, pages=PAGES, prepare=prepare, user_of=identity.user_of, error_response=errors
    )

    @app.get("/connections")
    async def connections(request: Request, authEventId: str | None = None) -> Response:
        await prepare(request)
        with lock:
            if not isinstance(access := identity.authenticate(bearer_token(request)), AccessToken):
                return unauthorized(request)
            found = [c for c in identity.connections_of(access) if authEventId in (None, c.auth_event_id)]
            return JSONResponse([_connection(c, identity.organisation_name(c.tenant_id)) for c in found])

    @app.delete("/connections/{connection_id}")
    async def disconnect(request: Request, connection_id: str) -> Response:
        await prepare(request)
        with lock:
            if not isinstance(access := identity.authenticate(bearer_token(request)), AccessToken):
                return unauthorized(request)
            if not identity.disconnect(access, connection_id.lower()):
                return Response(_NOT_FOUND, 404, media_type="text/plain")
        return Response(status_code=204)


def _connection(connection: Connection, name: str) -> dict[str, Any]:
    """A connection as ``GET /connections`` lists it (identity spec ``Connection``)."""
    return {
        "id": connection.id, "authEventId": connection.auth_event_id, "tenantId": connection.tenant_id,
        "tenantType": "ORGANISATION", "tenantName": name, "createdDateUtc": _connection_date(connection.created_at),
        "updatedDateUtc": _connection_date(connection.updated_at),
    }  # fmt: skip


def _connection_date(seconds: float) -> str:
    """Xero writes these with 7 fractional digits and no offset (UTC): ``2019-12-07T18:46:19.5165400`` (spec)."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0"


def _session(grant: Grant) -> dict[str, object]:
    """Xero's own claims on both tokens: its user id, and the session (the auth event) the grant came from."""
    session = grant.id.replace("-", "")
    return {"xero_userid": str(_user_id(grant.user)), "global_session_id": session, "sid": session}


def _user_id(email: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"https://login.xero.com/users/{email.lower()}")

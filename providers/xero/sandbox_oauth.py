"""Xero's OAuth 2.0 server state: apps, consents, codes, grants, rotating refresh tokens, access tokens, connections.

Behaviour per the reference (section 1, "OAuth2") and https://developer.xero.com/faq/oauth2: access tokens live
30 minutes; refresh tokens rotate on every use, the replaced one still works for a 30-minute grace period after its
first use (a retry after a lost response), unused ones expire after 60 days; ``offline_access`` is needed for a
refresh token. Connections belong to the (app, user) pair as at Xero: every token of that user for that app reaches
every organisation the user has connected to it, and each connection remembers the auth event that last made it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from providers.xero import sandbox_catalog as cat
from providers.xero.sandbox_metering import SandboxStats

ACCESS_TOKEN_S = 1800
CODE_S = 300
CONSENT_S = 900
REFRESH_GRACE_S = 1800
REFRESH_UNUSED_S = 60 * 86_400
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
_ISSUER = "https://identity.xero.com"


class OAuthError(Exception):
    """An OAuth error answer: ``error`` (RFC 6749 code), HTTP ``status``, optional description."""

    def __init__(self, error: str, description: str = "", status: int = 400) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error, self.description, self.status = error, description, status


@dataclass
class AppClient:
    client_id: str
    secret: str | None  # None: a PKCE app, no secret
    redirect_uris: tuple[str, ...] | None  # None: any loopback http URI (local runs)
    name: str


@dataclass
class Consent:
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    challenge: str | None
    user_email: str
    nonce: str | None
    expires_at: float


@dataclass
class AuthCode:
    consent: Consent
    tenant_ids: tuple[str, ...]
    expires_at: float
    used: bool = False


@dataclass
class Grant:
    id: str  # the authEventId
    client_id: str
    user_email: str
    scopes: tuple[str, ...]
    nonce: str | None = None
    revoked: bool = False


@dataclass
class RefreshToken:
    grant_id: str
    issued_at: float
    first_used_at: float | None = None
    revoked: bool = False


@dataclass
class AccessToken:
    grant_id: str
    client_id: str
    user_email: str
    scopes: frozenset[str]
    expires_at: float


@dataclass
class Connection:
    id: str
    tenant_id: str
    client_id: str
    user_email: str
    auth_event_id: str
    created_at: float
    updated_at: float


@dataclass
class OAuthState:
    clock: Callable[[], float]
    stats: SandboxStats
    organisations_of: Callable[[str], list[tuple[str, str]]]  # user email -> [(tenantId, name)]
    organisation_name: Callable[[str], str]  # tenantId -> name
    clients: dict[str, AppClient] = field(default_factory=dict)
    consents: dict[str, Consent] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)
    connections: dict[tuple[str, str, str], Connection] = field(default_factory=dict)
    minted: int = 0

    # --- authorize and consent ------------------------------------------------------------------------------

    def register_client(
        self, client_id: str, secret: str | None, redirect_uris: Sequence[str] | None, name: str
    ) -> None:
        uris = None if redirect_uris is None else tuple(redirect_uris)
        self.clients[client_id] = AppClient(client_id, secret, uris, name)

    def redirect_allowed(self, client: AppClient, uri: str) -> bool:
        if client.redirect_uris is not None:
            return uri in client.redirect_uris
        parts = urlsplit(uri)
        return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")

    def begin(self, params: Mapping[str, str], user_email: str) -> tuple[str, Consent]:
        """Check an authorize request whose client and redirect_uri are already verified; (request_id, consent).
        Raises OAuthError for errors that are redirected back to the app."""
        client = self.clients[params["client_id"]]
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "response_type must be code")
        scopes = tuple(dict.fromkeys(params.get("scope", "").split()))
        unknown = [s for s in scopes if not _known_scope(s)]
        if not scopes or unknown:
            raise OAuthError("invalid_scope", f"unknown scope: {' '.join(unknown)}" if unknown else "scope is required")
        challenge = params.get("code_challenge") or None
        if challenge is not None and params.get("code_challenge_method") != "S256":
            raise OAuthError("invalid_request", "code_challenge_method must be S256")
        if challenge is None and client.secret is None:
            raise OAuthError("invalid_request", "code_challenge is required for a PKCE app")
        consent = Consent(
            client.client_id,
            params["redirect_uri"],
            scopes,
            params.get("state"),
            challenge,
            user_email,
            params.get("nonce"),
            self.clock() + CONSENT_S,
        )
        request_id = secrets.token_urlsafe(24)
        self.consents[request_id] = consent
        return request_id, consent

    def decide(self, request_id: str, allow: bool, tenant_ids: Sequence[str]) -> tuple[str, dict[str, str]]:
        """The user's answer: (redirect_uri, query params) for the redirect back to the app."""
        consent = self.consents.pop(request_id, None)
        if consent is None or consent.expires_at <= self.clock():
            raise OAuthError("invalid_request", "this consent request has expired; start again", status=400)
        extra = {"state": consent.state} if consent.state is not None else {}
        if not allow:
            return consent.redirect_uri, {"error": "access_denied", **extra}
        own = {tenant_id for tenant_id, _ in self.organisations_of(consent.user_email)}
        api_scopes = any(s not in OIDC_SCOPES for s in consent.scopes)
        chosen = tuple(t for t in dict.fromkeys(tenant_ids) if t in own) if api_scopes else ()
        code = secrets.token_hex(32)
        self.codes[code] = AuthCode(consent, chosen, self.clock() + CODE_S)
        return consent.redirect_uri, {"code": code, "scope": " ".join(consent.scopes), **extra}

    # --- the token endpoint --------------------------------------------------------------------------------

    def authenticate_client(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> AppClient:
        client_id, secret = basic if basic is not None else (form.get("client_id", ""), form.get("client_secret", ""))
        client = self.clients.get(client_id)
        if client is None:
            raise OAuthError("invalid_client", status=401)
        if client.secret is None:
            if secret:
                raise OAuthError("invalid_client", status=401)
        elif not hmac.compare_digest(secret.encode(), client.secret.encode()):
            raise OAuthError("invalid_client", status=401)
        return client

    def token(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> dict[str, object]:
        client = self.authenticate_client(form, basic)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange_code(client, form)
        if grant_type == "refresh_token":
            return self._refresh(client, form)
        if grant_type == "client_credentials":  # Custom Connections only; a public app is refused
            raise OAuthError("unauthorized_client")
        raise OAuthError("unsupported_grant_type")

    def _exchange_code(self, client: AppClient, form: Mapping[str, str]) -> dict[str, object]:
        found = self.codes.get(form.get("code", ""))
        if found is None or found.consent.client_id != client.client_id:
            raise OAuthError("invalid_grant")
        reused, found.used = found.used, True  # single use: any presentation burns it
        consent = found.consent
        if reused or found.expires_at <= self.clock() or form.get("redirect_uri") != consent.redirect_uri:
            raise OAuthError("invalid_grant")
        if consent.challenge is not None:
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if not verifier or not hmac.compare_digest(digest, consent.challenge):
                raise OAuthError("invalid_grant", "invalid code_verifier")
        grant = Grant(str(uuid.uuid4()), client.client_id, consent.user_email, consent.scopes, consent.nonce)
        self.grants[grant.id] = grant
        now = self.clock()
        for tenant_id in found.tenant_ids:
            key = (client.client_id, consent.user_email, tenant_id)
            existing = self.connections.get(key)
            if existing is None:
                self.connections[key] = Connection(
                    str(uuid.uuid4()), tenant_id, client.client_id, consent.user_email, grant.id, now, now
                )
            else:
                existing.auth_event_id, existing.updated_at = grant.id, now
        self.stats.bump("token_requests", self.tenants_of(client.client_id, consent.user_email))
        return self._issue(grant)

    def _refresh(self, client: AppClient, form: Mapping[str, str]) -> dict[str, object]:
        record = self.refresh_tokens.get(form.get("refresh_token", ""))
        grant = self.grants.get(record.grant_id) if record is not None else None
        if record is None or grant is None or record.revoked or grant.revoked or grant.client_id != client.client_id:
            raise OAuthError("invalid_grant")
        now = self.clock()
        if record.first_used_at is None:
            if now - record.issued_at > REFRESH_UNUSED_S:
                raise OAuthError("invalid_grant")
            record.first_used_at = now
        elif now - record.first_used_at > REFRESH_GRACE_S:
            raise OAuthError("invalid_grant")
        asked = set(form.get("scope", "").split())
        if asked - set(grant.scopes):
            raise OAuthError("invalid_scope")
        tenants = self.tenants_of(client.client_id, grant.user_email)
        self.stats.bump("token_requests", tenants)
        self.stats.bump("refresh_requests", tenants)
        return self._issue(grant)

    def _issue(self, grant: Grant) -> dict[str, object]:
        now = self.clock()
        body: dict[str, object] = {}
        if "openid" in grant.scopes:
            body["id_token"] = self._id_token(grant, now)
        body.update(
            access_token=self.new_access_token(grant, now, ACCESS_TOKEN_S),
            expires_in=ACCESS_TOKEN_S,
            token_type="Bearer",  # noqa: S106 -- the token type, not a secret
        )
        if "offline_access" in grant.scopes:
            refresh = secrets.token_hex(32)
            self.refresh_tokens[refresh] = RefreshToken(grant.id, now)
            body["refresh_token"] = refresh
        body["scope"] = " ".join(grant.scopes)
        return body

    def new_access_token(self, grant: Grant, now: float, lifetime: int) -> str:
        user = _user_id(grant.user_email)
        claims = {
            "nbf": int(now),
            "exp": int(now) + lifetime,
            "iss": _ISSUER,
            "aud": f"{_ISSUER}/resources",
            "client_id": grant.client_id,
            "sub": user.hex,
            "auth_time": int(now),
            "xero_userid": str(user),
            "global_session_id": grant.id.replace("-", ""),
            "sid": grant.id.replace("-", ""),
            "jti": secrets.token_hex(16),
            "authentication_event_id": grant.id,
            "scope": list(grant.scopes),
        }
        token = _jwt(claims, signed=True)
        self.access_tokens[token] = AccessToken(
            grant.id, grant.client_id, grant.user_email, frozenset(grant.scopes), now + lifetime
        )
        return token

    def _id_token(self, grant: Grant, now: float) -> str:
        user = _user_id(grant.user_email)
        local = grant.user_email.split("@")[0].replace(".", " ").title().split()
        claims: dict[str, object] = {
            "nbf": int(now),
            "exp": int(now) + 300,
            "iss": _ISSUER,
            "aud": grant.client_id,
            "iat": int(now),
            "sub": user.hex,
            "auth_time": int(now),
            "xero_userid": str(user),
            "global_session_id": grant.id.replace("-", ""),
            "sid": grant.id.replace("-", ""),
            "preferred_username": grant.user_email,
            "email": grant.user_email,
            "given_name": local[0] if local else "",
            "family_name": local[-1] if len(local) > 1 else "",
            "name": " ".join(local),
        }
        if grant.nonce:
            claims["nonce"] = grant.nonce
        return _jwt(claims, signed=False)

    # --- revocation, tokens, connections --------------------------------------------------------------------

    def revoke(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> None:
        """Revoke a refresh token's grant (all its tokens) and remove the user's connections to the app, as
        xero-python's TokenApi.revoke_token documents. Unknown tokens are ignored (RFC 7009 section 2.2)."""
        client = self.authenticate_client(form, basic)
        record = self.refresh_tokens.get(form.get("token", ""))
        grant = self.grants.get(record.grant_id) if record is not None else None
        if grant is None or grant.client_id != client.client_id:
            return
        grant.revoked = True
        for refresh in self.refresh_tokens.values():
            if refresh.grant_id == grant.id:
                refresh.revoked = True
        for key in [k for k in self.connections if k[:2] == (client.client_id, grant.user_email)]:
            del self.connections[key]

    def authenticate(self, token: str | None) -> AccessToken | str:
        """The access token's record, or why not: ``invalid`` or ``expired``."""
        record = self.access_tokens.get(token or "")
        if record is None or self.grants[record.grant_id].revoked:
            return "invalid"
        if record.expires_at <= self.clock():
            return "expired"
        return record

    def expire_all(self) -> None:
        now = self.clock()
        for record in self.access_tokens.values():
            record.expires_at = min(record.expires_at, now)

    def tenants_of(self, client_id: str, user_email: str) -> list[str]:
        return [
            c.tenant_id for c in self.connections.values() if (c.client_id, c.user_email) == (client_id, user_email)
        ]

    def connections_of(self, access: AccessToken) -> list[Connection]:
        return [
            c for c in self.connections.values() if (c.client_id, c.user_email) == (access.client_id, access.user_email)
        ]

    def disconnect(self, access: AccessToken, connection_id: str) -> bool:
        for key, connection in list(self.connections.items()):
            if connection.id == connection_id and key[:2] == (access.client_id, access.user_email):
                del self.connections[key]
                return True
        return False

    def mint(self, client_id: str, tenant_ids: Sequence[str], expires_in: int) -> str:
        """An access token reaching exactly ``tenant_ids``, for a user of its own (tests skip the OAuth dance)."""
        self.minted += 1
        email = f"minted-{self.minted}@sandbox.invalid"
        grant = Grant(str(uuid.uuid4()), client_id, email, ("openid", *sorted(cat.ALL_ACCOUNTING_SCOPES)))
        self.grants[grant.id] = grant
        now = self.clock()
        for tenant_id in dict.fromkeys(tenant_ids):
            self.connections[(client_id, email, tenant_id)] = Connection(
                str(uuid.uuid4()), tenant_id, client_id, email, grant.id, now, now
            )
        return self.new_access_token(grant, now, expires_in)


def _known_scope(scope: str) -> bool:
    if scope in OIDC_SCOPES or scope in cat.ACCOUNTING_SCOPES:
        return True
    return bool(cat.GRANULAR_REPORT_SCOPE.match(scope)) or scope.startswith(cat.OTHER_API_SCOPE_PREFIXES)


def _user_id(email: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"https://login.xero.com/users/{email.lower()}")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(claims: Mapping[str, object], *, signed: bool) -> str:
    """JWT-shaped: Xero's tokens are RS256 JWTs; these are opaque to clients and checked by lookup, so the
    signature is random bytes (access tokens) or absent with ``alg: none`` (id tokens)."""
    header = (
        {"alg": "RS256", "kid": "1CAF8E66772D6DC028D6726FD0261581570EFC19", "typ": "JWT"}
        if signed
        else {"alg": "none", "typ": "JWT"}
    )
    parts = [
        _b64(json.dumps(header, separators=(",", ":")).encode()),
        _b64(json.dumps(claims, separators=(",", ":")).encode()),
    ]
    return ".".join([*parts, _b64(secrets.token_bytes(64)) if signed else ""])

"""A generic OAuth 2.0 authorization server for sandboxes: apps, consents, authorization codes with PKCE, client
authentication, access and refresh tokens with the provider's lifetimes and rotation rules, revocation.

What differs between providers is an ``OAuthPolicy`` plus a few methods a provider's subclass overrides:

    Xero:       OAuthPolicy(access_token_s=1800, refresh_grace_s=1800, refresh_idle_s=60 days)  rotating, 30 min grace
    QuickBooks: OAuthPolicy(access_token_s=3600, refresh_idle_s=100 days, client_auth={"basic"}, refresh_scope=None)
    Google:     OAuthPolicy(access_token_s=3599, rotate_refresh_tokens=False, refresh_idle_s=183 days)
    Microsoft:  OAuthPolicy(access_token_s=3600, refresh_grace_s=None, refresh_idle_s=90 days)  old tokens live on

Overridable: ``known_scope`` (which scopes exist), ``offline`` (whose grant gets refresh tokens),
``offered_tenants`` (what the consent page lets the user pick:
Xero's organisations, a QuickBooks company), ``on_grant``/``on_revoke`` (Xero's connections), ``grant_tenants``
(who a grant's token requests count for), ``redirect_params`` (QuickBooks' realmId), ``new_access_token`` (Xero's
JWTs), ``token_extras`` (an id_token), ``token_answer`` (Stripe Connect's shape),
``other_grant`` (client credentials and the like). The HTTP side (authorize
and consent pages, token and revocation endpoints, error bodies in the provider's shape) is
``providers.sandbox_kit.oauth_http``. Not thread-safe by itself: the sandbox's lock guards every call.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from providers.sandbox_kit.clock import Clock
from providers.sandbox_kit.metering import CallStats
from providers.sandbox_kit.wire import secret_matches


class OAuthError(Exception):
    """An OAuth error answer: ``error`` (an RFC 6749 code), HTTP ``status``, optional description."""

    def __init__(self, error: str, description: str = "", status: int = 400) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error, self.description, self.status = error, description, status


@dataclass(frozen=True)
class OAuthPolicy:
    access_token_s: int = 3600
    code_s: int = 300  # an authorization code's life
    consent_s: int = 900  # how long a consent page waits for the user's answer
    rotate_refresh_tokens: bool = True  # a refresh answers a new refresh token (else none: the old one lives on)
    refresh_grace_s: float | None = None  # a rotated-away token still works this long after its first use
    refresh_idle_s: float | None = None  # a refresh token unused this long (since issued or last used) is dead
    refresh_scope: str | None = "offline_access"  # the scope a refresh token needs (None: always issued)
    client_auth: frozenset[str] = frozenset({"basic", "body"})  # how confidential apps may authenticate
    revoke_access_tokens: bool = True  # RFC 7009 for access tokens too (else only refresh tokens revoke)
    loopback_redirects: bool = True  # an app registered without redirect URIs accepts any loopback http URI


@dataclass
class App:
    client_id: str
    secret: str | None  # None: a public (PKCE) app, no secret
    redirect_uris: tuple[str, ...] | None  # None: see OAuthPolicy.loopback_redirects
    name: str


@dataclass
class Consent:
    """An authorize request waiting for the user's answer on the consent page."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    challenge: str | None
    user: str
    nonce: str | None
    expires_at: float
    params: dict[str, str]  # the whole authorize request, for provider hooks
    tenants: list[tuple[str, str]] = field(default_factory=list)  # (id, name) the user may pick


@dataclass
class AuthCode:
    consent: Consent
    tenant_ids: tuple[str, ...]  # the tenants the user picked
    expires_at: float
    used: bool = False


@dataclass
class Grant:
    """One authorisation of an app by a user: what a code exchange creates and its refresh tokens continue."""

    id: str
    client_id: str
    user: str
    scopes: tuple[str, ...]
    nonce: str | None = None
    tenant_ids: tuple[str, ...] = ()
    offline: bool = False  # refresh tokens are issued
    revoked: bool = False


@dataclass
class RefreshToken:
    grant_id: str
    issued_at: float
    first_used_at: float | None = None
    last_used_at: float | None = None
    revoked: bool = False


@dataclass
class AccessToken:
    """An access token's record: the ``Caller`` of an API call (``providers.sandbox_kit.gate``)."""

    grant_id: str
    client_id: str
    user: str
    scopes: frozenset[str]
    expires_at: float
    revoked: bool = False


class OAuthServer:
    def __init__(self, clock: Clock, policy: OAuthPolicy, stats: CallStats | None = None) -> None:
        self.clock, self.policy, self.stats = clock, policy, stats or CallStats()
        self.apps: dict[str, App] = {}
        self.consents: dict[str, Consent] = {}
        self.codes: dict[str, AuthCode] = {}
        self.grants: dict[str, Grant] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.minted = 0

    # --- provider hooks ------------------------------------------------------------------------------------

    def known_scope(self, scope: str) -> bool:
        return True

    def offered_tenants(self, consent: Consent) -> list[tuple[str, str]]:
        """(id, name) of what the user may grant access to on the consent page: none by default."""
        return []

    def offline(self, consent: Consent) -> bool:
        """Whether the grant gets refresh tokens: by its scope (``refresh_scope``), or, where the provider asks
        for it otherwise (Google's ``access_type=offline``), by the authorize request."""
        return self.policy.refresh_scope is None or self.policy.refresh_scope in consent.scopes

    def redirect_params(self, code: AuthCode) -> dict[str, str]:
        """Extra parameters of the redirect that carries a code."""
        return {}

    def on_grant(self, grant: Grant, tenant_ids: Sequence[str]) -> None:
        """A grant was made (code exchanged, or minted) reaching ``tenant_ids``."""

    def on_revoke(self, grant: Grant) -> None:
        """A grant was revoked."""

    def grant_tenants(self, grant: Grant) -> list[str]:
        """The tenants a grant reaches, for counting its token requests."""
        return list(grant.tenant_ids)

    def new_access_token(self, grant: Grant, now: float, lifetime: int) -> str:
        return secrets.token_urlsafe(32)

    def token_extras(self, grant: Grant, now: float) -> dict[str, object]:
        """Fields added to a token response (an id_token, a refresh token's lifetime...)."""
        return {}

    def token_answer(self, grant: Grant, body: dict[str, object]) -> dict[str, object]:
        """The token response as the provider shapes it, last (Stripe Connect: no expiry, the account's id)."""
        return body

    def other_grant(self, app: App, form: Mapping[str, str]) -> dict[str, object]:
        """A grant type other than authorization_code and refresh_token."""
        if form.get("grant_type") == "client_credentials":
            raise OAuthError("unauthorized_client")
        raise OAuthError("unsupported_grant_type")

    # --- apps ----------------------------------------------------------------------------------------------

    def register(self, client_id: str, secret: str | None, redirect_uris: Sequence[str] | None, name: str) -> None:
        uris = None if redirect_uris is None else tuple(redirect_uris)
        self.apps[client_id] = App(client_id, secret, uris, name)

    def redirect_allowed(self, app: App, uri: str) -> bool:
        if app.redirect_uris is not None:
            return uri in app.redirect_uris
        parts = urlsplit(uri)
        return self.policy.loopback_redirects and parts.scheme == "http" and parts.hostname in _LOOPBACK

    # --- authorize and consent ------------------------------------------------------------------------------

    def begin(self, params: Mapping[str, str], user: str) -> tuple[str, Consent]:
        """Check an authorize request whose app and redirect_uri are verified: (request id, consent). Raises
        OAuthError for the errors that are redirected back to the app."""
        app = self.apps[params["client_id"]]
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "response_type must be code")
        scopes = tuple(dict.fromkeys(params.get("scope", "").split()))
        unknown = [s for s in scopes if not self.known_scope(s)]
        if not scopes or unknown:
            raise OAuthError("invalid_scope", f"unknown scope: {' '.join(unknown)}" if unknown else "scope is required")
        challenge = params.get("code_challenge") or None
        if challenge is not None and params.get("code_challenge_method") != "S256":
            raise OAuthError("invalid_request", "code_challenge_method must be S256")
        if challenge is None and app.secret is None:
            raise OAuthError("invalid_request", "code_challenge is required for a PKCE app")
        expires_at = self.clock() + self.policy.consent_s
        consent = Consent(
            app.client_id, params["redirect_uri"], scopes, params.get("state"), challenge, user, params.get("nonce"),
            expires_at, dict(params),
        )  # fmt: skip
        consent.tenants = self.offered_tenants(consent)
        request_id = secrets.token_urlsafe(24)
        self.consents[request_id] = consent
        return request_id, consent

    def decide(self, request_id: str, allow: bool, tenant_ids: Sequence[str]) -> tuple[str, dict[str, str]]:
        """The user's answer: (redirect URI, its query parameters). Only offered tenants can be granted."""
        consent = self.consents.pop(request_id, None)
        if consent is None or consent.expires_at <= self.clock():
            raise OAuthError("invalid_request", "this consent request has expired; start again")
        extra = {"state": consent.state} if consent.state is not None else {}
        if not allow:
            return consent.redirect_uri, {"error": "access_denied", **extra}
        offered = {tenant_id for tenant_id, _ in consent.tenants}
        chosen = tuple(t for t in dict.fromkeys(tenant_ids) if t in offered)
        code = AuthCode(consent, chosen, self.clock() + self.policy.code_s)
        value = secrets.token_hex(32)
        self.codes[value] = code
        params = {"code": value, "scope": " ".join(consent.scopes), **extra, **self.redirect_params(code)}
        return consent.redirect_uri, params

    # --- the token endpoint ---------------------------------------------------------------------------------

    def authenticate_app(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> App:
        """The app a token or revocation request comes from, by the means the provider allows (a public app only
        names itself), or ``invalid_client``."""
        methods = self.policy.client_auth
        if basic is not None and "basic" in methods:
            client_id, secret = basic[0], basic[1] or None
        else:
            client_id = form.get("client_id", "")
            secret = form.get("client_secret") or None if "body" in methods else None
        app = self.apps.get(client_id)
        if app is None:
            raise OAuthError("invalid_client", status=401)
        if app.secret is None:
            if secret:
                raise OAuthError("invalid_client", status=401)
        elif secret is None or not secret_matches(app.secret, secret):
            raise OAuthError("invalid_client", status=401)
        return app

    def token(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> dict[str, object]:
        app = self.authenticate_app(form, basic)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange_code(app, form)
        if grant_type == "refresh_token":
            return self._refresh(app, form)
        return self.other_grant(app, form)

    def _exchange_code(self, app: App, form: Mapping[str, str]) -> dict[str, object]:
        found = self.codes.get(form.get("code", ""))
        if found is None or found.consent.client_id != app.client_id:
            raise OAuthError("invalid_grant")
        reused, found.used = found.used, True  # single use: any presentation burns it
        consent = found.consent
        if reused or found.expires_at <= self.clock() or form.get("redirect_uri") != consent.redirect_uri:
            raise OAuthError("invalid_grant")
        if consent.challenge is not None:
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if not verifier or not secret_matches(consent.challenge, digest):
                raise OAuthError("invalid_grant", "invalid code_verifier")
        offline = self.offline(consent)
        grant = self._new_grant(app.client_id, consent.user, consent.scopes, found.tenant_ids, consent.nonce, offline)
        self.stats.bump("token_requests", self.grant_tenants(grant))
        return self._issue(grant, refresh=offline)

    def _refresh(self, app: App, form: Mapping[str, str]) -> dict[str, object]:
        record = self.refresh_tokens.get(form.get("refresh_token", ""))
        grant = self.grants.get(record.grant_id) if record is not None else None
        if record is None or grant is None or record.revoked or grant.revoked or grant.client_id != app.client_id:
            raise OAuthError("invalid_grant")
        self._use(record, self.clock())
        if set(form.get("scope", "").split()) - set(grant.scopes):
            raise OAuthError("invalid_scope")
        tenants = self.grant_tenants(grant)
        self.stats.bump("token_requests", tenants)
        self.stats.bump("refresh_requests", tenants)
        return self._issue(grant, refresh=self.policy.rotate_refresh_tokens)

    def _use(self, record: RefreshToken, now: float) -> None:
        """Check a refresh token's life by the policy, and mark its use."""
        idle, grace = self.policy.refresh_idle_s, self.policy.refresh_grace_s
        if record.first_used_at is None:
            expired = idle is not None and now - record.issued_at > idle
            record.first_used_at = now
        elif self.policy.rotate_refresh_tokens and grace is not None:
            expired = now - record.first_used_at > grace  # replaced at first use: the grace is all it has left
        elif self.policy.rotate_refresh_tokens:
            expired = idle is not None and now - record.issued_at > idle
        else:
            expired = idle is not None and now - (record.last_used_at or record.issued_at) > idle
        if expired:
            raise OAuthError("invalid_grant")
        record.last_used_at = now

    def _issue(self, grant: Grant, *, refresh: bool) -> dict[str, object]:
        now = self.clock()
        lifetime = self.policy.access_token_s
        body: dict[str, object] = {
            "access_token": self._access_token(grant, now, lifetime),
            "expires_in": lifetime,
            "token_type": "Bearer",
        }
        if refresh and grant.offline:
            value = secrets.token_hex(32)
            self.refresh_tokens[value] = RefreshToken(grant.id, now)
            body["refresh_token"] = value
        body["scope"] = " ".join(grant.scopes)
        return self.token_answer(grant, {**self.token_extras(grant, now), **body})

    def _access_token(self, grant: Grant, now: float, lifetime: int) -> str:
        token = self.new_access_token(grant, now, lifetime)
        self.access_tokens[token] = AccessToken(
            grant.id, grant.client_id, grant.user, frozenset(grant.scopes), now + lifetime
        )
        return token

    def _new_grant(
        self,
        client_id: str,
        user: str,
        scopes: tuple[str, ...],
        tenant_ids: Sequence[str],
        nonce: str | None = None,
        offline: bool = False,
    ) -> Grant:
        grant = Grant(str(uuid.uuid4()), client_id, user, scopes, nonce, tuple(tenant_ids), offline)
        self.grants[grant.id] = grant
        self.on_grant(grant, tenant_ids)
        return grant

    # --- revocation, authentication, expiry -----------------------------------------------------------------

    def revoke(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> None:
        """RFC 7009: a refresh token revokes its whole grant (every token of it); an access token itself, if the
        policy allows. Unknown tokens, and other apps' tokens, are ignored (section 2.2)."""
        app = self.authenticate_app(form, basic)
        token = form.get("token", "")
        access = self.access_tokens.get(token) if self.policy.revoke_access_tokens else None
        if access is not None and access.client_id == app.client_id:
            access.revoked = True
            return
        record = self.refresh_tokens.get(token)
        grant = self.grants.get(record.grant_id) if record is not None else None
        if grant is None or grant.client_id != app.client_id:
            return
        grant.revoked = True
        for refresh in self.refresh_tokens.values():
            if refresh.grant_id == grant.id:
                refresh.revoked = True
        self.on_revoke(grant)

    def authenticate(self, token: str | None) -> AccessToken | str:
        """The access token's record, or why not: ``invalid`` or ``expired``."""
        record = self.access_tokens.get(token or "")
        if record is None or record.revoked or self.grants[record.grant_id].revoked:
            return "invalid"
        if record.expires_at <= self.clock():
            return "expired"
        return record

    def expire_all(self) -> None:
        """Every access token issued so far expires now (the fault knob)."""
        now = self.clock()
        for record in self.access_tokens.values():
            record.expires_at = min(record.expires_at, now)

    def mint(
        self, client_id: str, user: str | None, scopes: Sequence[str], lifetime: int, tenant_ids: Sequence[str] = ()
    ) -> str:
        """An access token of a fresh grant, for tests that skip the OAuth dance; ``user`` None: a user of its own."""
        if user is None:
            self.minted += 1
            user = f"minted-{self.minted}@sandbox.invalid"
        grant = self._new_grant(client_id, user, tuple(scopes), tuple(dict.fromkeys(tenant_ids)))
        return self._access_token(grant, self.clock(), lifetime)


_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def jwt(claims: Mapping[str, object], *, key_id: str | None) -> str:
    """A JWT-shaped token. Sandbox tokens are opaque to clients and checked by lookup, so a signed one (``key_id``
    given: RS256 header) carries random signature bytes and an unsigned one (id tokens) is ``alg: none``."""
    header = {"alg": "RS256", "kid": key_id, "typ": "JWT"} if key_id is not None else {"alg": "none", "typ": "JWT"}
    parts = [
        _b64(json.dumps(header, separators=(",", ":")).encode()),
        _b64(json.dumps(claims, separators=(",", ":")).encode()),
    ]
    return ".".join([*parts, _b64(secrets.token_bytes(64)) if key_id is not None else ""])


def jwt_claims(
    grant: Grant, now: float, lifetime: int, *, issuer: str, audience: str, subject: str
) -> dict[str, object]:
    """The registered claims (RFC 7519) of a token of ``grant`` issued ``now``."""
    at = int(now)
    return {"nbf": at, "exp": at + lifetime, "iss": issuer, "aud": audience, "sub": subject, "auth_time": at}


def id_token_claims(grant: Grant, now: float, lifetime: int, *, issuer: str, subject: str) -> dict[str, object]:
    """An OpenID Connect ID token's claims for the app: registered ones, the nonce, and the user's profile (sandbox
    users are email addresses: ``ada.lovelace@...`` is Ada Lovelace)."""
    local = grant.user.split("@")[0].replace(".", " ").title().split()
    claims = {
        **jwt_claims(grant, now, lifetime, issuer=issuer, audience=grant.client_id, subject=subject),
        "iat": int(now),
        "preferred_username": grant.user,
        "email": grant.user,
        "given_name": local[0] if local else "",
        "family_name": local[-1] if len(local) > 1 else "",
        "name": " ".join(local),
    }
    if grant.nonce:
        claims["nonce"] = grant.nonce
    return claims


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

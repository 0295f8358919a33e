"""OAuth 2.0 connections (Authlib over httpx): authorize, callback, organisation choice, refresh, revoke.

- The ``state`` is a random nonce plus a signature over (nonce, tenant, provider, expiry); its row in
  ``oauth_states`` (keyed by the nonce's hash) makes it single use and holds the encrypted PKCE verifier. The
  callback burns it in a transaction of its own, committed before the code is exchanged.
- Refresh is single-flight per connection across processes: a row lock on PostgreSQL, a file lock on SQLite.
  Whoever gets the lock re-reads the tokens first, so a refresh another process just made is reused, and the
  rotated refresh token is committed before the new access token is handed out.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import secrets
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from providers.base import ExternalTenant, Grant, Provider
from providers.errors import ProviderAuthError, ProviderError, ProviderUnavailable
from providers.schema import defaults_from_schema
from vrtx_pipelines.catalog import integration_row
from vrtx_pipelines.config import Settings
from vrtx_pipelines.connect.call_ledger import spent_elsewhere
from vrtx_pipelines.connect.context import ConnectionContext, Status, get_connection, mark_unusable
from vrtx_pipelines.credentials.stored import oauth_verifier_context, read_credentials, store_credentials
from vrtx_pipelines.db.locks import lock_integration
from vrtx_pipelines.db.models import OAuthState, TenantIntegration, utcnow
from vrtx_pipelines.errors import IntegrationError, IntegrationNotAvailable, NotFound, ValidationFailed
from vrtx_pipelines.events.record import EventType, record_event
from vrtx_pipelines.registry import get_provider

with warnings.catch_warnings():
    # Authlib prefers httpx2 and falls back to httpx with a deprecation warning; httpx is what we ship.
    warnings.simplefilter("ignore")
    from authlib.integrations.base_client.errors import OAuthError
    from authlib.integrations.httpx_client import OAuth2Client

log = logging.getLogger(__name__)

STATE_TTL = timedelta(minutes=10)
REFRESH_MARGIN_S = 120  # refresh this long before expiry, so a token never dies mid-call
MAX_REFRESH_FAILURES = 3
PENDING = "pending"  # authorised, waiting for the tenant to choose among several organisations


class OAuthStateInvalid(IntegrationError):
    code = "oauth_state_invalid"
    http_status = 400


class OAuthDenied(IntegrationError):
    code = "oauth_denied"
    http_status = 400


class ConnectionExpired(IntegrationError):
    code = "connection_expired"
    http_status = 409


class AdminConsentRequired(ProviderAuthError):
    """The provider refused because an administrator of the user's organisation must consent to the app first
    (``OAuth2Spec.needs_admin_consent``): something the tenant can act on, said as such."""

    code = "admin_consent_required"


def _admin_consent_reason(provider: Provider) -> str:
    return (
        f"an administrator of your {provider.name} organisation must consent to the permissions VRTX asks for: "
        "ask them to approve VRTX for the organisation"
    )


def _admin_consent_required(provider: Provider, provider_code: str | None) -> AdminConsentRequired:
    reason = _admin_consent_reason(provider)
    return AdminConsentRequired(f"{reason[0].upper()}{reason[1:]}, then connect again.", provider_code=provider_code)


def _needs_admin_consent(provider: Provider, error: str | None, description: str | None) -> bool:
    check = provider.auth.oauth2.needs_admin_consent if provider.auth.oauth2 is not None else None
    return check is not None and check(error or "", description or "")


@dataclass(frozen=True)
class CallbackResult:
    tenant_id: str
    connection: TenantIntegration
    organisations: list[ExternalTenant]
    return_to: str | None


def _client_credentials(settings: Settings, provider: Provider) -> tuple[str, str | None]:
    configured = settings.oauth_clients.get(provider.slug) or {}
    if not configured.get("client_id"):
        raise IntegrationNotAvailable(
            f"no OAuth app is configured for {provider.name}: set its client_id and client_secret in VRTX_OAUTH_CLIENTS"
        )
    return configured["client_id"], configured.get("client_secret")


def redirect_uri(settings: Settings, slug: str) -> str:
    return f"{settings.public_url.rstrip('/')}/api/v1/integrations/{slug}/oauth/callback"


def _oauth_client(settings: Settings, provider: Provider, **kwargs: Any) -> OAuth2Client:
    client_id, client_secret = _client_credentials(settings, provider)
    assert provider.auth.oauth2 is not None
    return OAuth2Client(
        client_id=client_id,
        client_secret=client_secret,
        scope=provider.auth.oauth2.scope_separator.join(provider.auth.oauth2.scopes),
        redirect_uri=redirect_uri(settings, provider.slug),
        code_challenge_method="S256" if provider.auth.oauth2.pkce else None,
        token_endpoint_auth_method=provider.auth.oauth2.token_auth,
        timeout=settings.http_timeout_s,
        **kwargs,
    )


def _require_oauth(provider: Provider) -> None:
    if provider.auth.oauth2 is None:
        raise IntegrationNotAvailable(f"{provider.name} does not connect through OAuth")
    if not provider.connectable:
        raise IntegrationNotAvailable(f"{provider.name} cannot be connected yet")


def _state_message(nonce: str, tenant_id: str, slug: str, expires: int) -> bytes:
    return f"{nonce}|{tenant_id}|{slug}|{expires}".encode()


def start_authorization(
    ctx: ConnectionContext, tenant_id: str, provider: Provider, return_to: str | None = None
) -> str:
    """The provider's consent URL for this tenant; the state it carries is stored, signed and single use."""
    _require_oauth(provider)
    assert provider.auth.oauth2 is not None
    row = integration_row(ctx.session, provider.slug)
    assert row is not None
    nonce = secrets.token_urlsafe(32)
    expires_at = utcnow() + STATE_TTL
    expires = int(expires_at.timestamp())
    state_id = hashlib.sha256(nonce.encode()).hexdigest()
    signature = ctx.vault.sign(_state_message(nonce, tenant_id, provider.slug, expires))
    state = f"{nonce}.{expires}.{signature}"
    verifier = secrets.token_urlsafe(64) if provider.auth.oauth2.pkce else None
    ctx.session.add(
        OAuthState(
            id=state_id,
            tenant_id=tenant_id,
            integration_id=row.id,
            code_verifier=ctx.vault.encrypt_text(verifier, oauth_verifier_context(state_id)) if verifier else None,
            redirect_uri=redirect_uri(ctx.settings, provider.slug),
            return_to=return_to,
            expires_at=expires_at,
        )
    )
    ctx.session.flush()
    with _oauth_client(ctx.settings, provider) as client:
        url, _ = client.create_authorization_url(
            ctx.settings.provider_url(provider.slug, provider.auth.oauth2.authorize_url),
            state=state,
            code_verifier=verifier,
            **dict(provider.auth.oauth2.extra_authorize_params),
        )
    return str(url)


def _consume_state(ctx: ConnectionContext, provider: Provider, state: str) -> OAuthState:
    """Check the state's signature, expiry and provider, and burn it. Any failure says the same thing."""
    invalid = OAuthStateInvalid("this authorisation link is invalid, expired or already used: start again")
    parts = state.split(".", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        raise invalid
    nonce, expires, signature = parts
    row = ctx.session.get(OAuthState, hashlib.sha256(nonce.encode()).hexdigest())
    if row is None or row.used_at is not None:
        raise invalid
    if not ctx.vault.verify(_state_message(nonce, row.tenant_id, provider.slug, int(expires)), signature):
        raise invalid
    if int(expires) < time.time() or row.expires_at.timestamp() < time.time():
        raise invalid
    integration = integration_row(ctx.session, provider.slug)
    if integration is None or row.integration_id != integration.id:
        raise invalid
    if not _burn(ctx.session, row.id):
        raise invalid  # a concurrent callback with the same state burnt it first
    return row


def _burn(session: Session, state_id: str) -> bool:
    """Mark the state used in its own transaction, committed before anything else happens: a callback that fails
    later (a refused code, an unreachable provider) rolls back its own work, never the burn. The conditional
    update lets exactly one of two concurrent callbacks win. The caller's session must hold no uncommitted writes
    (on SQLite this second connection would wait for them)."""
    with Session(bind=session.get_bind()) as own:
        result = own.execute(
            update(OAuthState).where(OAuthState.id == state_id, OAuthState.used_at.is_(None)).values(used_at=utcnow())
        )
        own.commit()
    return int(getattr(result, "rowcount", 0) or 0) == 1


def _token_record(token: Mapping[str, Any]) -> dict[str, Any]:
    expires_at = token.get("expires_at") or (time.time() + float(token.get("expires_in") or 1800))
    return {
        "access_token": token["access_token"],
        "refresh_token": token.get("refresh_token"),
        "token_type": token.get("token_type", "Bearer"),
        "scope": token.get("scope"),
        "expires_at": float(expires_at),
    }


def _provider_error(exc: Exception, provider: Provider, action: str) -> ProviderError:
    if isinstance(exc, OAuthError) and _needs_admin_consent(provider, exc.error, exc.description):
        return _admin_consent_required(provider, exc.error)
    if isinstance(exc, OAuthError):
        return ProviderAuthError(f"{provider.name} refused to {action}: {exc.error}", provider_code=exc.error)
    if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code < 500:
        return ProviderAuthError(f"{provider.name} refused to {action} ({exc.response.status_code})")
    return ProviderUnavailable(f"{provider.name} could not be reached to {action}: {type(exc).__name__}")


def complete_authorization(ctx: ConnectionContext, provider: Provider, params: Mapping[str, str]) -> CallbackResult:
    """The callback: burn the state, exchange the code, discover organisations, store encrypted tokens."""
    _require_oauth(provider)
    assert provider.auth.oauth2 is not None and provider.discover_tenants is not None
    state_row = _consume_state(ctx, provider, params.get("state", ""))
    tenant_id = state_row.tenant_id
    if params.get("error") and _needs_admin_consent(provider, params["error"], params.get("error_description")):
        raise _admin_consent_required(provider, params["error"])
    if params.get("error"):
        raise OAuthDenied(f"{provider.name} did not authorise the connection: {params['error']}")
    if not params.get("code"):
        raise ValidationFailed("the callback carries no authorisation code")
    verifier = (
        ctx.vault.decrypt_text(state_row.code_verifier, oauth_verifier_context(state_row.id))
        if state_row.code_verifier
        else None
    )
    token_url = ctx.settings.provider_url(provider.slug, provider.auth.oauth2.token_url)
    integration = integration_row(ctx.session, provider.slug)
    assert integration is not None
    if ctx.session.get_bind().dialect.name == "postgresql":
        # Held from before the grant is issued until it is stored: another tenant's disconnect deciding whether
        # the grant is shared (``revocation``) waits, instead of revoking a grant this callback is about to hold.
        lock_integration(ctx.session, integration.id)
    try:
        with _oauth_client(ctx.settings, provider) as client:
            token = client.fetch_token(token_url, code=params["code"], code_verifier=verifier)
            grant = Grant(access_token=token["access_token"], token=dict(token), callback=dict(params))
            answered: list[float] = []  # the discovery's calls count against the budget of what it reaches
            client.event_hooks["response"].append(lambda _response: answered.append(time.time()))
            organisations = provider.discover_tenants(
                client, lambda url: ctx.settings.provider_url(provider.slug, url), grant
            )
    except (OAuthError, httpx.HTTPError) as exc:
        raise _provider_error(exc, provider, "complete the authorisation") from exc
    spent_elsewhere(ctx.settings, provider, [o.id for o in organisations], answered)
    if not organisations:
        raise ProviderAuthError(f"the {provider.name} user granted access to no organisation")

    connection = get_connection(ctx.session, tenant_id, provider.slug)
    if connection is None:
        connection = TenantIntegration(tenant_id=tenant_id, integration_id=integration.id)
        ctx.session.add(connection)
    store_credentials(ctx.vault, connection, provider.slug, _token_record(token))
    connection.meta = {
        "organisations": [
            {
                "id": o.id,
                "name": o.name,
                "kind": o.kind,
                "connection_id": o.connection_id,
                **({"directory_id": o.directory_id} if o.directory_id else {}),
            }
            for o in organisations
        ],
        "refresh_failures": 0,
    }
    connection.last_error = None
    connection.status = PENDING
    ctx.session.flush()
    if len(organisations) == 1:
        select_organisation(ctx, tenant_id, provider, organisations[0].id)
    return CallbackResult(tenant_id, connection, organisations, state_row.return_to)


def select_organisation(
    ctx: ConnectionContext, tenant_id: str, provider: Provider, external_id: str
) -> TenantIntegration:
    connection = get_connection(ctx.session, tenant_id, provider.slug)
    if connection is None or connection.status not in (PENDING, Status.CONNECTED) or not connection.meta:
        raise NotFound(f"{provider.slug} has no authorisation waiting for this tenant")
    organisations = {o["id"]: o for o in connection.meta.get("organisations", [])}
    chosen = organisations.get(external_id)
    if chosen is None:
        raise ValidationFailed(
            "that organisation was not granted to this connection",
            details=[{"field": "organisation_id", "message": f"choose one of {sorted(organisations)}"}],
        )
    connection.meta = {
        **connection.meta,
        "external_account_id": chosen["id"],
        "external_account_name": chosen["name"],
        "provider_connection_id": chosen.get("connection_id"),
        **({"external_directory_id": chosen["directory_id"]} if chosen.get("directory_id") else {}),
    }
    connection.settings = {**defaults_from_schema(provider.config_schema), **(connection.settings or {})}
    connection.status = Status.CONNECTED
    connection.connected_at = utcnow()
    ctx.session.flush()
    record_event(
        ctx.session,
        tenant_id,
        EventType.INTEGRATION_CONNECTED,
        provider.slug,
        {"integration": provider.slug, "organisation": {"id": chosen["id"], "name": chosen["name"]}},
    )
    return connection


@contextmanager
def _refresh_lock(session: Session, settings: Settings, connection_id: int) -> Iterator[TenantIntegration]:
    """Hold the connection exclusively for a refresh, across processes, and yield it freshly read."""
    if session.get_bind().dialect.name == "postgresql":
        row = session.scalar(
            select(TenantIntegration)
            .where(TenantIntegration.id == connection_id)
            .with_for_update(of=TenantIntegration)
            .execution_options(populate_existing=True)
        )
        if row is None:
            raise NotFound("the connection no longer exists")
        yield row
        return
    lock_dir = settings.home / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"oauth-refresh-{connection_id}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            session.expire_all()
            row = session.get(TenantIntegration, connection_id)
            if row is None:
                raise NotFound("the connection no longer exists")
            yield row
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def access_token(ctx: ConnectionContext, connection_id: int, *, force: bool = False) -> str:
    """A working access token for the connection, refreshed (once, across processes) when near expiry.

    Commits the session: the rotated refresh token must be durable before the new access token is used.
    """
    connection = ctx.session.get(TenantIntegration, connection_id)
    if connection is None:
        raise NotFound("the connection no longer exists")
    provider = get_provider(connection.integration.slug)
    tokens = read_credentials(ctx.vault, connection, provider.slug)
    if not force and tokens.get("expires_at", 0) - REFRESH_MARGIN_S > time.time():
        return str(tokens["access_token"])
    seen_access_token = tokens.get("access_token")
    with _refresh_lock(ctx.session, ctx.settings, connection_id) as locked:
        if locked.status == Status.EXPIRED:
            raise ConnectionExpired(f"the {provider.name} connection has expired: reconnect it")
        tokens = read_credentials(ctx.vault, locked, provider.slug)
        fresh = tokens.get("expires_at", 0) - REFRESH_MARGIN_S > time.time()
        if fresh and (not force or tokens.get("access_token") != seen_access_token):
            ctx.session.commit()  # someone else refreshed while we waited
            return str(tokens["access_token"])
        new_tokens = _refresh(ctx, provider, locked, tokens)
        ctx.session.commit()
    return str(new_tokens["access_token"])


def _refresh(
    ctx: ConnectionContext, provider: Provider, connection: TenantIntegration, tokens: Mapping[str, Any]
) -> dict[str, Any]:
    assert provider.auth.oauth2 is not None
    refresh_token = tokens.get("refresh_token")
    if not refresh_token:
        return _refresh_failed(ctx, provider, connection, "no refresh token was granted (offline access missing)")
    token_url = ctx.settings.provider_url(provider.slug, provider.auth.oauth2.token_url)
    last_error = ""
    # A lost response (timeout, 5xx) is retried with the same old refresh token: the provider's grace window
    # (Xero: 30 minutes) accepts it. A refusal (invalid_grant) is final.
    for attempt in range(3):
        try:
            with _oauth_client(ctx.settings, provider) as client:
                token = client.refresh_token(token_url, refresh_token=refresh_token)
        except OAuthError as exc:
            if _needs_admin_consent(provider, exc.error, exc.description):
                return _refresh_failed(ctx, provider, connection, _admin_consent_reason(provider))
            return _refresh_failed(ctx, provider, connection, f"{provider.name} refused the refresh: {exc.error}")
        except httpx.HTTPError as exc:
            last_error = f"{provider.name} could not be reached to refresh the token ({type(exc).__name__})"
            time.sleep(0.2 * (2**attempt))
            continue
        record = _token_record(token)
        if not record.get("refresh_token"):
            record["refresh_token"] = refresh_token  # providers that do not rotate keep the old one valid
        store_credentials(ctx.vault, connection, provider.slug, record)
        connection.meta = {**(connection.meta or {}), "refresh_failures": 0}
        if connection.status == Status.ERROR:
            connection.status = Status.CONNECTED
        connection.last_error = None
        ctx.session.flush()
        return record
    failures = int((connection.meta or {}).get("refresh_failures", 0)) + 1
    connection.meta = {**(connection.meta or {}), "refresh_failures": failures}
    connection.last_error = last_error
    if failures >= MAX_REFRESH_FAILURES:
        return _refresh_failed(ctx, provider, connection, last_error)
    ctx.session.commit()
    raise ProviderUnavailable(last_error)


def _refresh_failed(
    ctx: ConnectionContext, provider: Provider, connection: TenantIntegration, reason: str
) -> dict[str, Any]:
    mark_unusable(ctx.session, connection, provider, reason, expired=True)
    raise ConnectionExpired(f"the {provider.name} connection has expired: {reason}. Reconnect it.")


def revoke(ctx: ConnectionContext, provider: Provider, connection: TenantIntegration) -> bool:
    """Revoke the grant at the provider. Returns False (and logs) if the provider could not be told."""
    oauth = provider.auth.oauth2
    if oauth is None or not connection.credentials:
        return False
    tokens = read_credentials(ctx.vault, connection, provider.slug)
    if "access_token" not in tokens:
        return False  # connected with typed credentials (Stripe's key): there is no grant to revoke
    if oauth.revoke is not None:
        return _revoke_by_hook(ctx, provider, connection, tokens)
    if not oauth.revoke_url:
        return False
    token = tokens.get("refresh_token") or tokens.get("access_token")
    url = ctx.settings.provider_url(provider.slug, oauth.revoke_url)
    try:
        with _oauth_client(ctx.settings, provider) as client:
            response = client.revoke_token(
                url, token=token, token_type_hint="refresh_token" if tokens.get("refresh_token") else "access_token"
            )
            response.raise_for_status()
    except (OAuthError, httpx.HTTPError) as exc:
        log.warning(
            "revocation failed provider=%s tenant=%s error=%s", provider.slug, connection.tenant_id, type(exc).__name__
        )
        return False
    return True


def _revoke_by_hook(
    ctx: ConnectionContext, provider: Provider, connection: TenantIntegration, tokens: Mapping[str, Any]
) -> bool:
    """The provider's own revocation (Intuit's JSON body, Stripe Connect's deauthorize); False (logged) when it
    could not be done."""
    assert provider.auth.oauth2 is not None and provider.auth.oauth2.revoke is not None
    client_id, client_secret = _client_credentials(ctx.settings, provider)
    app = {"client_id": client_id, **({"client_secret": client_secret} if client_secret else {})}
    account = (connection.meta or {}).get("external_account_id")
    try:
        with ctx.client_factory(ctx.settings) as client:
            provider.auth.oauth2.revoke(
                client, lambda url: ctx.settings.provider_url(provider.slug, url), app, tokens, account
            )
    except ProviderError as exc:
        log.warning("revocation failed provider=%s tenant=%s error=%s", provider.slug, connection.tenant_id, exc.code)
        return False
    return True

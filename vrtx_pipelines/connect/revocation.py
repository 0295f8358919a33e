"""Disconnecting at the provider: give back what a connection holds there, and nothing another stored connection
still uses.

Two tenants may connect the same organisation with the same provider user. At Xero that is one connection per
(app, user, organisation), and revoking a token removes every connection of the user to the app: revoking for one
tenant would cut the other off. So a disconnect removes only the links (``Holdings.links``: Xero's connection ids)
that no other stored connection holds, and revokes the token only when no other stored connection holds the same
grant (``Holdings.grant``; the provider's ``RevocationSpec`` says what those are). "Stored" is every connection of
the provider that keeps credentials and is not disconnected: pending, expired and failing ones may still come back
on the same grant. On PostgreSQL, disconnects of one provider take turns on its catalog row, so two tenants
disconnecting at once never both leave the grant to the other. SQLite has one write lock for the whole database,
which must not be held across provider calls: there, two disconnects at the same moment may both keep a grant they
shared, which then lies unused at the provider until it expires (Xero: 60 days).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from providers.base import Holdings, Provider
from providers.errors import ProviderError
from vrtx_pipelines.connect import oauth
from vrtx_pipelines.connect.context import ConnectionContext, Status
from vrtx_pipelines.connect.provider_connection import governor_for, provider_connection
from vrtx_pipelines.credentials.stored import read_credentials
from vrtx_pipelines.db.locks import lock_integration
from vrtx_pipelines.db.models import TenantIntegration
from vrtx_pipelines.errors import IntegrationError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Released:
    """What a disconnect did at the provider."""

    unlinked: int = 0  # links removed
    revoked: bool = False  # the token (and with it the grant) revoked
    shared: bool = False  # something was left at the provider because another stored connection holds it


def release_at_provider(ctx: ConnectionContext, provider: Provider, connection: TenantIntegration) -> Released:
    """Remove what only this connection holds at the provider, in the caller's transaction (on PostgreSQL it keeps
    the provider's other disconnects waiting until it ends). Never raises for the provider: a failure is logged, and
    the connection is disconnected here all the same."""
    if provider.auth.oauth2 is None or not connection.credentials:
        return Released()
    spec = provider.revocation
    unlinks = spec.unlink if spec is not None else None
    # A token good for the provider calls, refreshed (and committed) in a session of its own before the lock.
    auth_session = Session(bind=ctx.session.get_bind(), expire_on_commit=False)
    try:
        working = unlinks is not None and _fresh_token(ctx, auth_session, provider, connection)
        ctx.session.refresh(connection)  # the refresh rotated the stored tokens
        if ctx.session.get_bind().dialect.name == "postgresql":
            lock_integration(ctx.session, connection.integration_id)
        mine = _holdings(ctx, provider, connection)
        if mine is None:
            return Released()  # its own tokens are unreadable: nothing to revoke with
        theirs = [_holdings(ctx, provider, other) for other in _other_stored(ctx.session, connection)]
        held_elsewhere = {link for other in theirs if other is not None for link in other.links}
        grant_shared = any(other is None or other.grant == mine.grant for other in theirs)
        unlinked = 0
        if unlinks is not None and working:
            with ctx.client_factory(ctx.settings) as http:
                auth_ctx = ConnectionContext(auth_session, ctx.vault, ctx.settings, ctx.client_factory)
                as_connection = provider_connection(
                    auth_ctx, provider, connection.id, http, governor_for(ctx.settings, provider)
                )
                for link in mine.links:
                    if link not in held_elsewhere and _quietly(
                        provider, connection, "unlink", unlinks, as_connection, link
                    ):
                        unlinked += 1
        revoked = not grant_shared and oauth.revoke(ctx, provider, connection)
        shared = grant_shared or any(link in held_elsewhere for link in mine.links)
        return Released(unlinked=unlinked, revoked=revoked, shared=shared)
    finally:
        auth_session.close()


def _fresh_token(ctx: ConnectionContext, session: Session, provider: Provider, connection: TenantIntegration) -> bool:
    if connection.status == Status.EXPIRED:
        return False  # its grant is dead: nothing to call the provider with
    auth_ctx = ConnectionContext(session, ctx.vault, ctx.settings, ctx.client_factory)
    try:
        oauth.access_token(auth_ctx, connection.id)
    except (ProviderError, IntegrationError) as exc:
        _log_failure(provider, connection, "refresh before disconnecting", exc)
        return False
    return True


def _quietly(provider: Provider, connection: TenantIntegration, action: str, call: Any, *args: Any) -> bool:
    try:
        call(*args)
    except Exception as exc:  # noqa: BLE001 -- the tenant's disconnect must not fail on the provider's side
        _log_failure(provider, connection, action, exc)
        return False
    return True


def _log_failure(provider: Provider, connection: TenantIntegration, action: str, exc: Exception) -> None:
    # Typed errors carry messages written to be shown; anything else is named by its type only.
    reason = exc.message if isinstance(exc, ProviderError | IntegrationError) else type(exc).__name__
    log.warning("disconnect: %s failed provider=%s tenant=%s: %s", action, provider.slug, connection.tenant_id, reason)


def _other_stored(session: Session, connection: TenantIntegration) -> list[TenantIntegration]:
    return list(
        session.scalars(
            select(TenantIntegration).where(
                TenantIntegration.integration_id == connection.integration_id,
                TenantIntegration.id != connection.id,
                TenantIntegration.credentials.is_not(None),
                TenantIntegration.status != Status.DISCONNECTED,
            )
        )
    )


def _holdings(ctx: ConnectionContext, provider: Provider, connection: TenantIntegration) -> Holdings | None:
    """What the connection holds, with its grant always named (by the token itself when the provider says
    nothing). None when its tokens cannot be read: it may hold anything."""
    try:
        tokens = read_credentials(ctx.vault, connection, provider.slug)
    except IntegrationError as exc:
        _log_failure(provider, connection, "reading another connection's tokens", exc)
        return None
    held = provider.revocation.held(tokens, connection.meta or {}) if provider.revocation else Holdings()
    if held.grant is not None:
        return held
    token = str(tokens.get("refresh_token") or tokens.get("access_token") or "")
    return Holdings(f"token:{hashlib.sha256(token.encode()).hexdigest()}", held.links)

"""The connection a provider's client works with, built for one tenant's connection: pulls, pushes and the
webhook fast path all hand it to ``Provider.client``.

This is also where a dead grant is noticed once for all of them: when the provider still refuses the credentials
after a refresh (the client kit's ``on_refused``), the connection becomes ``expired`` (OAuth: the tenant must
reconnect) or ``error`` (keys: the key was revoked), with an event, instead of staying ``connected``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from providers.base import AuthType, Provider, ProviderConnection
from providers.kit.governor import RateGovernor
from providers.schema import defaults_from_schema
from vrtx_pipelines.config import Settings
from vrtx_pipelines.connect import oauth
from vrtx_pipelines.connect.call_ledger import published_limits, share_budget
from vrtx_pipelines.connect.context import ConnectionContext, Status, mark_unusable
from vrtx_pipelines.credentials.stored import read_credentials
from vrtx_pipelines.db.models import TenantIntegration
from vrtx_pipelines.records.sealed import keeps_sealed, sealer_of

log = logging.getLogger(__name__)


def governor_for(settings: Settings, provider: Provider) -> RateGovernor:
    """A fresh governor pacing one connection under the provider's published limits (``VRTX_PACING=published``)
    or only on what its headers and 429s say (``headers``)."""
    concurrent = provider.pulls.max_concurrent_calls if provider.pulls is not None else None
    return RateGovernor(published_limits(settings, provider), max_concurrent=concurrent)


def provider_connection(
    ctx: ConnectionContext, provider: Provider, connection_id: int, http: Any, governor: RateGovernor
) -> ProviderConnection:
    connection = ctx.session.get_one(TenantIntegration, connection_id)
    meta = connection.meta or {}
    share_budget(governor, ctx.settings, provider, meta.get("external_account_id"))
    stored = read_credentials(ctx.vault, connection, provider.slug)
    oauth_based = connected_by_oauth(provider, stored)
    credentials = {} if oauth_based else stored
    app = ctx.settings.oauth_clients.get(provider.slug, {}) if oauth_based else {}
    # A pull pages several resources at once, each from its own thread, and every call reads the token through
    # this one session: a Session is not thread-safe, so the threads take turns.
    session_turn = threading.Lock()

    def token(force: bool = False) -> str:
        if not oauth_based:
            return ""
        with session_turn:
            return oauth.access_token(ctx, connection_id, force=force)

    def refused(reason: str) -> None:
        with session_turn:
            credentials_refused(ctx, provider, connection_id, reason, oauth_based=oauth_based)

    settings = {**defaults_from_schema(provider.config_schema), **(connection.settings or {})}
    sealer = sealer_of(ctx.vault, connection) if keeps_sealed(provider, settings) else None
    return ProviderConnection(
        http=http,
        url=lambda url: ctx.settings.provider_url(provider.slug, url),
        external_tenant_id=meta.get("external_account_id"),
        access_token=token,
        refresh_access_token=lambda: token(force=True),
        governor=governor,
        credentials={k: str(v) for k, v in credentials.items()},
        credentials_refused=refused,
        app_credentials={k: str(app[k]) for k in ("client_id", "client_secret") if app.get(k)},
        settings=settings,
        seal=sealer.seal if sealer is not None else None,
    )


def credentials_refused(
    ctx: ConnectionContext, provider: Provider, connection_id: int, reason: str, *, oauth_based: bool
) -> None:
    """Mark a connection whose credentials the provider refuses even after a refresh, once, and commit (the run
    that noticed is about to fail, and its rollback must not take this with it). ``oauth_based``: the connection
    holds a grant (expired: reconnect) rather than typed credentials (an error: a new key)."""
    connection = ctx.session.get_one(TenantIntegration, connection_id, populate_existing=True)
    if connection.status not in (Status.CONNECTED, Status.ERROR):
        return  # already expired (a refused refresh), disconnected meanwhile, or still being chosen
    message = f"{provider.name} refused the connection's credentials: {reason}. Reconnect it."
    mark_unusable(ctx.session, connection, provider, message, expired=oauth_based)


def connected_by_oauth(provider: Provider, stored: Mapping[str, Any]) -> bool:
    """Whether a connection holds an OAuth grant: always for an OAuth provider; for one that takes a key or OAuth
    (Stripe), when what is stored is a grant's tokens rather than the typed credentials."""
    if provider.auth.type is AuthType.OAUTH2:
        return True
    return provider.auth.oauth2 is not None and "access_token" in stored

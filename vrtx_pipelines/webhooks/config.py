"""Each connection's webhook configuration: the URL to give the provider, the signing secret (stored encrypted,
or the platform app's key for providers that sign per app), which events it takes, and `vrtx dev`'s subscription
of the demo tenant to the sandboxes' webhooks."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from providers.base import Provider, WebhookSpec
from vrtx_pipelines.config import Settings
from vrtx_pipelines.connect.context import Status, require_connection
from vrtx_pipelines.credentials.stored import webhook_secret_context
from vrtx_pipelines.credentials.vault import Vault
from vrtx_pipelines.db.models import Integration, IntegrationWebhook, TenantIntegration
from vrtx_pipelines.errors import Conflict, ValidationFailed


class WebhooksNotSupported(Conflict):
    code = "webhooks_not_supported"


@dataclass(frozen=True)
class WebhookConfig:
    endpoint_url: str
    events: list[str]
    is_active: bool
    last_received_at: datetime | None
    # Where the signing secret comes from: "connection" (set for this tenant), "app" (the platform's provider app,
    # VRTX_OAUTH_CLIENTS.<slug>.webhook_key) or None (no secret: every delivery is refused).
    secret_source: str | None


def endpoint_url(settings: Settings, slug: str, tenant_id: str) -> str:
    """The URL to paste into the provider's webhook settings."""
    return f"{settings.public_url.rstrip('/')}/api/v1/webhooks/{slug}/{tenant_id}"


def app_webhook_key(settings: Settings, slug: str) -> str | None:
    """The platform app's webhook key: Xero signs with a key that belongs to the app, not to a tenant."""
    return settings.oauth_clients.get(slug, {}).get("webhook_key") or None


def require_webhooks(provider: Provider) -> WebhookSpec:
    if provider.webhooks is None:
        raise WebhooksNotSupported(f"{provider.name} does not send webhooks to this platform")
    return provider.webhooks


def _webhook_row(session: Session, connection_id: int) -> IntegrationWebhook | None:
    return session.scalar(
        select(IntegrationWebhook)
        .where(IntegrationWebhook.tenant_integration_id == connection_id)
        .order_by(IntegrationWebhook.id)
        .limit(1)
    )


def connection_webhook_secret(
    session: Session, vault: Vault, settings: Settings, provider: Provider, tenant_id: str
) -> str:
    """The connection's webhook secret, made (random, stored encrypted) when it has none: what the platform hands
    a provider to send back with each notification where the platform opens the subscription itself (Google's
    Calendar channel token)."""
    connection = require_connection(session, tenant_id, provider.slug)
    row = _webhook_row(session, connection.id)
    if row is not None and row.secret_key:
        return vault.decrypt_text(row.secret_key, webhook_secret_context(connection.id))
    secret = secrets.token_urlsafe(32)
    configure_webhook(session, vault, settings, provider, tenant_id, secret=secret, events=None, is_active=None)
    return secret


def read_webhook_config(session: Session, settings: Settings, provider: Provider, tenant_id: str) -> WebhookConfig:
    require_webhooks(provider)
    connection = require_connection(session, tenant_id, provider.slug)
    row = _webhook_row(session, connection.id)
    return _config_of(settings, provider, tenant_id, row)


def configure_webhook(
    session: Session,
    vault: Vault,
    settings: Settings,
    provider: Provider,
    tenant_id: str,
    *,
    secret: str | None,
    events: list[str] | None,
    is_active: bool | None,
) -> WebhookConfig:
    """Store the connection's webhook secret (encrypted, bound to its row) and subscribed events."""
    require_webhooks(provider)
    connection = require_connection(session, tenant_id, provider.slug)
    if secret is not None and not secret.strip():
        raise ValidationFailed("the webhook secret is empty", details=[{"field": "secret", "message": "empty"}])
    row = _webhook_row(session, connection.id)
    if row is None:
        row = IntegrationWebhook(tenant_integration_id=connection.id, events=[], is_active=True)
        session.add(row)
    row.endpoint_url = endpoint_url(settings, provider.slug, tenant_id)
    if secret is not None:
        row.secret_key = vault.encrypt_text(secret.strip(), webhook_secret_context(connection.id))
    if events is not None:
        row.events = sorted(set(events))
    if is_active is not None:
        row.is_active = is_active
    session.flush()
    return _config_of(settings, provider, tenant_id, row)


def _config_of(settings: Settings, provider: Provider, tenant_id: str, row: IntegrationWebhook | None) -> WebhookConfig:
    source = None
    if row is not None and row.secret_key:
        source = "connection"
    elif app_webhook_key(settings, provider.slug):
        source = "app"
    return WebhookConfig(
        endpoint_url=endpoint_url(settings, provider.slug, tenant_id),
        events=list(row.events or []) if row else [],
        is_active=row.is_active if row else True,
        last_received_at=row.last_received_at if row else None,
        secret_source=source,
    )


def subscribe_demo_webhooks(
    session: Session, vault: Vault, settings: Settings, tenant_id: str, sandboxes: Mapping[str, Any], api_url: str
) -> list[str]:
    """Give the demo tenant a fresh webhook key per provider sandbox that sends webhooks, and subscribe the
    sandbox to the API's endpoint for it, so a change made in a sandbox flows in like a real provider's would.
    ``sandboxes`` maps slug -> the sandbox's ASGI app (its ``state.<slug>`` exposes ``subscribe_webhooks``)."""
    from vrtx_pipelines.registry import load_providers  # the registry imports every provider: keep it off the hot path

    subscribed = []
    for slug, app in sandboxes.items():
        provider = load_providers().get(slug)
        sandbox: Any = getattr(app.state, slug, None)
        if provider is None or provider.webhooks is None or not hasattr(sandbox, "subscribe_webhooks"):
            continue
        connection = session.scalar(
            select(TenantIntegration)
            .join(Integration, Integration.id == TenantIntegration.integration_id)
            .where(Integration.slug == slug, TenantIntegration.tenant_id == tenant_id)
        )
        if connection is None or connection.status == Status.DISCONNECTED:
            continue
        key = secrets.token_urlsafe(32)
        configure_webhook(session, vault, settings, provider, tenant_id, secret=key, events=None, is_active=True)
        organisation = (connection.meta or {}).get("external_account_id")
        url = f"{api_url.rstrip('/')}/api/v1/webhooks/{slug}/{tenant_id}"
        sandbox.subscribe_webhooks(url, key, [organisation] if organisation else None)
        subscribed.append(slug)
    return subscribed

"""Response and request bodies of the JSON API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from providers.base import Provider
from vrtx_pipelines.db.models import TenantIntegration


class AuthFieldOut(BaseModel):
    name: str
    label: str
    secret: bool
    required: bool
    description: str
    pattern: str | None


class OAuthOut(BaseModel):
    authorize_url: str
    scopes: list[str]
    pkce: bool


class ConnectionSummary(BaseModel):
    status: str
    connected_at: datetime | None
    last_sync_at: datetime | None
    last_error: str | None


class IntegrationOut(BaseModel):
    slug: str
    name: str
    category: str
    tier: int
    description: str
    icon: str
    docs_url: str
    auth_type: str
    capabilities: list[str]
    implemented: list[str] = Field(description="Capabilities that work today.")
    connectable: bool = Field(description="Whether a tenant can connect this integration today.")
    display_order: int
    connection: ConnectionSummary | None = Field(description="The calling tenant's connection, if any.")


class IntegrationDetailOut(IntegrationOut):
    config_schema: dict[str, Any]
    auth_fields: list[AuthFieldOut]
    oauth: OAuthOut | None


class ConnectionOut(BaseModel):
    integration: str
    status: str
    connected_at: datetime | None
    connected_by: int | None
    last_sync_at: datetime | None
    last_error: str | None
    account: dict[str, Any] | None = Field(description="What the provider told us about the account (no secrets).")
    settings: dict[str, Any] | None


class DisconnectOut(ConnectionOut):
    purged: dict[str, int] | None = Field(
        default=None,
        description="With `purge=true`: what was deleted, per kind (0 where there was none): canonical_records, "
        "entity_links, sync_conflicts, push_outbox, webhook_inbox, integration_webhooks, integration_field_mappings, "
        "integration_field_mapping_versions, integration_sync_logs, and the tenant's warehouse dataset "
        "(warehouse_tables, warehouse_rows).",
    )


class ConnectRequest(BaseModel):
    credentials: dict[str, Any] = Field(description="The provider's auth fields, as listed in the catalog.")
    connected_by: int | None = Field(default=None, description="The CRM user who connected it.")


class TestResult(BaseModel):
    ok: bool
    account: dict[str, Any]


class SettingsOut(BaseModel):
    integration: str
    settings: dict[str, Any]


def connection_summary(connection: TenantIntegration | None) -> ConnectionSummary | None:
    if connection is None:
        return None
    return ConnectionSummary(
        status=connection.status,
        connected_at=connection.connected_at,
        last_sync_at=connection.last_sync_at,
        last_error=connection.last_error,
    )


def integration_out(provider: Provider, connection: TenantIntegration | None) -> IntegrationOut:
    return IntegrationOut(**_base_fields(provider), connection=connection_summary(connection))


def integration_detail_out(provider: Provider, connection: TenantIntegration | None) -> IntegrationDetailOut:
    oauth = provider.auth.oauth2
    return IntegrationDetailOut(
        **_base_fields(provider),
        connection=connection_summary(connection),
        config_schema=dict(provider.config_schema),
        auth_fields=[
            AuthFieldOut(
                name=f.name,
                label=f.label,
                secret=f.secret,
                required=f.required,
                description=f.description,
                pattern=f.pattern,
            )
            for f in provider.auth.fields
        ],
        oauth=OAuthOut(authorize_url=oauth.authorize_url, scopes=list(oauth.scopes), pkce=oauth.pkce)
        if oauth
        else None,
    )


def _base_fields(provider: Provider) -> dict[str, Any]:
    return {
        "slug": provider.slug,
        "name": provider.name,
        "category": provider.category.value,
        "tier": provider.tier,
        "description": provider.description,
        "icon": provider.icon,
        "docs_url": provider.docs_url,
        "auth_type": provider.auth.type.value,
        "capabilities": list(provider.capabilities),
        "implemented": sorted(provider.implemented),
        "connectable": provider.connectable,
        "display_order": provider.display_order,
    }


def connection_out(slug: str, connection: TenantIntegration) -> ConnectionOut:
    return ConnectionOut(
        integration=slug,
        status=connection.status,
        connected_at=connection.connected_at,
        connected_by=connection.connected_by,
        last_sync_at=connection.last_sync_at,
        last_error=connection.last_error,
        account=connection.meta,
        settings=connection.settings,
    )

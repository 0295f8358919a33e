"""A tenant's connections: connect with credentials, test, status, settings, disconnect.

The API and the CLI both call these; they own the transaction, these functions own the rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from sqlalchemy.orm import Session

from providers.base import AuthField, AuthType, ConnectionInfo, Provider
from providers.errors import ProviderAuthError, ProviderError
from providers.schema import defaults_from_schema
from vrtx_pipelines.catalog import integration_row
from vrtx_pipelines.connect.context import ConnectionContext, Status, get_connection, require_connection
from vrtx_pipelines.connect.purge import drop_warehouse, purge_rows
from vrtx_pipelines.connect.revocation import Released, release_at_provider
from vrtx_pipelines.credentials.stored import read_credentials, store_credentials
from vrtx_pipelines.credentials.vault import Vault
from vrtx_pipelines.db.models import (
    TenantIntegration,
    utcnow,
)
from vrtx_pipelines.errors import (
    IntegrationNotAvailable,
    OAuthRequired,
    ValidationFailed,
)
from vrtx_pipelines.events.record import EventType, record_event
from vrtx_pipelines.records.sealed import apply_sealing


def validate_credentials(provider: Provider, values: Mapping[str, Any]) -> dict[str, str]:
    """Check submitted credentials against the provider's auth fields; never echo a value back."""
    fields: dict[str, AuthField] = {field.name: field for field in provider.auth.fields}
    problems: list[dict[str, str]] = []
    for name in values:
        if name not in fields:
            problems.append({"field": name, "message": f"{provider.name} takes no credential called {name!r}"})
    clean: dict[str, str] = {}
    for name, field in fields.items():
        value = values.get(name)
        if value is None or value == "":
            if field.required:
                problems.append({"field": name, "message": f"{field.label} is required"})
            continue
        if not isinstance(value, str):
            problems.append({"field": name, "message": f"{field.label} must be a string"})
            continue
        value = value.strip()
        if field.pattern and not re.fullmatch(field.pattern, value):
            problems.append({"field": name, "message": f"{field.label} is not in the expected format"})
            continue
        clean[name] = value
    if problems:
        raise ValidationFailed(f"the credentials for {provider.name} are not valid", details=problems)
    return clean


def _run_connection_test(ctx: ConnectionContext, provider: Provider, credentials: Mapping[str, str]) -> ConnectionInfo:
    if provider.connection_tester is None:
        raise IntegrationNotAvailable(f"{provider.name} has no connection test yet")
    base_url = ctx.settings.provider_url(provider.slug, provider.api_base_url)
    with ctx.client_factory(ctx.settings) as client:
        return provider.connection_tester(credentials, base_url, client)


def _info_as_metadata(info: ConnectionInfo) -> dict[str, Any]:
    return {
        "external_account_id": info.external_account_id,
        "external_account_name": info.external_account_name,
        "details": dict(info.details),
    }


def connect_with_credentials(
    ctx: ConnectionContext, tenant_id: str, provider: Provider, submitted: Mapping[str, Any]
) -> TenantIntegration:
    """Validate, test against the provider, then store encrypted. Nothing is stored if any step fails."""
    if provider.auth.type is AuthType.OAUTH2:
        if provider.connectable:
            raise OAuthRequired(
                f"{provider.name} connects through OAuth: start at /api/v1/integrations/{provider.slug}/oauth/url"
            )
        raise IntegrationNotAvailable(f"{provider.name} connects through OAuth, which is not available for it yet")
    if not provider.connectable:
        raise IntegrationNotAvailable(f"{provider.name} cannot be connected yet")
    credentials = validate_credentials(provider, submitted)
    info = _run_connection_test(ctx, provider, credentials)

    row = integration_row(ctx.session, provider.slug)
    assert row is not None, "the catalog is synced before connections are made"
    connection = get_connection(ctx.session, tenant_id, provider.slug)
    if connection is None:
        connection = TenantIntegration(tenant_id=tenant_id, integration_id=row.id)
        ctx.session.add(connection)
    store_credentials(ctx.vault, connection, provider.slug, credentials)
    connection.settings = {**defaults_from_schema(provider.config_schema), **(connection.settings or {})}
    connection.meta = _info_as_metadata(info)
    connection.status = Status.CONNECTED
    connection.last_error = None
    connection.connected_at = utcnow()
    ctx.session.flush()
    record_event(
        ctx.session,
        tenant_id,
        EventType.INTEGRATION_CONNECTED,
        provider.slug,
        {
            "integration": provider.slug,
            "account": connection.meta,
            "connected_at": connection.connected_at.isoformat(),
        },
    )
    return connection


def test_connection(ctx: ConnectionContext, tenant_id: str, provider: Provider) -> ConnectionInfo:
    """Re-check stored credentials. A rejection marks the connection ``error`` with the provider's reason."""
    connection = require_connection(ctx.session, tenant_id, provider.slug)
    credentials = read_credentials(ctx.vault, connection, provider.slug)
    try:
        info = _run_connection_test(ctx, provider, credentials)
    except ProviderAuthError as exc:
        connection.status = Status.ERROR
        connection.last_error = exc.message
        record_event(
            ctx.session,
            tenant_id,
            EventType.INTEGRATION_ERROR,
            provider.slug,
            {"integration": provider.slug, "error": exc.message},
        )
        ctx.session.flush()
        raise
    except ProviderError as exc:
        connection.last_error = exc.message
        ctx.session.flush()
        raise
    connection.status = Status.CONNECTED
    connection.last_error = None
    connection.meta = _info_as_metadata(info)
    ctx.session.flush()
    return info


@dataclass(frozen=True)
class Disconnection:
    connection: TenantIntegration
    released: Released  # what was given back at the provider
    purged: dict[str, int] | None  # with purge: what was deleted, per kind


def disconnect(ctx: ConnectionContext, tenant_id: str, provider: Provider, *, purge: bool) -> Disconnection:
    """Give back what only this connection holds at the provider, forget the credentials and stop syncing; with
    ``purge``, also delete everything synced for it (``vrtx_pipelines.connect.purge``)."""
    connection = require_connection(ctx.session, tenant_id, provider.slug)
    dropped = drop_warehouse(ctx, provider, tenant_id) if purge else None
    released = release_at_provider(ctx, provider, connection)
    connection.status = Status.DISCONNECTED
    connection.credentials = None
    connection.last_error = None
    purged = None
    if dropped is not None:
        purged = {**purge_rows(ctx, connection), "warehouse_tables": dropped.tables, "warehouse_rows": dropped.rows}
    ctx.session.flush()
    record_event(
        ctx.session,
        tenant_id,
        EventType.INTEGRATION_DISCONNECTED,
        provider.slug,
        {
            "integration": provider.slug,
            "purged": purge,
            "revoked_at_provider": released.revoked,
            "unlinked_at_provider": released.unlinked,
            # Another tenant's connection uses the same grant or organisation link, which was therefore kept.
            "kept_for_other_connections": released.shared,
        },
    )
    return Disconnection(connection, released, purged)


def settings_errors(provider: Provider, values: Any) -> list[dict[str, str]]:
    """Every problem with ``values`` against ``config_schema``, one entry per offending field."""
    problems: list[dict[str, str]] = []
    validator = Draft202012Validator(provider.config_schema)
    for error in sorted(validator.iter_errors(values), key=lambda e: [str(p) for p in e.absolute_path]):
        prefix = ".".join(str(part) for part in error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
            known = set(error.schema.get("properties", {}))
            problems += [
                {"field": _join(prefix, name), "message": f"{name!r} is not a setting of {provider.name}"}
                for name in error.instance
                if name not in known
            ]
        elif error.validator == "required" and isinstance(error.instance, Mapping):
            problems += [
                {"field": _join(prefix, name), "message": f"{name!r} is required"}
                for name in error.validator_value
                if name not in error.instance
            ]
        else:
            problems.append({"field": prefix or "(settings)", "message": error.message})
    return problems


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else str(name)


def read_settings(session: Session, tenant_id: str, provider: Provider) -> dict[str, Any]:
    connection = require_connection(session, tenant_id, provider.slug)
    return {**defaults_from_schema(provider.config_schema), **(connection.settings or {})}


def update_settings(
    session: Session, tenant_id: str, provider: Provider, values: Mapping[str, Any], vault: Vault
) -> dict[str, Any]:
    """Replace the tenant's settings after validating them against the provider's ``config_schema``; a choice
    about keeping private fields takes effect at once (a data key made, or dropped with what it sealed)."""
    connection = require_connection(session, tenant_id, provider.slug)
    problems = settings_errors(provider, values)
    if problems:
        raise ValidationFailed(f"the settings for {provider.name} are not valid", details=problems)
    merged = {**defaults_from_schema(provider.config_schema), **dict(values)}
    connection.settings = merged
    apply_sealing(session, vault, connection, provider)
    session.flush()
    return merged

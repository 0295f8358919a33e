"""The catalog, as the calling tenant sees it."""

from __future__ import annotations

from fastapi import APIRouter, Query
from sqlalchemy import select

from api.deps import ProviderDep, SessionDep, TenantDep
from api.responses import TENANT_ROUTE, errors
from api.schemas import (
    ConnectionOut,
    IntegrationDetailOut,
    IntegrationOut,
    connection_out,
    integration_detail_out,
    integration_out,
)
from vrtx_pipelines.connect.context import Status, get_connection
from vrtx_pipelines.db.models import Integration, TenantIntegration
from vrtx_pipelines.registry import load_providers

router = APIRouter(prefix="/api/v1/integrations", tags=["integrations"], responses=TENANT_ROUTE)


def _connections_by_slug(session: SessionDep, tenant_id: str) -> dict[str, TenantIntegration]:
    rows = session.execute(
        select(Integration.slug, TenantIntegration)
        .join(TenantIntegration, TenantIntegration.integration_id == Integration.id)
        .where(TenantIntegration.tenant_id == tenant_id)
    )
    return {slug: connection for slug, connection in rows}


@router.get("", response_model=list[IntegrationOut], summary="List available integrations")
def list_integrations(
    session: SessionDep,
    tenant: TenantDep,
    category: str | None = Query(default=None, description="Only this category, e.g. 'accounting'."),
    q: str | None = Query(default=None, description="Search name, description and category."),
) -> list[IntegrationOut]:
    connections = _connections_by_slug(session, tenant.id)
    needle = (q or "").strip().lower()
    result = []
    for provider in load_providers().values():
        if category and provider.category.value != category:
            continue
        haystack = f"{provider.name} {provider.description} {provider.category.value} {provider.slug}".lower()
        if needle and needle not in haystack:
            continue
        result.append(integration_out(provider, connections.get(provider.slug)))
    return result


@router.get("/connected", response_model=list[ConnectionOut], summary="List connected integrations")
def list_connected(session: SessionDep, tenant: TenantDep) -> list[ConnectionOut]:
    providers = load_providers()
    connections = _connections_by_slug(session, tenant.id)
    return [
        connection_out(slug, connection)
        for slug, connection in sorted(connections.items(), key=lambda item: providers[item[0]].display_order)
        if connection.status != Status.DISCONNECTED and slug in providers
    ]


@router.get("/{slug}", response_model=IntegrationDetailOut, summary="Get integration details", responses=errors(404))
def get_integration(provider: ProviderDep, session: SessionDep, tenant: TenantDep) -> IntegrationDetailOut:
    return integration_detail_out(provider, get_connection(session, tenant.id, provider.slug))

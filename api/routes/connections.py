"""Connect, test, status and disconnect one integration for the calling tenant."""

from __future__ import annotations

from fastapi import APIRouter, Query, status

from api.deps import ContextDep, ProviderDep, SessionDep, TenantDep
from api.responses import INTEGRATION_ROUTE, JSON_BODY, errors
from api.schemas import ConnectionOut, ConnectRequest, DisconnectOut, TestResult, connection_out
from vrtx_pipelines.connect import connections
from vrtx_pipelines.connect.context import get_connection
from vrtx_pipelines.errors import NotConnected

router = APIRouter(prefix="/api/v1/integrations/{slug}", tags=["connections"], responses=INTEGRATION_ROUTE)


@router.post(
    "/connect",
    response_model=ConnectionOut,
    status_code=status.HTTP_201_CREATED,
    summary="Connect with an API key or basic-auth credentials",
    description="The credentials are checked against the integration's auth fields, then tested against the "
    "provider; only then are they stored, encrypted. OAuth integrations start at `/oauth/url` instead.",
    responses=JSON_BODY | errors(409, 502, 503),
)
def connect(body: ConnectRequest, provider: ProviderDep, tenant: TenantDep, ctx: ContextDep) -> ConnectionOut:
    connection = connections.connect_with_credentials(ctx, tenant.id, provider, body.credentials)
    if body.connected_by is not None:
        connection.connected_by = body.connected_by
    ctx.session.commit()
    return connection_out(provider.slug, connection)


@router.delete(
    "/disconnect",
    response_model=DisconnectOut,
    responses=errors(409),
    summary="Disconnect integration",
    description="Forgets the credentials and gives back, at the provider, what only this connection holds: a "
    "grant or an organisation link another connection (another tenant's, the same provider user) still uses is "
    "kept. With `purge=true`, also deletes everything synced for the connection, the warehouse dataset included, "
    "and answers what it deleted.",
)
def disconnect(
    provider: ProviderDep,
    tenant: TenantDep,
    ctx: ContextDep,
    purge: bool = Query(default=False, description="Also delete everything synced for this connection."),
) -> DisconnectOut:
    done = connections.disconnect(ctx, tenant.id, provider, purge=purge)
    ctx.session.commit()
    return DisconnectOut(**connection_out(provider.slug, done.connection).model_dump(), purged=done.purged)


@router.post("/test", response_model=TestResult, summary="Test connection", responses=errors(400, 409, 502, 503))
def test(provider: ProviderDep, tenant: TenantDep, ctx: ContextDep) -> TestResult:
    try:
        info = connections.test_connection(ctx, tenant.id, provider)
    finally:
        # The outcome (working again, or rejected with the provider's reason) is recorded either way.
        ctx.session.commit()
    return TestResult(
        ok=True,
        account={
            "external_account_id": info.external_account_id,
            "external_account_name": info.external_account_name,
            "details": dict(info.details),
        },
    )


@router.get("/status", response_model=ConnectionOut, summary="Get connection status")
def get_status(provider: ProviderDep, tenant: TenantDep, session: SessionDep) -> ConnectionOut:
    connection = get_connection(session, tenant.id, provider.slug)
    if connection is None:
        raise NotConnected(f"{provider.slug} has never been connected for this tenant")
    return connection_out(provider.slug, connection)

"""Request dependencies as ``Annotated`` aliases: the database session, the caller's tenant, the vault, and the
bounded types of ids and date-times read from paths and queries."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator
from sqlalchemy.orm import Session

from providers.base import Provider
from vrtx_pipelines.config import Settings
from vrtx_pipelines.connect.context import ConnectionContext
from vrtx_pipelines.credentials.vault import Vault
from vrtx_pipelines.cursors import MAX_ROW_ID, utc_instant
from vrtx_pipelines.db.models import Tenant
from vrtx_pipelines.errors import IntegrationError
from vrtx_pipelines.registry import get_provider
from vrtx_pipelines.tenants import tenant_for_token


class Unauthorized(IntegrationError):
    code = "unauthorized"
    http_status = 401


def get_session(request: Request) -> Iterator[Session]:
    """A session per request. Routes that change data commit explicitly; anything else rolls back."""
    session: Session = request.app.state.sessions()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_vault(request: Request) -> Vault:
    vault: Vault = request.app.state.vault
    return vault


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
VaultDep = Annotated[Vault, Depends(get_vault)]

bearer = HTTPBearer(auto_error=False, description="The tenant's API token (`vrtx tenants create` prints it).")


def current_tenant(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Tenant:
    # One message for every failure: a caller learns nothing about which tenants or tokens exist.
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("send the tenant's API token as 'Authorization: Bearer <token>'")
    tenant = tenant_for_token(session, credentials.credentials)
    if tenant is None:
        raise Unauthorized("the API token is not valid")
    return tenant


TenantDep = Annotated[Tenant, Depends(current_tenant)]


def provider_for(slug: str) -> Provider:
    return get_provider(slug)


ProviderDep = Annotated[Provider, Depends(provider_for)]


def connection_context(
    session: SessionDep, vault: VaultDep, settings: SettingsDep, request: Request
) -> ConnectionContext:
    return ConnectionContext(
        session=session, vault=vault, settings=settings, client_factory=request.app.state.client_factory
    )


ContextDep = Annotated[ConnectionContext, Depends(connection_context)]


# Every id read from a path or a query fits the database's integer: a bigger one is a 422, never an overflow.
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="A row id (1 to 2^63-1).")]
BeforeId = Annotated[
    int | None, Query(ge=1, le=MAX_ROW_ID, description="Only rows older than this id (`next_before_id`).")
]
# A date-time that exists in UTC (naive is UTC): `9999-12-31T23:59:59-23:59` is a 422, not an overflow.
Instant = Annotated[datetime, AfterValidator(utc_instant)]

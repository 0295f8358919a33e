"""Canonical records pulled from a provider, read with a change cursor."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import ProviderDep, SessionDep, TenantDep, VaultDep
from api.responses import INTEGRATION_ROUTE
from vrtx_pipelines.connect.context import get_connection
from vrtx_pipelines.errors import NotConnected, NotFound
from vrtx_pipelines.records import store as records
from vrtx_pipelines.records.sealed import open_fields, sealer_of

router = APIRouter(prefix="/api/v1/integrations/{slug}/records", tags=["records"], responses=INTEGRATION_ROUTE)


class RecordOut(BaseModel):
    external_id: str
    entity: str
    deleted: bool = Field(description="Archived, voided or deleted at the provider.")
    data: dict[str, Any]
    remote_updated_at: datetime | None
    synced_at: datetime


class RecordsOut(BaseModel):
    records: list[RecordOut]
    next_cursor: str = Field(description="Pass as `cursor` to get what changed after this page.")
    has_more: bool


class UnknownEntity(NotFound):
    code = "unknown_entity"


@router.get("/{entity}", response_model=RecordsOut, summary="Records changed since a cursor")
def list_records(
    entity: str,
    provider: ProviderDep,
    tenant: TenantDep,
    session: SessionDep,
    vault: VaultDep,
    cursor: Annotated[str | None, Query(description="From the previous page; omit to start at the beginning.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> RecordsOut:
    pulled = [c.removeprefix("pull:") for c in provider.capabilities if c.startswith("pull:")]
    if entity not in pulled:
        raise UnknownEntity(f"{provider.name} has no records called {entity!r}; it pulls {', '.join(pulled)}")
    connection = get_connection(session, tenant.id, provider.slug)
    if connection is None:
        raise NotConnected(f"{provider.slug} has never been connected for this tenant")
    page = records.changed_since(session, connection.id, entity, cursor, limit)
    sealer = sealer_of(vault, connection)  # private fields the tenant keeps (a message's body) open for it
    return RecordsOut(
        records=[
            RecordOut(
                external_id=row.external_id,
                entity=row.entity_type,
                deleted=row.deleted,
                data=open_fields(sealer, provider, entity, row.external_id, row.data),
                remote_updated_at=row.remote_updated_at,
                synced_at=row.updated_at,
            )
            for row in page.records
        ],
        next_cursor=page.next_cursor,
        has_more=page.has_more,
    )

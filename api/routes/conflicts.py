"""Sync conflicts: records changed in the CRM and at the provider between syncs. The ones the connection's
``conflict_policy`` could not settle hold their push until resolved here."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from api.deps import BeforeId, ProviderDep, RowId, SessionDep, TenantDep
from api.responses import INTEGRATION_ROUTE, JSON_BODY, errors
from api.routes.pushes import push_launcher
from vrtx_pipelines.db.models import SyncConflict
from vrtx_pipelines.push import conflicts

router = APIRouter(prefix="/api/v1/integrations/{slug}/conflicts", tags=["conflicts"], responses=INTEGRATION_ROUTE)

ConflictState = Literal["open", "resolved", "all"]


class ConflictOut(BaseModel):
    id: int
    integration: str
    entity: str
    vrtx_id: str | None
    external_id: str | None
    fields: list[str] = Field(description="The fields both sides changed, to different values.")
    base_data: dict[str, Any] | None = Field(description="The record as last synced (what both sides agreed on).")
    crm_data: dict[str, Any] | None = Field(description="The record the CRM pushed.")
    provider_data: dict[str, Any] | None = Field(description="The provider's record when the push was judged.")
    policy: str = Field(description="The conflict_policy setting that judged it.")
    status: Literal["open", "resolved"]
    resolution: str | None = Field(
        description="crm, provider or merged (through this API), auto:<policy> (settled by the policy), or "
        "superseded (a newer push of the record replaced the held one)."
    )
    resolved_data: dict[str, Any] | None = Field(description="The record the resolution chose.")
    resolved_at: datetime | None
    push_id: int | None = Field(description="The push held by (or judged in) this conflict.")
    created_at: datetime


class ConflictsOut(BaseModel):
    conflicts: list[ConflictOut]
    next_before_id: int | None = Field(description="Pass as `before_id` for the next (older) page.")


class ResolveIn(BaseModel):
    resolution: Literal["crm", "provider", "merged"] = Field(
        description="`crm` sends the CRM's record (keeping the provider's changes to the other fields); "
        "`provider` keeps the provider's record and closes the push; `merged` sends the CRM's record with "
        "`data` laid over it."
    )
    data: dict[str, Any] | None = Field(
        default=None, description="With `merged` only: field values to send (e.g. the conflicting fields)."
    )


def conflict_out(slug: str, row: SyncConflict) -> ConflictOut:
    return ConflictOut(
        id=row.id,
        integration=slug,
        entity=row.entity_type,
        vrtx_id=row.vrtx_id,
        external_id=row.external_id,
        fields=[str(name) for name in row.fields],
        base_data=row.base_data,
        crm_data=row.crm_data,
        provider_data=row.provider_data,
        policy=row.policy,
        status="open" if row.status == conflicts.OPEN else "resolved",
        resolution=row.resolution,
        resolved_data=row.resolved_data,
        resolved_at=row.resolved_at,
        push_id=row.push_id,
        created_at=row.created_at,
    )


@router.get("", response_model=ConflictsOut, summary="Sync conflicts, newest first (open ones by default)")
def list_conflicts(
    provider: ProviderDep,
    tenant: TenantDep,
    session: SessionDep,
    state: Annotated[ConflictState, Query(alias="status")] = "open",
    entity: str | None = None,
    vrtx_id: str | None = None,
    external_id: str | None = None,
    before_id: BeforeId = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ConflictsOut:
    rows = conflicts.list_conflicts(
        session,
        tenant.id,
        provider,
        status=None if state == "all" else state,
        entity=entity,
        vrtx_id=vrtx_id,
        external_id=external_id,
        before_id=before_id,
        limit=limit,
    )
    return ConflictsOut(
        conflicts=[conflict_out(provider.slug, row) for row in rows],
        next_before_id=rows[-1].id if len(rows) == limit else None,
    )


@router.get("/{conflict_id}", response_model=ConflictOut, summary="One sync conflict")
def get_conflict(conflict_id: RowId, provider: ProviderDep, tenant: TenantDep, session: SessionDep) -> ConflictOut:
    return conflict_out(provider.slug, conflicts.get_conflict(session, tenant.id, provider, conflict_id))


@router.post(
    "/{conflict_id}/resolve",
    response_model=ConflictOut,
    summary="Resolve an open conflict",
    description="`crm` and `merged` release the held push with the chosen record (sent by the next push run); "
    "`provider` closes it as done without sending, and the CRM hears the provider's record in the "
    "`conflict.resolved` event. 409 `conflict_already_resolved` when it is no longer open; 422 for a `merged` "
    "record that does not validate.",
    responses=JSON_BODY | errors(409),
)
def resolve_conflict(
    conflict_id: RowId,
    body: ResolveIn,
    provider: ProviderDep,
    tenant: TenantDep,
    session: SessionDep,
    request: Request,
) -> ConflictOut:
    row = conflicts.resolve_conflict(session, tenant.id, provider, conflict_id, body.resolution, body.data)
    if body.resolution != conflicts.Resolution.PROVIDER and (launcher := push_launcher(request.app.state)) is not None:
        launcher.notify(provider, row.tenant_integration_id)
    return conflict_out(provider.slug, row)

"""The calling tenant's own settings: its white-label branding for the marketplace pages."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import SessionDep, TenantDep
from api.pages.theme import Branding, branding_out
from api.responses import JSON_BODY, TENANT_ROUTE

router = APIRouter(prefix="/api/v1/tenant", tags=["tenant"], responses=TENANT_ROUTE)


@router.get("/branding", summary="Get the marketplace branding")
def get_branding(tenant: TenantDep) -> dict[str, Any]:
    return branding_out(tenant)


@router.put(
    "/branding",
    summary="Set the marketplace branding",
    description="Replaces the whole branding: display name, logo (https URL or a small data: image), colours as "
    "hex, and whether VRTX is mentioned at all. Text colours are adjusted on the pages to stay readable.",
    responses=JSON_BODY,
)
def put_branding(body: Branding, tenant: TenantDep, session: SessionDep) -> dict[str, Any]:
    tenant.branding = body.model_dump(mode="json", exclude_none=True)
    session.commit()
    return branding_out(tenant)

"""A connection's settings, validated against the integration's ``config_schema``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from api.deps import ProviderDep, SessionDep, TenantDep, VaultDep
from api.responses import INTEGRATION_ROUTE, JSON_BODY
from api.schemas import SettingsOut
from vrtx_pipelines.connect import connections

router = APIRouter(prefix="/api/v1/integrations/{slug}/settings", tags=["settings"], responses=INTEGRATION_ROUTE)


@router.get("", response_model=SettingsOut, summary="Get integration settings")
def get_settings(provider: ProviderDep, tenant: TenantDep, session: SessionDep) -> SettingsOut:
    return SettingsOut(integration=provider.slug, settings=connections.read_settings(session, tenant.id, provider))


@router.put(
    "",
    response_model=SettingsOut,
    summary="Replace integration settings",
    description="The body is the whole settings object; invalid settings get 422 listing each bad field.",
    responses=JSON_BODY,
)
def put_settings(
    provider: ProviderDep,
    tenant: TenantDep,
    session: SessionDep,
    vault: VaultDep,
    body: Annotated[dict[str, Any], Body()],
) -> SettingsOut:
    saved = connections.update_settings(session, tenant.id, provider, body, vault)
    session.commit()
    return SettingsOut(integration=provider.slug, settings=saved)

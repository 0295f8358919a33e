"""What several pages share: finding the integration and the tenant's connection, and status in words."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.pages.render import PageError
from api.pages.session import PageSession
from providers.base import Provider
from vrtx_pipelines.connect.context import Status
from vrtx_pipelines.connect.oauth import PENDING
from vrtx_pipelines.db.models import Integration, TenantIntegration
from vrtx_pipelines.errors import UnknownIntegration
from vrtx_pipelines.mapping.store import mappable_entities
from vrtx_pipelines.registry import get_provider

CATEGORY_NAMES = {
    "accounting": "Accounting",
    "payment": "Payments",
    "email": "Email & calendar",
    "communication": "Communication",
    "marketing": "Marketing",
    "crm": "CRM",
    "scheduling": "Scheduling",
    "documents": "Documents",
    "erp": "ERP",
    "automation": "Automation",
}


# The settings every provider's schema has for scheduled pulls (providers.schema.settings_schema).
SYNC_SETTINGS = ("sync_enabled", "sync_frequency_minutes", "entities")


@dataclass(frozen=True)
class Abilities:
    """What a connection to the provider can do today, so that a page offers only that: a connect-only
    integration (Twilio, Mailchimp, Microsoft 365 so far) shows no sync status, no sync settings and no mappings."""

    syncs: bool  # it pulls: sync status and log, last and next sync, Sync now, the schedule's settings
    maps: bool  # it has records the tenant can map fields of
    settings: tuple[str, ...]  # the settings the tenant can change today, in the schema's order


def abilities(provider: Provider) -> Abilities:
    syncs = provider.connectable and provider.pulls is not None
    names = tuple(provider.config_schema.get("properties", {}))
    return Abilities(
        syncs=syncs,
        maps=syncs and bool(mappable_entities(provider)),
        settings=names if syncs else tuple(n for n in names if n not in SYNC_SETTINGS),
    )


def sections(provider: Provider) -> list[tuple[str, str, str]]:
    """The tabs of a connected integration's pages: (key, label, path suffix), only those it can use."""
    can = abilities(provider)
    found = [("overview", "Overview", "")]
    if can.settings:
        found.append(("settings", "Settings", "/settings"))
    if can.syncs:
        found.append(("sync", "Sync status", "/sync"))
    if can.maps:
        found.append(("mappings", "Field mappings", "/mappings"))
    return found


@dataclass(frozen=True)
class StatusView:
    label: str
    tone: str  # ok | warn | bad: the badge's colour, always paired with the words
    advice: str


def status_view(connection: TenantIntegration) -> StatusView:
    if connection.status == Status.CONNECTED:
        return StatusView("Connected", "ok", "")
    if connection.status == PENDING:
        return StatusView("Choose organisation", "warn", "Pick which organisation to connect to finish connecting.")
    if connection.status == Status.EXPIRED:
        return StatusView(
            "Reconnect needed",
            "bad",
            "The provider no longer accepts this connection (access was revoked or has lapsed). Reconnect to "
            "resume syncing; your settings and mappings are kept.",
        )
    if connection.status == Status.ERROR:
        return StatusView(
            "Needs attention", "bad", "The last attempt to use this connection failed. Check the error, then reconnect."
        )
    return StatusView("Not connected", "warn", "")


def provider_page(slug: str, page: PageSession) -> Provider:
    try:
        return get_provider(slug)
    except UnknownIntegration:
        raise PageError(404, "Not found", f"There is no integration called “{slug}”.", page.brand) from None


def tenant_connection(session: Session, tenant_id: str, provider: Provider) -> TenantIntegration | None:
    """The tenant's connection to ``provider`` unless it is disconnected (or never existed)."""
    connection = session.scalar(
        select(TenantIntegration)
        .join(Integration, Integration.id == TenantIntegration.integration_id)
        .where(TenantIntegration.tenant_id == tenant_id, Integration.slug == provider.slug)
    )
    if connection is None or connection.status == Status.DISCONNECTED:
        return None
    return connection


def require_connection(session: Session, page: PageSession, provider: Provider) -> TenantIntegration:
    connection = tenant_connection(session, page.tenant_id, provider)
    if connection is None:
        raise PageError(
            404,
            f"{provider.name} is not connected",
            f"Connect {provider.name} from the marketplace first.",
            page.brand,
        )
    return connection


def tenant_connections(session: Session, tenant_id: str) -> list[TenantIntegration]:
    rows = session.scalars(
        select(TenantIntegration)
        .where(TenantIntegration.tenant_id == tenant_id)
        .where(TenantIntegration.status != Status.DISCONNECTED)
    )
    return sorted(rows, key=lambda row: (row.integration.display_order, row.integration.slug))

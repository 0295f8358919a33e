"""Sync status: last and next sync, per-entity counts, the sync log (paged, filtered), Sync now, reconnect.

It calls the JSON API's own functions (``api.routes.sync``) so the page and the API report and launch the same
way; their typed errors become sentences a tenant admin can act on."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from api.deps import SessionDep, SettingsDep
from api.pages.common import abilities, provider_page, require_connection, status_view
from api.pages.render import PageError, render
from api.pages.session import FormDep, PageDep
from api.routes import sync as sync_api
from vrtx_pipelines.connect.context import Status
from vrtx_pipelines.db.models import Tenant
from vrtx_pipelines.errors import IntegrationError

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 20
DIRECTIONS = ("pull", "push")
STATUSES = ("success", "failed", "partial")
LAUNCH_FAILURES = {
    "orchestrator_unavailable": "The sync could not be started: the service that runs syncs is not reachable "
    "right now. Try again in a minute; if it keeps happening, ask your administrator to check that the sync "
    "service (Dagster) is running.",
    "connection_unusable": "This connection cannot sync until it is reconnected. Use Reconnect below.",
    "integration_not_available": "This integration cannot be synced on demand yet.",
}


# What started a run (``vrtx_pipelines.names.Trigger``), as a tenant admin reads it.
TRIGGERS = {
    "schedule": "Schedule",
    "connected": "First sync",
    "cli": "Command line",
    "api": "Sync now",  # the page's button and POST .../sync alike
    "webhook": "Webhook",
    "push": "From the CRM",
}


def trigger_of(row: sync_api.SyncLogOut) -> str:
    """The row's trigger in words: pulls record theirs in request_data; push rows are started by the CRM."""
    trigger = (row.request_data or {}).get("trigger") or ("push" if row.direction == "push" else "")
    return TRIGGERS.get(str(trigger), str(trigger) or "—")


def _tenant(session: SessionDep, tenant_id: str) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    assert tenant is not None, "the page session checked the tenant"
    return tenant


@router.get("/marketplace/{slug}/sync", response_model=None)
def sync_page(
    slug: str,
    request: Request,
    page: PageDep,
    session: SessionDep,
    settings: SettingsDep,
    entity: Annotated[str, Query(max_length=50)] = "",
    direction: Annotated[str, Query(max_length=10)] = "",
    status: Annotated[str, Query(max_length=10)] = "",
    cursor: Annotated[str, Query(max_length=200)] = "",
    launched: Annotated[str, Query(max_length=64)] = "",
    error: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    provider = provider_page(slug, page)
    connection = require_connection(session, page, provider)
    if not abilities(provider).syncs:
        message = f"{provider.name} is connected, but it does not sync anything yet: there is no sync status."
        raise PageError(404, f"{provider.name} does not sync yet", message, page.brand)
    tenant = _tenant(session, page.tenant_id)
    pulled = provider.pulls.entities if provider.pulls else ()
    pushed = tuple(provider.pushes.entities) if provider.pushes else ()
    entities = sorted({*pulled, *pushed})
    filters = {
        "entity": entity if entity in entities else "",
        "direction": direction if direction in DIRECTIONS else "",
        "status": status if status in STATUSES else "",
    }
    overview = sync_api.sync_status(provider, tenant, session, settings, request)
    try:
        logs = sync_api.sync_logs(
            provider,
            tenant,
            session,
            settings,
            entity=filters["entity"] or None,
            direction=filters["direction"] or None,
            log_status=filters["status"] or None,
            since=None,
            until=None,
            run_id=None,
            cursor=cursor or None,
            limit=PAGE_SIZE,
        )
    except IntegrationError:
        message = "That page of the sync log does not exist. Go back to the first page."
        raise PageError(400, "Page not found", message, page.brand) from None
    active = {k: v for k, v in filters.items() if v}
    return render(
        request,
        "sync.html",
        brand=page.brand,
        csrf_token=page.csrf_token,
        provider=provider,
        connection=connection,
        status=status_view(connection),
        overview=overview,
        logs=logs.logs,
        next_page=f"?{urlencode({**active, 'cursor': logs.next_cursor})}" if logs.next_cursor else "",
        first_page=f"?{urlencode(active)}" if cursor else "",
        entities=entities,
        directions=DIRECTIONS,
        statuses=STATUSES,
        filters=filters,
        can_sync=provider.pulls is not None and connection.status in sync_api.SYNCABLE,
        needs_reconnect=connection.status in (Status.EXPIRED, Status.ERROR),
        trigger_of=trigger_of,
        launched=launched,
        launch_failure=LAUNCH_FAILURES.get(error, "The sync could not be started. Try again." if error else ""),
    )


@router.post("/marketplace/{slug}/sync", response_model=None)
def sync_now(
    slug: str, request: Request, page: PageDep, form: FormDep, session: SessionDep, settings: SettingsDep
) -> Response:
    provider = provider_page(slug, page)
    require_connection(session, page, provider)
    try:
        launched = sync_api.sync_all(provider, _tenant(session, page.tenant_id), session, settings, request, full=False)
    except IntegrationError as exc:
        return RedirectResponse(f"/marketplace/{slug}/sync?{urlencode({'error': exc.code})}", status_code=303)
    return RedirectResponse(f"/marketplace/{slug}/sync?{urlencode({'launched': launched.run_id})}", status_code=303)

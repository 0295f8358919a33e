"""Pushes: the CRM sends a canonical record to a provider; it is queued, sent by a Dagster run, and its state
can be read back at any time."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response, status
from pydantic import BaseModel, Field
from starlette.datastructures import State

from api.deps import BeforeId, ProviderDep, RowId, SessionDep, TenantDep
from api.responses import INTEGRATION_ROUTE, JSON_BODY, errors
from vrtx_pipelines.db.models import PushOutbox
from vrtx_pipelines.errors import MissingIdempotencyKey
from vrtx_pipelines.orchestrator import dagster_webserver_url
from vrtx_pipelines.push import outbox as push_outbox
from vrtx_pipelines.push.launch import PushLauncher

router = APIRouter(prefix="/api/v1/integrations/{slug}/push", tags=["pushes"], responses=INTEGRATION_ROUTE)

Operation = Literal["create", "update", "upsert", "approve", "void", "archive", "delete", "collect", "cancel"]
PushState = Literal["pending", "running", "done", "failed", "held"]


class PushIn(BaseModel):
    operation: Operation = Field(
        description="`create` needs `data.id` (the VRTX id the link is kept under); `update`, `approve` and "
        "`void` apply to a record linked by an earlier push (by `data.id`) or named by `data.external_id`; "
        "`upsert` updates the linked record or creates it. `archive` (a contact: the CRM deleted it), `void` and "
        "`delete` (an invoice; Xero deletes only drafts) need only `data.id` or `data.external_id`. `collect` asks "
        "the provider to collect a CRM invoice (Stripe: a Payment Link, whose URL comes back as the invoice's "
        "`payment_url`); `cancel` ends a linked subscription."
    )
    data: dict[str, Any] = Field(
        description="The canonical record (Contact, Invoice or InvoicePayment, as in the records API). References "
        "(`contact_id` of an invoice, `invoice_id` of a payment) are VRTX ids of records already pushed."
    )


class PushOut(BaseModel):
    id: int
    integration: str
    entity: str
    operation: str
    status: PushState = Field(
        description="pending (queued or waiting to retry), running, done, failed, or held (the record changed in "
        "VRTX and at the provider and the conflict policy could not settle it: see .../conflicts)"
    )
    idempotency_key: str
    vrtx_id: str | None
    external_id: str | None = Field(description="The provider's id of the record, once written.")
    remote_version: str | None = Field(description="The provider's modification stamp after the write.")
    error: str | None = Field(
        description="Why it failed, in the provider's own words (or why it is retrying or held; for a done push, "
        "why nothing was sent, e.g. superseded by the provider's change)."
    )
    provider_status: int | None = Field(description="The provider's HTTP status for the last attempt.")
    attempts: int
    next_attempt_at: datetime | None
    run_id: str | None = Field(description="The Dagster run that handled it last.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class PushesOut(BaseModel):
    pushes: list[PushOut]
    next_before_id: int | None = Field(description="Pass as `before_id` for the next (older) page.")


def push_out(slug: str, row: PushOutbox) -> PushOut:
    return PushOut(
        id=row.id,
        integration=slug,
        entity=row.entity_type,
        operation=row.operation,
        status=row.status,
        idempotency_key=row.idempotency_key,
        vrtx_id=row.vrtx_id,
        external_id=row.external_id,
        remote_version=row.remote_version,
        error=row.error_message,
        provider_status=row.provider_status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        run_id=row.run_id,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


@router.post(
    "/{entity}",
    response_model=PushOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Push a record to the provider",
    description="Queues the push and answers 202 at once. The same `Idempotency-Key` with the same body answers "
    "200 with the same push (never a second one); with another body, 409 `idempotency_key_reused`. A body that "
    "does not validate is refused with 422 and nothing is queued.",
    responses={200: {"description": "A replay of an earlier push with this key", "model": PushOut}}
    | JSON_BODY
    | errors(409),
)
def create_push(
    entity: str,
    body: PushIn,
    provider: ProviderDep,
    tenant: TenantDep,
    session: SessionDep,
    request: Request,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", description="1-200 characters, unique per push; reuse it to retry safely."),
    ] = None,
) -> PushOut:
    key = (idempotency_key or "").strip()
    if not 1 <= len(key) <= 200:
        raise MissingIdempotencyKey(
            "send an Idempotency-Key header of 1 to 200 characters: it makes retrying this request safe",
            details=[{"field": "Idempotency-Key", "message": "required, 1-200 characters"}],
        )
    row, created = push_outbox.submit_push(session, tenant.id, provider, entity, body.operation, body.data, key)
    if not created:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    elif (launcher := push_launcher(request.app.state)) is not None:
        launcher.notify(provider, row.tenant_integration_id)
    return push_out(provider.slug, row)


def push_launcher(state: State) -> PushLauncher | None:
    """The app's immediate push launcher; ``app.state.push_launcher = None`` turns it off (sensor only)."""
    if not hasattr(state, "push_launcher"):
        state.push_launcher = PushLauncher(state.sessions, dagster_webserver_url(state.settings))
    launcher: PushLauncher | None = state.push_launcher
    return launcher


@router.get("/{push_id}", response_model=PushOut, summary="A push's state")
def get_push(push_id: RowId, provider: ProviderDep, tenant: TenantDep, session: SessionDep) -> PushOut:
    return push_out(provider.slug, push_outbox.get_push(session, tenant.id, provider, push_id))


@router.get("", response_model=PushesOut, summary="Recent pushes, newest first")
def list_pushes(
    provider: ProviderDep,
    tenant: TenantDep,
    session: SessionDep,
    state: Annotated[PushState | None, Query(alias="status")] = None,
    entity: str | None = None,
    before_id: BeforeId = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> PushesOut:
    rows = push_outbox.list_pushes(
        session, tenant.id, provider, status=state, entity=entity, before_id=before_id, limit=limit
    )
    return PushesOut(
        pushes=[push_out(provider.slug, row) for row in rows],
        next_before_id=rows[-1].id if len(rows) == limit else None,
    )

"""Webhooks: each connection's webhook settings (tenant API), and the endpoint providers deliver to.

The delivery endpoint has no bearer token: the provider's signature over the raw body, checked with the
connection's secret, is the authentication. It answers 200 with an empty body, or 401 with an empty body and no
header beyond the length for any authentication failure (Xero requires both), quickly.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from pydantic import BaseModel, Field
from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import ProviderDep, SessionDep, SettingsDep, TenantDep, VaultDep
from api.errors import integration_error_response, unexpected_error_response
from api.responses import INTEGRATION_ROUTE, JSON_BODY, ErrorOut, errors
from providers.base import Provider
from vrtx_pipelines.db.session import engine_for
from vrtx_pipelines.errors import IntegrationError, UnknownIntegration
from vrtx_pipelines.registry import get_provider
from vrtx_pipelines.webhooks import config as webhook_config
from vrtx_pipelines.webhooks import inbox as webhooks
from vrtx_pipelines.webhooks.receiver import WebhookReceiver

router = APIRouter(tags=["webhooks"])
DELIVERY_ANSWERS: dict[int | str, dict[str, Any]] = {
    202: {"description": "Stored, for a provider that is answered so (Microsoft Graph): an empty body"},
    401: {"description": "Not authenticated (signature, integration, tenant or connection): an empty body"},
    400: {"model": ErrorOut, "description": "A verified body that is not the provider's payload"},
    413: {"model": ErrorOut, "description": "A body over 1 MB"},
    503: {"model": ErrorOut, "description": "The provider's public signing keys cannot be fetched now (deliver again)"},
}


class WebhookOut(BaseModel):
    integration: str
    endpoint_url: str = Field(description="Paste this into the provider's webhook settings.")
    events: list[str] = Field(description="Subscribed event types (`invoice.update`, `contact.*`); empty = all.")
    is_active: bool
    last_received_at: datetime | None
    secret_configured: bool = Field(description="Whether deliveries can be verified; the secret is never shown.")
    secret_source: str | None = Field(description="`connection` (set here) or `app` (the platform's provider app).")


class WebhookIn(BaseModel):
    secret: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="The provider's webhook signing key for this connection (stored encrypted). Omit to keep the "
        "current one, or to use the platform app's key where the provider signs per app (Xero).",
    )
    events: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = None
    is_active: bool | None = None


def _out(slug: str, config: webhook_config.WebhookConfig) -> WebhookOut:
    return WebhookOut(
        integration=slug,
        endpoint_url=config.endpoint_url,
        events=config.events,
        is_active=config.is_active,
        last_received_at=config.last_received_at,
        secret_configured=config.secret_source is not None,
        secret_source=config.secret_source,
    )


@router.get(
    "/api/v1/integrations/{slug}/webhook",
    response_model=WebhookOut,
    summary="Webhook endpoint and subscription",
    responses=INTEGRATION_ROUTE | errors(409),
)
def get_webhook(provider: ProviderDep, tenant: TenantDep, session: SessionDep, settings: SettingsDep) -> WebhookOut:
    return _out(provider.slug, webhook_config.read_webhook_config(session, settings, provider, tenant.id))


@router.put(
    "/api/v1/integrations/{slug}/webhook",
    response_model=WebhookOut,
    summary="Set the webhook secret and subscribed events",
    description="409 when the integration sends no webhooks.",
    responses=INTEGRATION_ROUTE | JSON_BODY | errors(409),
)
def put_webhook(
    provider: ProviderDep,
    tenant: TenantDep,
    session: SessionDep,
    settings: SettingsDep,
    vault: VaultDep,
    request: Request,
    body: Annotated[WebhookIn, Body()],
) -> WebhookOut:
    config = webhook_config.configure_webhook(
        session,
        vault,
        settings,
        provider,
        tenant.id,
        secret=body.secret,
        events=body.events,
        is_active=body.is_active,
    )
    session.commit()
    # This process applies the change at once; other API processes within the target cache's few seconds.
    receiver_for(request.app.state).targets.forget(provider.slug, tenant.id)
    return _out(provider.slug, config)


def _provider_or_reject(slug: str) -> Provider:
    try:
        return get_provider(slug)
    except UnknownIntegration:
        raise webhooks.WebhookRejected() from None


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > webhooks.MAX_BODY_BYTES:
        raise webhooks.WebhookTooLarge()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > webhooks.MAX_BODY_BYTES:
            raise webhooks.WebhookTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def receiver_for(state: State) -> WebhookReceiver:
    """The process's receiver: its caches and its inbox writer are shared by every request."""
    receiver = getattr(state, "webhook_receiver", None)
    if receiver is None:
        # A pool without the per-checkout pre-ping (the writer retries once on a connection found dead).
        engine = engine_for(state.settings.sqlalchemy_url, hot_path=True)
        receiver = state.webhook_receiver = WebhookReceiver(engine, state.vault, state.settings)
    return receiver


@router.post(
    "/api/v1/webhooks/{slug}",
    status_code=200,
    response_class=Response,
    summary="Receive a provider's webhook for the platform's app",
    description="For providers that deliver every organisation's events to one URL per app (Xero, QuickBooks, "
    "Gmail through Pub/Sub push): verified with the app's webhook key (`VRTX_OAUTH_CLIENTS.<slug>.webhook_key`), "
    "or by the provider's own keys (Google: the push token's signature, `push_audience` and "
    "`push_service_account`), and routed by each event's organisation (Google: the mailbox) to the tenants "
    "connected to it. Same answers as the per-tenant endpoint.",
    responses=DELIVERY_ANSWERS,
)
async def receive_app_webhook(slug: str, request: Request) -> Response:
    # Served by ``WebhookDeliveries`` ahead of the framework's routing; declared here for the API's documentation.
    return await deliver(request, slug, None)


@router.post(
    "/api/v1/webhooks/{slug}/{tenant}",
    status_code=200,
    response_class=Response,
    summary="Receive a provider's webhook",
    description="Authenticated by the provider's signature over the raw body (Xero: `x-xero-signature`). 200 with "
    "an empty body once stored (duplicates are dropped); 401 with an empty body for a signature that does not "
    "verify (and for unknown integrations, tenants or connections alike); 400 for a malformed body; 413 over 1 MB. "
    "Microsoft Graph's validation handshake (`?validationToken=`) is answered 200 with the token as text/plain, "
    "and its notifications 202 once stored.",
    responses=DELIVERY_ANSWERS,
)
async def receive_webhook(slug: str, tenant: str, request: Request) -> Response:
    # Served by ``WebhookDeliveries`` ahead of the framework's routing; declared here for the API's documentation.
    return await deliver(request, slug, tenant)


async def deliver(request: Request, slug: str, tenant: str | None) -> Response:
    """Receive one delivery (``tenant`` None: the platform app's URL): 200 once stored (or dropped as a
    duplicate), a bare 401 when it does not authenticate, the API's JSON error otherwise."""
    try:
        provider = _provider_or_reject(slug)
        handshake = provider.webhooks.handshake if provider.webhooks is not None else None
        if handshake is not None and tenant is not None:
            headers = {name.lower(): value for name, value in request.headers.items()}
            answer = handshake(dict(request.query_params), headers)
            if answer is not None:  # it proves only that the endpoint is ours: nothing is stored
                return Response(answer.body, status_code=answer.status, media_type=answer.content_type,
                                headers={"X-Content-Type-Options": "nosniff"})  # fmt: skip
        body = await _read_body(request)
        headers = {name.lower(): value for name, value in request.headers.items()}
        receiver = receiver_for(request.app.state)
        if tenant is None:
            await receiver.receive_for_app(provider, body, headers)
        else:
            await receiver.receive(provider, tenant, body, headers)
    except webhooks.WebhookRejected:
        # Xero's rule for the answer (and no provider reads more): a bare 401, no body, no cookie, no challenge.
        return Response(status_code=401)
    except IntegrationError as exc:
        return integration_error_response(exc)
    except Exception as exc:  # noqa: BLE001 -- answered like the API's own handler: the provider retries a 500
        return unexpected_error_response(request, exc)
    # Applying the events and launching their pulls is the webhook worker's (`vrtx webhook-worker`), off this path.
    return Response(status_code=provider.webhooks.accepted_status if provider.webhooks is not None else 200)


_DELIVERY_PATH = re.compile(r"/api/v1/webhooks/(?P<slug>[^/]+)(?:/(?P<tenant>[^/]+))?")


class WebhookDeliveries:
    """ASGI middleware answering ``POST /api/v1/webhooks/{slug}[/{tenant}]`` before the framework's routing,
    dependency resolution and middleware stack: deliveries come in bursts, and that machinery cost more than
    the delivery's own work. Anything else passes through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            found = _DELIVERY_PATH.fullmatch(scope["path"])
            if found is not None:
                request = Request(scope, receive)
                response = await deliver(request, found["slug"], found["tenant"])  # the path is decoded already
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

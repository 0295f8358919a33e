"""OAuth connections: the consent URL, the provider's redirect back, and the organisation choice."""

from __future__ import annotations

from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from api.deps import ContextDep, ProviderDep, TenantDep
from api.pages.oauth_return import failure_url, page_return_to, return_to_for_state
from api.responses import INTEGRATION_ROUTE, JSON_BODY, errors
from api.schemas import ConnectionOut, connection_out
from providers.errors import ProviderError
from vrtx_pipelines.connect import oauth
from vrtx_pipelines.errors import IntegrationError

router = APIRouter(prefix="/api/v1/integrations/{slug}", tags=["oauth"], responses=INTEGRATION_ROUTE)


@router.get("/oauth/url", summary="Get the OAuth authorisation URL", responses=errors(409))
def authorization_url(
    provider: ProviderDep,
    tenant: TenantDep,
    ctx: ContextDep,
    return_to: Annotated[str | None, Query(description="Where the callback sends the browser afterwards.")] = None,
) -> dict[str, Any]:
    url = oauth.start_authorization(ctx, tenant.id, provider, return_to)
    ctx.session.commit()
    return {"url": url, "expires_in": int(oauth.STATE_TTL.total_seconds())}


@router.get(
    "/oauth/callback",
    summary="Handle the OAuth callback",
    description="The provider redirects the tenant's browser here. No bearer token: the signed, single-use "
    "state identifies the tenant.",
    response_model=None,
    responses=errors(400, 409, 502, 503),
)
def callback(provider: ProviderDep, ctx: ContextDep, request: Request) -> Response:
    params = dict(request.query_params)
    try:
        result = oauth.complete_authorization(ctx, provider, params)
    except (IntegrationError, ProviderError) as exc:
        # Started from a marketplace page: that page reports the failure; API callers keep the JSON error.
        back = return_to_for_state(ctx.session, params.get("state", ""))
        if back is None:
            raise
        return RedirectResponse(failure_url(back, exc.code, params.get("error")), status_code=303)
    ctx.session.commit()
    if page_return_to(result.return_to):
        return RedirectResponse(str(result.return_to), status_code=303)
    organisations = [{"id": o.id, "name": o.name} for o in result.organisations]
    body = {**connection_out(provider.slug, result.connection).model_dump(mode="json"), "organisations": organisations}
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(_callback_page(provider.name, result))
    return JSONResponse(body)


def _callback_page(name: str, result: oauth.CallbackResult) -> str:
    if result.connection.status == oauth.PENDING:
        message = f"{escape(name)} is authorised. Choose which organisation to connect in VRTX."
    else:
        account = (result.connection.meta or {}).get("external_account_name", "")
        message = f"Connected to {escape(name)} ({escape(str(account))}). You can close this window."
    return f"<!doctype html><html lang=en><title>{escape(name)}</title><p>{message}</p></html>"


@router.put(
    "/organisation",
    response_model=ConnectionOut,
    summary="Choose the provider organisation to connect",
    responses=JSON_BODY,
)
def choose_organisation(
    provider: ProviderDep,
    tenant: TenantDep,
    ctx: ContextDep,
    organisation_id: Annotated[str, Body(embed=True)],
) -> ConnectionOut:
    connection = oauth.select_organisation(ctx, tenant.id, provider, organisation_id)
    ctx.session.commit()
    return connection_out(provider.slug, connection)

"""The marketplace, an integration's details with connect and disconnect, and the page OAuth comes back to."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import groupby
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from api.deps import ContextDep, SessionDep
from api.pages.common import (
    CATEGORY_NAMES,
    abilities,
    provider_page,
    status_view,
    tenant_connection,
    tenant_connections,
)
from api.pages.forms import credential_fields, field_errors
from api.pages.render import render
from api.pages.session import FormDep, PageDep, PageSession
from providers.base import AuthType, Provider
from providers.errors import ProviderAuthError, ProviderError
from vrtx_pipelines.connect import connections, oauth
from vrtx_pipelines.errors import IntegrationError, ValidationFailed
from vrtx_pipelines.registry import load_providers

router = APIRouter(include_in_schema=False)

NOTICES = {
    "connected": "Connected. The first sync starts shortly.",
    "disconnected": "Disconnected. Nothing more will be synced.",
    "purged": "Disconnected, and everything synced from it was deleted.",
}
# A connection that cannot sync yet is not promised a sync.
CONNECT_ONLY_NOTICES = {
    "connected": "Connected. The credentials were checked and are stored encrypted.",
    "disconnected": "Disconnected. The stored credentials were deleted.",
    "purged": "Disconnected, and everything stored for it was deleted.",
}
OAUTH_FAILURES = {
    "admin_consent_required": (
        "An administrator of your {name} organisation must consent to the permissions VRTX asks for before it can "
        "be connected. Ask them to approve VRTX for the organisation, then connect again."
    ),
    "oauth_denied": "The connection was not authorised at {name}{reason}. Nothing was connected; you can try again.",
    "oauth_state_invalid": "This authorisation took too long or was already used. Start connecting again.",
    "provider_auth_failed": "{name} refused the authorisation{reason}. Try again, or check the account's permissions.",
}


def _matches(provider: Provider, query: str) -> bool:
    text = " ".join(
        (provider.name, provider.slug, provider.description, provider.category.value, *provider.capabilities)
    ).lower()
    return all(word in text for word in query.lower().split())


def _search_text(provider: Provider) -> str:
    return f"{provider.name} {provider.category.value} {CATEGORY_NAMES.get(provider.category.value, '')}".lower()


@router.get("/marketplace", response_model=None)
def marketplace(
    request: Request, page: PageDep, session: SessionDep, q: Annotated[str, Query(max_length=100)] = ""
) -> Response:
    providers = [p for p in load_providers().values() if not q or _matches(p, q)]
    connected = [
        (c, load_providers()[c.integration.slug], status_view(c))
        for c in tenant_connections(session, page.tenant_id)
        if c.integration.slug in load_providers()
    ]
    connected_slugs = {provider.slug for _, provider, _ in connected}
    by_category = sorted(providers, key=lambda p: (list(CATEGORY_NAMES).index(p.category.value), p.display_order))
    groups = [
        (CATEGORY_NAMES.get(category, category), list(items))
        for category, items in groupby(by_category, key=lambda p: p.category.value)
    ]
    return render(
        request,
        "marketplace.html",
        brand=page.brand,
        csrf_token=page.csrf_token,
        q=q,
        connected=connected,
        connected_slugs=connected_slugs,
        groups=groups,
        search_text=_search_text,
        total=len(providers),
    )


@router.get("/marketplace/theme.css", response_model=None)
def theme(page: PageDep) -> Response:
    return Response(page.brand.css, media_type="text/css", headers={"Cache-Control": "private, no-cache"})


def _details(
    request: Request,
    session: SessionDep,
    page: PageSession,
    provider: Provider,
    *,
    status_code: int = 200,
    errors: Mapping[str, str] | None = None,
    problem: str = "",
    notice: str = "",
) -> Response:
    connection = tenant_connection(session, page.tenant_id, provider)
    return render(
        request,
        "integration.html",
        brand=page.brand,
        csrf_token=page.csrf_token,
        status_code=status_code,
        provider=provider,
        category=CATEGORY_NAMES.get(provider.category.value, provider.category.value),
        connection=connection,
        status=status_view(connection) if connection else None,
        account=_account(connection.meta if connection else None),
        organisations=(connection.meta or {}).get("organisations", []) if connection else [],
        available=[c for c in provider.capabilities if c in provider.implemented],
        roadmap=[c for c in provider.capabilities if c not in provider.implemented],
        is_oauth=provider.auth.type is AuthType.OAUTH2,
        fields=credential_fields(provider.auth.fields, errors or {}),
        problem=problem,
        notice=notice,
    )


def _account(meta: Mapping[str, Any] | None) -> str:
    """The connected account's name, with its mode where the provider has test and live data (Stripe)."""
    found = meta or {}
    name = str(found.get("external_account_name") or "")
    mode = (found.get("details") or {}).get("mode")
    if mode is None:  # connected through OAuth: the chosen account's kind says it ("test account")
        chosen = [o for o in found.get("organisations") or [] if o.get("id") == found.get("external_account_id")]
        kind = str(chosen[0].get("kind") or "") if chosen else ""
        mode = kind.removesuffix(" account") if kind in ("test account", "live account") else None
    return f"{name} ({mode} mode)" if name and mode else name


@router.get("/marketplace/{slug}", response_model=None)
def details(
    slug: str, request: Request, page: PageDep, session: SessionDep, notice: Annotated[str, Query()] = ""
) -> Response:
    provider = provider_page(slug, page)
    notices = NOTICES if abilities(provider).syncs else CONNECT_ONLY_NOTICES
    return _details(request, session, page, provider, notice=notices.get(notice, ""))


@router.post("/marketplace/{slug}/connect", response_model=None)
def connect(slug: str, request: Request, page: PageDep, form: FormDep, ctx: ContextDep) -> Response:
    provider = provider_page(slug, page)
    try:
        if provider.auth.type is AuthType.OAUTH2:
            url = oauth.start_authorization(ctx, page.tenant_id, provider, f"/marketplace/{slug}/connected")
            ctx.session.commit()
            return RedirectResponse(url, status_code=303)
        submitted = {f.name: form.get(f.name) for f in provider.auth.fields}
        connections.connect_with_credentials(ctx, page.tenant_id, provider, submitted)
        ctx.session.commit()
    except ValidationFailed as exc:
        ctx.session.rollback()
        errors = field_errors(exc.details)
        return _details(request, ctx.session, page, provider, status_code=422, errors=errors, problem=exc.message)
    except ProviderAuthError as exc:
        ctx.session.rollback()
        problem = f"{provider.name} did not accept these credentials: {exc.message}. Check them and try again."
        return _details(request, ctx.session, page, provider, status_code=400, problem=problem)
    except (ProviderError, IntegrationError) as exc:
        ctx.session.rollback()
        return _details(request, ctx.session, page, provider, status_code=409, problem=exc.message)
    return RedirectResponse(f"/marketplace/{slug}?notice=connected", status_code=303)


@router.get("/marketplace/{slug}/connected", response_model=None)
def connected(
    slug: str,
    request: Request,
    page: PageDep,
    session: SessionDep,
    error: Annotated[str, Query(max_length=40)] = "",
    reason: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    """Where the OAuth callback sends the browser back: success, an organisation to choose, or what went wrong."""
    provider = provider_page(slug, page)
    connection = tenant_connection(session, page.tenant_id, provider)
    failure = ""
    if error:
        template = OAUTH_FAILURES.get(error, "Connecting {name} did not complete{reason}. Try again.")
        failure = template.format(name=provider.name, reason=f" ({reason})" if reason else "")
    return render(
        request,
        "connected.html",
        brand=page.brand,
        csrf_token=page.csrf_token,
        status_code=400 if failure else 200,
        provider=provider,
        connection=connection if not failure else None,
        account=_account(connection.meta if connection else None),
        organisations=(connection.meta or {}).get("organisations", []) if connection else [],
        pending=connection is not None and connection.status == oauth.PENDING,
        failure=failure,
    )


@router.post("/marketplace/{slug}/organisation", response_model=None)
def choose_organisation(slug: str, request: Request, page: PageDep, form: FormDep, ctx: ContextDep) -> Response:
    provider = provider_page(slug, page)
    try:
        oauth.select_organisation(ctx, page.tenant_id, provider, form.get("organisation_id"))
        ctx.session.commit()
    except IntegrationError as exc:
        ctx.session.rollback()
        return _details(request, ctx.session, page, provider, status_code=422, problem=exc.message)
    return RedirectResponse(f"/marketplace/{slug}?notice=connected", status_code=303)


@router.post("/marketplace/{slug}/disconnect", response_model=None)
def disconnect(slug: str, request: Request, page: PageDep, form: FormDep, ctx: ContextDep) -> Response:
    provider = provider_page(slug, page)
    purge = form.get("data") == "purge"
    try:
        connections.disconnect(ctx, page.tenant_id, provider, purge=purge)
        ctx.session.commit()
    except IntegrationError as exc:
        ctx.session.rollback()
        return _details(request, ctx.session, page, provider, status_code=409, problem=exc.message)
    return RedirectResponse(f"/marketplace/{slug}?notice={'purged' if purge else 'disconnected'}", status_code=303)

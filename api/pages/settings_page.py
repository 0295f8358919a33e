"""A connection's settings as a form generated from the provider's ``config_schema``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from api.deps import SessionDep, get_vault
from api.pages.common import abilities, provider_page, require_connection
from api.pages.forms import field_errors, parse_settings, settings_fields
from api.pages.render import render
from api.pages.session import FormDep, PageDep, PageSession
from providers.base import Provider
from vrtx_pipelines.connect import connections

router = APIRouter(include_in_schema=False)


def _humane(schema: Mapping[str, Any], errors: dict[str, str]) -> dict[str, str]:
    # jsonschema describes a failed pattern with the regular expression itself: say what the field wants instead.
    properties = schema.get("properties", {})
    for name, message in errors.items():
        if "does not match" in message:
            hint = properties.get(name, {}).get("description", "")
            errors[name] = "Not in the expected format." + (f" {hint}" if hint else "")
    return errors


def _editable(provider: Provider) -> dict[str, Any]:
    """The part of the provider's settings schema the tenant can use today (no schedule for what cannot sync)."""
    schema = provider.config_schema
    names = abilities(provider).settings
    return {**schema, "properties": {k: v for k, v in schema.get("properties", {}).items() if k in names}}


def _page(
    request: Request,
    page: PageSession,
    provider: Provider,
    values: Mapping[str, Any],
    errors: dict[str, str],
    *,
    saved: bool = False,
    status_code: int = 200,
) -> Response:
    schema = _editable(provider)
    return render(
        request,
        "settings.html",
        brand=page.brand,
        csrf_token=page.csrf_token,
        status_code=status_code,
        provider=provider,
        fields=settings_fields(schema, values, _humane(schema, errors)),
        saved=saved,
        error_count=len(errors),
    )


@router.get("/marketplace/{slug}/settings", response_model=None)
def settings_form(slug: str, request: Request, page: PageDep, session: SessionDep, saved: bool = False) -> Response:
    provider = provider_page(slug, page)
    require_connection(session, page, provider)
    values = connections.read_settings(session, page.tenant_id, provider)
    return _page(request, page, provider, values, {}, saved=saved)


@router.post("/marketplace/{slug}/settings", response_model=None)
def save_settings(slug: str, request: Request, page: PageDep, form: FormDep, session: SessionDep) -> Response:
    provider = provider_page(slug, page)
    require_connection(session, page, provider)
    editable = _editable(provider)
    posted, unreadable = parse_settings(editable, form)
    # Settings the form does not show keep their stored values (an absent checkbox would otherwise read as off).
    stored = connections.read_settings(session, page.tenant_id, provider)
    hidden = {name: value for name, value in stored.items() if name not in editable["properties"]}
    values = {**hidden, **posted}
    errors = {**field_errors(connections.settings_errors(provider, values)), **unreadable}
    if errors:
        return _page(request, page, provider, values, errors, status_code=422)
    connections.update_settings(session, page.tenant_id, provider, values, get_vault(request))
    session.commit()
    return RedirectResponse(f"/marketplace/{slug}/settings?saved=true", status_code=303)

"""The field mapping editor: list, add, edit and delete a connection's mappings per entity (direct, lookup tables
edited as rows of values, formulas), with a preview of a real record before and after, field by field. It calls
the mapping API's own functions (``api.routes.mappings``), so the rules, versioning and validation are the API's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from api.deps import SessionDep, SettingsDep
from api.pages.common import provider_page, require_connection
from api.pages.mapping_form import (
    DIRECTIONS,
    MORE_ROWS,
    TRANSFORMS,
    Draft,
    DraftProblem,
    changed_rows,
    readable,
)
from api.pages.render import PageError, render
from api.pages.session import FormDep, PageDep, PageSession
from api.routes import mappings as mapping_api
from providers.base import Provider
from vrtx_pipelines.db.models import Tenant
from vrtx_pipelines.errors import IntegrationError
from vrtx_pipelines.mapping.store import mappable_entities

router = APIRouter(include_in_schema=False)


def _tenant(session: SessionDep, tenant_id: str) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    assert tenant is not None, "the page session checked the tenant"
    return tenant


def _entity(provider: Provider, page: PageSession, entity: str) -> str:
    entities = mappable_entities(provider)
    if not entities:
        raise PageError(404, "No field mappings", f"{provider.name} has no records to map yet.", page.brand)
    return entity if entity in entities else entities[0]


@dataclass(frozen=True)
class PreviewTable:
    kind: str  # pull | push
    label: str
    sample: bool
    rows: list[tuple[str, str, str]]  # pull: (field, before, after); push: (provider field, "", value sent)
    unmatched: int


def _preview_tables(provider: Provider, found: mapping_api.PreviewOut) -> list[PreviewTable]:
    tables = []
    if found.pull is not None:
        rows = changed_rows(found.pull.before, found.pull.after, found.pull.changed)
        tables.append(PreviewTable("pull", "Into the CRM", found.pull.sample, rows, len(found.pull.unmatched)))
    if found.push is not None:
        sent = [(name, "", readable(found.push.after.get(name))) for name in found.push.changed]
        tables.append(
            PreviewTable("push", f"From the CRM to {provider.name}", found.push.sample, sent, len(found.push.unmatched))
        )
    return tables


def _page(
    request: Request,
    page: PageSession,
    session: SessionDep,
    provider: Provider,
    entity: str,
    *,
    draft: Draft | None = None,
    editing: int | None = None,
    errors: dict[str, str] | None = None,
    problem: str = "",
    preview: list[PreviewTable] | None = None,
    saved: bool = False,
    status_code: int = 200,
) -> Response:
    tenant = _tenant(session, page.tenant_id)
    current = mapping_api.get_mappings(provider, tenant, session, entity).entities[entity]
    fields = mapping_api.get_fields(provider, tenant, session, entity).entities[entity]
    if draft is None and editing is not None and 0 <= editing < len(current.mappings):
        draft = Draft.from_spec(current.mappings[editing])
    errors = errors or {}
    lookup_errors = [m for f, m in errors.items() if f.startswith(("transform_config.table", "transform_config.inv"))]
    return render(
        request,
        "mappings.html",
        brand=page.brand,
        csrf_token=page.csrf_token,
        status_code=status_code,
        provider=provider,
        entity=entity,
        entities=mappable_entities(provider),
        mappings=current.mappings,
        version=current.version,
        vrtx_fields=[f.name for f in fields.vrtx_fields],
        external_fields=sorted(fields.external_fields or {}),
        draft=draft or Draft(),
        editing=editing,
        directions=DIRECTIONS,
        transforms=TRANSFORMS,
        errors=errors,
        lookup_error="; ".join(lookup_errors),
        problem=problem,
        preview=preview,
        saved=saved,
    )


@router.get("/marketplace/{slug}/mappings", response_model=None)
def mappings_page(
    slug: str,
    request: Request,
    page: PageDep,
    session: SessionDep,
    entity: Annotated[str, Query(max_length=50)] = "",
    edit: Annotated[int | None, Query(ge=0)] = None,
    saved: bool = False,
) -> Response:
    provider = provider_page(slug, page)
    require_connection(session, page, provider)
    return _page(request, page, session, provider, _entity(provider, page, entity), editing=edit, saved=saved)


@router.post("/marketplace/{slug}/mappings", response_model=None)
def change_mappings(
    slug: str, request: Request, page: PageDep, form: FormDep, session: SessionDep, settings: SettingsDep
) -> Response:
    provider = provider_page(slug, page)
    require_connection(session, page, provider)
    entity = _entity(provider, page, form.get("entity"))
    tenant = _tenant(session, page.tenant_id)
    current = list(mapping_api.get_mappings(provider, tenant, session, entity).entities[entity].mappings)
    action = form.get("action")
    index = int(form.get("index")) if form.get("index").isdigit() else None
    editing = index if index is not None and index < len(current) else None
    draft = Draft.from_form(form)
    if action == "more_rows":  # the lookup table needs more empty rows: the same draft, nothing saved
        draft.blank_rows = MORE_ROWS
        return _page(request, page, session, provider, entity, draft=draft, editing=editing)
    if action == "delete":
        candidate = [m for i, m in enumerate(current) if i != index]
    else:
        try:
            spec = draft.spec()
        except DraftProblem as exc:
            return _page(
                request, page, session, provider, entity, draft=draft, editing=editing,
                errors={exc.field: exc.message}, problem=exc.message, status_code=422,
            )  # fmt: skip
        except ValidationError as exc:
            problem = "; ".join(str(e.get("msg", "")) for e in exc.errors())
            return _page(
                request, page, session, provider, entity, draft=draft, editing=editing, problem=problem, status_code=422
            )
        candidate = [spec if i == index else m for i, m in enumerate(current)]
        if index is None or index >= len(current):
            candidate.append(spec)
            index = len(candidate) - 1
    try:
        if action == "preview":
            body = mapping_api.PreviewIn(entity=entity, mappings=candidate)
            found = mapping_api.preview(provider, tenant, session, settings, body)
            tables = _preview_tables(provider, found)
            return _page(request, page, session, provider, entity, draft=draft, editing=editing, preview=tables)
        mapping_api.put_mappings(
            provider, tenant, session, mapping_api.MappingsIn(mappings={entity: candidate}), "marketplace"
        )
    except IntegrationError as exc:
        session.rollback()
        errors = {
            str(d.get("field", "")): str(d.get("message", ""))
            for d in exc.details
            if d.get("mapping") == index and action != "delete"
        }
        return _page(
            request, page, session, provider, entity, draft=None if action == "delete" else draft,
            editing=editing if action != "delete" else None,
            errors=errors, problem=exc.message, status_code=422 if exc.http_status == 422 else 409,
        )  # fmt: skip
    return RedirectResponse(
        f"/marketplace/{slug}/mappings?{urlencode({'entity': entity, 'saved': 'true'})}", status_code=303
    )

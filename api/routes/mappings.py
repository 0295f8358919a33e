"""A tenant's field mappings per entity: read, replace (versioned), try on a record, re-derive records.

The rules of mappings and their formula language are in ``vrtx_pipelines.mapping`` and docs/field-mappings.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query
from pydantic import BaseModel, Field

from api.deps import ProviderDep, SessionDep, SettingsDep, TenantDep
from api.responses import INTEGRATION_ROUTE, JSON_BODY, errors
from providers.base import Provider
from vrtx_pipelines.connect.context import get_connection
from vrtx_pipelines.db.models import Tenant, TenantIntegration
from vrtx_pipelines.errors import IntegrationNotAvailable, NotConnected, NotFound, ValidationFailed
from vrtx_pipelines.mapping.engine import EntityMappings, FieldMappingSpec, compile_mappings
from vrtx_pipelines.mapping.fields import UNMAPPABLE_CANONICAL, canonical_fields
from vrtx_pipelines.mapping.preview import DirectionPreview, preview_pull, preview_push, pull_sample, push_sample
from vrtx_pipelines.mapping.rederive import rederive
from vrtx_pipelines.mapping.store import (
    active_mappings,
    catalog_for,
    current_versions,
    mappable_entities,
    mapping_versions,
    replace_mappings,
    saved_mappings,
)

router = APIRouter(prefix="/api/v1/integrations/{slug}/mappings", tags=["mappings"], responses=INTEGRATION_ROUTE)

EntityQuery = Annotated[str | None, Query(description="One entity type (e.g. `contacts`); omit for all.")]


class EntityMappingsOut(BaseModel):
    version: int = Field(description="The entity's current mapping version; 0 before the first change.")
    mappings: list[FieldMappingSpec]


class MappingsOut(BaseModel):
    integration: str
    entities: dict[str, EntityMappingsOut] = Field(description="Entity type -> its mappings, in order.")
    changed: list[str] = Field(default_factory=list, description="Entity types this request changed (PUT).")


class MappingsIn(BaseModel):
    mappings: dict[str, list[FieldMappingSpec]] = Field(
        description="Entity type -> its complete list of mappings (replaces that entity's list; an empty list "
        "removes them). Entity types not named are left as they are.",
        examples=[
            {
                "contacts": [
                    {"vrtx_field": "custom_fields.segment", "external_field": "Website", "direction": "pull"},
                    {
                        "vrtx_field": "name",
                        "external_field": "Name",
                        "transform_type": "formula",
                        "transform_config": {"expression": 'concat(first_name, " ", last_name)'},
                        "direction": "push",
                    },
                ]
            }
        ],
    )


class VersionOut(BaseModel):
    entity: str
    version: int
    changed_by: str | None
    created_at: datetime
    mappings: list[dict[str, Any]] = Field(description="The entity's whole set of mappings after this change.")


class VersionsOut(BaseModel):
    versions: list[VersionOut]


class CanonicalFieldOut(BaseModel):
    name: str
    type: str
    required: bool
    choices: list[str] | None = None


class EntityFieldsOut(BaseModel):
    vrtx_fields: list[CanonicalFieldOut] = Field(description="Plus any `custom_fields.<name>`.")
    external_fields: dict[str, str] | None = Field(
        description="The provider record's mappable fields and their types; null when the provider publishes none."
    )


class FieldsOut(BaseModel):
    entities: dict[str, EntityFieldsOut]


class PreviewIn(BaseModel):
    entity: str
    direction: Literal["pull", "push"] | None = Field(
        default=None, description="Omit for both; required when a record is given."
    )
    record: dict[str, Any] | None = Field(
        default=None,
        description="A provider row (pull) or a canonical record (push); omit to use the tenant's latest one.",
    )
    mappings: list[FieldMappingSpec] | None = Field(
        default=None, description="Unsaved mappings to try; omit to use the saved ones."
    )


class DirectionPreviewOut(BaseModel):
    input: dict[str, Any]
    sample: bool = Field(description="True when the input is the tenant's own latest record.")
    before: dict[str, Any] = Field(description="pull: the canonical record without mappings; push: the record.")
    after: dict[str, Any] = Field(
        description="pull: the canonical record with the mappings; push: the provider fields the mappings set."
    )
    changed: list[str]
    unmatched: list[int] = Field(description="Mappings (by index) that yielded no value for this record.")


class PreviewOut(BaseModel):
    entity: str
    mappings: Literal["saved", "given"]
    pull: DirectionPreviewOut | None = None
    push: DirectionPreviewOut | None = None


class RederiveOut(BaseModel):
    entity: str
    read: int = Field(description="Raw rows read from the warehouse (no provider call).")
    changed: int = Field(description="Canonical records whose content changed (they get new change numbers).")
    unchanged: int
    without_canonical_form: int


class RederivesOut(BaseModel):
    results: list[RederiveOut]


class NoSample(NotFound):
    code = "no_sample"


def _connection(session: Any, tenant: Tenant, provider: Provider) -> TenantIntegration:
    if not mappable_entities(provider):
        raise IntegrationNotAvailable(f"{provider.name} has no records to map yet")
    connection = get_connection(session, tenant.id, provider.slug)
    if connection is None:
        raise NotConnected(f"{provider.slug} has never been connected for this tenant")
    return connection


def _entities(provider: Provider, entity: str | None) -> list[str]:
    allowed = mappable_entities(provider)
    if entity is None:
        return allowed
    if entity not in allowed:
        raise NotFound(f"{provider.name} has no {entity!r} to map: one of {', '.join(allowed)}")
    return [entity]


def _state(session: Any, connection: TenantIntegration, provider: Provider, entities: list[str]) -> MappingsOut:
    saved = saved_mappings(session, connection.id)
    versions = current_versions(session, connection.id)
    return MappingsOut(
        integration=provider.slug,
        entities={
            entity: EntityMappingsOut(version=versions.get(entity, 0), mappings=saved.get(entity, []))
            for entity in entities
        },
    )


@router.get("", response_model=MappingsOut, summary="The tenant's field mappings per entity", responses=errors(409))
def get_mappings(
    provider: ProviderDep, tenant: TenantDep, session: SessionDep, entity: EntityQuery = None
) -> MappingsOut:
    connection = _connection(session, tenant, provider)
    return _state(session, connection, provider, _entities(provider, entity))


@router.put(
    "",
    response_model=MappingsOut,
    summary="Replace the mappings of the entity types given",
    description="Everything is validated first: any problem answers 422 (`invalid_mappings`, one detail per "
    "problem with `entity`, `mapping` index, `field` and, for formulas, the character `position`) and nothing "
    "is saved. Each entity type whose mappings change gets a new version recording who changed it: the "
    "`X-Actor` header when sent (the CRM user), else the API token's prefix.",
    responses=JSON_BODY | errors(409),
)
def put_mappings(
    provider: ProviderDep,
    tenant: TenantDep,
    session: SessionDep,
    body: MappingsIn,
    x_actor: Annotated[str | None, Header(description="Who is making the change, for the version history.")] = None,
) -> MappingsOut:
    connection = _connection(session, tenant, provider)
    actor = (x_actor or "").strip() or f"token:{tenant.api_token_prefix}"
    changed = replace_mappings(session, connection.id, provider, body.mappings, actor)
    session.commit()
    state = _state(session, connection, provider, sorted(body.mappings))
    state.changed = changed
    return state


@router.get(
    "/versions",
    response_model=VersionsOut,
    summary="Who changed the mappings, when, and to what",
    responses=errors(409),
)
def get_versions(
    provider: ProviderDep, tenant: TenantDep, session: SessionDep, entity: EntityQuery = None
) -> VersionsOut:
    connection = _connection(session, tenant, provider)
    if entity is not None:
        _entities(provider, entity)
    return VersionsOut(
        versions=[
            VersionOut(
                entity=row.entity_type,
                version=row.version,
                changed_by=row.changed_by,
                created_at=row.created_at,
                mappings=list(row.mappings),
            )
            for row in mapping_versions(session, connection.id, entity)
        ]
    )


@router.get(
    "/fields", response_model=FieldsOut, summary="The fields mappings can name, on both sides", responses=errors(409)
)
def get_fields(provider: ProviderDep, tenant: TenantDep, session: SessionDep, entity: EntityQuery = None) -> FieldsOut:
    _connection(session, tenant, provider)
    return FieldsOut(
        entities={
            name: EntityFieldsOut(
                vrtx_fields=[
                    CanonicalFieldOut(
                        name=info.name,
                        type=info.type,
                        required=info.required,
                        choices=list(info.choices) if info.choices else None,
                    )
                    for info in canonical_fields(name).values()
                    if info.name not in UNMAPPABLE_CANONICAL
                ],
                external_fields=dict(catalog_for(provider, name).external or {}) or None,
            )
            for name in _entities(provider, entity)
        }
    )


@router.post(
    "/preview",
    response_model=PreviewOut,
    summary="A record before and after the mappings",
    responses=JSON_BODY | errors(409),
)
def preview(
    provider: ProviderDep, tenant: TenantDep, session: SessionDep, settings: SettingsDep, body: PreviewIn
) -> PreviewOut:
    connection = _connection(session, tenant, provider)
    _entities(provider, body.entity)
    if body.record is not None and body.direction is None:
        raise ValidationFailed(
            "say which way the record goes",
            details=[{"field": "direction", "message": "pull (a provider row) or push (a canonical record)"}],
        )
    if body.mappings is not None:
        mappings = compile_mappings(body.entity, body.mappings, catalog_for(provider, body.entity))
    else:
        mappings = active_mappings(session, connection.id).get(body.entity) or EntityMappings(body.entity)
    out = PreviewOut(entity=body.entity, mappings="given" if body.mappings is not None else "saved")
    for direction in [body.direction] if body.direction else ["pull", "push"]:
        given = body.record is not None
        if direction == "pull":
            record = body.record if given else pull_sample(settings, provider, tenant.id, body.entity)
            if record is not None:
                out.pull = _out(preview_pull(provider, mappings, record, sample=not given))
        else:
            record = body.record if given else push_sample(session, connection.id, body.entity)
            if record is not None:
                out.push = _out(preview_push(mappings, record, sample=not given))
    if out.pull is None and out.push is None:
        raise NoSample(f"no {body.entity} record has been synced for this tenant yet: give one as `record`")
    return out


def _out(found: DirectionPreview) -> DirectionPreviewOut:
    return DirectionPreviewOut(
        input=found.input,
        sample=found.sample,
        before=found.before,
        after=found.after,
        changed=found.changed,
        unmatched=found.unmatched,
    )


@router.post(
    "/rederive",
    response_model=RederivesOut,
    summary="Re-apply the current pull mappings to stored records",
    description="Reads the raw rows kept in the tenant's warehouse (no call to the provider), maps them with "
    "the provider's mapper and the current pull mappings, and updates the canonical records whose content "
    "changes (they get new change numbers, so the records API and `records.changed` consumers see them). "
    "Runs within the request: for very large entities call it per entity.",
    responses=errors(409),
)
def rederive_records(
    provider: ProviderDep, tenant: TenantDep, session: SessionDep, settings: SettingsDep, entity: EntityQuery = None
) -> RederivesOut:
    connection = _connection(session, tenant, provider)
    results = []
    for name in _entities(provider, entity):
        report = rederive(session, settings, provider, tenant.id, connection.id, name)
        session.commit()
        results.append(
            RederiveOut(
                entity=name,
                read=report.read,
                changed=report.changed,
                unchanged=report.unchanged,
                without_canonical_form=report.without_canonical_form,
            )
        )
    return RederivesOut(results=results)

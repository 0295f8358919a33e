"""A connection's mappings in the database: read, replaced whole per entity with a version, and compiled for
the pull and push paths (``mapped_mappers``, ``push_overrides``)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from providers.base import Provider
from vrtx_pipelines.db.locks import lock_connection
from vrtx_pipelines.db.models import FieldMappingVersion, IntegrationFieldMapping
from vrtx_pipelines.errors import IntegrationError
from vrtx_pipelines.mapping.engine import (
    Catalog,
    EntityMappings,
    FieldMappingSpec,
    InvalidMappings,
    compile_mappings,
)
from vrtx_pipelines.mapping.fields import is_mappable

log = logging.getLogger("vrtx.mapping")


class MappingFailed(IntegrationError):
    """A push-direction mapping could not produce a value for this record (the push is failed, not sent wrong)."""

    code = "mapping_failed"
    http_status = 422


def catalog_for(provider: Provider, entity: str) -> Catalog:
    fields = provider.pulls.record_fields.get(entity) if provider.pulls is not None else None
    return Catalog(external=fields or None)


def mappable_entities(provider: Provider) -> list[str]:
    if provider.pulls is None:
        return []
    return [entity for entity in provider.pulls.entities if entity in provider.pulls.models]


def _spec(row: IntegrationFieldMapping) -> FieldMappingSpec:
    return FieldMappingSpec(
        vrtx_field=row.vrtx_field,
        external_field=row.external_field,
        transform_type=row.transform_type or "direct",
        transform_config=row.transform_config,
        direction=row.direction,
        is_active=row.is_active,
    )


def saved_mappings(
    session: Session, connection_id: int, entity: str | None = None
) -> dict[str, list[FieldMappingSpec]]:
    query = select(IntegrationFieldMapping).where(IntegrationFieldMapping.tenant_integration_id == connection_id)
    if entity is not None:
        query = query.where(IntegrationFieldMapping.entity_type == entity)
    found: dict[str, list[FieldMappingSpec]] = {}
    for row in session.scalars(query.order_by(IntegrationFieldMapping.entity_type, IntegrationFieldMapping.position)):
        found.setdefault(row.entity_type, []).append(_spec(row))
    return found


def current_versions(session: Session, connection_id: int) -> dict[str, int]:
    rows = session.execute(
        select(FieldMappingVersion.entity_type, func.max(FieldMappingVersion.version))
        .where(FieldMappingVersion.tenant_integration_id == connection_id)
        .group_by(FieldMappingVersion.entity_type)
    )
    return {entity: int(version) for entity, version in rows}


def mapping_versions(session: Session, connection_id: int, entity: str | None = None) -> list[FieldMappingVersion]:
    query = select(FieldMappingVersion).where(FieldMappingVersion.tenant_integration_id == connection_id)
    if entity is not None:
        query = query.where(FieldMappingVersion.entity_type == entity)
    return list(session.scalars(query.order_by(FieldMappingVersion.entity_type, FieldMappingVersion.version.desc())))


def validate_all(provider: Provider, body: Mapping[str, Sequence[FieldMappingSpec]]) -> None:
    """Every entity's mappings checked; one ``InvalidMappings`` listing every problem of every entity."""
    allowed = mappable_entities(provider)
    details: list[dict[str, Any]] = []
    for entity, specs in body.items():
        if entity not in allowed:
            details.append({"entity": entity, "message": f"{provider.name} has no {entity!r}: one of {allowed}"})
            continue
        if len(specs) > 200:
            details.append({"entity": entity, "message": "at most 200 mappings per entity"})
            continue
        try:
            compile_mappings(entity, specs, catalog_for(provider, entity))
        except InvalidMappings as exc:
            details += [dict(detail) for detail in exc.details]
    if details:
        raise InvalidMappings(f"the mappings are not valid: {len(details)} problem(s)", details=details)


def replace_mappings(
    session: Session,
    connection_id: int,
    provider: Provider,
    body: Mapping[str, Sequence[FieldMappingSpec]],
    changed_by: str,
) -> list[str]:
    """Replace each given entity's mappings whole; a version per entity whose mappings changed. Validates
    everything before writing anything. Returns the changed entities. The caller commits."""
    validate_all(provider, body)
    lock_connection(session, connection_id)
    existing = saved_mappings(session, connection_id)
    versions = current_versions(session, connection_id)
    changed = []
    for entity, specs in body.items():
        snapshot = [spec.model_dump() for spec in specs]
        if snapshot == [spec.model_dump() for spec in existing.get(entity, [])]:
            continue
        session.execute(
            delete(IntegrationFieldMapping).where(
                IntegrationFieldMapping.tenant_integration_id == connection_id,
                IntegrationFieldMapping.entity_type == entity,
            )
        )
        for position, spec in enumerate(specs):
            session.add(
                IntegrationFieldMapping(
                    tenant_integration_id=connection_id,
                    entity_type=entity,
                    position=position,
                    **spec.model_dump(),
                )
            )
        session.add(
            FieldMappingVersion(
                tenant_integration_id=connection_id,
                entity_type=entity,
                version=versions.get(entity, 0) + 1,
                mappings=snapshot,
                changed_by=changed_by[:200],
            )
        )
        changed.append(entity)
    session.flush()
    return changed


def active_mappings(session: Session, connection_id: int) -> dict[str, EntityMappings]:
    """The connection's saved mappings, compiled for running (checked when saved; the language's own limits and
    safety hold regardless). An entity whose saved mappings no longer compile is left unmapped, and logged."""
    compiled = {}
    for entity, specs in saved_mappings(session, connection_id).items():
        if not is_mappable(entity):
            continue
        try:
            compiled[entity] = compile_mappings(entity, specs, Catalog(None), check=False)
        except InvalidMappings:
            log.error("mappings of %s for connection %s no longer compile; left unmapped", entity, connection_id)
    return {entity: mappings for entity, mappings in compiled.items() if mappings.pull or mappings.push}


Mapper = Callable[[Mapping[str, Any]], Any]


def mapped_mappers(session: Session, connection_id: int, mappers: Mapping[str, Mapper]) -> Mapping[str, Mapper]:
    """The provider's pull mappers, each followed by the connection's pull mappings for its entity. Entities with
    no pull mappings keep their mapper as it is: no per-record cost at all for a tenant without mappings."""
    compiled = {entity: m for entity, m in active_mappings(session, connection_id).items() if m.pull}
    if not compiled:
        return mappers
    return {
        entity: _with_mappings(mapper, compiled[entity], connection_id) if entity in compiled else mapper
        for entity, mapper in mappers.items()
    }


def pull_mapper(session: Session, provider: Provider, connection_id: int, entity: str) -> Mapper:
    """The mapper a pull of this connection applies to ``entity``: the provider's, followed by the tenant's pull
    mappings, so records written outside a pull (webhook fetches, pushes) match what a pull would store."""
    assert provider.pulls is not None
    return mapped_mappers(session, connection_id, {entity: provider.pulls.mappers[entity]})[entity]


def _with_mappings(mapper: Mapper, mappings: EntityMappings, connection_id: int) -> Mapper:
    reported: set[tuple[int, str]] = set()

    def mapped(raw: Mapping[str, Any]) -> Any:
        record, problems = mappings.apply_pull(raw, mapper(raw))
        for problem in problems:
            # Once per mapping and message: a bad mapping on 100,000 records is one line, and never the values.
            key = (problem.mapping, problem.message.split(" ", 1)[0])
            if key not in reported:
                reported.add(key)
                log.warning(
                    "pull mapping %s (%s -> %s) failed for a record of connection %s; the field keeps the "
                    "provider's value",
                    problem.mapping,
                    mappings.entity,
                    problem.field,
                    connection_id,
                )
        return record

    return mapped


def push_overrides(session: Session, connection_id: int, entity: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The provider fields the connection's push mappings set for this canonical record (``entity`` is the pull
    entity name, e.g. "contacts"). Raises ``MappingFailed`` when one cannot be computed: sent half-mapped, the
    record would be wrong at the provider."""
    if not is_mappable(entity):
        return {}
    mappings = active_mappings(session, connection_id).get(entity)
    if mappings is None or not mappings.push:
        return {}
    overrides, problems = mappings.push_overrides(payload)
    if problems:
        raise MappingFailed(
            f"the {entity} push mapping {problems[0].mapping} ({problems[0].field}) failed: {problems[0].message}",
            details=[problem.detail() for problem in problems],
        )
    return overrides

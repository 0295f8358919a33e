"""Previewing mappings on one record: before and after, per direction, without writing anything.

Pull: the input is a raw provider row; ``before`` is the provider mapper's canonical record, ``after`` the same
with the pull mappings applied. Push: the input is a canonical record; ``before`` is that record and ``after`` the
provider fields the push mappings set over the provider's own payload (dotted paths, as ``PushRequest.overrides``).
Without a record, the sample is the tenant's latest raw row in the warehouse (pull) or latest canonical record
(push). A mapping that fails on the record is an error here (422), unlike in a pull where it leaves the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from providers.base import Provider
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.models import CanonicalRecord
from vrtx_pipelines.errors import ValidationFailed
from vrtx_pipelines.mapping.engine import EntityMappings, MappingProblem
from vrtx_pipelines.mapping.rederive import warehouse_rows
from vrtx_pipelines.mapping.store import MappingFailed
from vrtx_pipelines.records.store import canonical_json


@dataclass
class DirectionPreview:
    input: dict[str, Any]
    sample: bool  # True when the input is the tenant's own latest record, not one given in the request
    before: dict[str, Any]
    after: dict[str, Any]
    changed: list[str]
    unmatched: list[int] = field(default_factory=list)  # mappings that yielded no value (lookup without match)


def preview_pull(
    provider: Provider, mappings: EntityMappings, raw: Mapping[str, Any], *, sample: bool
) -> DirectionPreview:
    assert provider.pulls is not None
    mapper = provider.pulls.mappers[mappings.entity]
    try:
        record = mapper(raw)
    except (ValueError, TypeError) as exc:
        raise ValidationFailed(
            f"the record is not a {provider.name} {mappings.entity} record the platform can read",
            details=[{"field": "record", "message": str(exc)[:300]}],
        ) from exc
    unmatched: list[int] = []
    mapped, problems = mappings.apply_pull(raw, record, unmatched)
    _raise(problems, mappings.entity, "pull")
    before, after = canonical_json(record), canonical_json(mapped)
    changed = sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
    return DirectionPreview(dict(raw), sample, before, after, changed, unmatched)


def preview_push(mappings: EntityMappings, record: Mapping[str, Any], *, sample: bool) -> DirectionPreview:
    unmatched: list[int] = []
    overrides, problems = mappings.push_overrides(record, unmatched)
    _raise(problems, mappings.entity, "push")
    return DirectionPreview(dict(record), sample, dict(record), overrides, sorted(overrides), unmatched)


def _raise(problems: list[MappingProblem], entity: str, direction: str) -> None:
    if problems:
        first = problems[0]
        raise MappingFailed(
            f"{direction} mapping {first.mapping} ({first.field}) fails on this record: {first.message}",
            details=[problem.detail() | {"entity": entity, "direction": direction} for problem in problems],
        )


def pull_sample(settings: Settings, provider: Provider, tenant_id: str, entity: str) -> dict[str, Any] | None:
    """The latest raw row of ``entity`` loaded into the tenant's warehouse dataset, if any."""
    return next(iter(warehouse_rows(settings, provider, tenant_id, entity, newest=1)), None)


def push_sample(session: Session, connection_id: int, entity: str) -> dict[str, Any] | None:
    """The latest canonical record of ``entity`` (as the CRM would push it back)."""
    data = session.scalar(
        select(CanonicalRecord.data)
        .where(CanonicalRecord.tenant_integration_id == connection_id, CanonicalRecord.entity_type == entity)
        .order_by(CanonicalRecord.change_seq.desc())
        .limit(1)
    )
    return dict(data) if data is not None else None

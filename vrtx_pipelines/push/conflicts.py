"""Conflicts between the CRM's pushes and the provider's own changes: found before a push is sent, settled by the
connection's ``conflict_policy`` or held for a person, and resolved through the API.

The CRM's side of a record arrives as a push; the provider's side is its current record. Both are judged against
the common base kept on the entity link (``synced_data``: the record as last written or agreed). See
``vrtx_pipelines.push.two_way`` for the rules. What this module decides for one push (``plan_push``):

- nothing to judge (a create, an archive/void/delete, an entity synced one way, no base yet): send as asked;
- only the CRM changed fields: send as asked;
- the provider changed fields too: send the CRM's record with the provider's side of the fields only it changed,
  and of the conflicting fields the policy gave it (``provider_wins`` thus sends only the CRM's non-conflicting
  changes); when that leaves nothing the provider lacks, nothing is sent and the push ends ``done`` with a note;
- a conflicting field the policy cannot settle (``latest_wins`` without both modification times, a ``manual``
  field): the push is ``held`` and its conflict listed until ``resolve_conflict``.

A settled conflict is kept as a resolved ``SyncConflict`` (resolution ``auto:<policy>``), a held one as an open
one; each also writes an ``integration_sync_logs`` row (``sync_type`` "conflict") and an event for the CRM.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from providers.base import Provider, PushRequest
from providers.kit.client import ApiClient
from providers.kit.streams import fetch_by_ids
from vrtx_pipelines.connect.context import get_connection
from vrtx_pipelines.db.models import (
    CanonicalRecord,
    EntityLink,
    IntegrationSyncLog,
    PushOutbox,
    SyncConflict,
    TenantIntegration,
    utcnow,
)
from vrtx_pipelines.errors import ConflictAlreadyResolved, ConflictNotFound, NotConnected, ValidationFailed
from vrtx_pipelines.events.record import EventType, record_event
from vrtx_pipelines.push.outbox import REFERENCE_OPERATIONS, PushStatus, finish, push_event
from vrtx_pipelines.push.two_way import (
    DEFAULT_POLICY,
    Comparison,
    FieldRule,
    Policy,
    Settlement,
    Side,
    comparable,
    compare,
    is_two_way,
    merged,
    parse_time,
    settle,
)
from vrtx_pipelines.records.canonical import content_hash
from vrtx_pipelines.records.store import apply_records, canonical_json

OPEN, RESOLVED = "open", "resolved"
SUPERSEDED = "superseded"
NOTHING_LEFT = "nothing sent: the provider's record already has every change this push asked for"
SUPERSEDED_BY_PROVIDER = "nothing sent: superseded by the provider's change (conflict {id}, {resolution})"


class Resolution:
    CRM = "crm"
    PROVIDER = "provider"
    MERGED = "merged"
    ALL = (CRM, PROVIDER, MERGED)


@dataclass(frozen=True)
class PushPlan:
    """What to do with one push: send ``request``, hold it for ``held``, or (both None) send nothing, the
    provider's record ``agreed`` being already what the push asked for."""

    request: PushRequest | None
    held: SyncConflict | None = None
    note: str | None = None
    agreed: Mapping[str, Any] | None = None


def conflict_settings(settings: Mapping[str, Any]) -> tuple[Policy, dict[str, FieldRule]]:
    policy = Policy(settings.get("conflict_policy") or DEFAULT_POLICY)
    rules = {str(name): FieldRule(rule) for name, rule in (settings.get("conflict_fields") or {}).items()}
    return policy, rules


def plan_push(
    session: Session,
    connection: TenantIntegration,
    row: PushOutbox,
    request: PushRequest,
    entity_type: str,
    settings: Mapping[str, Any],
    provider_current: Callable[[], Mapping[str, Any] | None],
) -> PushPlan:
    """Decide what this push sends, given the provider's current record (fetched only when there is a base to
    judge it against). Adds conflict rows, sync-log rows and events to the session; the caller commits."""
    released = _released_resolution(session, row.id)
    if released is not None:
        return PushPlan(replace(request, payload=dict(released)))
    if (
        not is_two_way(entity_type)
        or row.operation in REFERENCE_OPERATIONS
        or request.external_id is None
        or not row.vrtx_id
    ):
        return PushPlan(request)
    base = _base(session, connection.id, entity_type, row.vrtx_id, request.external_id)
    if base is None:
        return PushPlan(request)  # linked before two-way sync kept a base: nothing to judge against yet
    provider = provider_current()
    if provider is None:
        return PushPlan(request)  # gone at the provider: the write says so in the provider's words
    comparison = compare(entity_type, base, request.payload, provider)
    if not comparison.provider_changed:
        return PushPlan(request)
    policy, rules = conflict_settings(settings)
    settlement = settle(
        comparison.conflicting,
        policy,
        rules,
        parse_time(request.payload.get("updated_at")),
        parse_time(provider.get("updated_at")),
    )
    if settlement.held:
        conflict = _record_conflict(
            session, connection, entity_type, row, request, comparison, policy, settlement, base, provider, None
        )
        return PushPlan(None, held=conflict)
    outgoing = merged(entity_type, request.payload, provider, comparison, settlement.winners)
    settled = (
        _record_conflict(
            session, connection, entity_type, row, request, comparison, policy, settlement, base, provider, outgoing
        )
        if comparison.conflicting
        else None
    )
    if comparable(entity_type, outgoing) == comparison.provider:
        note = (
            SUPERSEDED_BY_PROVIDER.format(id=settled.id, resolution=settled.resolution)
            if settled is not None
            else NOTHING_LEFT
        )
        return PushPlan(None, note=note, agreed=provider)
    return PushPlan(replace(request, payload=outgoing))


def _base(
    session: Session, connection_id: int, entity_type: str, vrtx_id: str, external_id: str
) -> dict[str, Any] | None:
    link = _link(session, connection_id, entity_type, vrtx_id)
    if link is None or link.external_id != external_id or link.synced_data is None:
        return None
    return dict(link.synced_data)


def _link(session: Session, connection_id: int, entity_type: str, vrtx_id: str) -> EntityLink | None:
    return session.scalar(
        select(EntityLink).where(
            EntityLink.tenant_integration_id == connection_id,
            EntityLink.entity_type == entity_type,
            EntityLink.vrtx_id == vrtx_id,
        )
    )


def _released_resolution(session: Session, push_id: int) -> Mapping[str, Any] | None:
    """The record a person chose for this held push (resolution crm or merged): sent as it is."""
    conflict = session.scalar(
        select(SyncConflict)
        .where(
            SyncConflict.push_id == push_id,
            SyncConflict.status == RESOLVED,
            SyncConflict.resolution.in_([Resolution.CRM, Resolution.MERGED]),
        )
        .order_by(SyncConflict.id.desc())
        .limit(1)
    )
    return conflict.resolved_data if conflict is not None else None


def _record_conflict(
    session: Session,
    connection: TenantIntegration,
    entity_type: str,
    row: PushOutbox,
    request: PushRequest,
    comparison: Comparison,
    policy: Policy,
    settlement: Settlement,
    base: Mapping[str, Any],
    provider: Mapping[str, Any],
    outgoing: Mapping[str, Any] | None,
) -> SyncConflict:
    now = utcnow()
    held = outgoing is None
    conflict = SyncConflict(
        tenant_integration_id=connection.id,
        entity_type=entity_type,
        vrtx_id=row.vrtx_id,
        external_id=request.external_id,
        fields=list(comparison.conflicting),
        base_data=dict(base),
        crm_data=dict(request.payload),
        provider_data=dict(provider),
        policy=policy.value,
        status=OPEN if held else RESOLVED,
        resolution=None if held else f"auto:{policy.value}",
        resolved_data=None if held else dict(outgoing or {}),
        resolved_at=None if held else now,
        push_id=row.id,
    )
    session.add(conflict)
    session.flush()
    winners = {name: side.value for name, side in settlement.winners.items()}
    _log(session, conflict, "held" if held else RESOLVED, {"winners": winners, "undecided": list(settlement.undecided)})
    event = EventType.CONFLICT_DETECTED if held else EventType.CONFLICT_RESOLVED
    record_event(
        session, connection.tenant_id, event, connection.integration.slug, conflict_event(conflict, comparison)
    )
    return conflict


def _log(session: Session, conflict: SyncConflict, status: str, outcome: Mapping[str, Any]) -> None:
    """One sync-log row per conflict decision. Field names and sides only: the values stay in the conflict."""
    session.add(
        IntegrationSyncLog(
            tenant_integration_id=conflict.tenant_integration_id,
            sync_type="conflict",
            entity_type=conflict.entity_type,
            external_id=conflict.external_id,
            direction="both",
            status=status,
            request_data={
                "conflict_id": conflict.id,
                "push_id": conflict.push_id,
                "vrtx_id": conflict.vrtx_id,
                "fields": list(conflict.fields),
                "policy": conflict.policy,
            },
            response_data={"resolution": conflict.resolution, **outcome},
            push_id=conflict.push_id,
            created_at=utcnow(),
        )
    )


def conflict_event(conflict: SyncConflict, comparison: Comparison | None = None) -> dict[str, Any]:
    """What the CRM hears: the fields at stake with each side's value, and the record it should now hold."""
    if comparison is None:
        comparison = compare(
            conflict.entity_type, conflict.base_data or {}, conflict.crm_data or {}, conflict.provider_data or {}
        )
    return {
        "conflict_id": conflict.id,
        "entity": conflict.entity_type,
        "vrtx_id": conflict.vrtx_id,
        "external_id": conflict.external_id,
        "push_id": conflict.push_id,
        "policy": conflict.policy,
        "status": conflict.status,
        "resolution": conflict.resolution,
        "fields": {
            name: {
                "base": comparison.base.get(name),
                "crm": comparison.crm.get(name),
                "provider": comparison.provider.get(name),
            }
            for name in conflict.fields
        },
        "resolved_data": conflict.resolved_data,
    }


def provider_record(
    session: Session, provider: Provider, target: ApiClient, connection_id: int, entity_type: str, external_id: str
) -> dict[str, Any] | None:
    """The provider's current record as canonical JSON, read back by id (the kit's ``fetch_by_ids``, mapped as a
    pull maps it) so a change not pulled yet still counts; else the record as last pulled or written. None when
    the provider has no such record."""
    from vrtx_pipelines.mapping import pull_mapper  # the mapper pulls use, the tenant's mappings included

    pulls = provider.pulls
    if pulls is not None and entity_type in pulls.fetchable and entity_type in pulls.mappers:
        rows = [row for row in fetch_by_ids(pulls.streams, target, entity_type, [external_id]) if row]
        if not rows:
            return None
        return canonical_json(pull_mapper(session, provider, connection_id, entity_type)(rows[0]))
    data = session.scalar(
        select(CanonicalRecord.data).where(
            CanonicalRecord.tenant_integration_id == connection_id,
            CanonicalRecord.entity_type == entity_type,
            CanonicalRecord.external_id == external_id,
        )
    )
    return dict(data) if data is not None else None


# --- after the push --------------------------------------------------------------------------------------------


def record_written(
    session: Session,
    connection_id: int,
    entity_type: str,
    row: PushOutbox,
    written: Mapping[str, Any] | None,
    external_id: str,
) -> None:
    """Keep what the provider now holds after a push: the canonical record (so the next pull of the same content
    is no change) and the link's common base. A write that holds nothing the CRM did not send (its own change
    echoed back, or its own delete) updates the record without a new change number: the CRM does not read its
    own write back as a provider change. A write that merged in the provider's changes (or a resolution's choice)
    takes a new one: the CRM has to learn what the provider now holds."""
    if written is None:
        return
    record = {**written, "external_id": external_id}
    echo = row.operation in REFERENCE_OPERATIONS or (
        is_two_way(entity_type) and comparable(entity_type, written) == comparable(entity_type, row.payload)
    )
    previous = session.scalar(
        select(CanonicalRecord.change_seq).where(
            CanonicalRecord.tenant_integration_id == connection_id,
            CanonicalRecord.entity_type == entity_type,
            CanonicalRecord.external_id == external_id,
        )
    )
    apply_records(session, connection_id, entity_type, [record])
    if echo and previous is not None:
        # The new number apply_records took is given back: numbers may skip, never go back for others' changes.
        session.query(CanonicalRecord).filter(
            CanonicalRecord.tenant_integration_id == connection_id,
            CanonicalRecord.entity_type == entity_type,
            CanonicalRecord.external_id == external_id,
        ).update({CanonicalRecord.change_seq: previous}, synchronize_session=False)
    if row.vrtx_id:
        agree(session, connection_id, entity_type, row.vrtx_id, record, row.payload)


def agree(
    session: Session,
    connection_id: int,
    entity_type: str,
    vrtx_id: str,
    record: Mapping[str, Any],
    crm_side: Mapping[str, Any] | None,
) -> None:
    """Both sides now hold ``record``: it becomes the base the next conflict is judged from."""
    link = _link(session, connection_id, entity_type, vrtx_id)
    if link is None:
        return
    link.synced_data = dict(record)
    if crm_side is not None:
        link.local_hash = content_hash(crm_side)
    link.last_synced_at = utcnow()


def supersede_held(session: Session, row: PushOutbox) -> list[PushOutbox]:
    """Earlier held pushes of the same record give way to this newer one (resolving them later would overwrite
    it); their conflicts close as superseded. Returns the pushes closed (the caller tells the CRM)."""
    if not row.vrtx_id:
        return []
    earlier = list(
        session.scalars(
            select(PushOutbox).where(
                PushOutbox.tenant_integration_id == row.tenant_integration_id,
                PushOutbox.entity_type == row.entity_type,
                PushOutbox.vrtx_id == row.vrtx_id,
                PushOutbox.status == PushStatus.HELD,
                PushOutbox.id < row.id,
            )
        )
    )
    now = utcnow()
    for push in earlier:
        finish(push, PushStatus.FAILED, error=f"superseded by push {row.id} of the same {row.entity_type}")
        for conflict in session.scalars(
            select(SyncConflict).where(SyncConflict.push_id == push.id, SyncConflict.status == OPEN)
        ):
            conflict.status, conflict.resolution, conflict.resolved_at = RESOLVED, SUPERSEDED, now
            _log(session, conflict, RESOLVED, {"superseded_by_push": row.id})
    return earlier


# --- reading and resolving (the API) ---------------------------------------------------------------------------


def _connection_id(session: Session, tenant_id: str, provider: Provider) -> int:
    connection = get_connection(session, tenant_id, provider.slug)
    if connection is None:
        raise NotConnected(f"{provider.slug} has never been connected for this tenant")
    return connection.id


def list_conflicts(
    session: Session,
    tenant_id: str,
    provider: Provider,
    *,
    status: str | None = OPEN,
    entity: str | None = None,
    vrtx_id: str | None = None,
    external_id: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[SyncConflict]:
    """Newest first; page with ``before_id`` = the last id of the previous page."""
    query = select(SyncConflict).where(
        SyncConflict.tenant_integration_id == _connection_id(session, tenant_id, provider)
    )
    if status is not None:
        query = query.where(SyncConflict.status == status)
    if entity is not None:
        query = query.where(SyncConflict.entity_type == entity)
    if vrtx_id is not None:
        query = query.where(SyncConflict.vrtx_id == vrtx_id)
    if external_id is not None:
        query = query.where(SyncConflict.external_id == external_id)
    if before_id is not None:
        query = query.where(SyncConflict.id < before_id)
    return list(session.scalars(query.order_by(SyncConflict.id.desc()).limit(limit)))


def get_conflict(
    session: Session, tenant_id: str, provider: Provider, conflict_id: int, *, lock: bool = False
) -> SyncConflict:
    """One conflict of the tenant's connection; another tenant's is indistinguishable from a missing one."""
    connection_id = _connection_id(session, tenant_id, provider)
    query = select(SyncConflict).where(
        SyncConflict.id == conflict_id, SyncConflict.tenant_integration_id == connection_id
    )
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    conflict = session.scalar(query)
    if conflict is None:
        raise ConflictNotFound(f"there is no conflict {conflict_id} for {provider.slug}")
    return conflict


def resolve_conflict(
    session: Session,
    tenant_id: str,
    provider: Provider,
    conflict_id: int,
    resolution: str,
    data: Mapping[str, Any] | None,
) -> SyncConflict:
    """Settle an open conflict: ``crm`` sends the CRM's record (with the provider's changes to other fields),
    ``merged`` sends that record with ``data`` laid over it, ``provider`` sends nothing and keeps the provider's
    record. The held push is released (crm, merged) or closed (provider). Commits."""
    conflict = get_conflict(session, tenant_id, provider, conflict_id, lock=True)
    if conflict.status != OPEN:
        raise ConflictAlreadyResolved(
            f"conflict {conflict_id} was already resolved ({conflict.resolution}); list the open ones to see what "
            "still waits"
        )
    resolved = _resolved_record(conflict, resolution, data)
    push = session.get(PushOutbox, conflict.push_id) if conflict.push_id is not None else None
    now = utcnow()
    conflict.status, conflict.resolution, conflict.resolved_data, conflict.resolved_at = (
        RESOLVED,
        resolution,
        resolved,
        now,
    )
    slug = provider.slug
    if resolution == Resolution.PROVIDER:
        if conflict.vrtx_id:
            agree(session, conflict.tenant_integration_id, conflict.entity_type, conflict.vrtx_id, resolved, None)
        if push is not None and push.status == PushStatus.HELD:
            note = SUPERSEDED_BY_PROVIDER.format(id=conflict.id, resolution=resolution)
            finish(push, PushStatus.DONE, external_id=conflict.external_id, error=note)
            _push_finished(session, tenant_id, slug, push)
    elif push is not None and push.status == PushStatus.HELD:
        push.status, push.next_attempt_at, push.error_message = PushStatus.PENDING, now, None
    _log(session, conflict, RESOLVED, {"released_push": resolution != Resolution.PROVIDER})
    record_event(session, tenant_id, EventType.CONFLICT_RESOLVED, slug, conflict_event(conflict))
    session.commit()
    return conflict


def _resolved_record(conflict: SyncConflict, resolution: str, data: Mapping[str, Any] | None) -> dict[str, Any]:
    if resolution not in Resolution.ALL:
        raise ValidationFailed(
            "unknown resolution", details=[{"field": "resolution", "message": "one of crm, provider, merged"}]
        )
    if (resolution == Resolution.MERGED) != (data is not None):
        message = "required with merged" if resolution == Resolution.MERGED else "only with the merged resolution"
        raise ValidationFailed(f"data is {message}", details=[{"field": "data", "message": message}])
    provider_data = dict(conflict.provider_data or {})
    if resolution == Resolution.PROVIDER:
        return provider_data
    crm_data = dict(conflict.crm_data or {})
    comparison = compare(conflict.entity_type, conflict.base_data or {}, crm_data, provider_data)
    record = merged(conflict.entity_type, crm_data, provider_data, comparison, dict.fromkeys(conflict.fields, Side.CRM))
    if data is None:
        return record
    try:
        chosen = {**record, **dict(data), "id": record.get("id"), "external_id": record.get("external_id")}
        return merged(conflict.entity_type, chosen, provider_data, _no_changes(comparison), {})
    except ValidationError as exc:
        raise ValidationFailed(
            "the merged record is not valid",
            details=[
                {"field": ".".join(["data", *(str(part) for part in error["loc"])]), "message": error["msg"]}
                for error in exc.errors()
            ],
        ) from exc


def _no_changes(comparison: Comparison) -> Comparison:
    # Laying ``data`` over the CRM's record must not pull provider values back over it.
    return replace(comparison, provider_changed=frozenset())


def _push_finished(session: Session, tenant_id: str, slug: str, push: PushOutbox) -> None:
    record_event(session, tenant_id, EventType.PUSH_FINISHED, slug, push_event(slug, push))

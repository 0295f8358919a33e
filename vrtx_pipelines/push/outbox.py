"""The push outbox: what the CRM asked to send to a provider, and where each request stands.

The API writes one row per Idempotency-Key; the push sensor batches due rows per connection; the push op claims
its rows, sends them and records each outcome. Rows move pending -> running -> done | failed, and back to pending
when a retryable failure (5xx, 429, a reference still being pushed) or a dead run leaves them unfinished.
No Dagster here: the orchestration lives in ``vrtx_pipelines.push.send``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from providers.base import Provider, PushSpec
from vrtx_pipelines.connect.context import Status, get_connection
from vrtx_pipelines.db.models import EntityLink, Integration, PushOutbox, TenantIntegration, utcnow
from vrtx_pipelines.errors import (
    ConnectionUnusable,
    IdempotencyKeyReused,
    NotConnected,
    NotFound,
    PushNotSupported,
    UnknownPushEntity,
    ValidationFailed,
)


class PushStatus:
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    # Both sides changed the record and the conflict policy could not settle it: waits for POST .../resolve.
    # Not "unfinished" for ordering: a later push of the same record supersedes it (vrtx_pipelines.push.conflicts).
    HELD = "held"

    UNFINISHED = (PENDING, RUNNING)


# Connections a push may go out on: an errored one may have recovered (pulls treat it the same way).
PUSHABLE = (Status.CONNECTED, Status.ERROR)
# Operations that create at the provider, and so need the VRTX id the entity link is recorded under.
CREATING = frozenset({"create", "upsert", "collect"})  # collect makes the provider's object that collects it
# Operations that name a record rather than carry it (archive a contact, void or delete an invoice, approve one):
# the CRM may send just ``id`` or ``external_id``, and they are never judged field by field for conflicts.
REFERENCE_OPERATIONS = frozenset({"archive", "delete", "void", "approve", "cancel"})
_REFERENCE_KEYS = frozenset({"id", "external_id", "updated_at"})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a push is retried after retryable failures."""

    max_attempts: int = 6
    base_delay_s: float = 2.0
    max_delay_s: float = 300.0
    # A row running longer than this is presumed abandoned by its run and returned to pending.
    lease_s: float = 900.0

    def delay_s(self, attempts: int, retry_after_s: float | None = None) -> float:
        backoff = min(self.max_delay_s, self.base_delay_s * 2.0 ** max(0, attempts - 1))
        return float(max(backoff, retry_after_s or 0.0))


# --- submitting ----------------------------------------------------------------------------------------------


def push_spec(provider: Provider) -> PushSpec:
    if provider.pushes is None:
        raise PushNotSupported(f"{provider.name} cannot receive pushes yet: only pulls are built for it")
    return provider.pushes


def records_entity(provider: Provider, entity: str) -> str:
    """The pull/records name of a push entity ("contact" -> "contacts"): entity links and canonical records are
    kept under it, so a pull of the same record finds the link a push made."""
    pulled = provider.pulls.entities if provider.pulls is not None else ()
    for candidate in (entity, f"{entity}s", f"{entity}es", f"{entity[:-1]}ies"):
        if candidate in pulled:
            return candidate
    return entity


def request_hash(entity: str, operation: str, payload: Mapping[str, Any]) -> str:
    body = json.dumps({"entity": entity, "operation": operation, "payload": payload}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def validate_push(provider: Provider, entity: str, operation: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical JSON of a push the provider can take; raises with every problem, field by field."""
    spec = push_spec(provider)
    if entity not in spec.entities:
        raise UnknownPushEntity(
            f"{provider.name} takes pushes of {', '.join(sorted(spec.entities))}; not {entity!r}",
        )
    model, operations = spec.entities[entity]
    if operation not in operations:
        raise ValidationFailed(
            f"{provider.name} cannot {operation} a {entity}",
            details=[{"field": "operation", "message": f"one of {', '.join(sorted(operations))}"}],
        )
    if operation in REFERENCE_OPERATIONS and set(data) <= _REFERENCE_KEYS:
        return _reference(entity, operation, data)
    try:
        parsed: BaseModel = model.model_validate(dict(data))
    except ValidationError as exc:
        raise ValidationFailed(
            f"the {entity} is not valid",
            details=[
                {"field": ".".join(["data", *(str(part) for part in error["loc"])]), "message": error["msg"]}
                for error in exc.errors()
            ],
        ) from exc
    payload: dict[str, Any] = parsed.model_dump(mode="json")
    if operation in CREATING and not payload.get("id"):
        raise ValidationFailed(
            f"a {entity} {operation} needs its VRTX id",
            details=[{"field": "data.id", "message": "required: the link to the provider's record is kept under it"}],
        )
    if operation not in CREATING and not (payload.get("id") or payload.get("external_id")):
        raise ValidationFailed(
            f"a {entity} {operation} needs the record it applies to",
            details=[{"field": "data.id", "message": "give the VRTX id of a linked record, or data.external_id"}],
        )
    return payload


def _reference(entity: str, operation: str, data: Mapping[str, Any]) -> dict[str, Any]:
    payload = {key: str(value) for key, value in data.items() if value not in (None, "")}
    if not (payload.get("id") or payload.get("external_id")):
        raise ValidationFailed(
            f"a {entity} {operation} needs the record it applies to",
            details=[{"field": "data.id", "message": "give the VRTX id of a linked record, or data.external_id"}],
        )
    return payload


def pushable_connection(session: Session, tenant_id: str, provider: Provider) -> TenantIntegration:
    connection = get_connection(session, tenant_id, provider.slug)
    if connection is None or connection.status == Status.DISCONNECTED:
        raise NotConnected(f"{provider.slug} is not connected for this tenant")
    if connection.status not in PUSHABLE:
        raise ConnectionUnusable(f"the {provider.name} connection is {connection.status}: reconnect it before pushing")
    return connection


def submit_push(
    session: Session,
    tenant_id: str,
    provider: Provider,
    entity: str,
    operation: str,
    data: Mapping[str, Any],
    idempotency_key: str,
) -> tuple[PushOutbox, bool]:
    """Queue a push, or return the one already queued under this key; ``True`` when it is new. Commits: the
    unique (connection, idempotency key) constraint decides between concurrent submissions of the same key."""
    push_spec(provider)
    connection = pushable_connection(session, tenant_id, provider)
    payload = validate_push(provider, entity, operation, data)
    digest = request_hash(entity, operation, payload)
    existing = _by_key(session, connection.id, idempotency_key)
    if existing is not None:
        return _replayed(existing, digest), False
    row = PushOutbox(
        tenant_integration_id=connection.id,
        entity_type=entity,
        operation=operation,
        idempotency_key=idempotency_key,
        payload=payload,
        status=PushStatus.PENDING,
        attempts=0,
        next_attempt_at=utcnow(),
        vrtx_id=payload.get("id"),
        request_hash=digest,
    )
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()  # another request with this key won the race: answer with its push
        existing = _by_key(session, connection.id, idempotency_key)
        if existing is None:
            raise
        return _replayed(existing, digest), False
    return row, True


def _by_key(session: Session, connection_id: int, key: str) -> PushOutbox | None:
    return session.scalar(
        select(PushOutbox).where(PushOutbox.tenant_integration_id == connection_id, PushOutbox.idempotency_key == key)
    )


def _replayed(existing: PushOutbox, digest: str) -> PushOutbox:
    if existing.request_hash != digest:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used for a different push; use a new key for a new push",
            details=[{"field": "Idempotency-Key", "message": f"already used by push {existing.id}"}],
        )
    return existing


# --- reading -------------------------------------------------------------------------------------------------


def get_push(session: Session, tenant_id: str, provider: Provider, push_id: int) -> PushOutbox:
    """One push of the tenant's connection; another tenant's push is indistinguishable from a missing one."""
    connection = get_connection(session, tenant_id, provider.slug)
    row = session.get(PushOutbox, push_id) if connection is not None else None
    if row is None or connection is None or row.tenant_integration_id != connection.id:
        raise PushNotFound(f"there is no push {push_id} for {provider.slug}")
    return row


def list_pushes(
    session: Session,
    tenant_id: str,
    provider: Provider,
    *,
    status: str | None = None,
    entity: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[PushOutbox]:
    """Newest first; page with ``before_id`` = the last id of the previous page."""
    connection = get_connection(session, tenant_id, provider.slug)
    if connection is None:
        raise NotConnected(f"{provider.slug} has never been connected for this tenant")
    query = select(PushOutbox).where(PushOutbox.tenant_integration_id == connection.id)
    if status is not None:
        query = query.where(PushOutbox.status == status)
    if entity is not None:
        query = query.where(PushOutbox.entity_type == entity)
    if before_id is not None:
        query = query.where(PushOutbox.id < before_id)
    return list(session.scalars(query.order_by(PushOutbox.id.desc()).limit(limit)))


class PushNotFound(NotFound):
    code = "push_not_found"


# --- batching (the sensor) -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    connection_id: int
    tenant_id: str
    push_ids: tuple[int, ...]
    # Each row's (attempts, next attempt time): they change whenever a row goes back to the outbox.
    marks: tuple[str, ...]

    @property
    def run_key(self) -> str:
        """The same rows at the same attempt form the same batch: a re-tick never launches it twice, and a
        row returned to the outbox (retry, dead run, deferral) always forms a new one."""
        marks = ",".join(f"{i}:{m}" for i, m in zip(self.push_ids, self.marks, strict=True))
        return f"push:{self.connection_id}:{hashlib.sha256(marks.encode()).hexdigest()[:24]}"


def due_batches(
    session: Session, slug: str, now: datetime, *, batch_size: int = 100, connection_id: int | None = None
) -> list[Batch]:
    """One batch of due pending rows per pushable connection of the provider (or of ``connection_id`` only),
    oldest first. The members of a provider call (``batch_key``) are never split between runs: a run taking one
    takes every pending one."""
    query = (
        select(
            PushOutbox.id,
            PushOutbox.attempts,
            PushOutbox.next_attempt_at,
            PushOutbox.batch_key,
            TenantIntegration.id,
            TenantIntegration.tenant_id,
        )
        .join(TenantIntegration, TenantIntegration.id == PushOutbox.tenant_integration_id)
        .join(Integration, Integration.id == TenantIntegration.integration_id)
        .where(
            Integration.slug == slug,
            TenantIntegration.status.in_(PUSHABLE),
            PushOutbox.status == PushStatus.PENDING,
            or_(
                PushOutbox.next_attempt_at.is_(None),
                PushOutbox.next_attempt_at <= now,
                PushOutbox.batch_key.is_not(None),  # kept below only beside a due member of the same call
            ),
        )
        .order_by(TenantIntegration.id, PushOutbox.id)
    )
    if connection_id is not None:
        query = query.where(TenantIntegration.id == connection_id)
    rows = session.execute(query).all()
    chosen: dict[int, tuple[str, set[int], set[str]]] = {}
    for push_id, _attempts, next_attempt_at, key, conn, tenant_id in rows:
        _tenant, ids, keys = chosen.setdefault(conn, (tenant_id, set(), set()))
        if (next_attempt_at is None or next_attempt_at <= now) and (len(ids) < batch_size or key in keys):
            ids.add(push_id)
            if key is not None:
                keys.add(key)
    grouped: dict[int, tuple[str, list[tuple[int, str]]]] = {}
    for push_id, attempts, next_attempt_at, key, conn, _tenant_id in rows:
        tenant_id, ids, keys = chosen[conn]
        if push_id in ids or (key is not None and key in keys):
            stamp = next_attempt_at.isoformat() if next_attempt_at else ""
            grouped.setdefault(conn, (tenant_id, []))[1].append((push_id, f"{attempts}@{stamp}"))
    return [
        Batch(conn, tenant_id, tuple(i for i, _ in members), tuple(m for _, m in members))
        for conn, (tenant_id, members) in grouped.items()
    ]


def running_rows(session: Session, slug: str) -> list[tuple[int, str | None, datetime | None]]:
    """(push id, run id, started at) of the provider's rows a run has claimed and not yet finished."""
    return [
        (push_id, run_id, started_at)
        for push_id, run_id, started_at in session.execute(
            select(PushOutbox.id, PushOutbox.run_id, PushOutbox.started_at)
            .join(TenantIntegration, TenantIntegration.id == PushOutbox.tenant_integration_id)
            .join(Integration, Integration.id == TenantIntegration.integration_id)
            .where(Integration.slug == slug, PushOutbox.status == PushStatus.RUNNING)
        )
    ]


def release_abandoned(session: Session, push_ids: Sequence[int], now: datetime) -> int:
    """Return rows whose run died to pending, due at once. Re-sending is safe: the provider receives the row's
    own idempotency key again and answers with the original write."""
    if not push_ids:
        return 0
    result = session.execute(
        update(PushOutbox)
        .where(PushOutbox.id.in_(list(push_ids)), PushOutbox.status == PushStatus.RUNNING)
        .values(status=PushStatus.PENDING, next_attempt_at=now, run_id=None, updated_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- claiming and finishing (the op) -------------------------------------------------------------------------


def claim(session: Session, connection_id: int, push_ids: Sequence[int], run_id: str) -> list[PushOutbox]:
    """Mark the still-pending rows among ``push_ids`` as this run's and commit; rows another run holds or
    finished are left alone. PostgreSQL skips rows locked by a concurrent claim instead of waiting for them."""
    now = utcnow()
    wanted = select(PushOutbox.id).where(
        PushOutbox.id.in_(list(push_ids)),
        PushOutbox.tenant_integration_id == connection_id,
        PushOutbox.status == PushStatus.PENDING,
    )
    if session.get_bind().dialect.name == "postgresql":
        wanted = wanted.with_for_update(skip_locked=True)
    ids = list(session.scalars(wanted))
    if ids:
        session.execute(
            update(PushOutbox)
            .where(PushOutbox.id.in_(ids), PushOutbox.status == PushStatus.PENDING)
            .values(
                status=PushStatus.RUNNING,
                run_id=run_id,
                started_at=now,
                attempts=PushOutbox.attempts + 1,
                updated_at=now,
            )
        )
    session.commit()
    return list(
        session.scalars(
            select(PushOutbox)
            .where(PushOutbox.id.in_(ids), PushOutbox.run_id == run_id, PushOutbox.status == PushStatus.RUNNING)
            .order_by(PushOutbox.id)
        )
    )


def waits_for_earlier(session: Session, row: PushOutbox) -> PushOutbox | None:
    """An earlier unfinished push of the same record: this one must not overtake it (an update before its
    create would fail, or be overwritten by it)."""
    if not row.vrtx_id:
        return None
    return session.scalar(
        select(PushOutbox)
        .where(
            PushOutbox.tenant_integration_id == row.tenant_integration_id,
            PushOutbox.entity_type == row.entity_type,
            PushOutbox.vrtx_id == row.vrtx_id,
            PushOutbox.id < row.id,
            PushOutbox.status.in_(PushStatus.UNFINISHED),
        )
        .limit(1)
    )


def pending_creation(session: Session, connection_id: int, entity: str, vrtx_id: str) -> PushOutbox | None:
    """An unfinished push that will create (and link) the VRTX record ``vrtx_id`` of ``entity``."""
    return session.scalar(
        select(PushOutbox)
        .where(
            PushOutbox.tenant_integration_id == connection_id,
            PushOutbox.entity_type == entity,
            PushOutbox.vrtx_id == vrtx_id,
            PushOutbox.operation.in_(list(CREATING)),
            PushOutbox.status.in_(PushStatus.UNFINISHED),
        )
        .limit(1)
    )


def linked_external_id(session: Session, connection_id: int, entity_type: str, vrtx_id: str) -> str | None:
    return session.scalar(
        select(EntityLink.external_id).where(
            EntityLink.tenant_integration_id == connection_id,
            EntityLink.entity_type == entity_type,
            EntityLink.vrtx_id == vrtx_id,
        )
    )


def link(
    session: Session,
    connection_id: int,
    entity_type: str,
    vrtx_id: str,
    external_id: str,
    *,
    remote_version: str | None,
    remote_hash: str | None,
) -> None:
    """Record (or move) the VRTX record's link to its provider copy. A provider record is linked to one VRTX
    record: a link another VRTX record held to the same external id gives way to the newest write."""
    now = utcnow()
    links = list(
        session.scalars(
            select(EntityLink).where(
                EntityLink.tenant_integration_id == connection_id,
                EntityLink.entity_type == entity_type,
                or_(EntityLink.vrtx_id == vrtx_id, EntityLink.external_id == external_id),
            )
        )
    )
    mine = next((item for item in links if item.vrtx_id == vrtx_id), None)
    for other in links:
        if other is not mine:
            session.delete(other)
    session.flush()
    if mine is None:
        mine = EntityLink(tenant_integration_id=connection_id, entity_type=entity_type, vrtx_id=vrtx_id)
        session.add(mine)
    mine.external_id = external_id
    mine.remote_version = remote_version
    mine.remote_hash = remote_hash
    mine.last_synced_at = now


def finish(
    row: PushOutbox,
    status: str,
    *,
    external_id: str | None = None,
    remote_version: str | None = None,
    provider_status: int | None = None,
    error: str | None = None,
) -> None:
    row.status = status
    row.finished_at = utcnow()
    row.next_attempt_at = None
    row.external_id = external_id or row.external_id
    row.remote_version = remote_version
    row.provider_status = provider_status
    row.error_message = error


def retry_later(
    row: PushOutbox,
    policy: RetryPolicy,
    error: str,
    *,
    provider_status: int | None = None,
    retry_after_s: float | None = None,
    counts_as_attempt: bool = True,
) -> bool:
    """Back to pending after a backoff, or failed for good once the attempts are spent; ``True`` if retried.
    A push that only waited for another (never sent) gives its attempt back."""
    if not counts_as_attempt:
        row.attempts = max(0, row.attempts - 1)
    elif row.attempts >= policy.max_attempts:
        gave_up = f"{error} (gave up after {row.attempts} attempts)"
        finish(row, PushStatus.FAILED, provider_status=provider_status, error=gave_up)
        return False
    row.status = PushStatus.PENDING
    row.error_message = error
    row.provider_status = provider_status
    row.next_attempt_at = utcnow() + timedelta(seconds=policy.delay_s(row.attempts, retry_after_s))
    return True


def retry_together(
    rows: Sequence[PushOutbox],
    policy: RetryPolicy,
    error: str,
    *,
    provider_status: int | None = None,
    retry_after_s: float | None = None,
    counts_as_attempt: bool = True,
) -> bool:
    """``retry_later`` for the members of one batch: they share one fate, so they are claimed again together. All
    go back due at the same instant (the latest any of them would be), or all fail once one has spent its attempts;
    ``True`` if retried."""
    for row in rows:
        retry_later(
            row,
            policy,
            error,
            provider_status=provider_status,
            retry_after_s=retry_after_s,
            counts_as_attempt=counts_as_attempt,
        )
    gave_up = next((row for row in rows if row.status == PushStatus.FAILED), None)
    if gave_up is not None:
        for row in rows:
            finish(row, PushStatus.FAILED, provider_status=provider_status, error=gave_up.error_message)
        return False
    due = max(row.next_attempt_at for row in rows if row.next_attempt_at is not None)
    for row in rows:
        row.next_attempt_at = due
    return True


def push_event(slug: str, row: PushOutbox) -> dict[str, Any]:
    """What the CRM hears when a push ends: enough to update its record without asking again."""
    return {
        "push_id": row.id,
        "integration": slug,
        "entity": row.entity_type,
        "operation": row.operation,
        "vrtx_id": row.vrtx_id,
        "idempotency_key": row.idempotency_key,
        "status": row.status,
        "external_id": row.external_id,
        "remote_version": row.remote_version,
        "error": row.error_message,
        "provider_status": row.provider_status,
        "attempts": row.attempts,
    }

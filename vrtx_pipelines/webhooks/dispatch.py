"""Received webhook events -> targeted incremental pulls of the entities they name, for their tenant.

Rows move ``received`` -> ``dispatched`` (claimed, ``run_id`` = the batch key the run is tagged with) ->
``processed`` (a run of the batch succeeded; ``run_id`` = that run) or ``failed`` (every run of it failed), or
``skipped`` when nothing is to be pulled. Claiming is one ``UPDATE ... WHERE status = 'received' RETURNING``, so
the sensor and the API's immediate launcher (``webhook_launch``) never both launch for the same rows.
"""
# No `from __future__ import annotations`: Dagster reads the context annotations at definition time.

import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    RunsFilter,
)
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from providers.base import Provider
from vrtx_pipelines.connect.context import Status
from vrtx_pipelines.db.models import (
    EntityLink,
    Integration,
    PushOutbox,
    TenantIntegration,
    WebhookInbox,
    table_of,
    utcnow,
)
from vrtx_pipelines.names import WEBHOOK_BATCH_TAG, WEBHOOK_EVENTS_TAG, Trigger, asset_path, run_tags
from vrtx_pipelines.push.outbox import PushStatus, records_entity
from vrtx_pipelines.push.two_way import parse_time

# A claimed batch with no run this long after its claim lost its launch (a crash between the two): release it.
ORPHAN_AFTER_S = 120
# A provider's echo of our own write can arrive before the push run has recorded the write (and the version that
# makes the echo recognisable): events of an entity the connection has pushes in flight of wait for them to be
# recorded, for this long at most after their receipt (a genuine change is then only late, never lost).
ECHO_HOLD_S = 30
CLAIM_LIMIT = 5000
ALREADY_CURRENT = "already current: the stored copy includes this change (our own write, or pulled since)"
# run_id of events handed back to the sensor (``release``).
RELEASED = "released"
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


@dataclass(frozen=True)
class ClaimedEvent:
    inbox_id: int
    entities: tuple[str, ...]  # the pull entities the event asks to refresh
    external_id: str | None  # the provider's id of the record that changed
    external_tenant_id: str | None  # the provider account (Xero organisation) it belongs to
    entity: str | None = None  # the pull entity the changed record belongs to
    occurred_at: datetime | None = None  # when the provider says the change happened
    record: dict[str, Any] | None = None  # the changed record, when the event carried all of it
    renews_watch: bool = False  # the provider asks for the connection's watch to be started again


@dataclass(frozen=True)
class Batch:
    """The claimed events of one connection, pulled by one run."""

    slug: str
    tenant_id: str
    connection_id: int
    entities: tuple[str, ...]
    events: tuple["ClaimedEvent", ...]
    key: str

    @property
    def inbox_ids(self) -> tuple[int, ...]:
        return tuple(event.inbox_id for event in self.events)

    @property
    def tags(self) -> dict[str, str]:
        return {
            **run_tags(self.slug, self.tenant_id, trigger=Trigger.WEBHOOK),
            WEBHOOK_BATCH_TAG: self.key,
            WEBHOOK_EVENTS_TAG: str(len(self.inbox_ids)),
        }

    @property
    def asset_keys(self) -> list[AssetKey]:
        return [AssetKey(asset_path(self.slug, entity)) for entity in self.entities]

    def run_request(self) -> RunRequest:
        return RunRequest(
            run_key=self.key, partition_key=self.tenant_id, asset_selection=self.asset_keys, tags=self.tags
        )


def new_batch_key(claimed_at: float) -> str:
    """``wh:<claim epoch>:<random>``: unique per claim, and old claims can be told by their age."""
    return f"wh:{int(claimed_at)}:{secrets.token_hex(12)}"


def _claimed_at(key: str) -> float:
    try:
        return float(key.split(":")[1])
    except (IndexError, ValueError):
        return 0.0


def claim_batches(
    session: Session,
    provider: Provider,
    *,
    known_tenants: set[str] | None = None,
    connection_id: int | None = None,
    limit: int = CLAIM_LIMIT,
    unreleased_only: bool = False,
) -> list[Batch]:
    """Claim the provider's received events, one batch per connection, in the caller's transaction.

    Tenants not (yet) in the provider's partitions (``known_tenants``) are left for a later tick; events that
    ask for no pull this connection does (sync off, entity not synced, disconnected) are marked skipped.
    ``unreleased_only``: leave events handed back by ``release`` to the sensor (the API's immediate path, which
    already applied them once).
    """
    if provider.pulls is None:
        return []
    inbox = table_of(WebhookInbox)
    received = select(inbox.c.tenant_integration_id).where(inbox.c.status == "received")
    if connection_id is not None:
        received = received.where(inbox.c.tenant_integration_id == connection_id)
    connections = session.execute(
        select(TenantIntegration.id, TenantIntegration.tenant_id, TenantIntegration.status, TenantIntegration.settings)
        .join(Integration, Integration.id == TenantIntegration.integration_id)
        .where(Integration.slug == provider.slug, TenantIntegration.id.in_(received.distinct()))
        .order_by(TenantIntegration.id)
    ).all()  # fmt: skip
    batches = []
    for conn_id, tenant_id, status, settings in connections:
        if known_tenants is not None and tenant_id not in known_tenants and status != Status.DISCONNECTED:
            continue
        key = new_batch_key(time.time())
        events = _claim(session, conn_id, key, limit, unreleased_only, _pushing(session, provider, conn_id))
        if current := _already_current(session, conn_id, events):
            _mark(session, sorted(current), "skipped", ALREADY_CURRENT)
            events = [event for event in events if event.inbox_id not in current]
        synced = _synced_entities(provider, status, settings or {})
        if skip := [event.inbox_id for event in events if not set(event.entities) & synced]:
            _mark(session, skip, "skipped", "no pull follows: the entity is not synced for this connection")
        pulled = tuple(event for event in events if set(event.entities) & synced)
        if not pulled:
            continue  # nothing to pull, or another dispatcher claimed these events first
        wanted = {entity for event in pulled for entity in event.entities}
        entities = tuple(e for e in provider.pulls.entities if e in wanted and e in synced)
        batches.append(Batch(provider.slug, tenant_id, conn_id, entities, pulled, key))
    return batches


def _claim(
    session: Session, connection_id: int, key: str, limit: int, unreleased_only: bool, pushing: Sequence[str]
) -> list[ClaimedEvent]:
    """One ``UPDATE ... RETURNING``: the connection's oldest received events become ``dispatched`` under ``key``,
    but for recent ones of the ``pushing`` entities (``ECHO_HOLD_S``). The status is checked again by the update
    itself, so two claimers never both get an event."""
    inbox = table_of(WebhookInbox)
    payload = inbox.c.payload
    oldest = (
        select(inbox.c.id)
        .where(inbox.c.tenant_integration_id == connection_id, inbox.c.status == "received")
        .order_by(inbox.c.id)
        .limit(limit)
    )
    if unreleased_only:
        oldest = oldest.where(or_(inbox.c.run_id.is_(None), inbox.c.run_id != RELEASED))
    if pushing:
        entity, held_since = payload["entity"].as_string(), utcnow() - timedelta(seconds=ECHO_HOLD_S)
        oldest = oldest.where(or_(entity.is_(None), entity.not_in(list(pushing)), inbox.c.received_at < held_since))
    claimed = session.execute(
        update(inbox)
        .where(inbox.c.id.in_(oldest.scalar_subquery()), inbox.c.status == "received")
        .values(status="dispatched", run_id=key)
        .returning(
            inbox.c.id, payload["entities"], payload["external_id"].as_string(),
            payload["external_tenant_id"].as_string(), payload["entity"].as_string(),
            payload["occurred_at"].as_string(), payload["record"], payload["renews_watch"],
        )
    )  # fmt: skip
    events = [
        ClaimedEvent(
            i, tuple(entities or ()), external_id, org, entity, parse_time(occurred_at),
            record if isinstance(record, dict) else None, bool(renews),
        )
        for i, entities, external_id, org, entity, occurred_at, record, renews in claimed
    ]  # fmt: skip
    return sorted(events, key=lambda event: event.inbox_id)


def _pushing(session: Session, provider: Provider, connection_id: int) -> list[str]:
    """The pull entities of the connection's pushes a run holds: written, perhaps, and not yet recorded."""
    entities = session.scalars(
        select(PushOutbox.entity_type)
        .where(PushOutbox.tenant_integration_id == connection_id, PushOutbox.status == PushStatus.RUNNING)
        .distinct()
    )
    return sorted({records_entity(provider, entity) for entity in entities})


def _already_current(session: Session, connection_id: int, events: Sequence[ClaimedEvent]) -> set[int]:
    """The events announcing a change the stored copy of a linked record already includes: its version (the
    provider's modification time, as our own push or a later pull stored it) is at or after the event's time.
    Mostly the provider's echo of our own writes, which would otherwise spend its rate limit on a fetch and a
    pull of what we just wrote. An edit made in the provider after our write is later than the stored version,
    so it is never skipped."""
    named = {event.external_id for event in events if event.external_id and event.entity and event.occurred_at}
    if not named:
        return set()
    links = session.execute(
        select(EntityLink.entity_type, EntityLink.external_id, EntityLink.remote_version).where(
            EntityLink.tenant_integration_id == connection_id, EntityLink.external_id.in_(named)
        )
    )
    stored = {(entity, external_id): parse_time(version) for entity, external_id, version in links}
    current = set()
    for event in events:
        version = stored.get((event.entity or "", event.external_id or ""))
        if version is not None and event.occurred_at is not None and version >= event.occurred_at:
            current.add(event.inbox_id)
    return current


def _synced_entities(provider: Provider, status: str, settings: dict[str, object]) -> set[str]:
    assert provider.pulls is not None
    if status == Status.DISCONNECTED or settings.get("sync_enabled", True) is False:
        return set()
    chosen = settings.get("entities")
    entities = chosen if isinstance(chosen, list) else provider.pulls.entities
    return {e for e in entities if e in provider.pulls.entities}


def release(session: Session, inbox_ids: Iterable[int]) -> int:
    """Put claimed rows back to ``received`` (their launch failed): the sensor picks them up again (the API's
    immediate path does not: it has applied them already)."""
    ids = list(inbox_ids)
    if not ids:
        return 0
    result = session.execute(
        update(WebhookInbox)
        .where(WebhookInbox.id.in_(ids), WebhookInbox.status == "dispatched")
        .values(status="received", run_id=RELEASED)
        .returning(WebhookInbox.id)
    )
    return len(result.all())


def _mark(session: Session, ids: list[int], status: str, error: str | None, run_id: str | None = None) -> None:
    values: dict[str, object] = {"status": status, "processed_at": utcnow(), "error_message": error}
    if run_id is not None:
        values["run_id"] = run_id
    session.execute(update(WebhookInbox).where(WebhookInbox.id.in_(ids)).values(**values))


@dataclass
class Settled:
    processed: int = 0
    failed: int = 0
    released: int = 0


def settle(session: Session, instance: DagsterInstance, provider: Provider, now: float | None = None) -> Settled:
    """Follow dispatched batches to their runs: success -> processed, failure -> failed with the run's error,
    no run long after the claim -> released for another launch."""
    now = now or time.time()
    rows = session.execute(
        select(WebhookInbox.id, WebhookInbox.run_id)
        .join(TenantIntegration, TenantIntegration.id == WebhookInbox.tenant_integration_id)
        .join(Integration, Integration.id == TenantIntegration.integration_id)
        .where(Integration.slug == provider.slug, WebhookInbox.status == "dispatched")
    ).all()
    batches: dict[str, list[int]] = {}
    for inbox_id, key in rows:
        batches.setdefault(key or "", []).append(inbox_id)
    outcome = Settled()
    for key, ids in batches.items():
        runs = instance.get_runs(RunsFilter(tags={WEBHOOK_BATCH_TAG: key})) if key else []
        if not runs:
            if now - _claimed_at(key) > ORPHAN_AFTER_S:
                outcome.released += release(session, ids)
            continue
        succeeded = [run for run in runs if run.status == DagsterRunStatus.SUCCESS]
        if succeeded:
            _mark(session, ids, "processed", None, succeeded[0].run_id)
            outcome.processed += len(ids)
        elif all(run.status in FINISHED for run in runs):
            latest = runs[0]  # newest first: a retry's failure is the one that counts
            _mark(session, ids, "failed", _failure_message(instance, latest.run_id, latest.status), latest.run_id)
            outcome.failed += len(ids)
    return outcome


def _failure_message(instance: DagsterInstance, run_id: str, status: DagsterRunStatus) -> str:
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        event = entry.dagster_event
        error = getattr(event.event_specific_data, "error", None) if event else None
        if error is not None:
            return f"the pull run {run_id} failed: {error.message.strip()[:500]}"
    return f"the pull run {run_id} ended {status.value.lower()}"

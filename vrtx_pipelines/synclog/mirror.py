"""The sync log: every finished pull or push run mirrored into ``integration_sync_logs``, one row per entity.

Two run-status sensors (success, failure; ``vrtx_pipelines.orchestration.synclog``) read each finished run: pulls
from the metadata their materialisations carry (see ``vrtx_pipelines.pull.run``), pushes from the outbox rows
their op stamped with the run id. Rows are keyed by (run, entity, direction) and upserted, so a sensor that
re-reads a run (a crash before its cursor moved, a manual re-evaluation) never duplicates a row or an event: the
connection's ``last_sync_at``/``last_error`` and the CRM's events (sync.completed / sync.failed /
records.changed) are written in the same transaction as the rows, and only when the run's rows are first written.
"""
# No `from __future__ import annotations`: Dagster reads the context annotations at definition time.

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from providers.base import Provider
from vrtx_pipelines.connect.context import get_connection
from vrtx_pipelines.connect.http import redact
from vrtx_pipelines.db.locks import lock_connection
from vrtx_pipelines.db.models import (
    CanonicalRecord,
    IntegrationSyncLog,
    PushOutbox,
    TenantIntegration,
)
from vrtx_pipelines.db.session import session_scope
from vrtx_pipelines.events.record import EventType, record_event
from vrtx_pipelines.names import (
    CONNECTION_TAG,
    KIND_TAG,
    PARTITION_TAG,
    PROVIDER_TAG,
    PUSH_CONNECTION_TAG,
    PUSH_KIND,
    TRIGGER_TAG,
    Trigger,
    pull_job_name,
    pull_op_name,
)
from vrtx_pipelines.records.store import encode_cursor
from vrtx_pipelines.registry import load_providers

PULL, PUSH = "pull", "push"
SUCCESS, FAILED, PARTIAL = "success", "failed", "partial"
# The per-entity figures a pull's materialisation carries that belong in ``counts``.
PULL_COUNTS = (
    "rows_loaded",
    "records_changed",
    "records_caught_up",
    "records_without_canonical_form",
    "pages",
    "api_calls",
    "rate_limited_waits",
    "paced_wait_s",
)
TIMINGS = ("probe_ms", "extract_ms", "normalize_ms", "load_ms", "canonical_ms")
MAX_ERROR = 1000
SAMPLE_ROWS = 5
# What may still hide a credential in an exception's text: bearer tokens, key=value pairs, URL user info.
SECRETISH = re.compile(
    r"(bearer\s+)\S+|((?:access_token|refresh_token|token|secret|password|api_key|apikey|key|signature)=)[^&\s]+"
    r"|(//)[^/@\s]+@",
    re.IGNORECASE,
)


@dataclass
class EntityOutcome:
    """One sync-log row in the making."""

    entity: str | None
    status: str
    sync_type: str
    counts: dict[str, Any] = field(default_factory=dict)
    cursor: dict[str, Any] | None = None
    duration_ms: int | None = None
    error_message: str | None = None
    request_data: dict[str, Any] | None = None
    response_data: dict[str, Any] | None = None


@dataclass
class RunSummary:
    run_id: str
    slug: str
    tenant_id: str
    direction: str
    succeeded: bool
    outcomes: list[EntityOutcome]
    finished_at: datetime
    duration_ms: int | None
    trigger: str | None
    error_message: str | None = None
    connection_id: int | None = None


# --- reading a finished run ----------------------------------------------------------------------------


def scrub(message: str) -> str:
    """A failure's message fit for people and for storage: its first line, nothing that looks like a secret."""
    first = next((line.strip() for line in message.strip().splitlines() if line.strip()), "")
    cleaned = SECRETISH.sub(lambda m: (m.group(1) or m.group(2) or m.group(3) or "") + "[redacted]", first)
    return cleaned[:MAX_ERROR]


# Dagster's wrappers around what a step's own code raised: their message names the op, not what went wrong.
DAGSTER_WRAPPERS = ("DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError")


def _error_line(error: Any) -> str:
    """``Class: message`` of the error itself, below Dagster's wrappers (the message's own ``module.Class: `` prefix
    dropped)."""
    while error.cls_name in DAGSTER_WRAPPERS and error.cause is not None:
        error = error.cause
    cls = error.cls_name or "Error"
    message = re.sub(rf"^(?:[\w.]+\.)?{re.escape(cls)}: ", "", error.message)
    return f"{cls}: {message}"


def run_failure_message(instance: DagsterInstance, run_id: str) -> str:
    """The step failure's own description (a Dagster ``Failure``) if any, else the error's class and message;
    never a stack trace."""
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        data = entry.dagster_event.step_failure_data if entry.dagster_event else None
        if data is None:
            continue
        if data.user_failure_data is not None and data.user_failure_data.description:
            return scrub(data.user_failure_data.description)
        if data.error is not None:
            return scrub(_error_line(data.error))
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE):
        event = entry.dagster_event
        error = getattr(event.event_specific_data, "error", None) if event else None
        if error is not None:
            return scrub(_error_line(error))
        if event is not None and event.message:
            return scrub(event.message)
    return "the run failed (see the Dagster run for details)"


# dlt's wording for a resource that raised (dlt.extract.exceptions.ResourceExtractionError).
FAILED_RESOURCE = re.compile(r"extraction of resource `([^`]+)`")


def _error_chain(error: Any) -> Iterator[Any]:
    """A SerializableErrorInfo and every error it was raised from or during, nearest first."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [getattr(current, "cause", None), getattr(current, "context", None)]


def failed_entity(instance: DagsterInstance, run_id: str) -> str | None:
    """The pull entity whose resource raised the step's failure, when dlt says which one did.

    All of a pull's entities share one dlt run: when one resource fails, the step fails and no entity loads, so the
    failure is that entity's alone; the others did not fail, they were not loaded."""
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        data = entry.dagster_event.step_failure_data if entry.dagster_event else None
        for error in _error_chain(data.error if data else None):
            found = FAILED_RESOURCE.search(error.message or "") if error.cls_name == "ResourceExtractionError" else None
            if found:
                return found.group(1)
    return None


def _run_times(instance: DagsterInstance, run: DagsterRun) -> tuple[datetime, int | None]:
    record = instance.get_run_record_by_id(run.run_id)
    end = record.end_time if record and record.end_time else None
    start = record.start_time if record and record.start_time else None
    finished = datetime.fromtimestamp(end, UTC) if end else datetime.now(UTC)
    duration = round((end - start) * 1000) if end and start else None
    return finished, duration


def _metadata_values(metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {key: getattr(value, "value", value) for key, value in metadata.items()}


def _pull_entities(instance: DagsterInstance, provider: Provider, run: DagsterRun) -> list[str] | None:
    """The pull entities the run set out to materialise, or None when it is not a pull run of this provider.

    The planned materialisations say it for every kind of run (a job, a selection, an in-process
    ``materialize``, whose run carries no asset selection)."""
    assert provider.pulls is not None
    keys = [key.path for key in run.asset_selection or ()]
    for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED):
        event = entry.dagster_event
        if event is not None and event.asset_key is not None:
            keys.append(event.asset_key.path)
    if not keys and run.job_name == pull_job_name(provider.slug):
        return list(provider.pulls.entities)
    selected = {path[-1] for path in keys if len(path) == 2 and path[0] == provider.slug}
    chosen = [entity for entity in provider.pulls.entities if entity in selected]
    return chosen or None


def _was_full(provider: Provider, run: DagsterRun) -> bool:
    ops = (run.run_config or {}).get("ops", {})
    config = ops.get(pull_op_name(provider.slug), {}).get("config", {}) if isinstance(ops, Mapping) else {}
    return bool(config.get("full")) or run.tags.get(TRIGGER_TAG) == Trigger.CONNECTED


def summarise_pull(
    instance: DagsterInstance, run: DagsterRun, provider: Provider, entities: Sequence[str], succeeded: bool
) -> list[EntityOutcome]:
    materialised: dict[str, dict[str, Any]] = {}
    for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
        materialization = entry.asset_materialization
        if materialization is None or materialization.asset_key.path[0] != provider.slug:
            continue
        materialised[materialization.asset_key.path[-1]] = _metadata_values(materialization.metadata)
    full = _was_full(provider, run)
    request_base = {"trigger": run.tags.get(TRIGGER_TAG), "partition": run.tags.get(PARTITION_TAG)}
    outcomes = []
    if not succeeded:
        # One failure is one row: on the entity whose resource failed when dlt names it, else on the run as a
        # whole (entity None). The entities it stopped get none: their last row still says how they last went.
        culprit = failed_entity(instance, run.run_id)
        entity = culprit if culprit in entities and culprit not in materialised else None
        outcomes.append(
            EntityOutcome(
                entity=entity,
                status=FAILED,
                sync_type="full" if full else "incremental",
                error_message=run_failure_message(instance, run.run_id),
                request_data=redact({**request_base, "entity": entity, "entities": list(entities), "full": full}),
            )
        )
    for entity in entities:
        meta = materialised.get(entity)
        if meta is None and not succeeded:
            continue  # stopped by the failure above: its last row still says how it last went
        # A selected entity that yielded nothing in a successful run: nothing to load, nothing failed.
        outcomes.append(pull_outcome(entity, meta, request_base, full=full, failure=None))
    return outcomes


def pull_outcome(
    entity: str, meta: Mapping[str, Any] | None, request_base: Mapping[str, Any], *, full: bool, failure: str | None
) -> EntityOutcome:
    """One entity's sync-log row from the figures its pull materialised (``meta``); None: it did not (failed,
    with ``failure``, or the run succeeded without it)."""
    if meta is None:
        return EntityOutcome(
            entity=entity,
            status=FAILED if failure is not None else SUCCESS,
            sync_type="full" if full else "incremental",
            error_message=failure,
            request_data=redact({**request_base, "entity": entity, "full": full}),
        )
    counts = {key: meta[key] for key in PULL_COUNTS if key in meta}
    timings = {key: meta[key] for key in TIMINGS if key in meta}
    cursor = {"before": meta.get("cursor_before") or None, "after": meta.get("cursor_after") or None}
    return EntityOutcome(
        entity=entity,
        status=SUCCESS,
        sync_type=str(meta.get("sync_type") or ("full" if full else "incremental")),
        counts=counts,
        cursor=cursor,
        duration_ms=int(meta["duration_ms"]) if "duration_ms" in meta else None,
        request_data=redact(
            {
                **request_base,
                "entity": entity,
                "full": full,
                "cursor": cursor["before"],
                # Why a sync planned as incremental listed everything (a change token past its window).
                **({"full_sync_reason": meta["full_sync_reason"]} if meta.get("full_sync_reason") else {}),
            }
        ),
        response_data=redact(
            {
                "rows_loaded": counts.get("rows_loaded", 0),
                "records_changed": counts.get("records_changed", 0),
                "timings_ms": timings,
                **{k: meta[k] for k in ("dataset_name", "destination_name") if isinstance(meta.get(k), str)},
            }
        ),
    )


def summarise_push(run: DagsterRun, session: Session, failure: str | None) -> tuple[int | None, list[EntityOutcome]]:
    """(connection id, one outcome per entity) from the outbox rows the push op stamped with this run's id."""
    rows = list(session.scalars(select(PushOutbox).where(PushOutbox.run_id == run.run_id).order_by(PushOutbox.id)))
    by_entity: dict[str, list[PushOutbox]] = {}
    for row in rows:
        by_entity.setdefault(row.entity_type, []).append(row)
    outcomes = []
    for entity, batch in by_entity.items():
        done = [r for r in batch if r.status == "done"]
        failed = [r for r in batch if r.status == "failed"]
        # Held: a conflict the tenant's policy could not settle waits for a person (GET .../conflicts), not a retry.
        held = [r for r in batch if r.status == "held"]
        unfinished = len(batch) - len(done) - len(failed) - len(held)
        if not failed and not unfinished:
            status = SUCCESS
        elif not done and not held:
            status = FAILED
        else:
            status = PARTIAL
        errors = [f"push {r.id}: {r.error_message}" for r in failed if r.error_message]
        message = "; ".join(errors[:3]) or (failure if status != SUCCESS else None)
        durations = [
            (r.finished_at - r.started_at).total_seconds() * 1000 for r in batch if r.started_at and r.finished_at
        ]
        outcomes.append(
            EntityOutcome(
                entity=entity,
                status=status,
                sync_type=PUSH,
                counts={
                    "pushed": len(batch),
                    "done": len(done),
                    "failed": len(failed),
                    "held": len(held),
                    "retrying": unfinished,
                },
                duration_ms=round(max(durations)) if durations else None,
                error_message=scrub(message) if message else None,
                request_data=redact(
                    {
                        "trigger": run.tags.get(TRIGGER_TAG, Trigger.PUSH.value),
                        "pushes": [
                            {"id": r.id, "operation": r.operation, "vrtx_id": r.vrtx_id} for r in batch[:SAMPLE_ROWS]
                        ],
                        "sample_payload": batch[0].payload,
                    }
                ),
                response_data=redact(
                    {
                        "results": [
                            {
                                "id": r.id,
                                "status": r.status,
                                "external_id": r.external_id,
                                "provider_status": r.provider_status,
                            }
                            for r in batch[:SAMPLE_ROWS]
                        ]
                    }
                ),
            )
        )
    connection_id = rows[0].tenant_integration_id if rows else None
    if not outcomes and failure is not None:
        # The run died before it touched a row: still one row, so the failure is seen.
        outcomes.append(EntityOutcome(entity=None, status=FAILED, sync_type=PUSH, error_message=failure))
    return connection_id, outcomes


# --- writing ---------------------------------------------------------------------------------------------


def _changes_cursor(session: Session, connection_id: int, entity: str, since: datetime) -> str:
    """A records API cursor just before the first change this run made: reading from it returns them all."""
    first = session.scalar(
        select(func.min(CanonicalRecord.change_seq)).where(
            CanonicalRecord.tenant_integration_id == connection_id,
            CanonicalRecord.entity_type == entity,
            CanonicalRecord.updated_at >= since,
        )
    )
    return encode_cursor(max(0, (first or 1) - 1))


def write_summary(session: Session, summary: RunSummary, run_started: datetime | None) -> bool:
    """Upsert the run's rows; on their first writing, also the connection's state and the CRM's events.
    Returns whether this was the first writing."""
    assert summary.connection_id is not None
    lock_connection(session, summary.connection_id)
    # A batch run pulls many connections: its rows are told apart by connection as well.
    existing = {
        (row.entity_type, row.direction): row
        for row in session.scalars(
            select(IntegrationSyncLog).where(
                IntegrationSyncLog.run_id == summary.run_id,
                IntegrationSyncLog.tenant_integration_id == summary.connection_id,
            )
        )
    }
    for outcome in summary.outcomes:
        row = existing.get((outcome.entity, summary.direction))
        if row is None:
            row = IntegrationSyncLog(
                tenant_integration_id=summary.connection_id,
                run_id=summary.run_id,
                entity_type=outcome.entity,
                direction=summary.direction,
                created_at=summary.finished_at,
            )
            session.add(row)
        row.sync_type = outcome.sync_type
        row.status = outcome.status
        row.counts = outcome.counts
        row.cursor = outcome.cursor
        row.duration_ms = outcome.duration_ms if outcome.duration_ms is not None else summary.duration_ms
        row.error_message = outcome.error_message
        row.request_data = outcome.request_data
        row.response_data = outcome.response_data
    if existing:
        return False
    if summary.direction == PULL:
        _follow_connection(session, summary, run_started)
    session.flush()
    return True


def _follow_connection(session: Session, summary: RunSummary, run_started: datetime | None) -> None:
    connection = session.get_one(TenantIntegration, summary.connection_id)
    latest = connection.last_sync_at is None or connection.last_sync_at <= summary.finished_at
    entities = {
        o.entity: {k: o.counts.get(k, 0) for k in ("rows_loaded", "records_changed")}
        for o in summary.outcomes
        if o.entity
    }
    base = {"run_id": summary.run_id, "trigger": summary.trigger, "entities": entities}
    if summary.succeeded:
        if latest:
            connection.last_sync_at = summary.finished_at
            connection.last_error = None
        sync_types = sorted({o.sync_type for o in summary.outcomes})
        record_event(
            session,
            summary.tenant_id,
            EventType.SYNC_COMPLETED,
            summary.slug,
            {
                **base,
                "sync_type": sync_types[0] if len(sync_types) == 1 else "mixed",
                "duration_ms": summary.duration_ms,
            },
        )
        for outcome in summary.outcomes:
            changed = int(outcome.counts.get("records_changed", 0) or 0)
            if outcome.entity and changed > 0:
                since = run_started or summary.finished_at
                record_event(
                    session,
                    summary.tenant_id,
                    EventType.RECORDS_CHANGED,
                    summary.slug,
                    {
                        "entity": outcome.entity,
                        "count": changed,
                        "cursor": _changes_cursor(session, summary.connection_id or 0, outcome.entity, since),
                        "run_id": summary.run_id,
                    },
                )
    else:
        if latest:
            connection.last_error = summary.error_message
        record_event(
            session, summary.tenant_id, EventType.SYNC_FAILED, summary.slug, {**base, "error": summary.error_message}
        )


def _logged(session: Session, run_id: str) -> bool:
    return session.scalar(select(IntegrationSyncLog.id).where(IntegrationSyncLog.run_id == run_id).limit(1)) is not None


def mirror_run(instance: DagsterInstance, run: DagsterRun, *, succeeded: bool) -> RunSummary | None:
    """Write the sync log of one finished run; None when the run is not a VRTX pull or push."""
    slug = run.tags.get(PROVIDER_TAG)
    provider = load_providers().get(slug) if slug else None
    if provider is None:
        return None
    connection_tag = run.tags.get(CONNECTION_TAG) or run.tags.get(PUSH_CONNECTION_TAG, "")
    tenant_id = run.tags.get(PARTITION_TAG) or connection_tag.partition(":")[2]
    finished, duration = _run_times(instance, run)
    record = instance.get_run_record_by_id(run.run_id)
    started = datetime.fromtimestamp(record.start_time, UTC) if record and record.start_time else None
    failure = None if succeeded else run_failure_message(instance, run.run_id)
    with session_scope() as session:
        if run.tags.get(KIND_TAG) == PUSH_KIND:
            connection_id, outcomes = summarise_push(run, session, failure)
            direction = PUSH
            if connection_id is None and _logged(session, run.run_id):
                # Written by the push sensor from the rows the run held, before it returned them to the outbox.
                return None
        else:
            entities = _pull_entities(instance, provider, run) if provider.pulls is not None else None
            if entities is None or not tenant_id:
                return None
            outcomes = summarise_pull(instance, run, provider, entities, succeeded)
            connection_id = None
            direction = PULL
        if connection_id is None and tenant_id:
            connection = get_connection(session, tenant_id, provider.slug)
            connection_id = connection.id if connection else None
        if connection_id is None or not outcomes:
            return None
        if not tenant_id:
            tenant_id = session.get_one(TenantIntegration, connection_id).tenant_id
        summary = RunSummary(
            run_id=run.run_id,
            slug=provider.slug,
            tenant_id=tenant_id,
            direction=direction,
            succeeded=succeeded,
            outcomes=outcomes,
            finished_at=finished,
            duration_ms=duration,
            trigger=run.tags.get(TRIGGER_TAG),
            error_message=failure,
            connection_id=connection_id,
        )
        write_summary(session, summary, started)
    return summary

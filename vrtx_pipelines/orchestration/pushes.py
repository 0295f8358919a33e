"""The push job and sensor: one run per batch of a connection's due pushes, and pushes of dead runs returned to
the outbox (``vrtx_pipelines.push.send`` sends them).

A run killed with no chance to say so (its daemon's machine crashed, a SIGKILL) stays STARTED in Dagster: the
sensor tells it by its lock (``vrtx_pipelines.push.liveness``), fails it, writes its sync log and only then
returns its rows, which still name it until then, to the outbox.
"""
# No `from __future__ import annotations`: Dagster reads the context and config annotations at definition time.

import time
from datetime import datetime
from typing import Any

from dagster import (
    Config,
    DagsterEventType,
    DagsterRunStatus,
    DefaultSensorStatus,
    JobDefinition,
    OpExecutionContext,
    Output,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    in_process_executor,
    job,
    op,
    sensor,
)

from providers.base import Provider
from vrtx_pipelines.config import get_settings
from vrtx_pipelines.db.models import utcnow
from vrtx_pipelines.db.session import session_scope
from vrtx_pipelines.names import (
    KIND_TAG,
    PUSH_CONNECTION_TAG,
    PUSH_KIND,
    push_job_name,
    push_op_name,
    push_run_config,
    push_run_tags,
    push_sensor_name,
    run_tags,
)
from vrtx_pipelines.push.liveness import alive, gone
from vrtx_pipelines.push.outbox import Batch, due_batches, release_abandoned, running_rows
from vrtx_pipelines.push.send import POLICY, send_batch
from vrtx_pipelines.synclog.mirror import mirror_run

ACTIVE_RUN = (
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
)
ENDED = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
# A STARTED run holding no rows may not have taken its lock yet (process start, imports): judged after this long.
START_GRACE_S = 120.0
DIED = (
    "The push run died: its process ended without finishing (killed, or its machine went down), so its unfinished "
    "pushes went back to the outbox, to be resent under their own idempotency keys."
)


class PushBatchConfig(Config):
    connection_id: int
    push_ids: list[int]


def push_job(provider: Provider) -> JobDefinition:
    @op(name=push_op_name(provider.slug), description=f"Sends a batch of one connection's pushes to {provider.name}.")
    def _push(context: OpExecutionContext, config: PushBatchConfig) -> Output[dict[str, int]]:
        started = time.monotonic()
        with alive(get_settings(), context.run_id):
            report = send_batch(provider, config.connection_id, config.push_ids, context.run_id, context.log)
        totals = {k: sum(c[k] for c in report.counts.values()) for k in ("done", "failed", "retrying")}
        return Output(
            totals,
            metadata={
                "connection_id": config.connection_id,
                "push_ids": report.claimed,
                "skipped_push_ids": report.skipped,
                "counts": report.counts,
                **{f"pushes_{k}": v for k, v in totals.items()},
                "api_calls": report.api_calls,
                "batched_calls": report.batched_calls,  # provider calls that carried several pushes
                "response_samples": report.samples,
                "duration_ms": round((time.monotonic() - started) * 1000),
            },
        )

    @job(
        name=push_job_name(provider.slug),
        description=f"Pushes VRTX records to {provider.name}: one run per batch of a connection's outbox.",
        tags={**run_tags(provider.slug), KIND_TAG: PUSH_KIND},
        executor_def=in_process_executor,  # one op: a step subprocess would only add its start-up time
    )
    def _job() -> None:
        _push()

    return _job


def push_run_request(slug: str, batch: Batch) -> RunRequest:
    return RunRequest(
        run_key=batch.run_key,
        job_name=push_job_name(slug),
        run_config=push_run_config(slug, batch.connection_id, batch.push_ids),
        tags=push_run_tags(slug, batch.tenant_id),
    )


def abandoned_rows(instance: Any, rows: list[tuple[int, str | None, datetime | None]], now: datetime) -> list[int]:
    """Rows still ``running`` whose run has ended (or never existed), or that outlived the lease."""
    run_ids = sorted({run_id for _, run_id, _ in rows if run_id})
    active = (
        {run.run_id for run in instance.get_runs(RunsFilter(run_ids=run_ids, statuses=list(ACTIVE_RUN)))}
        if run_ids
        else set()
    )
    stale = []
    for push_id, run_id, started_at in rows:
        expired = started_at is None or (now - started_at).total_seconds() > POLICY.lease_s
        if run_id not in active or expired:
            stale.append(push_id)
    return stale


def fail_dead_runs(instance: Any, slug: str, holding: set[str]) -> list[str]:
    """Mark failed the provider's STARTED push runs whose process is gone (their lock is free) and whose op has not
    ended: those holding claimed rows at once, the others after ``START_GRACE_S``. Returns their ids."""
    settings, dead = get_settings(), []
    records = instance.get_run_records(RunsFilter(job_name=push_job_name(slug), statuses=[DagsterRunStatus.STARTED]))
    for record in records:
        run_id = record.dagster_run.run_id
        young = record.start_time is None or time.time() - record.start_time < START_GRACE_S
        if (run_id not in holding and young) or not gone(settings, run_id) or _op_ended(instance, run_id):
            continue
        run = instance.get_run_by_id(run_id)
        if run is not None and run.status == DagsterRunStatus.STARTED:
            instance.report_run_failed(run, DIED)
            dead.append(run_id)
    return dead


def _op_ended(instance: Any, run_id: str) -> bool:
    """Whether the run's op has finished: its lock is given back then, while the run itself ends a moment later."""
    ends = {DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE}
    return bool(instance.get_records_for_run(run_id, of_type=ends, limit=1).records)


def mirror_ended(instance: Any, run_ids: set[str]) -> None:
    """Write the sync log of ended runs from the rows they still hold: once those rows go back to the outbox they
    no longer name the run (the run-status sensors may come later). Upserts: a second writing changes nothing."""
    for run in instance.get_runs(RunsFilter(run_ids=sorted(run_ids), statuses=list(ENDED))) if run_ids else []:
        mirror_run(instance, run, succeeded=run.status == DagsterRunStatus.SUCCESS)


def busy_tenants(instance: Any, slug: str) -> set[str]:
    """Tenants with a push run queued or running: their next batch waits for it rather than overlapping."""
    runs = instance.get_runs(RunsFilter(job_name=push_job_name(slug), statuses=list(ACTIVE_RUN)))
    prefix = f"{slug}:"
    return {run.tags[PUSH_CONNECTION_TAG].removeprefix(prefix) for run in runs if PUSH_CONNECTION_TAG in run.tags}


def push_sensor(provider: Provider, push: JobDefinition) -> SensorDefinition:
    slug = provider.slug

    @sensor(
        name=push_sensor_name(slug),
        job=push,
        minimum_interval_seconds=1,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Launches one run per {provider.name} connection with due pushes; returns pushes of runs "
        "that died to the outbox.",
    )
    def _sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        now = utcnow()
        with session_scope() as session:
            running = running_rows(session, slug)
        dead = fail_dead_runs(context.instance, slug, {run_id for _, run_id, _ in running if run_id})
        if dead:
            context.log.warning(f"push runs found dead (their process is gone), marked failed: {', '.join(dead)}")
        abandoned = abandoned_rows(context.instance, running, now)
        mirror_ended(context.instance, {run_id for push_id, run_id, _ in running if push_id in abandoned and run_id})
        with session_scope() as session:
            released = release_abandoned(session, abandoned, now)
        if released:
            context.log.info(f"returned {released} pushes of ended runs to the outbox")
        busy = busy_tenants(context.instance, slug)
        with session_scope() as session:
            batches = [b for b in due_batches(session, slug, utcnow()) if b.tenant_id not in busy]
        if not batches:
            return SkipReason("no pushes are due")
        return SensorResult(run_requests=[push_run_request(slug, batch) for batch in batches])

    return _sensor

"""The sync log's run-status sensors: every finished pull and push run is mirrored as it ends."""
# No `from __future__ import annotations`: Dagster reads the context annotations at definition time.

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunStatusSensorContext,
    SensorDefinition,
    run_failure_sensor,
    run_status_sensor,
)

from vrtx_pipelines.synclog.mirror import mirror_run


@run_status_sensor(
    run_status=DagsterRunStatus.SUCCESS,
    name="sync_log_success_sensor",
    monitor_all_code_locations=True,  # also runs launched outside the code location (`vrtx sync`)
    default_status=DefaultSensorStatus.RUNNING,
    description="Mirrors every successful pull and push run into integration_sync_logs (one row per entity) "
    "and tells the CRM (sync.completed, records.changed).",
)
def sync_log_success_sensor(context: RunStatusSensorContext) -> None:
    summary = mirror_run(context.instance, context.dagster_run, succeeded=True)
    if summary is not None:
        context.log.info(
            f"sync log: run={summary.run_id} provider={summary.slug} tenant={summary.tenant_id} "
            f"direction={summary.direction} rows={len(summary.outcomes)}"
        )


@run_failure_sensor(
    name="sync_log_failure_sensor",
    monitor_all_code_locations=True,
    default_status=DefaultSensorStatus.RUNNING,
    description="Mirrors every failed pull and push run into integration_sync_logs (status failed, the "
    "failure's message) and tells the CRM (sync.failed).",
)
def sync_log_failure_sensor(context: RunFailureSensorContext) -> None:
    summary = mirror_run(context.instance, context.dagster_run, succeeded=False)
    if summary is not None:
        context.log.info(
            f"sync log: run={summary.run_id} provider={summary.slug} tenant={summary.tenant_id} "
            f"direction={summary.direction} failed"
        )


SYNC_LOG_SENSORS: list[SensorDefinition] = [sync_log_success_sensor, sync_log_failure_sensor]

"""The webhook sensor: received events become targeted incremental pulls, and their runs' outcomes settle them."""
# No `from __future__ import annotations`: Dagster reads the context annotations at definition time.

from dagster import DefaultSensorStatus, SensorDefinition, SensorEvaluationContext, SensorResult, SkipReason, sensor
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from providers.base import Provider
from vrtx_pipelines.db.session import session_scope
from vrtx_pipelines.names import partitions_name, webhook_sensor_name
from vrtx_pipelines.webhooks.dispatch import claim_batches, settle


def build_webhook_sensor(provider: Provider, job: UnresolvedAssetJobDefinition) -> SensorDefinition:
    @sensor(
        name=webhook_sensor_name(provider.slug),
        job=job,
        minimum_interval_seconds=5,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Turns received {provider.name} webhook events into one targeted incremental pull per "
        "connection (the entities the events name), and records each event's outcome when its run ends. "
        "The API launches these pulls at once when it can reach the webserver; this sensor is the safety net.",
    )
    def _sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        known = set(context.instance.get_dynamic_partitions(partitions_name(provider.slug)))
        with session_scope() as session:
            settled = settle(session, context.instance, provider)
            batches = claim_batches(session, provider, known_tenants=known)
        if not batches:
            return SkipReason(
                f"no new events (processed={settled.processed} failed={settled.failed} released={settled.released})"
            )
        return SensorResult(run_requests=[batch.run_request() for batch in batches])

    return _sensor

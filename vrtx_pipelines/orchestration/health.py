"""Connection health: a tenant-partitioned asset per connectable provider, checked on a schedule."""
# No `from __future__ import annotations`: Dagster reads the context annotations at definition time.

import time

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    DefaultScheduleStatus,
    Failure,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    asset,
    define_asset_job,
    schedule,
)
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from providers.base import Provider
from providers.errors import ProviderError
from vrtx_pipelines.config import get_settings
from vrtx_pipelines.connect.connections import test_connection
from vrtx_pipelines.connect.context import ConnectionContext
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.db.session import session_factory
from vrtx_pipelines.names import health_job_name, health_schedule_name, partitions_name, run_tags
from vrtx_pipelines.orchestration.partitions import tenants_partitions


def connection_health_asset(provider: Provider) -> AssetsDefinition:
    @asset(
        name="connection_health",
        key_prefix=[provider.slug],
        group_name=provider.slug,
        partitions_def=tenants_partitions(provider.slug),
        kinds={"python"},
        description=f"Tests each tenant's {provider.name} credentials with one authenticated call.",
    )
    def _asset(context: AssetExecutionContext) -> MaterializeResult[None]:
        tenant_id = context.partition_key
        settings = get_settings()
        session = session_factory()()
        started = time.monotonic()
        try:
            ctx = ConnectionContext(session=session, vault=vault_from_settings(settings), settings=settings)
            info = test_connection(ctx, tenant_id, provider)
        except ProviderError as exc:
            # The connection's new status and reason are kept; the run fails with the provider's words.
            session.commit()
            raise Failure(description=f"{provider.name}: {exc.message}", allow_retries=False) from exc
        else:
            session.commit()
        finally:
            session.close()
        return MaterializeResult(
            metadata={
                "tenant": tenant_id,
                "status": "connected",
                "external_account_id": info.external_account_id or "",
                "external_account_name": info.external_account_name or "",
                "latency_ms": MetadataValue.int(round((time.monotonic() - started) * 1000)),
            }
        )

    return _asset


def connection_health_job(provider: Provider) -> UnresolvedAssetJobDefinition:
    return define_asset_job(
        name=health_job_name(provider.slug),
        selection=[f"{provider.slug}/connection_health"],
        tags=run_tags(provider.slug),
    )


def connection_health_schedule(provider: Provider, job: UnresolvedAssetJobDefinition) -> ScheduleDefinition:
    @schedule(
        name=health_schedule_name(provider.slug),
        job=job,
        cron_schedule="0 6 * * *",
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"Daily: one run per tenant connected to {provider.name}.",
    )
    def _schedule(context: ScheduleEvaluationContext) -> list[RunRequest]:
        tenants = context.instance.get_dynamic_partitions(partitions_name(provider.slug))
        stamp = context.scheduled_execution_time.isoformat() if context.scheduled_execution_time else "now"
        return [
            RunRequest(
                run_key=f"{provider.slug}:{tenant}:{stamp}",
                partition_key=tenant,
                tags=run_tags(provider.slug, tenant),
            )
            for tenant in tenants
        ]

    return _schedule

"""Connection health: a tenant-partitioned asset per connectable provider, checked daily on a schedule.

The daily schedule asks for batch runs (``<slug>_connection_health_batch``) of up to ``HEALTH_BATCH_SIZE`` tenants
each, not a run per tenant: each tenant's check is still materialised under its partition (or observed failed).
The asset itself remains for checking one tenant from the UI."""
# No `from __future__ import annotations`: Dagster reads the context annotations at definition time.

import time
from collections.abc import Iterator
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetMaterialization,
    AssetObservation,
    AssetsDefinition,
    Config,
    DefaultScheduleStatus,
    Failure,
    JobDefinition,
    MaterializeResult,
    MetadataValue,
    OpExecutionContext,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    asset,
    define_asset_job,
    in_process_executor,
    job,
    op,
    schedule,
)
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from sqlalchemy import select

from providers.base import Provider
from providers.errors import ProviderError
from vrtx_pipelines.config import get_settings
from vrtx_pipelines.connect.connections import test_connection
from vrtx_pipelines.connect.context import ConnectionContext, Status
from vrtx_pipelines.credentials.vault import Vault, vault_from_settings
from vrtx_pipelines.db.models import Integration, TenantIntegration
from vrtx_pipelines.db.session import session_factory, session_scope
from vrtx_pipelines.errors import IntegrationError
from vrtx_pipelines.names import (
    MAX_RETRIES_TAG,
    PROVIDER_TAG,
    health_asset_path,
    health_batch_job_name,
    health_batch_op_name,
    health_batch_run_config,
    health_job_name,
    health_schedule_name,
    partitions_name,
    run_tags,
)
from vrtx_pipelines.orchestration.partitions import tenants_partitions

HEALTH_BATCH_SIZE = 500


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
        settings = get_settings()
        try:
            figures = check_tenant(provider, context.partition_key, settings, vault_from_settings(settings))
        except ProviderError as exc:
            # The connection's new status and reason are kept; the run fails with the provider's words.
            raise Failure(description=f"{provider.name}: {exc.message}", allow_retries=False) from exc
        return MaterializeResult(metadata=figures)

    return _asset


def connection_health_job(provider: Provider) -> UnresolvedAssetJobDefinition:
    return define_asset_job(
        name=health_job_name(provider.slug),
        selection=[f"{provider.slug}/connection_health"],
        tags=run_tags(provider.slug),
    )


class HealthBatchConfig(Config):
    tenants: list[str]


def check_tenant(provider: Provider, tenant_id: str, settings: Any, vault: Vault) -> dict[str, Any]:
    """One tenant's check: its figures; raises the provider's error (its connection's state is kept)."""
    session = session_factory()()
    started = time.monotonic()
    try:
        ctx = ConnectionContext(session=session, vault=vault, settings=settings)
        info = test_connection(ctx, tenant_id, provider)
        session.commit()
    except (ProviderError, IntegrationError):
        session.commit()  # the connection's new status and reason
        raise
    finally:
        session.close()
    return {
        "tenant": tenant_id,
        "status": "connected",
        "external_account_id": info.external_account_id or "",
        "external_account_name": info.external_account_name or "",
        "latency_ms": MetadataValue.int(round((time.monotonic() - started) * 1000)),
    }


def connection_health_batch_job(provider: Provider) -> JobDefinition:
    """``<slug>_connection_health_batch``: checks many tenants in one run, each materialised under its partition."""

    @op(name=health_batch_op_name(provider.slug), out={})
    def _checks(context: OpExecutionContext, config: HealthBatchConfig) -> Iterator[Any]:
        settings = get_settings()
        vault = vault_from_settings(settings)
        key = health_asset_path(provider.slug)
        failed = 0
        for tenant_id in config.tenants:
            try:
                figures = check_tenant(provider, tenant_id, settings, vault)
            except (ProviderError, IntegrationError) as exc:
                failed += 1
                failure = {"tenant": tenant_id, "status": "failed", "error": exc.message}
                yield AssetObservation(asset_key=key, partition=tenant_id, metadata=failure)
                continue
            yield AssetMaterialization(asset_key=key, partition=tenant_id, metadata=figures)
        context.log.info(f"checked={len(config.tenants)} failed={failed}")

    @job(
        name=health_batch_job_name(provider.slug),
        executor_def=in_process_executor,
        tags={PROVIDER_TAG: provider.slug, MAX_RETRIES_TAG: "0"},
        description=f"Daily: tests many tenants' {provider.name} credentials in one run.",
    )
    def _job() -> None:
        _checks()

    return _job


def checked_tenants(provider: Provider, known: set[str]) -> list[str]:
    """The provider's connections worth checking (connected, or errored: a fixed credential shows), in the
    partitions."""
    with session_scope() as session:
        rows = session.scalars(
            select(TenantIntegration.tenant_id)
            .join(Integration, Integration.id == TenantIntegration.integration_id)
            .where(Integration.slug == provider.slug, TenantIntegration.status.in_([Status.CONNECTED, Status.ERROR]))
            .order_by(TenantIntegration.id)
        )
        return [tenant for tenant in rows if tenant in known]


def connection_health_schedule(provider: Provider, job: JobDefinition) -> ScheduleDefinition:
    @schedule(
        name=health_schedule_name(provider.slug),
        job=job,
        cron_schedule="0 6 * * *",
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"Daily: every tenant connected to {provider.name} checked, {HEALTH_BATCH_SIZE} per run.",
    )
    def _schedule(context: ScheduleEvaluationContext) -> list[RunRequest]:
        known = set(context.instance.get_dynamic_partitions(partitions_name(provider.slug)))
        tenants = checked_tenants(provider, known)
        stamp = context.scheduled_execution_time.isoformat() if context.scheduled_execution_time else "now"
        return [
            RunRequest(
                run_key=f"{provider.slug}:health:{stamp}:{start}",
                run_config=health_batch_run_config(provider.slug, tenants[start : start + HEALTH_BATCH_SIZE]),
            )
            for start in range(0, len(tenants), HEALTH_BATCH_SIZE)
        ]

    return _schedule

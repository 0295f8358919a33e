"""Scheduled work: incremental pulls at each tenant's own frequency, and OAuth refresh ahead of expiry."""
# No `from __future__ import annotations`: Dagster reads the context annotations at definition time.

import time
from datetime import UTC, datetime

from dagster import (
    AssetKey,
    DefaultScheduleStatus,
    OpExecutionContext,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    job,
    op,
    schedule,
)
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from sqlalchemy import select

from providers.base import Provider
from providers.errors import ProviderError
from vrtx_pipelines.config import get_settings
from vrtx_pipelines.connect.context import ConnectionContext, Status
from vrtx_pipelines.credentials.stored import read_credentials
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.db.models import Integration, TenantIntegration
from vrtx_pipelines.db.session import session_factory, session_scope
from vrtx_pipelines.errors import IntegrationError
from vrtx_pipelines.names import (
    Trigger,
    asset_path,
    connection_key,
    partitions_name,
    pull_job_name,
    pull_schedule_name,
    run_tags,
)


def pull_job(provider: Provider) -> UnresolvedAssetJobDefinition:
    assert provider.pulls is not None
    return define_asset_job(
        name=pull_job_name(provider.slug),
        selection=[AssetKey(asset_path(provider.slug, entity)) for entity in provider.pulls.entities],
        tags=run_tags(provider.slug),
    )


def due_pulls(provider: Provider, now: datetime, known_tenants: set[str]) -> list[tuple[str, list[str], int]]:
    """(tenant, entities, slot) for every connected tenant whose sync frequency makes a pull due now."""
    assert provider.pulls is not None
    due = []
    with session_scope() as session:
        rows = session.execute(
            select(TenantIntegration)
            .join(Integration, Integration.id == TenantIntegration.integration_id)
            .where(Integration.slug == provider.slug, TenantIntegration.status == Status.CONNECTED)
        )
        for (connection,) in rows:
            settings = connection.settings or {}
            if not settings.get("sync_enabled", True) or connection.tenant_id not in known_tenants:
                continue
            minutes = int(settings.get("sync_frequency_minutes", 60))
            slot = int(now.timestamp() // (minutes * 60))
            # A new connection's first sync is the partitions sensor's; the schedule retries it a slot later.
            last = connection.last_sync_at or connection.connected_at
            if last is not None and int(last.timestamp() // (minutes * 60)) == slot:
                continue  # already pulled in this slot (by the schedule, a webhook or on demand)
            entities = [e for e in settings.get("entities", provider.pulls.entities) if e in provider.pulls.entities]
            if entities:
                due.append((connection.tenant_id, entities, slot))
    return due


def pull_schedule(provider: Provider, pull: UnresolvedAssetJobDefinition) -> ScheduleDefinition:
    @schedule(
        name=pull_schedule_name(provider.slug),
        job=pull,
        cron_schedule="* * * * *",
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"Every minute: one incremental pull per tenant connected to {provider.name} whose "
        "`sync_frequency_minutes` setting makes one due (run_key = tenant + time slot, so each runs once).",
    )
    def _schedule(context: ScheduleEvaluationContext) -> list[RunRequest] | SkipReason:
        now = context.scheduled_execution_time or datetime.now(UTC)
        known = set(context.instance.get_dynamic_partitions(partitions_name(provider.slug)))
        requests = [
            RunRequest(
                run_key=f"{connection_key(provider.slug, tenant)}:{slot}",
                partition_key=tenant,
                asset_selection=[AssetKey(asset_path(provider.slug, e)) for e in entities],
                tags=run_tags(provider.slug, tenant, trigger=Trigger.SCHEDULE),
            )
            for tenant, entities, slot in due_pulls(provider, now, known)
        ]
        return requests or SkipReason("no connection is due")

    return _schedule


REFRESH_AHEAD_S = 15 * 60


@op(description="Refreshes every OAuth connection whose access token expires within 15 minutes.")
def refresh_expiring_tokens(context: OpExecutionContext) -> None:
    from vrtx_pipelines.connect import oauth  # oauth builds on connections; keep the import where it is used
    from vrtx_pipelines.registry import load_providers

    settings = get_settings()
    vault = vault_from_settings(settings)
    providers = {slug: p for slug, p in load_providers().items() if p.auth.oauth2 is not None}
    session = session_factory()()
    try:
        rows = session.execute(
            select(TenantIntegration.id, Integration.slug)
            .join(Integration, Integration.id == TenantIntegration.integration_id)
            .where(Integration.slug.in_(list(providers)), TenantIntegration.status == Status.CONNECTED)
        ).all()
        refreshed = failed = 0
        for connection_id, slug in rows:
            connection = session.get_one(TenantIntegration, connection_id)
            tokens = read_credentials(vault, connection, slug)
            # A connection made with a key (Stripe takes a key or OAuth) has no token to refresh.
            if "access_token" not in tokens or tokens.get("expires_at", 0) - time.time() > REFRESH_AHEAD_S:
                continue
            ctx = ConnectionContext(session=session, vault=vault, settings=settings)
            try:
                oauth.access_token(ctx, connection_id, force=True)
                refreshed += 1
            except (ProviderError, IntegrationError) as exc:
                failed += 1
                context.log.warning(f"refresh failed provider={slug} tenant={connection.tenant_id}: {exc}")
        context.log.info(f"refreshed={refreshed} failed={failed}")
    finally:
        session.close()


@job(name="oauth_token_refresh", description="Keeps OAuth access tokens fresh ahead of their expiry.")
def token_refresh_job() -> None:
    refresh_expiring_tokens()


token_refresh_schedule = ScheduleDefinition(
    name="oauth_token_refresh_schedule",
    job=token_refresh_job,
    cron_schedule="*/10 * * * *",
    default_status=DefaultScheduleStatus.RUNNING,
)

"""Scheduled work: incremental pulls at each tenant's own frequency, in batch runs of many tenants (due-ness and
claims: ``vrtx_pipelines.pull.fleet``; the batch: ``vrtx_pipelines.pull.batch``), and OAuth refresh ahead of expiry."""
# No `from __future__ import annotations`: Dagster reads the context annotations at definition time.

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from dagster import (
    AssetKey,
    DagsterInstance,
    DagsterRunStatus,
    DefaultScheduleStatus,
    JobDefinition,
    OpExecutionContext,
    RunRequest,
    RunsFilter,
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
from sqlalchemy.orm import Session

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
    BATCH_KEY_TAG,
    PULL_BATCH_TAG,
    asset_path,
    batch_run_tags,
    partitions_name,
    pull_batch_job_name,
    pull_batch_run_config,
    pull_job_name,
    pull_schedule_name,
    run_tags,
)
from vrtx_pipelines.pull.fleet import Backlog, active_claims, backlog, claim_due, new_batch_key, release_batch


def pull_job(provider: Provider) -> UnresolvedAssetJobDefinition:
    assert provider.pulls is not None
    return define_asset_job(
        name=pull_job_name(provider.slug),
        selection=[AssetKey(asset_path(provider.slug, entity)) for entity in provider.pulls.entities],
        tags=run_tags(provider.slug),
    )


IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]
FINISHED = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
# A claim with no run this long after it was made lost its launch (the tick failed after claiming): free it.
ORPHAN_AFTER_S = 120


@dataclass(frozen=True)
class Tick:
    """What one tick of a provider's schedule asked for, and the backlog it left."""

    requests: list[RunRequest]
    tenants: int
    released: int
    backlog: Backlog

    @property
    def summary(self) -> str:
        return (
            f"batches={len(self.requests)} tenants={self.tenants} released={self.released} "
            f"waiting={self.backlog.waiting} oldest_wait_s={self.backlog.oldest_wait_s:.0f} "
            f"held_by_runs={self.backlog.claimed}"
        )


def sweep_claims(session: Session, instance: DagsterInstance, slug: str, now: datetime) -> int:
    """Free the claims of runs that ended still holding them (a first sync's run, which leaves its claim to this;
    a batch that died mid-way) or that never got a run; a run that did not succeed counts as a failed attempt
    (the next one backs off). Returns how many connections were freed."""
    freed = 0
    for key, claimed_at in active_claims(session, slug).items():
        records = instance.get_run_records(RunsFilter(tags={BATCH_KEY_TAG: key}), limit=1)
        if records:
            status = records[0].dagster_run.status
            if status in FINISHED:
                freed += release_batch(session, key, failed=status != DagsterRunStatus.SUCCESS)
        elif (now - claimed_at).total_seconds() > ORPHAN_AFTER_S:
            freed += release_batch(session, key, failed=False)
    return freed


def plan_batches(
    session: Session,
    instance: DagsterInstance,
    provider: Provider,
    now: datetime,
    known_tenants: set[str],
    *,
    batch_size: int,
    in_flight_limit: int,
) -> Tick:
    """One tick: free lost claims, then claim the oldest-due connections into as many batches as the provider's
    free batch slots allow (``in_flight_limit`` batch runs queued or running), ``batch_size`` tenants each."""
    slug = provider.slug
    released = sweep_claims(session, instance, slug, now)
    in_flight = len(instance.get_run_records(RunsFilter(tags={PULL_BATCH_TAG: slug}, statuses=IN_FLIGHT)))
    requests = []
    claimed_tenants = 0
    for _ in range(max(0, in_flight_limit - in_flight)):
        key = new_batch_key(slug, now)
        claimed = claim_due(session, slug, now, batch_size, key)
        if not claimed:
            break
        # Connected moments ago: the partitions sensor has not added them yet; they stay due for the next tick.
        unknown = [c.connection_id for c in claimed if c.tenant_id not in known_tenants]
        if unknown:
            release_batch(session, key, failed=False, only=unknown)
        tenants = [c.tenant_id for c in claimed if c.tenant_id in known_tenants]
        if tenants:
            claimed_tenants += len(tenants)
            requests.append(
                RunRequest(
                    run_key=key,
                    job_name=pull_batch_job_name(slug),
                    run_config=pull_batch_run_config(slug, tenants),
                    tags=batch_run_tags(slug, key),
                )
            )
        if len(claimed) < batch_size:
            break
    return Tick(requests, claimed_tenants, released, backlog(session, slug, now))


def pull_schedule(provider: Provider, batch_job: JobDefinition) -> ScheduleDefinition:
    @schedule(
        name=pull_schedule_name(provider.slug),
        job=batch_job,
        cron_schedule="* * * * *",
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"Every minute: the {provider.name} connections whose `sync_frequency_minutes` makes a pull "
        "due (one SQL query, oldest-due first) are claimed into batch runs of many tenants each; a claimed "
        "connection is not queued again until its pull ends. The tick logs what waits and for how long.",
    )
    def _schedule(context: ScheduleEvaluationContext) -> list[RunRequest] | SkipReason:
        now = context.scheduled_execution_time or datetime.now(UTC)
        settings = get_settings()
        known = set(context.instance.get_dynamic_partitions(partitions_name(provider.slug)))
        with session_scope() as session:
            tick = plan_batches(
                session, context.instance, provider, now, known,
                batch_size=settings.pull_batch_size, in_flight_limit=settings.pull_batches_in_flight,
            )  # fmt: skip
        context.log.info(f"{provider.slug} pulls: {tick.summary}")
        return tick.requests or SkipReason(f"no batch launched: {tick.summary}")

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


@op(
    description="Starts, or renews before they end, the change notifications of connections whose provider sends "
    "them only while subscribed (Gmail's users.watch)."
)
def renew_provider_watches(context: OpExecutionContext) -> None:
    from vrtx_pipelines.registry import load_providers
    from vrtx_pipelines.webhooks.watches import renew_watches

    settings = get_settings()
    vault = vault_from_settings(settings)
    for provider in load_providers().values():
        if provider.connectable and provider.watches is not None:
            tick = renew_watches(settings, vault, provider)
            context.log.info(f"{provider.slug} watches: {tick.summary}")


@job(name="provider_watches", description="Keeps providers' change notifications on (Gmail's users.watch).")
def watches_job() -> None:
    renew_provider_watches()


watches_schedule = ScheduleDefinition(
    name="provider_watches_schedule",
    job=watches_job,
    cron_schedule="*/30 * * * *",
    default_status=DefaultScheduleStatus.RUNNING,
)

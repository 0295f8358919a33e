"""Sync status, the sync log, and on-demand syncs for one integration of the calling tenant.

On-demand syncs are launched through the GraphQL API of the running Dagster webserver (the way the UI launches
them): the run lands in the instance's run queue at once, under the same per-connection concurrency limits as
scheduled runs, and the caller gets its run id. When the webserver cannot be reached the API answers 503
``orchestrator_unavailable`` rather than queueing a request that might never be seen.
"""

from __future__ import annotations

import logging
import math
import os
from datetime import UTC, datetime
from typing import Annotated, Any

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError
from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import and_, func, or_, select

from api.deps import Instant, ProviderDep, SessionDep, SettingsDep, TenantDep
from api.responses import INTEGRATION_ROUTE, errors
from providers.base import Provider
from vrtx_pipelines import cursors
from vrtx_pipelines.config import Settings
from vrtx_pipelines.connect.context import Status, get_connection
from vrtx_pipelines.db.models import IntegrationSyncLog, TenantIntegration
from vrtx_pipelines.errors import (
    ConnectionUnusable,
    IntegrationNotAvailable,
    NotConnected,
    OrchestratorUnavailable,
    ValidationFailed,
)
from vrtx_pipelines.names import (
    CONNECTION_TAG,
    KIND_TAG,
    PARTITION_TAG,
    TRIGGER_TAG,
    Trigger,
    asset_path,
    connection_key,
    partitions_name,
    pull_job_name,
    pull_run_config,
    run_tags,
)
from vrtx_pipelines.orchestrator import dagster_webserver_url, graphql_client

log = logging.getLogger("vrtx.api")
router = APIRouter(prefix="/api/v1/integrations/{slug}/sync", tags=["sync"], responses=INTEGRATION_ROUTE)
ACTIVE = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]
SYNCABLE = (Status.CONNECTED, Status.ERROR)


def dagster_instance(request: Request) -> DagsterInstance | None:
    """The Dagster instance (run storage) when this process has one: ``vrtx dev`` gives the API DAGSTER_HOME."""
    instance: DagsterInstance | None = getattr(request.app.state, "dagster_instance", None)
    if instance is None and os.environ.get("DAGSTER_HOME"):
        instance = request.app.state.dagster_instance = DagsterInstance.get()
    return instance


# --- bodies ----------------------------------------------------------------------------------------------


class SyncLogOut(BaseModel):
    id: int
    run_id: str | None
    entity: str | None
    direction: str = Field(description="pull (provider -> VRTX) or push (VRTX -> provider)")
    sync_type: str = Field(description="full, incremental or push")
    status: str = Field(description="success, failed or partial")
    counts: dict[str, Any] | None
    cursor: dict[str, Any] | None
    duration_ms: int | None
    error_message: str | None
    request_data: dict[str, Any] | None
    response_data: dict[str, Any] | None
    created_at: datetime
    dagster_run_url: str | None


class SyncLogsOut(BaseModel):
    logs: list[SyncLogOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page; null at the end.")


class ActiveRunOut(BaseModel):
    run_id: str
    status: str
    kind: str
    trigger: str | None
    created_at: datetime | None


class SyncStatusOut(BaseModel):
    integration: str
    status: str
    sync_enabled: bool
    sync_frequency_minutes: int
    last_sync_at: datetime | None
    next_sync_at: datetime | None = Field(description="When the schedule will next pull (null if it will not).")
    last_error: str | None
    entities: list[SyncLogOut] = Field(description="The latest log row of each entity and direction.")
    active_runs: list[ActiveRunOut] | None = Field(
        description="Queued and running syncs of this connection; null when this API cannot see Dagster's runs."
    )


class SyncLaunchedOut(BaseModel):
    run_id: str
    status: str
    entities: list[str]
    full: bool
    dagster_run_url: str


def log_out(row: IntegrationSyncLog, base_url: str) -> SyncLogOut:
    return SyncLogOut(
        id=row.id,
        run_id=row.run_id,
        entity=row.entity_type,
        direction=row.direction,
        sync_type=row.sync_type,
        status=row.status,
        counts=row.counts,
        cursor=row.cursor,
        duration_ms=row.duration_ms,
        error_message=row.error_message,
        request_data=row.request_data,
        response_data=row.response_data,
        created_at=row.created_at,
        dagster_run_url=f"{base_url}/runs/{row.run_id}" if row.run_id else None,
    )


# --- status ----------------------------------------------------------------------------------------------------


def next_sync_at(connection: TenantIntegration, now: datetime) -> datetime | None:
    """The schedule ticks every minute and pulls a connection once per slot of its sync frequency
    (``vrtx_pipelines.pull.fleet``): the next pull is at the start of the slot after the
    last sync's, or at the next tick when that is already past."""
    options = connection.settings or {}
    if connection.status != Status.CONNECTED or not options.get("sync_enabled", True):
        return None
    period = int(options.get("sync_frequency_minutes", 60)) * 60
    next_tick = datetime.fromtimestamp(math.floor(now.timestamp() / 60) * 60 + 60, UTC)
    if connection.last_sync_at is None:
        return next_tick
    slot_end = datetime.fromtimestamp((math.floor(connection.last_sync_at.timestamp() / period) + 1) * period, UTC)
    return max(slot_end, next_tick)


def _connection(session: SessionDep, tenant_id: str, provider: Provider) -> TenantIntegration:
    connection = get_connection(session, tenant_id, provider.slug)
    if connection is None:
        raise NotConnected(f"{provider.slug} has never been connected for this tenant")
    return connection


def _active_runs(instance: DagsterInstance | None, slug: str, tenant_id: str) -> list[ActiveRunOut] | None:
    if instance is None:
        return None
    records = instance.get_run_records(
        filters=RunsFilter(tags={CONNECTION_TAG: connection_key(slug, tenant_id)}, statuses=ACTIVE), limit=20
    )
    return [
        ActiveRunOut(
            run_id=record.dagster_run.run_id,
            status=record.dagster_run.status.value.lower(),
            kind=record.dagster_run.tags.get(KIND_TAG, "pull"),
            trigger=record.dagster_run.tags.get(TRIGGER_TAG),
            created_at=record.create_timestamp,
        )
        for record in records
    ]


@router.get("/status", response_model=SyncStatusOut, summary="Sync status")
def sync_status(
    provider: ProviderDep, tenant: TenantDep, session: SessionDep, settings: SettingsDep, request: Request
) -> SyncStatusOut:
    connection = _connection(session, tenant.id, provider)
    latest = (
        select(func.max(IntegrationSyncLog.id))
        .where(IntegrationSyncLog.tenant_integration_id == connection.id)
        .group_by(IntegrationSyncLog.entity_type, IntegrationSyncLog.direction)
    )
    rows = session.scalars(
        select(IntegrationSyncLog)
        .where(IntegrationSyncLog.id.in_(latest.scalar_subquery()))
        .order_by(IntegrationSyncLog.direction, IntegrationSyncLog.entity_type)
    )
    options = connection.settings or {}
    base_url = dagster_webserver_url(settings)
    return SyncStatusOut(
        integration=provider.slug,
        status=connection.status,
        sync_enabled=bool(options.get("sync_enabled", True)),
        sync_frequency_minutes=int(options.get("sync_frequency_minutes", 60)),
        last_sync_at=connection.last_sync_at,
        next_sync_at=next_sync_at(connection, datetime.now(UTC)),
        last_error=connection.last_error,
        entities=[log_out(row, base_url) for row in rows],
        active_runs=_active_runs(dagster_instance(request), provider.slug, tenant.id),
    )


# --- logs ---------------------------------------------------------------------------------------------------


def _encode(row: IntegrationSyncLog) -> str:
    return cursors.encode("l1", row.created_at.isoformat(), row.id, sep="|")


def _decode(cursor: str) -> tuple[datetime, int]:
    moment, row_id = cursors.decode(cursor, "l1", 2, sep="|")
    return cursors.instant(moment), cursors.row_id(row_id)


@router.get("/logs", response_model=SyncLogsOut, summary="Sync logs, newest first")
def sync_logs(
    provider: ProviderDep,
    tenant: TenantDep,
    session: SessionDep,
    settings: SettingsDep,
    entity: Annotated[str | None, Query(description="e.g. invoices")] = None,
    direction: Annotated[str | None, Query(pattern="^(pull|push)$")] = None,
    log_status: Annotated[str | None, Query(alias="status", pattern="^(success|failed|partial)$")] = None,
    since: Annotated[Instant | None, Query(description="Only rows at or after this time (ISO 8601).")] = None,
    until: Annotated[Instant | None, Query(description="Only rows before this time (ISO 8601).")] = None,
    run_id: Annotated[str | None, Query(description="The rows of one Dagster run.")] = None,
    cursor: Annotated[str | None, Query(description="From the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> SyncLogsOut:
    connection = _connection(session, tenant.id, provider)
    query = select(IntegrationSyncLog).where(IntegrationSyncLog.tenant_integration_id == connection.id)
    for column, value in (
        (IntegrationSyncLog.entity_type, entity),
        (IntegrationSyncLog.direction, direction),
        (IntegrationSyncLog.status, log_status),
        (IntegrationSyncLog.run_id, run_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(IntegrationSyncLog.created_at >= since)
    if until is not None:
        query = query.where(IntegrationSyncLog.created_at < until)
    if cursor:
        moment, row_id = _decode(cursor)
        query = query.where(
            or_(
                IntegrationSyncLog.created_at < moment,
                and_(IntegrationSyncLog.created_at == moment, IntegrationSyncLog.id < row_id),
            )
        )
    rows = list(
        session.scalars(
            query.order_by(IntegrationSyncLog.created_at.desc(), IntegrationSyncLog.id.desc()).limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    base_url = dagster_webserver_url(settings)
    return SyncLogsOut(logs=[log_out(r, base_url) for r in rows], next_cursor=_encode(rows[-1]) if more else None)


# --- on demand ---------------------------------------------------------------------------------------------


def _graphql_client(base_url: str) -> DagsterGraphQLClient:
    client: DagsterGraphQLClient = graphql_client(base_url, timeout_s=15)
    return client


def launch_pull(
    settings: Settings,
    instance: DagsterInstance | None,
    provider: Provider,
    tenant_id: str,
    entities: list[str],
    *,
    full: bool,
) -> str:
    """Queue a run of the provider's ``<slug>_sync`` job for this tenant's partition; returns its run id."""
    if instance is not None and tenant_id not in instance.get_dynamic_partitions(partitions_name(provider.slug)):
        # Connected moments ago: the partitions sensor has not caught up yet.
        instance.add_dynamic_partitions(partitions_name(provider.slug), [tenant_id])
    base_url = dagster_webserver_url(settings)
    try:
        run_id: str = _graphql_client(base_url).submit_job_execution(
            pull_job_name(provider.slug),
            run_config=pull_run_config(provider.slug, full=full),
            tags={**run_tags(provider.slug, tenant_id, trigger=Trigger.API), PARTITION_TAG: tenant_id},
            asset_selection=[asset_path(provider.slug, entity) for entity in entities],
        )
    except DagsterGraphQLClientError as exc:
        kind = str(exc.args[0]).split("\n", 1)[0] if exc.args else type(exc).__name__
        log.warning("sync launch failed provider=%s tenant=%s dagster=%s: %s", provider.slug, tenant_id, base_url, kind)
        unreachable = kind.startswith("Error when connecting")
        raise OrchestratorUnavailable(
            "Dagster's webserver cannot be reached to launch the sync; try again shortly"
            if unreachable
            else "Dagster could not launch the sync (is the vrtx code location loaded?); try again shortly"
        ) from exc
    return run_id


def _syncable(session: SessionDep, tenant_id: str, provider: Provider, entity: str | None = None) -> TenantIntegration:
    if provider.pulls is None or not provider.connectable:
        raise IntegrationNotAvailable(f"{provider.name} has no pulls to sync; nothing can be synced on demand")
    if entity is not None and entity not in provider.pulls.entities:
        message = f"{provider.name} pulls {', '.join(provider.pulls.entities)}; not {entity!r}"
        raise ValidationFailed(message, details=[{"field": "entity", "message": message}])
    connection = get_connection(session, tenant_id, provider.slug)
    if connection is None or connection.status not in SYNCABLE:
        state = connection.status if connection else "never connected"
        raise ConnectionUnusable(f"{provider.name} is not connected for this tenant ({state}); connect it first")
    return connection


def _launch(
    request: Request, settings: Settings, provider: Provider, tenant_id: str, entities: list[str], full: bool
) -> SyncLaunchedOut:
    run_id = launch_pull(settings, dagster_instance(request), provider, tenant_id, entities, full=full)
    log.info("sync launched provider=%s tenant=%s run=%s entities=%s", provider.slug, tenant_id, run_id, entities)
    return SyncLaunchedOut(
        run_id=run_id,
        status="queued",
        entities=entities,
        full=full,
        dagster_run_url=f"{dagster_webserver_url(settings)}/runs/{run_id}",
    )


FullQuery = Annotated[bool, Query(description="Forget the incremental cursors and pull everything again.")]


@router.post(
    "",
    response_model=SyncLaunchedOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Sync now",
    description="Queues a pull of the entities the connection's settings select (all by default).",
    responses=errors(409, 503),
)
def sync_all(
    provider: ProviderDep,
    tenant: TenantDep,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    full: FullQuery = False,
) -> SyncLaunchedOut:
    connection = _syncable(session, tenant.id, provider)
    assert provider.pulls is not None
    chosen = (connection.settings or {}).get("entities") or provider.pulls.entities
    entities = [e for e in provider.pulls.entities if e in chosen]
    return _launch(request, settings, provider, tenant.id, entities, full)


@router.post(
    "/{entity}",
    response_model=SyncLaunchedOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Sync one entity now",
    responses=errors(409, 503),
)
def sync_entity(
    entity: str,
    provider: ProviderDep,
    tenant: TenantDep,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    full: FullQuery = False,
) -> SyncLaunchedOut:
    _syncable(session, tenant.id, provider, entity)
    return _launch(request, settings, provider, tenant.id, [entity], full)

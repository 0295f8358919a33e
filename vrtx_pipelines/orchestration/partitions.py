"""One dynamic partition set per provider, ``<slug>_tenants``, kept equal to the tenants connected to it, and
the first full sync of every new connection, requested by the same sensor."""
# No `from __future__ import annotations`: Dagster reads the context annotations at definition time.

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from dagster import (
    AddDynamicPartitionsRequest,
    DefaultSensorStatus,
    DeleteDynamicPartitionsRequest,
    DynamicPartitionsDefinition,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from sqlalchemy import select

from providers.base import Provider
from vrtx_pipelines.connect.context import Status
from vrtx_pipelines.db.models import Integration, TenantIntegration
from vrtx_pipelines.db.session import session_scope
from vrtx_pipelines.names import Trigger, connection_key, partitions_name, pull_job_name, pull_run_config, run_tags


@cache
def tenants_partitions(slug: str) -> DynamicPartitionsDefinition:
    return DynamicPartitionsDefinition(name=partitions_name(slug))


@dataclass(frozen=True)
class Connected:
    """A connection the partitions keep (every status but disconnected: errored ones stay, to be seen)."""

    slug: str
    tenant_id: str
    status: str
    connected_at: datetime | None
    last_sync_at: datetime | None

    @property
    def awaits_first_sync(self) -> bool:
        return self.status == Status.CONNECTED and self.last_sync_at is None and self.connected_at is not None


def connected() -> list[Connected]:
    with session_scope() as session:
        rows = session.execute(
            select(
                Integration.slug,
                TenantIntegration.tenant_id,
                TenantIntegration.status,
                TenantIntegration.connected_at,
                TenantIntegration.last_sync_at,
            )
            .join(TenantIntegration, TenantIntegration.integration_id == Integration.id)
            .where(TenantIntegration.status != Status.DISCONNECTED)
        )
        return [Connected(*row) for row in rows]


def connected_tenants(connections: Iterable[Connected]) -> dict[str, set[str]]:
    """Provider slug -> its connected tenants."""
    result: dict[str, set[str]] = {}
    for connection in connections:
        result.setdefault(connection.slug, set()).add(connection.tenant_id)
    return result


def partition_requests(
    providers: Iterable[Provider], wanted: dict[str, set[str]], existing: dict[str, set[str]]
) -> list[AddDynamicPartitionsRequest | DeleteDynamicPartitionsRequest]:
    requests: list[AddDynamicPartitionsRequest | DeleteDynamicPartitionsRequest] = []
    for provider in providers:
        name = partitions_name(provider.slug)
        want, have = wanted.get(provider.slug, set()), existing.get(provider.slug, set())
        if add := sorted(want - have):
            requests.append(AddDynamicPartitionsRequest(partitions_def_name=name, partition_keys=add))
        if remove := sorted(have - want):
            requests.append(DeleteDynamicPartitionsRequest(partitions_def_name=name, partition_keys=remove))
    return requests


def first_syncs(providers: Iterable[Provider], connections: Iterable[Connected]) -> list[RunRequest]:
    """A full pull for every connection that is connected and has never synced: nobody has to ask for it.

    The run key names the connection's ``connected_at``, so each connection (and a reconnection after a purge)
    gets exactly one: the sensor's run keys are unique, whichever tick sees the connection first.
    """
    pulling = {p.slug for p in providers if p.pulls is not None}
    return [
        RunRequest(
            run_key=f"first-sync:{connection_key(c.slug, c.tenant_id)}:{c.connected_at.timestamp():.6f}",
            job_name=pull_job_name(c.slug),
            partition_key=c.tenant_id,
            run_config=pull_run_config(c.slug, full=True),
            tags=run_tags(c.slug, c.tenant_id, trigger=Trigger.CONNECTED),
        )
        for c in connections
        if c.slug in pulling and c.awaits_first_sync and c.connected_at is not None
    ]


def build_partitions_sensor(
    providers: list[Provider], pull_jobs: Sequence[UnresolvedAssetJobDefinition] = ()
) -> SensorDefinition:
    """``pull_jobs``: the providers' ``<slug>_sync`` jobs, which the first syncs run."""

    @sensor(
        name="tenant_partitions_sensor",
        jobs=list(pull_jobs) or None,
        minimum_interval_seconds=15,
        default_status=DefaultSensorStatus.RUNNING,
        description="Adds each newly connected tenant to its provider's `<slug>_tenants` partitions, removes "
        "disconnected ones, and launches each new connection's first full sync.",
    )
    def _sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        connections = connected()
        existing = {p.slug: set(context.instance.get_dynamic_partitions(partitions_name(p.slug))) for p in providers}
        changes = partition_requests(providers, connected_tenants(connections), existing)
        runs = first_syncs(providers, connections)
        if not changes and not runs:
            return SkipReason("partitions already match the connected tenants")
        # Dagster applies the partition changes before it validates the runs' partition keys.
        return SensorResult(dynamic_partitions_requests=changes, run_requests=runs)

    return _sensor

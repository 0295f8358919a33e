"""One dynamic partition set per provider, ``<slug>_tenants``, kept equal to the tenants connected to it, and
the first full sync of every new connection, requested by the same sensor.

Partition changes go in one request per provider and tick, however many tenants connected or left. First syncs
are runs of their own (a first sync may be large: on Kubernetes each gets its own pod), at most
``FIRST_SYNCS_PER_TICK`` of them per tick, oldest connection first; each run claims its connection
(``vrtx_pipelines.pull.fleet``) so no batch pulls it meanwhile, and the pull schedule frees the claim when the run
ends. Connections beyond the cap are taken by the schedule's batches from the slot after they connected.
"""
# No `from __future__ import annotations`: Dagster reads the context annotations at definition time.

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
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
from vrtx_pipelines.names import (
    BATCH_KEY_TAG,
    Trigger,
    connection_key,
    partitions_name,
    pull_job_name,
    pull_run_config,
    run_tags,
)
from vrtx_pipelines.pull.fleet import claim_connection


@cache
def tenants_partitions(slug: str) -> DynamicPartitionsDefinition:
    return DynamicPartitionsDefinition(name=partitions_name(slug))


FIRST_SYNCS_PER_TICK = 20


@dataclass(frozen=True)
class Connected:
    """A connection the partitions keep (every status but disconnected: errored ones stay, to be seen)."""

    slug: str
    tenant_id: str
    status: str
    connected_at: datetime | None
    last_sync_at: datetime | None
    connection_id: int = 0
    sync_claim: str | None = None

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
                TenantIntegration.id,
                TenantIntegration.sync_claim,
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


def first_sync_key(connection: Connected) -> str:
    """The run key of a connection's first sync: one per connection and ``connected_at`` (a reconnection after a
    purge gets its own), so whichever tick sees the connection first, Dagster launches it once."""
    assert connection.connected_at is not None
    stamp = f"{connection.connected_at.timestamp():.6f}"
    return f"first-sync:{connection_key(connection.slug, connection.tenant_id)}:{stamp}"


def first_sync_claim(run_key: str) -> str:
    """The claim a first sync holds its connection by (claims are short; run keys hold a tenant id)."""
    return "first:" + hashlib.sha256(run_key.encode()).hexdigest()[:24]


def first_syncs(
    providers: Iterable[Provider], connections: Iterable[Connected], limit: int = FIRST_SYNCS_PER_TICK
) -> list[RunRequest]:
    """A full pull for every connection that is connected and has never synced (nobody has to ask for it), the
    longest-waiting first, at most ``limit`` (the claimed ones asked again count: their run keys launch once)."""
    pulling = {p.slug for p in providers if p.pulls is not None}
    waiting = sorted(
        (c for c in connections if c.slug in pulling and c.awaits_first_sync and c.connected_at is not None),
        key=lambda c: (c.sync_claim is None, c.connected_at),  # those already asked for first: they hold claims
    )
    requests: list[RunRequest] = []
    for c in waiting:
        key = first_sync_key(c)
        claim = first_sync_claim(key)
        if c.sync_claim is not None and c.sync_claim != claim:
            continue  # a batch pulls it right now
        if len(requests) >= limit:
            break
        requests.append(
            RunRequest(
                run_key=key,
                job_name=pull_job_name(c.slug),
                partition_key=c.tenant_id,
                run_config=pull_run_config(c.slug, full=True),
                tags={**run_tags(c.slug, c.tenant_id, trigger=Trigger.CONNECTED), BATCH_KEY_TAG: claim},
            )
        )
    return requests


def claim_first_syncs(connections: Iterable[Connected], runs: Sequence[RunRequest], now: datetime) -> list[RunRequest]:
    """Claim each first sync's connection for its run; the runs whose connection a batch claimed first are left
    out (the batch pulls it, in full: it has no state yet)."""
    by_key = {first_sync_key(c): c for c in connections if c.connected_at is not None}
    kept = []
    with session_scope() as session:
        for run in runs:
            connection = by_key[run.run_key or ""]
            if claim_connection(session, connection.connection_id, run.tags[BATCH_KEY_TAG], now):
                kept.append(run)
    return kept


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
        if runs:
            runs = claim_first_syncs(connections, runs, datetime.now(UTC))
        if not changes and not runs:
            return SkipReason("partitions already match the connected tenants")
        # Dagster applies the partition changes before it validates the runs' partition keys.
        return SensorResult(dynamic_partitions_requests=changes, run_requests=runs)

    return _sensor

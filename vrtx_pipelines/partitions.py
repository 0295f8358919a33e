"""One dynamic partition set per provider, ``<slug>_tenants``, kept equal to the tenants connected to it."""
# No `from __future__ import annotations`: Dagster reads the context annotations at definition time.

from collections.abc import Iterable
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
from sqlalchemy import select

from providers.base import Provider
from vrtx_pipelines.connections import Status
from vrtx_pipelines.db.models import Integration, TenantIntegration
from vrtx_pipelines.db.session import session_scope


def partition_set_name(slug: str) -> str:
    return f"{slug}_tenants"


@cache
def tenants_partitions(slug: str) -> DynamicPartitionsDefinition:
    return DynamicPartitionsDefinition(name=partition_set_name(slug))


def connected_tenants() -> dict[str, set[str]]:
    """Provider slug -> tenants whose connection is not disconnected (errored ones stay, to be seen)."""
    result: dict[str, set[str]] = {}
    with session_scope() as session:
        rows = session.execute(
            select(Integration.slug, TenantIntegration.tenant_id)
            .join(TenantIntegration, TenantIntegration.integration_id == Integration.id)
            .where(TenantIntegration.status != Status.DISCONNECTED)
        )
        for slug, tenant_id in rows:
            result.setdefault(slug, set()).add(tenant_id)
    return result


def partition_requests(
    providers: Iterable[Provider], wanted: dict[str, set[str]], existing: dict[str, set[str]]
) -> list[AddDynamicPartitionsRequest | DeleteDynamicPartitionsRequest]:
    requests: list[AddDynamicPartitionsRequest | DeleteDynamicPartitionsRequest] = []
    for provider in providers:
        name = partition_set_name(provider.slug)
        want, have = wanted.get(provider.slug, set()), existing.get(provider.slug, set())
        if add := sorted(want - have):
            requests.append(AddDynamicPartitionsRequest(partitions_def_name=name, partition_keys=add))
        if remove := sorted(have - want):
            requests.append(DeleteDynamicPartitionsRequest(partitions_def_name=name, partition_keys=remove))
    return requests


def first_syncs(
    providers: Iterable[Provider], requests: Iterable[AddDynamicPartitionsRequest | DeleteDynamicPartitionsRequest]
) -> list[RunRequest]:
    """A full pull for every tenant just added to a provider that pulls: nobody has to ask for the first sync."""
    pulling = {partition_set_name(p.slug): p for p in providers if p.pulls is not None}
    runs = []
    for request in requests:
        provider = pulling.get(request.partitions_def_name)
        if provider is None or not isinstance(request, AddDynamicPartitionsRequest):
            continue
        for tenant in request.partition_keys:
            runs.append(
                RunRequest(
                    run_key=f"first-sync:{provider.slug}:{tenant}",
                    job_name=f"{provider.slug}_sync",
                    partition_key=tenant,
                    tags={
                        "vrtx/provider": provider.slug,
                        "vrtx/connection": f"{provider.slug}:{tenant}",
                        "vrtx/trigger": "connected",
                    },
                )
            )
    return runs


def build_partitions_sensor(providers: list[Provider]) -> SensorDefinition:
    @sensor(
        name="tenant_partitions_sensor",
        minimum_interval_seconds=15,
        default_status=DefaultSensorStatus.RUNNING,
        description="Adds each newly connected tenant to its provider's `<slug>_tenants` partitions and "
        "removes disconnected ones.",
    )
    def _sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        existing = {p.slug: set(context.instance.get_dynamic_partitions(partition_set_name(p.slug))) for p in providers}
        requests = partition_requests(providers, connected_tenants(), existing)
        if not requests:
            return SkipReason("partitions already match the connected tenants")
        return SensorResult(dynamic_partitions_requests=requests)

    return _sensor

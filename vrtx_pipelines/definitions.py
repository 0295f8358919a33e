"""The ``vrtx`` code location: everything built from the provider registry through the factories."""

from __future__ import annotations

from dagster import Definitions

from vrtx_pipelines.health import connection_health_asset, connection_health_job, connection_health_schedule
from vrtx_pipelines.partitions import build_partitions_sensor
from vrtx_pipelines.registry import load_providers


def build_definitions() -> Definitions:
    providers = list(load_providers().values())
    checkable = [p for p in providers if p.connectable and p.connection_tester is not None]
    jobs = {p.slug: connection_health_job(p) for p in checkable}
    return Definitions(
        assets=[connection_health_asset(p) for p in checkable],
        jobs=list(jobs.values()),
        schedules=[connection_health_schedule(p, jobs[p.slug]) for p in checkable],
        sensors=[build_partitions_sensor(providers)],
    )


defs = build_definitions()

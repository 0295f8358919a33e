"""The ``vrtx`` code location: everything built from the provider registry through the factories."""

from __future__ import annotations

from dagster import Definitions

from vrtx_pipelines.orchestration.events import event_delivery_sensor
from vrtx_pipelines.orchestration.health import (
    connection_health_asset,
    connection_health_batch_job,
    connection_health_job,
    connection_health_schedule,
)
from vrtx_pipelines.orchestration.partitions import build_partitions_sensor
from vrtx_pipelines.orchestration.pulls import build_pull_assets, build_pull_batch_job
from vrtx_pipelines.orchestration.pushes import push_job, push_sensor
from vrtx_pipelines.orchestration.schedules import (
    pull_job,
    pull_schedule,
    token_refresh_job,
    token_refresh_schedule,
    watches_job,
    watches_schedule,
)
from vrtx_pipelines.orchestration.synclog import SYNC_LOG_SENSORS
from vrtx_pipelines.orchestration.webhooks import build_webhook_sensor
from vrtx_pipelines.registry import load_providers


def build_definitions() -> Definitions:
    providers = list(load_providers().values())
    checkable = [p for p in providers if p.connectable and p.connection_tester is not None]
    pulling = [p for p in providers if p.connectable and p.pulls is not None]
    health_jobs = {p.slug: connection_health_job(p) for p in checkable}
    health_batches = {p.slug: connection_health_batch_job(p) for p in checkable}
    pull_jobs = {p.slug: pull_job(p) for p in pulling}
    batch_jobs = {p.slug: build_pull_batch_job(p, p.pulls) for p in pulling if p.pulls is not None}
    push_jobs = {p.slug: push_job(p) for p in providers if p.connectable and p.pushes is not None}
    oauth = any(p.connectable and p.auth.oauth2 is not None for p in providers)
    watching = any(p.connectable and p.watches is not None for p in providers)
    return Definitions(
        assets=[connection_health_asset(p) for p in checkable]
        + [build_pull_assets(p, p.pulls) for p in pulling if p.pulls is not None],
        jobs=[
            *health_jobs.values(),
            *health_batches.values(),
            *pull_jobs.values(),
            *batch_jobs.values(),
            *push_jobs.values(),
            *([token_refresh_job] if oauth else []),
            *([watches_job] if watching else []),
        ],
        schedules=[connection_health_schedule(p, health_batches[p.slug]) for p in checkable]
        + [pull_schedule(p, batch_jobs[p.slug]) for p in pulling]
        + ([token_refresh_schedule] if oauth else [])
        + ([watches_schedule] if watching else []),
        sensors=[build_partitions_sensor(providers, list(pull_jobs.values())), *SYNC_LOG_SENSORS, event_delivery_sensor]
        + [push_sensor(p, push_jobs[p.slug]) for p in providers if p.slug in push_jobs]
        + [build_webhook_sensor(p, pull_jobs[p.slug]) for p in pulling if p.webhooks is not None],
    )


defs = build_definitions()

"""What the fault tests share: pulls run as their own processes, and counts read back from PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg2
from dagster import DagsterInstance
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from tests.helpers import bearer
from tests.test_synclog import evaluate_sensors
from vrtx_pipelines.cli.devserver import dagster_environment, dagster_instance
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.models import CanonicalRecord, TenantIntegration
from vrtx_pipelines.db.session import engine_for, session_scope
from vrtx_pipelines.names import dataset_name

ROOT = Path(__file__).resolve().parents[2]


def sync_command(tenant: str, entities: list[str]) -> list[str]:
    """`vrtx sync`: one pull run in a process of its own, as production runs one process per run."""
    return [
        sys.executable, "-m", "vrtx_pipelines.cli.main", "sync", "xero", "--tenant", tenant,
        *(arg for entity in entities for arg in ("--entity", entity)),
    ]  # fmt: skip


def run_sync(tenant: str, entities: list[str], timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(sync_command(tenant, entities), cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


@contextmanager
def cli_runs(settings: Settings) -> Iterator[DagsterInstance]:
    """The Dagster instance the runs of `vrtx sync` (``run_sync``) are recorded in."""
    instance = dagster_instance(dagster_environment(settings, ROOT))
    try:
        yield instance
    finally:
        instance.dispose()


def mirror_latest_run(instance: DagsterInstance) -> str:
    """The sync log of the run that just ended, written as the daemon's sensors write it; its run id."""
    run = instance.get_runs(limit=1)[0]
    evaluate_sensors(instance, run)
    return run.run_id


def sync_logs(api: TestClient, token: str) -> list[dict[str, Any]]:
    """The tenant's Xero sync log as the API serves it, oldest first."""
    answer = api.get("/api/v1/integrations/xero/sync/logs", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return list(reversed(answer.json()["logs"]))


def connection_status(api: TestClient, token: str) -> dict[str, Any]:
    answer = api.get("/api/v1/integrations/xero/status", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def poll(condition: Callable[[], object], what: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@contextmanager
def database(settings: Settings) -> Iterator[Any]:
    """A psycopg2 connection of the test's own to the app database (which also holds the warehouse)."""
    url = make_url(settings.sqlalchemy_url)
    connection = psycopg2.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database
    )
    try:
        yield connection
    finally:
        connection.close()


def warehouse_keys(settings: Settings, tenant: str, table: str, key: str) -> tuple[int, int]:
    """(rows, distinct keys) of a table of the tenant's Xero dataset."""
    schema = dataset_name("xero", tenant)
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        rows, distinct = session.execute(
            text(f'SELECT count(*), count(DISTINCT "{key}") FROM "{schema}"."{table}"')  # noqa: S608 -- our names
        ).one()
    return int(rows), int(distinct)


def canonical_counts(settings: Settings, tenant: str, *, after_change: int = 0) -> dict[str, int]:
    """The tenant's canonical records per entity (``after_change``: only changes numbered after it)."""
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        rows = session.execute(
            select(CanonicalRecord.entity_type, func.count())
            .join(TenantIntegration, TenantIntegration.id == CanonicalRecord.tenant_integration_id)
            .where(TenantIntegration.tenant_id == tenant, CanonicalRecord.change_seq > after_change)
            .group_by(CanonicalRecord.entity_type)
        ).all()
    return {entity: int(count) for entity, count in rows}


def last_change(settings: Settings, tenant: str) -> int:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        latest = session.scalar(
            select(func.max(CanonicalRecord.change_seq))
            .join(TenantIntegration, TenantIntegration.id == CanonicalRecord.tenant_integration_id)
            .where(TenantIntegration.tenant_id == tenant)
        )
    return int(latest or 0)

"""The sync log of push runs: the real push sensor and job against the Xero sandbox, then the run-status sensor
builds one row per entity from the outbox rows the run handled."""
# ruff: noqa: F811 -- the Xero fixtures imported below are requested by name

from __future__ import annotations

from typing import Any

import pytest
from dagster import DagsterInstance
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.helpers import bearer, make_tenant
from tests.test_pushes_pipeline import contact, drain, push
from tests.test_synclog import evaluate_sensors
from tests.xero.conftest import (  # the Xero sandbox fixtures, for tests outside tests/xero
    base_urls,  # noqa: F401
    connect_xero,
    oauth_clients,  # noqa: F401
    xero,  # noqa: F401
)
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.models import IntegrationSyncLog, OutboundEvent
from vrtx_pipelines.db.session import engine_for, session_scope

pytestmark = pytest.mark.dagster


@pytest.fixture
def acme(api: TestClient, settings: Settings, xero: Any) -> str:
    token = make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    return token


def push_logs(settings: Settings) -> list[IntegrationSyncLog]:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        return list(
            session.scalars(
                select(IntegrationSyncLog).where(IntegrationSyncLog.direction == "push").order_by(IntegrationSyncLog.id)
            )
        )


def test_a_push_run_logs_one_row_per_entity_with_done_and_failed_counts_and_xeros_message(
    api: TestClient, settings: Settings, instance: DagsterInstance, acme: str
) -> None:
    push(api, acme, "contact", "create", contact("crm-1", "Duplicate Name Ltd"), "k-1")
    push(api, acme, "contact", "create", contact("crm-2", "Duplicate Name Ltd"), "k-2")
    push(api, acme, "contact", "create", contact("crm-3", "Another Ltd"), "k-3")
    run_ids = drain(instance)
    for run_id in run_ids:
        run = instance.get_run_by_id(run_id)
        assert run is not None
        evaluate_sensors(instance, run)
        evaluate_sensors(instance, run)  # a re-tick changes nothing

    rows = push_logs(settings)
    assert len(rows) == len(run_ids)
    totals = {key: sum((row.counts or {}).get(key, 0) for row in rows) for key in ("done", "failed")}
    assert totals == {"done": 2, "failed": 1}
    row = next(r for r in rows if (r.counts or {}).get("failed"))
    assert row.entity_type == "contact" and row.sync_type == "push" and row.run_id in run_ids
    assert row.status in ("failed", "partial")
    assert row.error_message and "Duplicate Name Ltd" in row.error_message
    assert row.response_data and {r["status"] for r in row.response_data["results"]} <= {"done", "failed"}
    assert "access_token" not in str(row.request_data) and "Bearer" not in str(row.request_data)

    logs = api.get("/api/v1/integrations/xero/sync/logs", params={"direction": "push"}, headers=bearer(acme)).json()
    assert {entry["run_id"] for entry in logs["logs"]} == set(run_ids)
    # Pushes are not pulls: the schedule's last sync stays as it was, and no sync.* event is invented.
    status = api.get("/api/v1/integrations/xero/sync/status", headers=bearer(acme)).json()
    assert status["last_sync_at"] is None
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        kinds = set(session.scalars(select(OutboundEvent.event_type)))
    assert not kinds & {"sync.completed", "sync.failed"}

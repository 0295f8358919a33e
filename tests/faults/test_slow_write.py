"""Fault: the provider answers a write more slowly than the client waits."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance, build_sensor_context
from fastapi.testclient import TestClient
from sqlalchemy import select

from providers.sandbox_kit.serve import ServedApp
from providers.xero.sandbox import XeroSandbox, XeroSandboxKnobs
from tests.faults.helpers import connection_status, sync_logs
from tests.faults.matrix import fault
from tests.helpers import bearer, make_tenant
from tests.test_synclog import evaluate_sensors
from tests.xero.conftest import connect_xero
from vrtx_pipelines.config import Settings, reset_settings_cache
from vrtx_pipelines.db.models import EntityLink
from vrtx_pipelines.db.session import engine_for, session_scope
from vrtx_pipelines.orchestration.pushes import push_job, push_sensor
from vrtx_pipelines.registry import get_provider

pytestmark = pytest.mark.dagster
Xero = tuple[XeroSandbox, ServedApp, str]
XERO = get_provider("xero")
JOB = push_job(XERO)
SENSOR = push_sensor(XERO, JOB)
CLIENT_TIMEOUT_S = 1.0


@fault(
    "provider slower than the client timeout on a write",
    "Xero applies a contact create and answers after 3 s, the client gives up at 1 s: the push run resends "
    "under the same Idempotency-Key, Xero holds one contact and one key, the push is done and linked once; the "
    "sync log's push row is one success and the connection stays connected with no error",
)
def test_a_write_answered_after_the_client_timeout_is_resent_under_its_key_and_applied_once(
    api: TestClient,
    settings: Settings,
    xero: Xero,
    instance: DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sandbox, served, org = xero
    token = make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    monkeypatch.setenv("VRTX_HTTP_TIMEOUT_S", str(CLIENT_TIMEOUT_S))  # what the push run's client waits
    reset_settings_cache()
    queued = api.post(
        "/api/v1/integrations/xero/push/contact",
        json={"operation": "create", "data": {"id": "crm-1", "name": "Slow Answer Ltd", "email": "s@example.com"}},
        headers={**bearer(token), "Idempotency-Key": "k-1"},
    ).json()
    knobs: XeroSandboxKnobs = served.app.state.sandbox
    knobs.slow_write_answers, knobs.slow_write_answer_s = 1, 3 * CLIENT_TIMEOUT_S
    contacts_before, keys_before = sandbox.count(org, "contacts"), len(sandbox.idempotency)

    (request,) = SENSOR.evaluate_tick(build_sensor_context(instance=instance)).run_requests or []
    result = JOB.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags)

    assert result.success
    assert knobs.slow_write_answers == 0 and knobs.write_count == 2  # sent twice...
    assert sandbox.count(org, "contacts") == contacts_before + 1  # ...applied once
    assert len(sandbox.idempotency) - keys_before == 1  # both under the one key
    done = api.get(f"/api/v1/integrations/xero/push/{queued['id']}", headers=bearer(token)).json()
    assert done["status"] == "done" and done["attempts"] == 1 and done["external_id"]
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        links = session.scalars(select(EntityLink).where(EntityLink.vrtx_id == "crm-1")).all()
    assert [link.external_id for link in links] == [done["external_id"]]
    evaluate_sensors(instance, result.dagster_run)
    logged = [row for row in sync_logs(api, token) if row["run_id"] == result.run_id]
    assert [(row["entity"], row["status"], row["error_message"]) for row in logged] == [("contact", "success", None)]
    assert {k: logged[0]["counts"][k] for k in ("pushed", "done", "failed")} == {"pushed": 1, "done": 1, "failed": 0}
    status = connection_status(api, token)
    assert status["status"] == "connected" and status["last_error"] is None

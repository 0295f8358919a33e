"""Fault: the API and the webhook worker are killed (SIGKILL) after a webhook is acknowledged and before its fast
path applied it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from dagster import DagsterInstance, SensorResult, SkipReason
from fastapi.testclient import TestClient
from sqlalchemy import select

import vrtx_pipelines.webhooks.dispatch as dispatch
from providers.sandbox_kit.serve import ServedApp, free_port
from providers.xero.sandbox import XeroSandbox, XeroSandboxKnobs
from providers.xero.webhooks import sign
from tests.faults.helpers import ROOT, connection_status, sync_logs
from tests.faults.matrix import fault
from tests.helpers import bearer, make_tenant
from tests.test_synclog import evaluate_sensors
from tests.test_webhooks import KEY, xero_event, xero_payload
from tests.test_webhooks_dispatch import run_pull, tick
from tests.xero.conftest import connect_xero
from vrtx_pipelines.cli.sync import sync_now
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.models import CanonicalRecord, WebhookInbox
from vrtx_pipelines.db.session import engine_for, session_scope

pytestmark = pytest.mark.dagster
Xero = tuple[XeroSandbox, ServedApp, str]


def poll(condition: Any, what: str, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return value


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def inbox(settings: Settings) -> list[WebhookInbox]:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        return list(session.scalars(select(WebhookInbox).order_by(WebhookInbox.id)))


def record(settings: Settings, external_id: str) -> dict[str, Any]:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        row = session.scalars(select(CanonicalRecord).where(CanonicalRecord.external_id == external_id)).one()
        return {"data": row.data, "change_seq": row.change_seq}


def vrtx(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "vrtx_pipelines.cli.main", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@fault(
    "kill the API after a webhook is acknowledged, before its fast path ran",
    "API and worker in their own processes: the API answers 200 once stored and is SIGKILLed, the worker claims "
    "the event and is SIGKILLed while its fast-path fetch is at Xero; the webhook sensor releases the orphaned "
    "claim, its targeted pull applies the change once and the event ends processed; the sync log has that "
    "pull's success, started by the webhook, and the connection stays connected with no error",
)
def test_an_acknowledged_webhook_whose_api_and_worker_died_before_the_fast_path_is_still_applied_later(
    api: TestClient, settings: Settings, xero: Xero, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox, served, org = xero
    token = make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    assert api.put("/api/v1/integrations/xero/webhook", json={"secret": KEY}, headers=bearer(token)).status_code == 200
    sync_now(settings, "xero", "acme", ["contacts"], instance=instance)
    [changed] = sandbox.touch(org, "contacts", 1)
    before = record(settings, changed)
    knobs: XeroSandboxKnobs = served.app.state.sandbox

    port = free_port()
    env = {**os.environ, "VRTX_DAGSTER_URL": f"http://127.0.0.1:{free_port()}"}  # no webserver: nothing launched
    env.pop("DAGSTER_HOME", None)
    api_process = vrtx(env, "api", "--port", str(port))
    worker: subprocess.Popen[bytes] | None = None
    try:
        base = f"http://127.0.0.1:{port}"
        poll(lambda: answers(f"{base}/healthz") or api_process.poll() is not None, "the API to start")
        assert api_process.poll() is None
        knobs.latency_s = 30  # the fast path's fetch by id hangs at Xero
        body = xero_payload(org, xero_event(org, "CONTACT", changed))
        acknowledged = httpx.post(
            f"{base}/api/v1/webhooks/xero/acme",
            content=body,
            headers={"x-xero-signature": sign(body, KEY), "Content-Type": "application/json"},
            timeout=10,
        )
        assert acknowledged.status_code == 200 and acknowledged.content == b""
        kill(api_process)
        [stored] = inbox(settings)
        assert stored.status == "received"  # acknowledged means committed: the API's death loses nothing

        worker = vrtx(env, "webhook-worker")
        poll(lambda: sandbox.in_flight(org) > 0 or worker.poll() is not None, "the fast path's fetch to reach Xero")
        assert worker.poll() is None
        [claimed] = inbox(settings)
        assert claimed.status == "dispatched"  # claimed by the worker's fast path, not applied
    finally:
        kill(api_process)
        if worker is not None:
            kill(worker)
        knobs.latency_s = 0
    assert record(settings, changed) == before

    # The claim's run never came. Its sensor releases it once it is ORPHAN_AFTER_S old: that wait, not taken here.
    monkeypatch.setattr(dispatch, "ORPHAN_AFTER_S", 0)
    requested = tick(instance)
    assert isinstance(requested, SensorResult)
    [request] = requested.run_requests or []
    assert request.partition_key == "acme" and [key.path for key in request.asset_selection or []] == [
        ["xero", "contacts"]
    ]
    pulled = run_pull(instance, request)
    assert pulled.success
    assert isinstance(tick(instance), SkipReason)
    evaluate_sensors(instance, pulled.dagster_run)

    [event] = inbox(settings)
    assert event.status == "processed" and event.error_message is None
    after = record(settings, changed)
    assert after["data"] != before["data"] and after["change_seq"] > before["change_seq"]
    logged = [row for row in sync_logs(api, token) if row["run_id"] == pulled.run_id]
    assert [(row["entity"], row["status"], row["request_data"]["trigger"]) for row in logged] == [
        ("contacts", "success", "webhook")
    ]
    assert logged[0]["counts"]["records_changed"] == 1
    status = connection_status(api, token)
    assert status["status"] == "connected" and status["last_error"] is None

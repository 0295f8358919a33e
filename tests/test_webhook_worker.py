"""The webhook worker (`vrtx webhook-worker`): in its own process it applies what the API only stored and
acknowledged, stops cleanly on SIGTERM, and offers a connection whose events must wait (its pushes in flight) once
a second rather than on every poll. SQLite and PostgreSQL; the Xero sandbox and the API over real HTTP."""
# ruff: noqa: F811 -- the Xero fixtures are imported from tests/xero/conftest.py and used by name

from __future__ import annotations

import os
import signal
import subprocess
import sys

from fastapi.testclient import TestClient
from sqlalchemy import select

from providers.sandbox_kit.serve import free_port
from tests.faults.helpers import ROOT
from tests.test_webhooks import KEY, Xero, acme, api, inbox, post, xero_event, xero_payload  # noqa: F401
from tests.test_webhooks_fastpath import poll, stored_records
from tests.xero.conftest import base_urls, oauth_clients, xero  # noqa: F401
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.models import PushOutbox, TenantIntegration
from vrtx_pipelines.db.session import engine_for, session_factory, session_scope
from vrtx_pipelines.push.outbox import PushStatus
from vrtx_pipelines.webhooks.dispatch import RELEASED
from vrtx_pipelines.webhooks.launch import GraphQLRunLauncher, ImmediateDispatcher
from vrtx_pipelines.webhooks.worker import WebhookWorker


def test_the_worker_process_applies_what_the_api_acknowledged_and_stops_on_sigterm(
    api: TestClient, settings: Settings, xero: Xero, acme: str
) -> None:
    sandbox, _served, org = xero
    [first, second] = sandbox.touch(org, "contacts", 2)
    assert post(api, xero_payload(org, xero_event(org, "CONTACT", first)), KEY).status_code == 200
    assert stored_records(settings) == [], "the API only stores: nothing applies a webhook in its process"

    # No Dagster webserver: the worker's launch is refused and the events go back to the sensor once applied.
    env = {**os.environ, "VRTX_DAGSTER_URL": f"http://127.0.0.1:{free_port()}"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "vrtx_pipelines.cli.main", "webhook-worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        applied = {first}
        poll(lambda: {r.external_id for r in stored_records(settings)} == applied, 30)
        # One arriving while it runs is picked up by its next poll.
        assert post(api, xero_payload(org, xero_event(org, "CONTACT", second)), KEY).status_code == 200
        applied.add(second)
        poll(lambda: {r.external_id for r in stored_records(settings)} == applied, 30)
        poll(lambda: {(r.status, r.run_id) for r in inbox(settings)} == {("received", RELEASED)}, 30)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
    text = output.decode(errors="replace")
    assert worker.returncode == 0, text[-3000:]
    assert "webhook worker started" in text and "webhook worker stopped" in text
    assert "Traceback" not in text


def test_a_connection_whose_events_wait_for_its_pushes_is_offered_once_a_second_not_on_every_poll(
    api: TestClient, settings: Settings, xero: Xero, acme: str
) -> None:
    _sandbox, _served, org = xero
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        connection_id = session.scalars(select(TenantIntegration.id)).one()
        # A push run holds contacts: their events wait (possible echoes of our own write) until it is recorded.
        session.add(
            PushOutbox(
                tenant_integration_id=connection_id,
                entity_type="contact",
                operation="create",
                idempotency_key="held-1",
                payload={},
                status=PushStatus.RUNNING,
            )
        )
    assert post(api, xero_payload(org, xero_event(org, "CONTACT", "held-contact")), KEY).status_code == 200
    sessions = session_factory(engine_for(settings.sqlalchemy_url))
    launcher = GraphQLRunLauncher(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    # Its loop not started: the test polls by hand.
    worker = WebhookWorker(sessions, ImmediateDispatcher(sessions, launcher))
    try:
        assert worker.wait_idle()
        [held] = inbox(settings)
        assert (held.status, held.run_id) == ("received", None), "held, not claimed"
        assert worker.poll() == 0, "unchanged and offered a moment ago"
        assert post(api, xero_payload(org, xero_event(org, "INVOICE", "new-invoice")), KEY).status_code == 200
        assert worker.poll() == 1, "a new event is offered at once"
        assert worker.dispatcher.wait_idle()
        worker.reoffer_after_s = 0.0
        assert worker.poll() == 1, "the waiting one again, once its interval passed"
        assert worker.dispatcher.wait_idle()
    finally:
        worker.dispatcher.close()
    statuses = {row.payload["external_id"]: row.status for row in inbox(settings)}
    assert statuses["held-contact"] == "received"

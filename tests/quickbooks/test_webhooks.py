"""QuickBooks webhooks into the platform: Intuit's one app URL routed by realmId to the tenants connected to each
company, both payload shapes, a forged signature refused, and the named records fetched and applied at once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from providers.quickbooks.webhooks import SIGNATURE_HEADER, sign
from providers.sandbox_kit.serve import ServedApp, free_port
from tests.helpers import bearer, make_tenant, running_worker
from tests.quickbooks.conftest import VERIFIER, Qbo, connect
from vrtx_pipelines.config import Settings
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.db.models import TenantIntegration, WebhookInbox
from vrtx_pipelines.db.session import engine_for, session_factory, session_scope
from vrtx_pipelines.webhooks.apply import DagsterReporter, WebhookApplier
from vrtx_pipelines.webhooks.launch import GraphQLRunLauncher, ImmediateDispatcher
from vrtx_pipelines.webhooks.worker import WebhookWorker


def inbox(settings: Settings) -> dict[str, list[tuple[str, str]]]:
    """Tenant -> (realm, record id) of every stored event."""
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        rows = session.execute(
            select(TenantIntegration.tenant_id, WebhookInbox.payload).join(
                TenantIntegration, TenantIntegration.id == WebhookInbox.tenant_integration_id
            )
        )
        found: dict[str, list[tuple[str, str]]] = {}
        for tenant, payload in rows:
            found.setdefault(tenant, []).append((payload["external_tenant_id"], payload["external_id"]))
        return found


def legacy(*changes: tuple[str, str, str]) -> bytes:
    """A legacy eventNotifications body: one notification per (realm, entity, id)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S-0000", time.gmtime())
    notifications = [
        {"realmId": realm, "dataChangeEvent": {"entities": [
            {"name": name, "id": record_id, "operation": "Update", "lastUpdated": now}
        ]}}
        for realm, name, record_id in changes
    ]  # fmt: skip
    return json.dumps({"eventNotifications": notifications}).encode()


def test_the_app_url_routes_each_realms_events_to_the_tenants_connected_to_that_company(
    api: TestClient, settings: Settings, qbo: Qbo
) -> None:
    second = qbo.sandbox.add_company("Globex")
    nobody = qbo.sandbox.add_company("Initech")
    make_tenant(settings, "acme")
    make_tenant(settings, "globex")
    connect(settings, "acme", [qbo.realm])
    connect(settings, "globex", [second])
    body = legacy((qbo.realm, "Customer", "1"), (second, "Invoice", "2"), (nobody, "Customer", "3"))

    answer = api.post("/api/v1/webhooks/quickbooks", content=body, headers={SIGNATURE_HEADER: sign(body, VERIFIER)})

    assert answer.status_code == 200, answer.text
    assert inbox(settings) == {"acme": [(qbo.realm, "1")], "globex": [(second, "2")]}


def test_a_delivery_signed_with_another_verifier_token_is_refused_and_stores_nothing(
    api: TestClient, settings: Settings, qbo: Qbo
) -> None:
    make_tenant(settings, "acme")
    connect(settings, "acme")
    body = legacy((qbo.realm, "Customer", "1"))
    for path in ("/api/v1/webhooks/quickbooks", "/api/v1/webhooks/quickbooks/acme"):
        forged = api.post(path, content=body, headers={SIGNATURE_HEADER: sign(body, "not-the-verifier-token")})
        # Every webhook that does not authenticate gets the same bare 401: the sender learns nothing more.
        assert forged.status_code == 401 and forged.content == b""
    assert inbox(settings) == {}


@pytest.fixture
def worker(settings: Settings) -> Iterator[WebhookWorker]:
    """The webhook worker with the fast path on; its run launcher points at a closed port."""
    sessions = session_factory(engine_for(settings.sqlalchemy_url))
    applier = WebhookApplier(
        sessions, vault_from_settings(settings), settings, reporter=DagsterReporter(from_environment=False)
    )
    launcher = GraphQLRunLauncher(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    with running_worker(ImmediateDispatcher(sessions, launcher, applier=applier)) as worker:
        yield worker


def record(base_url: str, token: str, entity: str, external_id: str, field: str, value: Any) -> dict[str, Any] | None:
    answer = httpx.get(f"{base_url}/api/v1/integrations/quickbooks/records/{entity}", params={"limit": "1000"},
                       headers=bearer(token), timeout=5)  # fmt: skip
    found = next((r for r in answer.json()["records"] if r["external_id"] == external_id), None)
    return found if found is not None and found["data"].get(field) == value else None


@pytest.mark.parametrize("shape", ["legacy", "cloudevents"])
def test_a_change_in_quickbooks_is_fetched_and_applied_at_once_from_either_payload_shape(
    api: TestClient, settings: Settings, qbo: Qbo, worker: WebhookWorker, shape: str
) -> None:
    token = make_tenant(settings, "acme")
    connect(settings, "acme")
    secret = "tenant-verifier-" + "s" * 30
    assert api.put("/api/v1/integrations/quickbooks/webhook", json={"secret": secret}, headers=bearer(token)).is_success
    qbo.sandbox.webhook_format = shape
    with ServedApp(api.app) as served:
        qbo.sandbox.subscribe_webhooks(f"{served.base_url}/api/v1/webhooks/quickbooks/acme", secret, [qbo.realm])
        (changed,) = qbo.sandbox.touch(qbo.realm, "customers", 1)
        phone = qbo.sandbox.tenants[qbo.realm].record("customers", int(changed) - 1)["PrimaryPhone"]["FreeFormNumber"]
        deadline = time.monotonic() + 10
        while record(served.base_url, token, "contacts", changed, "phone", phone) is None:
            assert time.monotonic() < deadline, "the change never reached the records API"
            time.sleep(0.05)
        assert worker.wait_idle()
    assert inbox(settings) == {"acme": [(qbo.realm, changed)]}

"""Receiving webhooks: Xero's real verifier and parser behind POST /api/v1/webhooks/{slug}/{tenant}, the inbox,
and each connection's webhook settings. SQLite and PostgreSQL; the Xero sandbox over real HTTP."""
# ruff: noqa: F811 -- the Xero fixtures are imported from tests/xero/conftest.py and used by name

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from providers.sandbox_kit.serve import ServedApp
from providers.xero.sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, XeroSandbox
from providers.xero.sandbox.webhooks import intent_to_receive
from providers.xero.webhooks import sign as signature
from tests.helpers import bearer, make_tenant
from tests.xero.conftest import base_urls, connect_xero, xero  # noqa: F401 -- fixtures
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.models import IntegrationWebhook, WebhookInbox
from vrtx_pipelines.db.session import engine_for, session_scope

Xero = tuple[XeroSandbox, ServedApp, str]
KEY = "acme-webhook-key-" + "k" * 40
OTHER_KEY = "beta-webhook-key-" + "b" * 40


def xero_payload(org: str, *events: dict[str, Any]) -> bytes:
    return json.dumps(
        {"events": list(events), "firstEventSequence": 1, "lastEventSequence": len(events), "entropy": "ABCDEF"},
        separators=(",", ":"),
    ).encode()


def xero_event(org: str, category: str = "INVOICE", resource: str | None = None, age_s: float = 0) -> dict[str, Any]:
    resource = resource or secrets.token_hex(8)
    when = datetime.now(UTC) - timedelta(seconds=age_s)
    return {
        "resourceUrl": f"https://api.xero.com/api.xro/2.0/{category.title()}s/{resource}",
        "resourceId": resource,
        "eventDateUtc": when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
        "eventType": "UPDATE",
        "eventCategory": category,
        "tenantId": org,
        "tenantType": "ORGANISATION",
    }


def post(api: TestClient, body: bytes, key: str, tenant: str = "acme", slug: str = "xero") -> Any:
    return api.post(
        f"/api/v1/webhooks/{slug}/{tenant}",
        content=body,
        headers={"x-xero-signature": signature(body, key), "Content-Type": "application/json"},
    )


def inbox(settings: Settings) -> list[WebhookInbox]:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        return list(session.scalars(select(WebhookInbox).order_by(WebhookInbox.id)))


@pytest.fixture
def oauth_clients() -> dict[str, dict[str, str]]:
    """The sandbox's Xero app, with the app-level webhook key Xero gives an app (used when a connection has none)."""
    return {"xero": {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET, "webhook_key": "app-key-1"}}


@pytest.fixture
def api(settings: Settings) -> Any:
    from api.main import create_app

    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def acme(api: TestClient, settings: Settings, xero: Xero) -> str:
    """Tenant acme connected to the sandbox's organisation, with its webhook key set through the API."""
    token = make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    answer = api.put("/api/v1/integrations/xero/webhook", json={"secret": KEY}, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return token


def test_signed_delivery_is_stored_once_and_answered_with_an_empty_200(
    api: TestClient, settings: Settings, xero: Xero, acme: str
) -> None:
    org = xero[2]
    body = xero_payload(org, xero_event(org, "INVOICE", "inv-1"), xero_event(org, "CONTACT", "con-1"))
    first = post(api, body, KEY)
    replay = post(api, body, KEY)
    assert (first.status_code, first.content, replay.status_code, replay.content) == (200, b"", 200, b"")
    assert "set-cookie" not in first.headers
    rows = inbox(settings)
    assert len(rows) == 2
    by_type = {row.payload["entity"]: row for row in rows}
    assert by_type["invoices"].payload["entities"] == ["invoices", "payments"]
    assert by_type["invoices"].payload["external_id"] == "inv-1"
    assert by_type["contacts"].payload["entities"] == ["contacts"]
    assert {row.status for row in rows} == {"received"}
    config = api.get("/api/v1/integrations/xero/webhook", headers=bearer(acme)).json()
    assert config["last_received_at"] is not None


def test_forged_signature_is_refused_with_401_and_nothing_is_stored(
    api: TestClient, settings: Settings, xero: Xero, acme: str
) -> None:
    org = xero[2]
    body = xero_payload(org, xero_event(org))
    forged = post(api, body, "not-the-key")
    tampered = api.post(
        "/api/v1/webhooks/xero/acme",
        content=body.replace(b"UPDATE", b"CREATE"),
        headers={"x-xero-signature": signature(body, KEY)},
    )
    unsigned = api.post("/api/v1/webhooks/xero/acme", content=body)
    assert [forged.status_code, tampered.status_code, unsigned.status_code] == [401, 401, 401]
    for refused in (forged, tampered, unsigned):  # Xero's rule: an empty body, no cookie, no challenge
        assert refused.content == b"" and refused.headers["content-length"] == "0"
        assert "set-cookie" not in refused.headers and "www-authenticate" not in refused.headers
    assert inbox(settings) == []


def test_unknown_integration_tenant_or_unconfigured_connection_get_the_same_401(
    api: TestClient, settings: Settings, xero: Xero, acme: str
) -> None:
    make_tenant(settings, "unconfigured")
    body = xero_payload(xero[2], xero_event(xero[2]))
    answers = [
        post(api, body, KEY, tenant="nobody"),
        post(api, body, KEY, slug="nosuch"),
        post(api, body, KEY, slug="stripe"),
        post(api, body, KEY, tenant="unconfigured"),
    ]
    assert {(a.status_code, a.content) for a in answers} == {(401, b"")}
    assert len({tuple(sorted(a.headers.items())) for a in answers}) == 1  # not even a header tells them apart
    assert inbox(settings) == []


def test_stale_events_are_dropped_and_stored_nowhere(
    api: TestClient, settings: Settings, xero: Xero, acme: str
) -> None:
    org = xero[2]
    stale = xero_payload(org, xero_event(org, resource="old", age_s=26 * 3600))
    answer = post(api, stale, KEY)
    assert answer.status_code == 200 and answer.content == b""
    mixed = xero_payload(org, xero_event(org, resource="old", age_s=26 * 3600), xero_event(org, resource="new"))
    assert post(api, mixed, KEY).status_code == 200
    assert [row.payload["external_id"] for row in inbox(settings)] == ["new"]


def test_malformed_body_with_a_good_signature_is_400_and_nothing_is_stored(
    api: TestClient, settings: Settings, xero: Xero, acme: str
) -> None:
    for body in (b"{not json", b'{"events": "nope"}', b'{"events": [{"eventCategory": "INVOICE"}]}'):
        answer = post(api, body, KEY)
        assert answer.status_code == 400, body
        assert answer.json()["error"]["code"] == "webhook_malformed"
    assert inbox(settings) == []


def test_a_body_over_the_limit_is_413(api: TestClient, settings: Settings, xero: Xero, acme: str) -> None:
    body = b'{"events": [], "padding": "' + b"x" * (1024 * 1024) + b'"}'
    assert post(api, body, KEY).status_code == 413
    assert inbox(settings) == []


def test_another_tenants_key_cannot_post_into_this_tenant(
    api: TestClient, settings: Settings, xero: Xero, acme: str
) -> None:
    sandbox, _served, org = xero
    beta_org = sandbox.add_organisation("Beta Ltd", contacts=2, invoices=2, lines_per_invoice=1, payments=0, items=1)
    beta = make_tenant(settings, "beta")
    connect_xero(settings, "beta", [beta_org])
    api.put("/api/v1/integrations/xero/webhook", json={"secret": OTHER_KEY}, headers=bearer(beta))
    into_acme = post(api, xero_payload(org, xero_event(org)), OTHER_KEY, tenant="acme")
    assert into_acme.status_code == 401
    # Even correctly signed for acme, events about beta's organisation are not acme's to store.
    foreign = post(api, xero_payload(beta_org, xero_event(beta_org)), KEY, tenant="acme")
    assert foreign.status_code == 200
    assert inbox(settings) == []
    assert post(api, xero_payload(beta_org, xero_event(beta_org)), OTHER_KEY, tenant="beta").status_code == 200
    assert len(inbox(settings)) == 1


def test_the_app_webhook_key_verifies_when_the_connection_has_none(
    api: TestClient, settings: Settings, xero: Xero
) -> None:
    org = xero[2]
    token = make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    config = api.get("/api/v1/integrations/xero/webhook", headers=bearer(token)).json()
    assert config["secret_source"] == "app" and config["secret_configured"] is True
    assert post(api, xero_payload(org, xero_event(org)), "app-key-1").status_code == 200
    api.put("/api/v1/integrations/xero/webhook", json={"secret": KEY}, headers=bearer(token))
    # The connection's own key wins once set.
    assert post(api, xero_payload(org, xero_event(org)), "app-key-1").status_code == 401
    assert post(api, xero_payload(org, xero_event(org)), KEY).status_code == 200
    assert len(inbox(settings)) == 2


def test_webhook_settings_show_the_endpoint_never_the_secret_which_is_stored_encrypted(
    api: TestClient, settings: Settings, xero: Xero, acme: str
) -> None:
    answer = api.put(
        "/api/v1/integrations/xero/webhook",
        json={"secret": KEY, "events": ["invoice.update", "contact.*"]},
        headers=bearer(acme),
    )
    body = answer.json()
    assert body["endpoint_url"] == f"{settings.public_url}/api/v1/webhooks/xero/acme"
    assert body["events"] == ["contact.*", "invoice.update"]
    assert body["secret_source"] == "connection"
    assert KEY not in answer.text
    got = api.get("/api/v1/integrations/xero/webhook", headers=bearer(acme))
    assert KEY not in got.text and got.json()["endpoint_url"] == body["endpoint_url"]
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        stored = session.scalars(select(IntegrationWebhook.secret_key)).all()
    assert len(stored) == 1 and stored[0] and KEY not in stored[0]
    # Unsubscribed event types are dropped, subscribed ones kept.
    org = xero[2]
    event = xero_event(org, "INVOICE")
    event["eventType"] = "CREATE"
    assert post(api, xero_payload(org, event), KEY).status_code == 200
    assert post(api, xero_payload(org, xero_event(org, "CONTACT")), KEY).status_code == 200
    assert [row.payload["entity"] for row in inbox(settings)] == ["contacts"]


def test_webhook_settings_are_409_for_an_integration_without_webhooks_and_private_to_the_tenant(
    api: TestClient, settings: Settings, xero: Xero, acme: str
) -> None:
    twilio = api.put("/api/v1/integrations/twilio/webhook", json={"secret": "x"}, headers=bearer(acme))
    assert twilio.status_code == 409
    assert twilio.json()["error"]["code"] == "webhooks_not_supported"
    other = make_tenant(settings, "other")
    assert api.get("/api/v1/integrations/xero/webhook", headers=bearer(other)).status_code == 404
    assert api.get("/api/v1/integrations/xero/webhook").status_code == 401


def test_xeros_intent_to_receive_handshake_passes_against_the_served_api(
    settings: Settings, xero: Xero, acme: str, api: TestClient
) -> None:
    with ServedApp(api.app) as served:
        result = intent_to_receive(f"{served.base_url}/api/v1/webhooks/xero/acme", KEY)
        wrong_key = intent_to_receive(f"{served.base_url}/api/v1/webhooks/xero/acme", OTHER_KEY)
    assert result.passed, result
    assert result.slowest_s < 5
    assert not wrong_key.passed and wrong_key.signed_status == 401
    assert inbox(settings) == []


def test_the_app_url_routes_each_event_to_the_tenants_connected_to_its_organisation(
    api: TestClient, settings: Settings, xero: Xero
) -> None:
    sandbox, _served, org = xero
    make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    beta_org = sandbox.add_organisation("Beta Ltd", contacts=2, invoices=2, lines_per_invoice=1, payments=0, items=1)
    make_tenant(settings, "beta")
    connect_xero(settings, "beta", [beta_org])
    body = xero_payload(
        org,
        xero_event(org, "INVOICE", "for-acme"),
        xero_event(beta_org, "CONTACT", "for-beta"),
        xero_event("00000000-0000-0000-0000-000000000000", "INVOICE", "for-nobody"),
    )
    headers = {"x-xero-signature": signature(body, "app-key-1")}

    assert (
        api.post("/api/v1/webhooks/xero", content=body, headers={"x-xero-signature": signature(body, KEY)}).status_code
        == 401
    )
    assert inbox(settings) == []
    first = api.post("/api/v1/webhooks/xero", content=body, headers=headers)
    replay = api.post("/api/v1/webhooks/xero", content=body, headers=headers)

    assert (first.status_code, first.content, replay.status_code) == (200, b"", 200)
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        from vrtx_pipelines.db.models import TenantIntegration

        tenant_of = {c.id: c.tenant_id for c in session.scalars(select(TenantIntegration))}
    routed = sorted((tenant_of[row.tenant_integration_id], row.payload["external_id"]) for row in inbox(settings))
    assert routed == [("acme", "for-acme"), ("beta", "for-beta")]
    handshake = xero_payload(org)
    assert (
        api.post(
            "/api/v1/webhooks/xero", content=handshake, headers={"x-xero-signature": signature(handshake, "app-key-1")}
        ).status_code
        == 200
    )
    assert api.post("/api/v1/webhooks/xero", content=handshake, headers={"x-xero-signature": "bad"}).status_code == 401

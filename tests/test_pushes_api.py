"""The push API: queueing with an Idempotency-Key, validation before anything is queued, reading a push back,
and tenant isolation. The Xero sandbox is served over real HTTP; the tenant connects through its consent page."""

# ruff: noqa: F811 -- the Xero fixtures imported below are requested by name
from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from providers.twilio.sandbox_credentials import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN
from tests.helpers import bearer, make_tenant
from tests.xero.conftest import base_urls, connect_xero, oauth_clients, xero  # noqa: F401 -- fixtures
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.models import PushOutbox
from vrtx_pipelines.db.session import engine_for, session_scope

CONTACT = {"id": "crm-contact-1", "name": "Ada Lovelace Ltd", "email": "ada@example.com"}


def push(api: TestClient, token: str, entity: str, body: dict[str, Any], key: str | None = "key-1") -> Any:
    headers = {**bearer(token), **({"Idempotency-Key": key} if key is not None else {})}
    return api.post(f"/api/v1/integrations/xero/push/{entity}", json=body, headers=headers)


def outbox_rows(settings: Settings) -> int:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        return int(session.scalar(select(func.count()).select_from(PushOutbox)) or 0)


@pytest.fixture
def acme(api: TestClient, settings: Settings, xero: Any) -> str:
    token = make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    return token


def test_a_valid_push_is_queued_and_answered_202_with_its_id(api: TestClient, settings: Settings, acme: str) -> None:
    response = push(api, acme, "contact", {"operation": "create", "data": CONTACT})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "pending" and body["entity"] == "contact" and body["vrtx_id"] == "crm-contact-1"
    assert body["attempts"] == 0 and body["external_id"] is None
    state = api.get(f"/api/v1/integrations/xero/push/{body['id']}", headers=bearer(acme))
    assert state.status_code == 200 and state.json()["id"] == body["id"]
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        row = session.get_one(PushOutbox, body["id"])
        assert row.request_hash and len(row.request_hash) == 64
        assert row.payload["name"] == "Ada Lovelace Ltd" and row.idempotency_key == "key-1"


def test_the_same_key_and_payload_twice_is_the_same_push(api: TestClient, settings: Settings, acme: str) -> None:
    first = push(api, acme, "contact", {"operation": "create", "data": CONTACT})
    again = push(api, acme, "contact", {"operation": "create", "data": CONTACT})
    assert first.status_code == 202 and again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert outbox_rows(settings) == 1


def test_concurrent_submissions_of_one_key_make_one_push(api: TestClient, settings: Settings, acme: str) -> None:
    answers: list[Any] = []
    barrier = threading.Barrier(6)

    def submit() -> None:
        barrier.wait()
        answers.append(push(api, acme, "contact", {"operation": "create", "data": CONTACT}, key="race"))

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(a.status_code for a in answers) == [200] * 5 + [202]
    assert len({a.json()["id"] for a in answers}) == 1
    assert outbox_rows(settings) == 1


def test_reusing_a_key_for_another_payload_is_refused_409(api: TestClient, settings: Settings, acme: str) -> None:
    push(api, acme, "contact", {"operation": "create", "data": CONTACT})
    other = push(api, acme, "contact", {"operation": "create", "data": {**CONTACT, "name": "Someone Else"}})
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert outbox_rows(settings) == 1


@pytest.mark.parametrize("key", [None, "", "k" * 201])
def test_a_push_without_a_usable_idempotency_key_is_refused_400(
    api: TestClient, settings: Settings, acme: str, key: str | None
) -> None:
    response = push(api, acme, "contact", {"operation": "create", "data": CONTACT}, key=key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_required"
    assert outbox_rows(settings) == 0


def test_an_invalid_payload_is_refused_422_field_by_field_and_nothing_is_queued(
    api: TestClient, settings: Settings, acme: str
) -> None:
    invoice = {"id": "crm-inv-1", "contact_id": "crm-contact-1", "currency": "NZDX", "lines": [{"quantity": 2}]}
    response = push(api, acme, "invoice", {"operation": "create", "data": invoice})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    fields = {d["field"] for d in error["details"]}
    assert {"data.issue_date", "data.currency", "data.lines.0.description", "data.lines.0.unit_amount"} <= fields
    unknown_field = push(api, acme, "contact", {"operation": "create", "data": {**CONTACT, "nickname": "A"}}, "k2")
    assert unknown_field.status_code == 422
    assert outbox_rows(settings) == 0


def test_a_create_needs_the_vrtx_id_and_an_update_needs_its_target(
    api: TestClient, settings: Settings, acme: str
) -> None:
    no_id = push(api, acme, "contact", {"operation": "create", "data": {"name": "No Id Ltd"}})
    assert no_id.status_code == 422 and no_id.json()["error"]["details"][0]["field"] == "data.id"
    no_target = push(api, acme, "contact", {"operation": "update", "data": {"name": "No Id Ltd"}}, "k2")
    assert no_target.status_code == 422
    assert outbox_rows(settings) == 0


def test_an_operation_or_entity_the_provider_does_not_take_is_refused(
    api: TestClient, settings: Settings, acme: str
) -> None:
    payment = {"id": "crm-pay-1", "invoice_id": "crm-inv-1", "amount": "10.00", "date": "2026-01-05"}
    void_payment = push(api, acme, "payment", {"operation": "void", "data": payment})
    assert void_payment.status_code == 422
    assert void_payment.json()["error"]["details"][0]["field"] == "operation"
    unknown = push(api, acme, "tax_rate", {"operation": "create", "data": {"id": "t"}}, "k2")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_push_entity"
    bad_operation = push(api, acme, "contact", {"operation": "delete", "data": CONTACT}, "k3")
    assert bad_operation.status_code == 422
    assert outbox_rows(settings) == 0


def test_pushing_to_an_integration_without_pushes_says_so_honestly(
    api: TestClient, settings: Settings, acme: str
) -> None:
    api.post(
        "/api/v1/integrations/twilio/connect",
        json={"credentials": {"account_sid": DEMO_ACCOUNT_SID, "auth_token": DEMO_AUTH_TOKEN}},
        headers=bearer(acme),
    )
    response = api.post(
        "/api/v1/integrations/twilio/push/contact",
        json={"operation": "create", "data": CONTACT},
        headers={**bearer(acme), "Idempotency-Key": "k"},
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "push_not_supported"
    assert "Twilio" in response.json()["error"]["message"]


def test_pushing_without_a_connection_is_refused_and_unknown_integrations_are_404(
    api: TestClient,
    settings: Settings,
    xero: Any,
) -> None:
    token = make_tenant(settings, "lonely")
    response = push(api, token, "contact", {"operation": "create", "data": CONTACT})
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_connected"
    nowhere = api.post(
        "/api/v1/integrations/nowhere/push/contact",
        json={"operation": "create", "data": CONTACT},
        headers={**bearer(token), "Idempotency-Key": "k"},
    )
    assert nowhere.status_code == 404 and nowhere.json()["error"]["code"] == "integration_not_found"
    assert outbox_rows(settings) == 0


def test_a_tenant_never_sees_or_pushes_on_another_tenants_connection(
    api: TestClient, settings: Settings, acme: str
) -> None:
    mine = push(api, acme, "contact", {"operation": "create", "data": CONTACT}).json()
    globex = make_tenant(settings, "globex")
    foreign = api.get(f"/api/v1/integrations/xero/push/{mine['id']}", headers=bearer(globex))
    assert foreign.status_code == 404
    assert "Ada" not in foreign.text
    # The same Idempotency-Key from another tenant is that tenant's own (and here: it has no connection).
    theirs = push(api, globex, "contact", {"operation": "create", "data": CONTACT})
    assert theirs.status_code == 404 and theirs.json()["error"]["code"] == "not_connected"
    listing = api.get("/api/v1/integrations/xero/push", headers=bearer(globex))
    assert listing.status_code == 404
    unauthenticated = api.get(f"/api/v1/integrations/xero/push/{mine['id']}")
    assert unauthenticated.status_code == 401
    assert outbox_rows(settings) == 1


def test_pushes_are_listed_newest_first_and_filtered_by_status_and_entity(
    api: TestClient, settings: Settings, acme: str
) -> None:
    ids = [
        push(
            api,
            acme,
            "contact",
            {"operation": "create", "data": {**CONTACT, "id": f"c{i}", "name": f"C {i}"}},
            key=f"k{i}",
        ).json()["id"]
        for i in range(3)
    ]
    first = api.get("/api/v1/integrations/xero/push", params={"limit": 2}, headers=bearer(acme)).json()
    assert [p["id"] for p in first["pushes"]] == ids[::-1][:2]
    rest = api.get(
        "/api/v1/integrations/xero/push",
        params={"limit": 2, "before_id": first["next_before_id"]},
        headers=bearer(acme),
    ).json()
    assert [p["id"] for p in rest["pushes"]] == [ids[0]] and rest["next_before_id"] is None
    done = api.get("/api/v1/integrations/xero/push", params={"status": "done"}, headers=bearer(acme)).json()
    assert done["pushes"] == []
    invoices = api.get("/api/v1/integrations/xero/push", params={"entity": "invoice"}, headers=bearer(acme)).json()
    assert invoices["pushes"] == []
    missing = api.get("/api/v1/integrations/xero/push/999999", headers=bearer(acme))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "push_not_found"

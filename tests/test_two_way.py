"""Two-way contact sync end to end: the CRM's changes arrive as pushes (through the real push job), Xero's as pulls
(through the real pull assets) and as edits made with Xero's own API in the sandbox; conflicts are settled by the
tenant's policy or held and resolved through the API."""

# ruff: noqa: F811 -- the Xero fixtures imported below are requested by name
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from dagster import DagsterInstance, RunRequest, build_sensor_context
from fastapi.testclient import TestClient
from sqlalchemy import select

from providers.sandbox_kit.serve import ServedApp
from providers.xero.sandbox import XeroSandbox
from tests.helpers import bearer, make_tenant
from tests.xero.conftest import base_urls, connect_xero, oauth_clients, records, xero  # noqa: F401 -- fixtures
from vrtx_pipelines.cli.sync import sync_now
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.models import CanonicalRecord, IntegrationSyncLog, OutboundEvent, SyncConflict, WebhookInbox
from vrtx_pipelines.db.session import engine_for, session_scope
from vrtx_pipelines.orchestration.pushes import push_job, push_sensor
from vrtx_pipelines.registry import get_provider
from vrtx_pipelines.webhooks.dispatch import ALREADY_CURRENT, claim_batches

pytestmark = pytest.mark.dagster
Xero = tuple[XeroSandbox, ServedApp, str]
XERO = get_provider("xero")
JOB = push_job(XERO)
SENSOR = push_sensor(XERO, JOB)


@pytest.fixture
def acme(api: TestClient, settings: Settings, xero: Xero) -> str:
    token = make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    # Many calls in a minute (every round trip pushes, fetches and pulls): Xero's per-minute limit is not the
    # subject here.
    xero[1].app.state.sandbox.minute_limit = 10_000
    return token


# --- the CRM, Xero and the platform's engines ------------------------------------------------------------------


def push(api: TestClient, token: str, operation: str, data: dict[str, Any], key: str, entity: str = "contact") -> int:
    response = api.post(
        f"/api/v1/integrations/xero/push/{entity}",
        json={"operation": operation, "data": data},
        headers={**bearer(token), "Idempotency-Key": key},
    )
    assert response.status_code in (200, 202), response.text
    return int(response.json()["id"])


def push_state(api: TestClient, token: str, push_id: int) -> dict[str, Any]:
    response = api.get(f"/api/v1/integrations/xero/push/{push_id}", headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def drain(instance: DagsterInstance) -> None:
    """What the daemon does: tick the push sensor and run every batch it asks for."""
    requests: list[RunRequest] = list(SENSOR.evaluate_tick(build_sensor_context(instance=instance)).run_requests or [])
    for request in requests:
        assert JOB.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags).success


def pull(settings: Settings, instance: DagsterInstance, tenant: str = "acme", *, full: bool = False) -> None:
    sync_now(settings, "xero", tenant, ["contacts", "invoices"], instance=instance, full=full)


def put_settings(api: TestClient, token: str, **values: Any) -> None:
    response = api.put("/api/v1/integrations/xero/settings", json=values, headers=bearer(token))
    assert response.status_code == 200, response.text


class XeroUser:
    """Someone working in Xero: edits go through Xero's own API, as an edit in Xero's UI or another app would."""

    def __init__(self, xero: Xero) -> None:
        sandbox, served, org = xero
        self.sandbox, self.org = sandbox, org
        self.http = httpx.Client(base_url=served.base_url, timeout=10)

    def _headers(self) -> dict[str, str]:
        token = self.sandbox.issue_access_token([self.org])
        return {"Authorization": f"Bearer {token}", "xero-tenant-id": self.org, "Accept": "application/json"}

    def edit_contact(self, contact_id: str, **fields: Any) -> dict[str, Any]:
        body = {"Contacts": [{"ContactID": contact_id, **fields}]}
        answer = self.http.post(f"/api.xro/2.0/Contacts/{contact_id}", json=body, headers=self._headers())
        assert answer.status_code == 200, answer.text
        return answer.json()["Contacts"][0]  # type: ignore[no-any-return]

    def contact(self, contact_id: str) -> dict[str, Any]:
        answer = self.http.get(f"/api.xro/2.0/Contacts/{contact_id}", headers=self._headers())
        assert answer.status_code == 200, answer.text
        return answer.json()["Contacts"][0]  # type: ignore[no-any-return]

    def invoice(self, invoice_id: str) -> dict[str, Any]:
        answer = self.http.get(f"/api.xro/2.0/Invoices/{invoice_id}", headers=self._headers())
        assert answer.status_code == 200, answer.text
        return answer.json()["Invoices"][0]  # type: ignore[no-any-return]


def phone_of(record: dict[str, Any]) -> str | None:
    return next((p.get("PhoneNumber") for p in record["Phones"] if p["PhoneType"] == "DEFAULT"), None)


def changes(api: TestClient, token: str, cursor: str | None) -> tuple[list[dict[str, Any]], str]:
    page = records(api, token, "contacts", cursor)
    return page["records"], page["next_cursor"]


def stored(settings: Settings, model: Any, **where: Any) -> list[Any]:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        query = select(model).filter_by(**where).order_by(model.id)
        rows = list(session.scalars(query))
        session.expunge_all()
        return rows


def events(settings: Settings, event_type: str) -> list[dict[str, Any]]:
    return [dict(e.payload) for e in stored(settings, OutboundEvent, tenant_id="acme", event_type=event_type)]


def now() -> datetime:
    return datetime.now(UTC)


ADA = {"id": "crm-1", "name": "Ada Ltd", "email": "ada@example.com", "phone": "111 1111"}


@pytest.fixture
def synced(api: TestClient, settings: Settings, instance: DagsterInstance, acme: str) -> tuple[str, str]:
    """Ada pushed from the CRM, then a pull: (her Xero ContactID, the CRM's records cursor after both)."""
    created = push(api, acme, "create", {**ADA, "updated_at": (now() - timedelta(hours=1)).isoformat()}, "create-1")
    drain(instance)
    contact_id = push_state(api, acme, created)["external_id"]
    assert contact_id
    pull(settings, instance)
    _seen, cursor = changes(api, acme, None)
    return contact_id, cursor


def edit_on_both_sides(api: TestClient, token: str, xero: Xero, contact_id: str, *, crm_edits_last: bool) -> int:
    """The scripted scenario: between two syncs Ada's name changes in the CRM and in Xero, and her phone in Xero
    only. Returns the CRM's push (not yet sent)."""
    user = XeroUser(xero)
    crm_edited = now()
    if crm_edits_last:
        user.edit_contact(contact_id, Name="Ada Xero Ltd", Phones=[{"PhoneType": "DEFAULT", "PhoneNumber": "222 2222"}])
        crm_edited = now() + timedelta(seconds=1)
    else:
        crm_edited = now() - timedelta(seconds=1)
        user.edit_contact(contact_id, Name="Ada Xero Ltd", Phones=[{"PhoneType": "DEFAULT", "PhoneNumber": "222 2222"}])
    return push(api, token, "update", {**ADA, "name": "Ada CRM Ltd", "updated_at": crm_edited.isoformat()}, "upd-1")


# --- conflict policies ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "fields", "crm_edits_last", "winner"),
    [
        ("crm_wins", {}, False, "crm"),
        ("provider_wins", {}, True, "provider"),
        ("latest_wins", {}, True, "crm"),
        ("latest_wins", {}, False, "provider"),
        ("per_field", {"name": "crm_wins"}, False, "crm"),
        ("per_field", {"name": "provider_wins"}, True, "provider"),
    ],
)
def test_each_policy_settles_a_name_changed_on_both_sides_and_keeps_the_phone_changed_in_xero(
    api: TestClient,
    settings: Settings,
    xero: Xero,
    instance: DagsterInstance,
    acme: str,
    synced: tuple[str, str],
    policy: str,
    fields: dict[str, str],
    crm_edits_last: bool,
    winner: str,
) -> None:
    contact_id, cursor = synced
    put_settings(api, acme, conflict_policy=policy, conflict_fields=fields)
    pushed = edit_on_both_sides(api, acme, xero, contact_id, crm_edits_last=crm_edits_last)
    drain(instance)

    expected_name = "Ada CRM Ltd" if winner == "crm" else "Ada Xero Ltd"
    in_xero = XeroUser(xero).contact(contact_id)
    assert in_xero["Name"] == expected_name
    assert phone_of(in_xero) == "222 2222"  # changed in Xero only: merged, never overwritten by the CRM's old one
    done = push_state(api, acme, pushed)
    assert done["status"] == "done", done
    if winner == "provider":  # the CRM's only change lost: nothing was left to send
        assert "superseded by the provider's change" in done["error"]
    else:
        assert done["error"] is None

    (conflict,) = stored(settings, SyncConflict)
    assert conflict.status == "resolved" and conflict.resolution == f"auto:{policy}"
    assert conflict.fields == ["name"] and conflict.push_id == pushed
    assert conflict.resolved_data["name"] == expected_name and conflict.resolved_data["phone"] == "222 2222"
    (logged,) = stored(settings, IntegrationSyncLog, sync_type="conflict")
    assert logged.status == "resolved" and logged.direction == "both" and logged.push_id == pushed
    assert logged.response_data["winners"] == {"name": winner}
    assert "Ada" not in repr(logged.request_data) + repr(logged.response_data)  # values stay in the conflict
    (resolved,) = events(settings, "conflict.resolved")
    assert resolved["fields"]["name"] == {"base": "Ada Ltd", "crm": "Ada CRM Ltd", "provider": "Ada Xero Ltd"}
    assert resolved["resolved_data"]["name"] == expected_name

    pull(settings, instance)
    seen, _cursor = changes(api, acme, cursor)
    # Xero's edit reaches the CRM as one change of Ada, showing the record both sides now agree on.
    assert [r["external_id"] for r in seen] == [contact_id]
    assert seen[0]["data"]["name"] == expected_name and seen[0]["data"]["phone"] == "222 2222"
    assert not api.get("/api/v1/integrations/xero/conflicts", headers=bearer(acme)).json()["conflicts"]


def test_fields_changed_on_one_side_each_merge_without_a_conflict(
    api: TestClient, settings: Settings, xero: Xero, instance: DagsterInstance, acme: str, synced: tuple[str, str]
) -> None:
    contact_id, _cursor = synced
    put_settings(api, acme, conflict_policy="crm_wins")
    XeroUser(xero).edit_contact(contact_id, Phones=[{"PhoneType": "DEFAULT", "PhoneNumber": "333 3333"}])
    pushed = push(api, acme, "update", {**ADA, "email": "ada@newmail.example"}, "upd-1")
    drain(instance)
    in_xero = XeroUser(xero).contact(contact_id)
    assert in_xero["EmailAddress"] == "ada@newmail.example" and phone_of(in_xero) == "333 3333"
    assert push_state(api, acme, pushed)["status"] == "done"
    assert stored(settings, SyncConflict) == []


# --- held conflicts ---------------------------------------------------------------------------------------------


def test_a_conflict_the_policy_cannot_settle_holds_the_push_until_it_is_resolved_through_the_api(
    api: TestClient, settings: Settings, xero: Xero, instance: DagsterInstance, acme: str, synced: tuple[str, str]
) -> None:
    contact_id, _cursor = synced
    user = XeroUser(xero)
    user.edit_contact(contact_id, Name="Ada Xero Ltd")
    # latest_wins with no CRM modification time: nothing to judge by.
    pushed = push(api, acme, "update", {**ADA, "name": "Ada CRM Ltd"}, "upd-1")
    drain(instance)

    held = push_state(api, acme, pushed)
    assert held["status"] == "held" and "resolve conflict" in held["error"]
    assert user.contact(contact_id)["Name"] == "Ada Xero Ltd"  # nothing sent
    listed = api.get("/api/v1/integrations/xero/conflicts", headers=bearer(acme)).json()["conflicts"]
    (conflict,) = listed
    assert conflict["status"] == "open" and conflict["fields"] == ["name"] and conflict["push_id"] == pushed
    assert conflict["crm_data"]["name"] == "Ada CRM Ltd" and conflict["provider_data"]["name"] == "Ada Xero Ltd"
    assert conflict["base_data"]["name"] == "Ada Ltd" and conflict["vrtx_id"] == "crm-1"
    filtered = api.get("/api/v1/integrations/xero/conflicts", params={"vrtx_id": "crm-2"}, headers=bearer(acme))
    assert filtered.json()["conflicts"] == []
    (detected,) = events(settings, "conflict.detected")
    assert detected["conflict_id"] == conflict["id"] and detected["status"] == "open"
    drain(instance)
    assert push_state(api, acme, pushed)["status"] == "held"  # a held push is not retried by itself

    url = f"/api/v1/integrations/xero/conflicts/{conflict['id']}/resolve"
    refused = api.post(url, json={"resolution": "merged", "data": {"name": 7}}, headers=bearer(acme))
    assert refused.status_code == 422 and refused.json()["error"]["details"][0]["field"] == "data.name"
    missing = api.post(url, json={"resolution": "merged"}, headers=bearer(acme))
    assert missing.status_code == 422
    answer = api.post(url, json={"resolution": "merged", "data": {"name": "Ada Merged Ltd"}}, headers=bearer(acme))
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "resolved" and answer.json()["resolution"] == "merged"
    assert push_state(api, acme, pushed)["status"] == "pending"
    drain(instance)

    assert push_state(api, acme, pushed)["status"] == "done"
    assert user.contact(contact_id)["Name"] == "Ada Merged Ltd"
    assert api.get("/api/v1/integrations/xero/conflicts", headers=bearer(acme)).json()["conflicts"] == []
    everything = api.get("/api/v1/integrations/xero/conflicts", params={"status": "all"}, headers=bearer(acme))
    assert [c["id"] for c in everything.json()["conflicts"]] == [conflict["id"]]
    again = api.post(url, json={"resolution": "crm"}, headers=bearer(acme))
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict_already_resolved"


def test_resolving_a_held_conflict_for_the_provider_closes_the_push_without_sending_it(
    api: TestClient, settings: Settings, xero: Xero, instance: DagsterInstance, acme: str, synced: tuple[str, str]
) -> None:
    contact_id, _cursor = synced
    put_settings(api, acme, conflict_policy="per_field", conflict_fields={"name": "manual"})
    user = XeroUser(xero)
    user.edit_contact(contact_id, Name="Ada Xero Ltd")
    pushed = push(api, acme, "update", {**ADA, "name": "Ada CRM Ltd", "updated_at": now().isoformat()}, "upd-1")
    drain(instance)
    (conflict,) = api.get("/api/v1/integrations/xero/conflicts", headers=bearer(acme)).json()["conflicts"]
    url = f"/api/v1/integrations/xero/conflicts/{conflict['id']}/resolve"
    answer = api.post(url, json={"resolution": "provider"}, headers=bearer(acme))
    assert answer.status_code == 200, answer.text
    closed = push_state(api, acme, pushed)
    assert closed["status"] == "done" and "superseded by the provider's change" in closed["error"]
    drain(instance)
    assert user.contact(contact_id)["Name"] == "Ada Xero Ltd"
    resolved = events(settings, "conflict.resolved")[-1]
    assert resolved["resolution"] == "provider" and resolved["resolved_data"]["name"] == "Ada Xero Ltd"
    assert events(settings, "push.finished")[-1]["push_id"] == pushed

    # The provider's record is now the common base: the CRM's next edit of another field is no conflict.
    later = push(api, acme, "update", {**ADA, "name": "Ada Xero Ltd", "email": "ada@else.example"}, "upd-2")
    drain(instance)
    assert push_state(api, acme, later)["status"] == "done"
    assert user.contact(contact_id)["EmailAddress"] == "ada@else.example"
    assert len(stored(settings, SyncConflict)) == 1


def test_a_newer_push_of_the_record_supersedes_a_held_one(
    api: TestClient, settings: Settings, xero: Xero, instance: DagsterInstance, acme: str, synced: tuple[str, str]
) -> None:
    contact_id, _cursor = synced
    XeroUser(xero).edit_contact(contact_id, Name="Ada Xero Ltd")
    first = push(api, acme, "update", {**ADA, "name": "Ada CRM Ltd"}, "upd-1")
    drain(instance)
    assert push_state(api, acme, first)["status"] == "held"
    # The CRM takes Xero's name and changes the email: no conflict left, and the held push must not come back.
    second = push(api, acme, "update", {**ADA, "name": "Ada Xero Ltd", "email": "a@b.example"}, "upd-2")
    drain(instance)
    assert push_state(api, acme, second)["status"] == "done"
    superseded = push_state(api, acme, first)
    assert superseded["status"] == "failed" and f"superseded by push {second}" in superseded["error"]
    (conflict,) = stored(settings, SyncConflict)
    assert conflict.status == "resolved" and conflict.resolution == "superseded"


# --- echo suppression -------------------------------------------------------------------------------------------


def test_ten_round_trips_never_bring_the_crms_own_writes_back_as_changes(
    api: TestClient, settings: Settings, xero: Xero, instance: DagsterInstance, acme: str, synced: tuple[str, str]
) -> None:
    contact_id, cursor = synced
    user = XeroUser(xero)
    crm_record = dict(ADA)
    for n in range(10):
        # The CRM edits Ada and pushes; a pull follows.
        crm_record = {**crm_record, "name": f"Ada Ltd v{n}", "updated_at": now().isoformat()}
        pushed = push(api, acme, "update", crm_record, f"round-{n}")
        drain(instance)
        assert push_state(api, acme, pushed)["status"] == "done"
        pull(settings, instance)
        seen, cursor = changes(api, acme, cursor)
        assert seen == [], f"round {n}: the CRM read its own write back"
        # Someone edits Ada in Xero; a pull follows: the CRM sees exactly that one change, and takes it.
        user.edit_contact(contact_id, Phones=[{"PhoneType": "DEFAULT", "PhoneNumber": f"555 000{n}"}])
        pull(settings, instance)
        seen, cursor = changes(api, acme, cursor)
        assert [(r["external_id"], r["data"]["phone"]) for r in seen] == [(contact_id, f"555 000{n}")]
        crm_record = {**crm_record, "phone": seen[0]["data"]["phone"]}
        pull(settings, instance)
        assert changes(api, acme, cursor)[0] == []  # nothing ping-pongs on its own
    assert stored(settings, SyncConflict) == []
    assert user.contact(contact_id)["Name"] == "Ada Ltd v9"


def test_with_pull_mappings_the_crms_own_write_still_does_not_come_back_as_a_change(
    api: TestClient, settings: Settings, instance: DagsterInstance, acme: str, synced: tuple[str, str]
) -> None:
    mapping = {"vrtx_field": "custom_fields.xero_name", "external_field": "Name", "direction": "pull"}
    answer = api.put(
        "/api/v1/integrations/xero/mappings", json={"mappings": {"contacts": [mapping]}}, headers=bearer(acme)
    )
    assert answer.status_code == 200, answer.text
    pull(settings, instance, full=True)  # the stored records take the mapping (a change the CRM is told of)
    _seen, cursor = changes(api, acme, synced[1])
    pushed = push(api, acme, "update", {**ADA, "name": "Ada Mapped Ltd", "updated_at": now().isoformat()}, "mapped-1")
    drain(instance)
    assert push_state(api, acme, pushed)["status"] == "done"
    pull(settings, instance)
    assert changes(api, acme, cursor)[0] == []
    (record,) = [r for r in stored(settings, CanonicalRecord, entity_type="contacts") if r.external_id == synced[0]]
    assert record.data["custom_fields"] == {"xero_name": "Ada Mapped Ltd"}


def test_xeros_echo_of_a_pushed_change_is_skipped_and_a_later_edit_in_xero_is_not(
    api: TestClient, settings: Settings, xero: Xero, instance: DagsterInstance, acme: str, synced: tuple[str, str]
) -> None:
    contact_id, _cursor = synced
    sandbox, _served, org = xero
    key = "acme-webhook-key-" + "e" * 40
    answer = api.put("/api/v1/integrations/xero/webhook", json={"secret": key}, headers=bearer(acme))
    assert answer.status_code == 200, answer.text
    with ServedApp(api.app) as served:
        subscription = sandbox.subscribe_webhooks(f"{served.base_url}/api/v1/webhooks/xero/acme", key, [org])
        pushed = push(api, acme, "update", {**ADA, "name": "Ada Echo Ltd", "updated_at": now().isoformat()}, "echo-1")
        drain(instance)
        assert push_state(api, acme, pushed)["status"] == "done"
        assert sandbox.flush_webhooks()  # Xero's webhook for the CRM's own write
        XeroUser(xero).edit_contact(contact_id, Name="Ada Edited In Xero Ltd")
        assert sandbox.flush_webhooks()
        sandbox.unsubscribe_webhooks(subscription)
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        batches = claim_batches(session, XERO)
    events = [row for row in stored(settings, WebhookInbox) if row.payload["external_id"] == contact_id]
    assert [(row.status, row.error_message) for row in events] == [("skipped", ALREADY_CURRENT), ("dispatched", None)]
    [batch] = batches
    assert [event.external_id for event in batch.events] == [contact_id]  # only Xero's own edit is fetched


# --- deletes ----------------------------------------------------------------------------------------------------


def test_a_contact_deleted_in_the_crm_is_archived_in_xero_and_reported_deleted(
    api: TestClient, settings: Settings, xero: Xero, instance: DagsterInstance, acme: str, synced: tuple[str, str]
) -> None:
    contact_id, cursor = synced
    archived = push(api, acme, "archive", {"id": "crm-1"}, "delete-1")
    drain(instance)
    assert push_state(api, acme, archived)["status"] == "done"
    assert XeroUser(xero).contact(contact_id)["ContactStatus"] == "ARCHIVED"
    pull(settings, instance)
    assert changes(api, acme, cursor)[0] == []  # the CRM's own delete is not news to it
    everything = {r["external_id"]: r for r in records(api, acme, "contacts")["records"]}
    assert everything[contact_id]["deleted"] is True and everything[contact_id]["data"]["archived"] is True


def test_an_archive_needs_a_linked_record(api: TestClient, instance: DagsterInstance, acme: str) -> None:
    bad = api.post(
        "/api/v1/integrations/xero/push/contact",
        json={"operation": "archive", "data": {}},
        headers={**bearer(acme), "Idempotency-Key": "x"},
    )
    assert bad.status_code == 422
    orphan = push(api, acme, "archive", {"id": "crm-404"}, "delete-404")
    drain(instance)
    failed = push_state(api, acme, orphan)
    assert failed["status"] == "failed" and "not linked" in failed["error"]


def test_invoices_voided_or_deleted_in_the_crm_are_voided_or_deleted_in_xero(
    api: TestClient, settings: Settings, xero: Xero, instance: DagsterInstance, acme: str, synced: tuple[str, str]
) -> None:
    invoice = {
        "contact_id": "crm-1",
        "issue_date": "2026-03-02",
        "currency": "NZD",
        "lines": [{"description": "Consulting", "quantity": "1", "unit_amount": "100.00"}],
    }
    draft = push(api, acme, "create", {**invoice, "id": "inv-1"}, "inv-1", entity="invoice")
    approved = push(api, acme, "create", {**invoice, "id": "inv-2"}, "inv-2", entity="invoice")
    drain(instance)
    push(api, acme, "approve", {"id": "inv-2"}, "inv-2-approve", entity="invoice")
    deleted = push(api, acme, "delete", {"id": "inv-1"}, "inv-1-delete", entity="invoice")
    drain(instance)
    voided = push(api, acme, "void", {"id": "inv-2"}, "inv-2-void", entity="invoice")
    refused = push(api, acme, "delete", {"id": "inv-2"}, "inv-2-delete", entity="invoice")
    drain(instance)
    user = XeroUser(xero)
    draft_id, approved_id = (push_state(api, acme, p)["external_id"] for p in (draft, approved))
    assert push_state(api, acme, deleted)["status"] == "done"
    assert user.invoice(draft_id)["Status"] == "DELETED"
    assert push_state(api, acme, voided)["status"] == "done"
    assert user.invoice(approved_id)["Status"] == "VOIDED"
    failed = push_state(api, acme, refused)  # Xero deletes drafts only: its own words say why
    assert failed["status"] == "failed" and failed["provider_status"] == 400 and failed["error"]
    pull(settings, instance)
    pulled = {r["external_id"]: r for r in records(api, acme, "invoices")["records"]}
    assert pulled[draft_id]["deleted"] is True and pulled[draft_id]["data"]["status"] == "deleted"
    assert pulled[approved_id]["deleted"] is True and pulled[approved_id]["data"]["status"] == "voided"


def test_archives_and_voids_made_in_xero_reach_the_records_api_as_deleted(
    api: TestClient, settings: Settings, xero: Xero, instance: DagsterInstance, acme: str
) -> None:
    sandbox, _served, org = xero
    pull(settings, instance)
    cursor = {entity: records(api, acme, entity)["next_cursor"] for entity in ("contacts", "invoices")}
    contact_id = records(api, acme, "contacts")["records"][0]["external_id"]
    invoice_id = next(
        r["external_id"] for r in records(api, acme, "invoices")["records"] if r["data"]["status"] == "authorised"
    )
    sandbox.archive_contact(org, contact_id)
    sandbox.void_invoice(org, invoice_id)
    pull(settings, instance)
    (contact,) = records(api, acme, "contacts", cursor["contacts"])["records"]
    assert contact["external_id"] == contact_id and contact["deleted"] is True
    invoices = {r["external_id"]: r for r in records(api, acme, "invoices", cursor["invoices"])["records"]}
    assert invoices[invoice_id]["deleted"] is True and invoices[invoice_id]["data"]["status"] == "voided"


# --- tenants and settings ---------------------------------------------------------------------------------------


def test_a_tenant_never_sees_or_resolves_another_tenants_conflicts(
    api: TestClient, settings: Settings, xero: Xero, instance: DagsterInstance, acme: str, synced: tuple[str, str]
) -> None:
    sandbox, _served, _org = xero
    contact_id, _cursor = synced
    XeroUser(xero).edit_contact(contact_id, Name="Ada Xero Ltd")
    push(api, acme, "update", {**ADA, "name": "Ada CRM Ltd"}, "upd-1")
    drain(instance)
    (conflict,) = api.get("/api/v1/integrations/xero/conflicts", headers=bearer(acme)).json()["conflicts"]

    globex_org = sandbox.add_organisation("Globex", contacts=2, invoices=1, payments=1, items=1)
    globex = make_tenant(settings, "globex")
    connect_xero(settings, "globex", [globex_org])
    assert api.get("/api/v1/integrations/xero/conflicts", headers=bearer(globex)).json()["conflicts"] == []
    everything = api.get("/api/v1/integrations/xero/conflicts", params={"status": "all"}, headers=bearer(globex))
    assert everything.json()["conflicts"] == []
    url = f"/api/v1/integrations/xero/conflicts/{conflict['id']}"
    assert api.get(url, headers=bearer(globex)).status_code == 404
    stolen = api.post(f"{url}/resolve", json={"resolution": "crm"}, headers=bearer(globex))
    assert stolen.status_code == 404 and stolen.json()["error"]["code"] == "conflict_not_found"
    assert api.get(url, headers=bearer(acme)).json()["status"] == "open"
    nobody = make_tenant(settings, "initech")
    assert api.get("/api/v1/integrations/xero/conflicts", headers=bearer(nobody)).status_code == 404


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"conflict_policy": "coin_toss"}, "conflict_policy"),
        ({"conflict_fields": {"name": "coin_toss"}}, "conflict_fields.name"),
        ({"conflict_fields": {"shoe_size": "crm_wins"}}, "conflict_fields"),
    ],
)
def test_conflict_settings_are_validated(api: TestClient, acme: str, values: dict[str, Any], field: str) -> None:
    response = api.put("/api/v1/integrations/xero/settings", json=values, headers=bearer(acme))
    assert response.status_code == 422
    assert field in [d["field"] for d in response.json()["error"]["details"]]
    defaults = api.get("/api/v1/integrations/xero/settings", headers=bearer(acme)).json()["settings"]
    assert defaults["conflict_policy"] == "latest_wins" and defaults["conflict_fields"] == {}

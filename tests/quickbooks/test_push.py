"""Pushing to QuickBooks through the outbox, the push job and the sandbox: a stale SyncToken is fetched, re-planned
through the two-way policy and retried once; a lost answer's resend carries the same requestid and writes once;
void, delete and archive name the record's SyncToken."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest
from dagster import DagsterInstance
from fastapi.testclient import TestClient

from providers.base import PushRequest
from providers.errors import ProviderConflict
from providers.kit.governor import RateGovernor
from providers.quickbooks import PROVIDER
from providers.quickbooks.client import QuickBooksClient
from tests.flows.providers import FLOWS
from tests.flows.test_push import drain, outcome, queue
from tests.helpers import bearer, make_tenant
from tests.quickbooks.conftest import Qbo, connect, records, sync
from vrtx_pipelines.config import Settings

pytestmark = pytest.mark.dagster
FLOW = FLOWS["quickbooks"]
CONTACT = {"id": "crm-ada", "name": "Ada Lovelace", "email": "ada@example.com", "phone": "(415) 555-0100"}
INVOICE = {
    "id": "crm-inv",
    "contact_id": "crm-ada",
    "issue_date": "2026-11-02",
    "currency": "USD",
    "lines": [{"description": "Engine", "quantity": "1", "unit_amount": "40.00", "tax_type": "NON"}],
}


@pytest.fixture
def connected(api: TestClient, settings: Settings, qbo: Qbo) -> str:
    token = make_tenant(settings, "acme")
    connect(settings, "acme")
    current = api.get("/api/v1/integrations/quickbooks/settings", headers=bearer(token)).json()["settings"]
    answer = api.put(
        "/api/v1/integrations/quickbooks/settings",
        json={**current, "default_item_id": "1", "conflict_policy": "latest_wins"},
        headers=bearer(token),
    )
    assert answer.status_code == 200, answer.text
    return token


def pushed(api: TestClient, token: str, instance: DagsterInstance, entity: str, operation: str, data: dict[str, Any],
           key: str) -> dict[str, Any]:  # fmt: skip
    queued = queue(api, token, FLOW, entity, operation, data, key)
    assert queued.status_code == 202, queued.text
    drain(FLOW, instance)
    return outcome(api, token, FLOW, entity, queued.json()["id"])


def customer(qbo: Qbo, customer_id: str) -> dict[str, Any]:
    company = qbo.sandbox.tenants[qbo.realm]
    found: dict[str, Any] = company.record("customers", int(customer_id) - 1)
    return found


def test_a_stale_sync_token_is_fetched_replanned_and_retried_once(
    api: TestClient, settings: Settings, qbo: Qbo, instance: DagsterInstance, connected: str
) -> None:
    created = pushed(api, connected, instance, "contact", "create", CONTACT, "ada-create")
    assert created["status"] == "done", created
    qbo.clock.advance(60)
    (changed,) = qbo.sandbox.touch(qbo.realm, "customers", [created["external_id"]])  # a phone changed in QuickBooks
    phone_in_quickbooks = customer(qbo, changed)["PrimaryPhone"]["FreeFormNumber"]
    qbo.clock.advance(60)
    stored = next(r for r in records(api, connected, "contacts")["records"] if r["external_id"] == changed)
    assert stored["data"]["version"] == "0" and customer(qbo, changed)["SyncToken"] == "1"

    # VRTX still holds SyncToken 0; QuickBooks is at 1: Fault 5010, then the push is planned again and sent once more.
    updated = pushed(api, connected, instance, "contact", "update", {**CONTACT, "email": "ada.l@example.com"}, "ada-2")

    assert updated["status"] == "done", updated
    now = customer(qbo, changed)
    assert now["PrimaryEmailAddr"]["Address"] == "ada.l@example.com"
    assert now["PrimaryPhone"]["FreeFormNumber"] == phone_in_quickbooks  # the provider's own change was merged in
    assert now["SyncToken"] == "2"


def test_a_lost_answer_is_resent_with_the_same_requestid_and_writes_once(
    api: TestClient, settings: Settings, qbo: Qbo, instance: DagsterInstance, connected: str
) -> None:
    before = qbo.sandbox.count(qbo.realm, "customers")
    qbo.knobs.lose_write_responses = 1  # applied, then answered 504

    created = pushed(api, connected, instance, "contact", "create", CONTACT, "ada-lost")

    assert created["status"] == "done", created
    assert qbo.sandbox.count(qbo.realm, "customers") == before + 1


def test_void_delete_and_archive_name_the_sync_token_and_pull_back_as_deleted(
    api: TestClient, settings: Settings, qbo: Qbo, instance: DagsterInstance, connected: str
) -> None:
    assert pushed(api, connected, instance, "contact", "create", CONTACT, "c")["status"] == "done"
    invoice = pushed(api, connected, instance, "invoice", "create", INVOICE, "i")
    assert invoice["status"] == "done", invoice
    voided = pushed(api, connected, instance, "invoice", "void", {"id": "crm-inv"}, "i-void")
    assert voided["status"] == "done", voided
    archived = pushed(api, connected, instance, "contact", "archive", {"id": "crm-ada"}, "c-archive")
    assert archived["status"] == "done", archived
    sync(settings, instance, entities=["invoices", "contacts"])
    pulled = {r["external_id"]: r for r in records(api, connected, "invoices")["records"]}
    assert pulled[invoice["external_id"]]["data"]["status"] == "voided" and pulled[invoice["external_id"]]["deleted"]
    deleted = pushed(api, connected, instance, "invoice", "delete", {"id": "crm-inv"}, "i-delete")
    assert deleted["status"] == "done", deleted
    sync(settings, instance, entities=["invoices"])
    tombstone = next(
        r for r in records(api, connected, "invoices")["records"] if r["external_id"] == invoice["external_id"]
    )
    assert tombstone["deleted"] is True and set(tombstone["data"]) == {"external_id", "deleted", "updated_at"}


def test_an_update_naming_a_stale_sync_token_is_a_conflict_not_a_refusal(qbo: Qbo) -> None:
    token = qbo.sandbox.issue_access_token([qbo.realm])
    with httpx.Client() as http:
        client = QuickBooksClient(
            http, base_url=f"{qbo.served.base_url}/v3/company/{{tenant_id}}", governor=RateGovernor(),
            access_token=lambda: token, tenant_id=qbo.realm,
        )  # fmt: skip
        qbo.sandbox.touch(qbo.realm, "customers", ["4"])  # QuickBooks is at SyncToken 1 now
        request = PushRequest(
            entity="contact", operation="update", payload={**CONTACT, "external_id": "4"}, external_id="4",
            idempotency_key="stale-1", settings={}, linked_id=lambda entity, vrtx_id: None, version="0",
        )  # fmt: skip
        assert PROVIDER.pushes is not None
        with pytest.raises(ProviderConflict, match="Stale Object Error"):
            PROVIDER.pushes.push(client, request)
        assert PROVIDER.pushes.push(client, replace(request, version="1")).external_id == "4"

"""``PUSHES.push`` against the Xero sandbox over real HTTP: contacts, invoices (create, update while draft,
approve, void), payments, unlinked references, Xero's 400 as ProviderRejected, and 5xx/429 behaviour."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from providers.base import ProviderConnection, PushOutcome, PushRequest
from providers.errors import ProviderRejected, ProviderUnavailable
from providers.kit.client import ApiClient
from providers.kit.governor import RateGovernor
from providers.kit.pushes import UnlinkedReference
from providers.sandbox_kit.serve import ServedApp
from providers.xero import PROVIDER
from providers.xero.mappers import to_contact
from providers.xero.push import PUSHES
from providers.xero.sandbox import XeroSandbox, XeroSandboxKnobs, create_app
from vrtx_pipelines.records.canonical import content_hash
from vrtx_pipelines.records.store import canonical_json

SETTINGS = {
    "default_sales_account_code": "200",
    "default_tax_type": "",
    "line_amount_types": "Exclusive",
    "invoice_status_on_push": "DRAFT",
}


@dataclass
class Pusher:
    sandbox: XeroSandbox
    app_state: Any
    tenant_id: str
    connection: ProviderConnection
    client: ApiClient  # built from the connection once, as the core builds it for a batch
    http: httpx.Client
    links: dict[tuple[str, str], str] = field(default_factory=dict)
    keys: int = 0

    @property
    def knobs(self) -> XeroSandboxKnobs:
        knobs: XeroSandboxKnobs = self.app_state.sandbox
        return knobs

    def push(
        self, entity: str, operation: str, payload: dict[str, Any], *, key: str | None = None, **settings: str
    ) -> PushOutcome:
        self.keys += 1
        vrtx_id = payload.get("id")
        request = PushRequest(
            entity=entity,
            operation=operation,
            payload=payload,
            external_id=self.links.get((entity, str(vrtx_id))),
            idempotency_key=key or f"push-{self.keys}",
            settings={**SETTINGS, **settings},
            linked_id=lambda e, i: self.links.get((e, i)),
        )
        outcome = PUSHES.push(self.client, request)
        self.links[(entity, str(vrtx_id))] = outcome.external_id
        return outcome

    def get(self, path: str) -> dict[str, Any]:
        answer = self.http.get(
            f"/api.xro/2.0/{path}",
            headers={
                "Authorization": f"Bearer {self.connection.access_token()}",
                "xero-tenant-id": self.tenant_id,
                "Accept": "application/json",
            },
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body


@pytest.fixture
def pusher() -> Iterator[Pusher]:
    sandbox = XeroSandbox(seed=9)
    tenant_id = sandbox.add_organisation("Push Ltd", contacts=10, invoices=10, payments=2, items=3)
    app = create_app(sandbox)
    token = {"value": sandbox.issue_access_token([tenant_id])}

    def refresh() -> str:
        token["value"] = sandbox.issue_access_token([tenant_id])
        return token["value"]

    with ServedApp(app) as served, httpx.Client(timeout=10) as http, httpx.Client(base_url=served.base_url) as raw:
        connection = ProviderConnection(
            http=http,
            url=lambda url: url.replace("https://api.xero.com", served.base_url),
            external_tenant_id=tenant_id,
            access_token=lambda: token["value"],
            refresh_access_token=refresh,
            governor=RateGovernor((), max_concurrent=5),
        )
        assert PROVIDER.client is not None
        yield Pusher(sandbox, app.state, tenant_id, connection, PROVIDER.client(connection), raw)


CONTACT = {
    "id": "c-1",
    "name": "Pushed Ltd",
    "first_name": "Pat",
    "last_name": "Pusher",
    "email": "pat@pushed.example.com",
    "phone": "09 555 1234",
    "addresses": [{"line1": "1 Queen St", "city": "Auckland", "country": "New Zealand"}],
}


def invoice_payload(**fields: Any) -> dict[str, Any]:
    return {
        "id": "i-1",
        "contact_id": "c-1",
        "issue_date": "2026-05-01",
        "due_date": "2026-05-31",
        "currency": "NZD",
        "reference": "PO 77",
        "lines": [{"description": "Widgets", "quantity": "4", "unit_amount": "12.50"}],
        **fields,
    }


def test_contact_create_then_update_by_link(pusher: Pusher) -> None:
    created = pusher.push("contact", "create", CONTACT)
    updated = pusher.push("contact", "upsert", {**CONTACT, "email": "new@pushed.example.com"})

    assert updated.external_id == created.external_id
    stored = pusher.get(f"Contacts/{created.external_id}")["Contacts"][0]
    assert stored["EmailAddress"] == "new@pushed.example.com"
    assert created.canonical is not None and created.canonical["name"] == "Pushed Ltd"
    assert created.canonical["phone"] == "09 555 1234" and created.canonical["addresses"][0]["city"] == "Auckland"
    # What a pull of the written record would store: same hash, same version.
    pulled = canonical_json(to_contact(stored))
    assert updated.remote_hash == content_hash(pulled)
    assert updated.remote_version == pulled["updated_at"]
    assert "pat@" not in str(created.response_sample) and created.response_sample["ContactID"] == created.external_id


def test_invoice_create_update_while_draft_approve_and_void(pusher: Pusher) -> None:
    pusher.push("contact", "create", CONTACT)

    created = pusher.push("invoice", "create", invoice_payload())
    updated = pusher.push("invoice", "update", invoice_payload(reference="PO 78"))
    approved = pusher.push("invoice", "approve", invoice_payload())
    voided = pusher.push("invoice", "void", invoice_payload())

    assert created.canonical is not None and created.canonical["status"] == "draft"
    assert created.canonical["total"] == "57.5" and created.canonical["lines"][0]["account_code"] == "200"
    assert updated.canonical is not None and updated.canonical["reference"] == "PO 78"
    assert approved.canonical is not None and approved.canonical["status"] == "authorised"
    assert voided.canonical is not None and voided.canonical["status"] == "voided"
    assert {created.external_id, updated.external_id, approved.external_id, voided.external_id} == {created.external_id}


def test_payment_against_a_linked_invoice_settles_it(pusher: Pusher) -> None:
    pusher.push("contact", "create", CONTACT)
    invoice = pusher.push("invoice", "create", invoice_payload(), invoice_status_on_push="AUTHORISED")

    payment = pusher.push(
        "payment", "create", {"id": "p-1", "invoice_id": "i-1", "amount": "57.50", "date": "2026-05-10"}
    )

    assert payment.canonical is not None and payment.canonical["invoice_id"] == invoice.external_id
    assert payment.canonical["account_code"] == "090"
    assert pusher.get(f"Invoices/{invoice.external_id}")["Invoices"][0]["Status"] == "PAID"


def test_unlinked_references_fail_at_once_with_a_clear_message(pusher: Pusher) -> None:
    with pytest.raises(UnlinkedReference, match=r"invoice's contact .* is not linked"):
        pusher.push("invoice", "create", invoice_payload())
    with pytest.raises(UnlinkedReference, match="payment's invoice"):
        pusher.push("payment", "create", {"id": "p-9", "invoice_id": "nope", "amount": "1", "date": "2026-05-10"})
    with pytest.raises(UnlinkedReference):
        pusher.push("invoice", "approve", invoice_payload(id="i-unknown"))
    with pytest.raises(UnlinkedReference):
        pusher.push("contact", "update", {**CONTACT, "id": "c-unknown"})
    with pytest.raises(ProviderRejected, match="cannot approve a contact"):
        pusher.push("contact", "approve", CONTACT)


def test_xeros_400_is_provider_rejected_with_its_messages(pusher: Pusher) -> None:
    pusher.push("contact", "create", CONTACT)
    pusher.push("invoice", "create", invoice_payload())

    with pytest.raises(ProviderRejected) as duplicate:
        pusher.push("contact", "create", {**CONTACT, "id": "c-2"})
    with pytest.raises(ProviderRejected) as unpayable:
        pusher.push("payment", "create", {"id": "p-1", "invoice_id": "i-1", "amount": "10", "date": "2026-05-10"})

    assert duplicate.value.status == 400 and duplicate.value.provider_code == "ValidationException"
    assert duplicate.value.message.startswith("The contact name Pushed Ltd is already assigned to another contact.")
    assert duplicate.value.details == [duplicate.value.message]
    assert unpayable.value.message == "Payments can only be made against Authorised documents"


def test_5xx_is_retried_in_call_with_the_same_key_and_writes_once(pusher: Pusher) -> None:
    before = pusher.sandbox.count(pusher.tenant_id, "contacts")
    pusher.knobs.fail_on_write, pusher.knobs.fail_on_write_times = 1, 2
    pusher.push("contact", "create", CONTACT)
    pusher.knobs.lose_write_responses = 1  # written, answer lost: the in-call retry is replayed, not re-run
    pusher.push("contact", "create", {**CONTACT, "id": "c-2", "name": "Second Ltd"})

    assert pusher.sandbox.count(pusher.tenant_id, "contacts") == before + 2


def test_5xx_that_persists_is_provider_unavailable_and_writes_nothing(pusher: Pusher) -> None:
    before = pusher.sandbox.count(pusher.tenant_id, "contacts")
    pusher.knobs.fail_on_write, pusher.knobs.fail_on_write_times = 1, 100

    with pytest.raises(ProviderUnavailable):
        pusher.push("contact", "create", CONTACT)

    assert pusher.sandbox.count(pusher.tenant_id, "contacts") == before


def test_429_waits_retry_after_and_then_writes(pusher: Pusher) -> None:
    pusher.knobs.rate_limit_next, pusher.knobs.retry_after_s = 2, 0

    outcome = pusher.push("contact", "create", CONTACT)

    assert outcome.external_id and pusher.client.stats["rate_limited"] == 2


def test_an_expired_token_is_refreshed_once(pusher: Pusher) -> None:
    pusher.knobs.expire_tokens = True
    assert pusher.push("contact", "create", CONTACT).external_id

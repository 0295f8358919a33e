"""The Xero sandbox's writes over real HTTP: contacts, invoices and payments, Xero's validation errors,
Idempotency-Key replay, fault knobs, incremental visibility, spec validation and the official SDK."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from providers.sandbox_kit.serve import ServedApp
from providers.xero.sandbox import XeroSandbox, XeroSandboxKnobs, create_app
from providers.xero.sandbox.invoicing import HAS_PAYMENTS, NOT_MODIFIABLE

from .test_xero_sandbox import SPECS, Clock

UNIQUE = (
    "The contact name {} is already assigned to another contact. "
    "The contact name must be unique across all active contacts."
)


@dataclass
class Xero:
    sandbox: XeroSandbox
    app_state: Any
    tenant_id: str
    clock: Clock
    http: httpx.Client
    token: str

    @property
    def knobs(self) -> XeroSandboxKnobs:
        knobs: XeroSandboxKnobs = self.app_state.sandbox
        return knobs

    def headers(self, **extra: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.token}",
            "xero-tenant-id": self.tenant_id,
            "Accept": "application/json",
            **extra,
        }

    def put(self, path: str, body: Any, **headers: str) -> httpx.Response:
        return self.http.put(f"/api.xro/2.0/{path}", json=body, headers=self.headers(**headers))

    def post(self, path: str, body: Any, **headers: str) -> httpx.Response:
        return self.http.post(f"/api.xro/2.0/{path}", json=body, headers=self.headers(**headers))

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(f"/api.xro/2.0/{path}", headers=self.headers(**kwargs.pop("headers", {})), **kwargs)

    def contact(self, name: str, **fields: Any) -> dict[str, Any]:
        answer = self.put("Contacts", {"Contacts": [{"Name": name, **fields}]})
        assert answer.status_code == 200, answer.text
        record: dict[str, Any] = answer.json()["Contacts"][0]
        return record

    def invoice(self, contact_id: str, status: str = "DRAFT", **fields: Any) -> dict[str, Any]:
        element = {
            "Type": "ACCREC",
            "Contact": {"ContactID": contact_id},
            "Date": "2026-03-01",
            "DueDate": "2026-03-31",
            "Status": status,
            "LineItems": [{"Description": "Consulting", "Quantity": 2, "UnitAmount": 150.25, "AccountCode": "200"}],
            **fields,
        }
        answer = self.put("Invoices", {"Invoices": [element]})
        assert answer.status_code == 200, answer.text
        record: dict[str, Any] = answer.json()["Invoices"][0]
        return record


@pytest.fixture
def xero() -> Iterator[Xero]:
    clock = Clock()
    sandbox = XeroSandbox(seed=5, clock=clock)
    tenant_id = sandbox.add_organisation("Acme Trading", contacts=20, invoices=40, payments=10, items=5)
    app = create_app(sandbox)
    with ServedApp(app) as served, httpx.Client(base_url=served.base_url, timeout=10) as http:
        yield Xero(sandbox, app.state, tenant_id, clock, http, sandbox.issue_access_token([tenant_id]))


def validation_messages(response: httpx.Response) -> list[str]:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["ErrorNumber"] == 10 and body["Type"] == "ValidationException"
    assert body["Message"] == "A validation exception occurred"
    return [error["Message"] for element in body["Elements"] for error in element["ValidationErrors"]]


# --- contacts ----------------------------------------------------------------------------------------------


def test_put_contacts_creates_a_contact_visible_to_reads_and_incremental_pulls(xero: Xero) -> None:
    before = xero.sandbox.count(xero.tenant_id, "contacts")
    since = "2026-01-01T00:00:00"
    assert xero.get("Contacts", headers={"If-Modified-Since": since}).json()["Contacts"] == []
    xero.clock.advance(5)

    created = xero.contact(
        "Harbour Lights Ltd",
        EmailAddress="accounts@harbour.example.com",
        Phones=[{"PhoneType": "DEFAULT", "PhoneNumber": "555 0101"}],
        Addresses=[{"AddressType": "STREET", "AddressLine1": "1 Quay St", "City": "Auckland"}],
    )

    assert xero.sandbox.count(xero.tenant_id, "contacts") == before + 1
    assert created["ContactStatus"] == "ACTIVE" and created["EmailAddress"] == "accounts@harbour.example.com"
    assert created["UpdatedDateUTC"] == f"/Date({int(xero.clock.now * 1000)}+0000)/"
    assert {a["AddressType"] for a in created["Addresses"]} == {"POBOX", "STREET"}
    assert {p["PhoneType"] for p in created["Phones"]} == {"DDI", "DEFAULT", "FAX", "MOBILE"}
    fetched = xero.get(f"Contacts/{created['ContactID']}").json()["Contacts"][0]
    assert fetched == created
    changed = xero.get("Contacts", headers={"If-Modified-Since": since}).json()["Contacts"]
    assert [c["ContactID"] for c in changed] == [created["ContactID"]]


def test_contact_names_are_unique_across_active_contacts_with_xeros_message(xero: Xero) -> None:
    seeded = xero.get("Contacts", params={"page": 1}).json()["Contacts"][0]
    before = xero.sandbox.count(xero.tenant_id, "contacts")

    clash = xero.put("Contacts", {"Contacts": [{"Name": seeded["Name"].upper()}]})

    assert validation_messages(clash) == [UNIQUE.format(seeded["Name"].upper())]
    assert clash.json()["Elements"][0]["Name"] == seeded["Name"].upper()
    assert xero.sandbox.count(xero.tenant_id, "contacts") == before
    twice = xero.put("Contacts", {"Contacts": [{"Name": "Twin Co"}, {"Name": "twin co"}]})
    assert validation_messages(twice) == [UNIQUE.format("twin co")]
    assert xero.sandbox.count(xero.tenant_id, "contacts") == before  # nothing of a refused batch is saved
    xero.sandbox.archive_contact(xero.tenant_id, seeded["ContactID"])
    assert xero.contact(seeded["Name"])["Name"] == seeded["Name"]  # archived names are free again


def test_contact_validation_errors_name_and_email(xero: Xero) -> None:
    assert validation_messages(xero.put("Contacts", {"Contacts": [{"Name": " "}]})) == [
        "The contact name must be specified."
    ]
    assert validation_messages(xero.put("Contacts", {"Contacts": [{"Name": "X", "EmailAddress": "nope"}]})) == [
        "Email address must be valid."
    ]
    unreadable = xero.http.put("/api.xro/2.0/Contacts", content=b"{not json", headers=xero.headers())
    assert unreadable.status_code == 400 and unreadable.json()["Type"] == "PostDataInvalidException"


def test_post_updates_by_contact_id_creates_without_one_and_archives(xero: Xero) -> None:
    created = xero.contact("Kiwi Bakery")
    xero.clock.advance(2)

    updated = xero.post(
        f"Contacts/{created['ContactID']}",
        {
            "Contacts": [
                {
                    "EmailAddress": "orders@kiwi.example.com",
                    "Phones": [{"PhoneType": "MOBILE", "PhoneNumber": "021 555"}],
                }
            ]
        },
    )
    upserted = xero.post("Contacts", {"Contacts": [{"Name": "Brand New Co"}]})
    archived = xero.post("Contacts", {"Contacts": [{"ContactID": created["ContactID"], "ContactStatus": "ARCHIVED"}]})

    assert updated.status_code == 200, updated.text
    record = updated.json()["Contacts"][0]
    assert record["Name"] == "Kiwi Bakery" and record["EmailAddress"] == "orders@kiwi.example.com"
    assert next(p for p in record["Phones"] if p["PhoneType"] == "MOBILE")["PhoneNumber"] == "021 555"
    assert record["UpdatedDateUTC"] != created["UpdatedDateUTC"]
    assert upserted.status_code == 200 and upserted.json()["Contacts"][0]["ContactID"] != created["ContactID"]
    assert archived.json()["Contacts"][0]["ContactStatus"] == "ARCHIVED"
    active = {c["ContactID"] for c in xero.get("Contacts").json()["Contacts"]}
    assert created["ContactID"] not in active
    missing = xero.post("Contacts/6e1ad3b1-52f9-4c4b-9c53-8f1c5a2b7d10", {"Contacts": [{"Name": "Ghost"}]})
    assert missing.status_code == 404


def test_summarize_errors_false_saves_the_valid_elements_and_echoes_the_others(
    xero: Xero, accounting_spec: OpenAPI
) -> None:
    before = xero.sandbox.count(xero.tenant_id, "contacts")
    answer = xero.http.put(
        "/api.xro/2.0/Contacts",
        params={"summarizeErrors": "false"},
        json={"Contacts": [{"Name": "Good One"}, {"Name": ""}, {"Name": "Good One"}, {"Name": "Good Two"}]},
        headers=xero.headers(),
    )

    assert answer.status_code == 200
    good, nameless, twin, other = answer.json()["Contacts"]
    assert good["ContactID"] and good["Name"] == "Good One" and good["HasValidationErrors"] is False
    assert other["ContactID"] and other["Name"] == "Good Two"
    assert nameless["HasValidationErrors"] is True and nameless["StatusAttributeString"] == "ERROR"
    assert [e["Message"] for e in nameless["ValidationErrors"]] == ["The contact name must be specified."]
    assert [e["Message"] for e in twin["ValidationErrors"]] == [UNIQUE.format("Good One")]
    assert "ContactID" not in twin and "ContactID" not in nameless  # nothing of them was saved
    assert xero.sandbox.count(xero.tenant_id, "contacts") == before + 2
    validate(accounting_spec, "put", "/api.xro/2.0/Contacts", answer)


# --- invoices ----------------------------------------------------------------------------------------------


def test_invoice_create_computes_totals_and_assigns_a_number(xero: Xero) -> None:
    contact = xero.contact("Totals Ltd")
    count = xero.sandbox.count(xero.tenant_id, "invoices")

    exclusive = xero.invoice(contact["ContactID"])
    inclusive = xero.invoice(contact["ContactID"], LineAmountTypes="Inclusive")
    no_tax = xero.invoice(contact["ContactID"], LineAmountTypes="NoTax")

    assert exclusive["InvoiceNumber"] == f"INV-{count + 1:06d}" and exclusive["Status"] == "DRAFT"
    assert (exclusive["SubTotal"], exclusive["TotalTax"], exclusive["Total"]) == (300.5, 45.08, 345.58)
    assert exclusive["AmountDue"] == 345.58 and exclusive["LineItems"][0]["TaxType"] == "OUTPUT2"
    assert (inclusive["SubTotal"], inclusive["TotalTax"], inclusive["Total"]) == (261.3, 39.2, 300.5)
    assert (no_tax["TotalTax"], no_tax["Total"]) == (0.0, 300.5) and no_tax["LineItems"][0]["TaxType"] == "NONE"
    assert exclusive["Contact"]["ContactID"] == contact["ContactID"]
    assert xero.get(f"Invoices/{exclusive['InvoiceNumber']}").json()["Invoices"][0] == exclusive


def test_invoice_validation_errors_are_xeros(xero: Xero) -> None:
    contact = xero.contact("Errors Ltd")
    line = {"Description": "x", "Quantity": 1, "UnitAmount": 10}
    base = {"Type": "ACCREC", "Contact": {"ContactID": contact["ContactID"]}, "LineItems": [line]}

    no_contact = xero.put("Invoices", {"Invoices": [{**base, "Contact": {}}]})
    bad_account = xero.put("Invoices", {"Invoices": [{**base, "LineItems": [{**line, "AccountCode": "999"}]}]})
    bad_tax = xero.put("Invoices", {"Invoices": [{**base, "LineItems": [{**line, "TaxType": "BOGUS"}]}]})
    approved_without_account = xero.put("Invoices", {"Invoices": [{**base, "Status": "AUTHORISED"}]})

    assert validation_messages(no_contact) == ["A Contact must be specified for this type of transaction"]
    assert validation_messages(bad_account) == ["Account code '999' is not a valid code for this document."]
    assert validation_messages(bad_tax) == [
        "The TaxType code BOGUS does not exist or cannot be used for this type of transaction."
    ]
    assert validation_messages(approved_without_account) == ["Account code must be specified"]
    xero.sandbox.archive_contact(xero.tenant_id, contact["ContactID"])
    assert "has been archived" in validation_messages(xero.put("Invoices", {"Invoices": [base]}))[0]


def test_invoice_lifecycle_update_draft_approve_void_and_delete(xero: Xero) -> None:
    contact = xero.contact("Lifecycle Ltd")
    draft = xero.invoice(contact["ContactID"])
    new_lines = [{"Description": "Design", "Quantity": 1, "UnitAmount": 100, "AccountCode": "200"}]

    updated = xero.post(f"Invoices/{draft['InvoiceID']}", {"Invoices": [{"LineItems": new_lines, "Reference": "R1"}]})
    approved = xero.post(f"Invoices/{draft['InvoiceID']}", {"Invoices": [{"Status": "AUTHORISED"}]})
    line_change = xero.post(
        f"Invoices/{draft['InvoiceID']}", {"Invoices": [{"LineItems": [{**new_lines[0], "UnitAmount": 5}]}]}
    )
    voided = xero.post(f"Invoices/{draft['InvoiceID']}", {"Invoices": [{"Status": "VOIDED"}]})
    after_void = xero.post(f"Invoices/{draft['InvoiceID']}", {"Invoices": [{"Reference": "late"}]})

    assert updated.status_code == 200, updated.text
    body = updated.json()["Invoices"][0]
    assert (body["Total"], body["Reference"], body["Status"]) == (115.0, "R1", "DRAFT")
    assert approved.json()["Invoices"][0]["Status"] == "AUTHORISED"
    assert validation_messages(line_change) == [NOT_MODIFIABLE]
    assert voided.json()["Invoices"][0]["Status"] == "VOIDED" and voided.json()["Invoices"][0]["AmountDue"] == 0.0
    assert validation_messages(after_void) == [NOT_MODIFIABLE]
    other = xero.invoice(contact["ContactID"], status="SUBMITTED")
    deleted = xero.post(f"Invoices/{other['InvoiceID']}", {"Invoices": [{"Status": "DELETED"}]})
    assert deleted.json()["Invoices"][0]["Status"] == "DELETED"


# --- payments ----------------------------------------------------------------------------------------------


def test_payments_need_an_authorised_invoice_and_at_most_its_amount_due(xero: Xero) -> None:
    contact = xero.contact("Payer Ltd")
    draft = xero.invoice(contact["ContactID"])
    approved = xero.invoice(contact["ContactID"], status="AUTHORISED")

    def pay(invoice_id: str, amount: float) -> httpx.Response:
        element = {
            "Invoice": {"InvoiceID": invoice_id},
            "Account": {"Code": "090"},
            "Amount": amount,
            "Date": "2026-03-05",
        }
        return xero.put("Payments", {"Payments": [element]})

    assert validation_messages(pay(draft["InvoiceID"], 10)) == [
        "Payments can only be made against Authorised documents"
    ]
    assert validation_messages(pay(approved["InvoiceID"], 1000)) == [
        "Payment amount exceeds the amount outstanding on this document"
    ]
    part = pay(approved["InvoiceID"], 100)
    assert part.status_code == 200, part.text
    after_part = xero.get(f"Invoices/{approved['InvoiceID']}").json()["Invoices"][0]
    assert (after_part["AmountPaid"], after_part["AmountDue"], after_part["Status"]) == (100.0, 245.58, "AUTHORISED")
    rest = pay(approved["InvoiceID"], 245.58).json()["Payments"][0]
    settled = xero.get(f"Invoices/{approved['InvoiceID']}").json()["Invoices"][0]
    assert settled["Status"] == "PAID" and settled["AmountDue"] == 0.0 and len(settled["Payments"]) == 2
    assert rest["Invoice"]["InvoiceID"] == approved["InvoiceID"] and rest["Account"]["Code"] == "090"
    assert xero.get(f"Payments/{rest['PaymentID']}").json()["Payments"][0]["Amount"] == 245.58
    cannot_void = xero.post(f"Invoices/{approved['InvoiceID']}", {"Invoices": [{"Status": "VOIDED"}]})
    assert HAS_PAYMENTS in validation_messages(cannot_void)


# --- idempotency and faults --------------------------------------------------------------------------------


def test_the_same_idempotency_key_replays_the_first_answer_without_writing_again(xero: Xero) -> None:
    before = xero.sandbox.count(xero.tenant_id, "contacts")
    body = {"Contacts": [{"Name": "Once Only Ltd"}]}

    first = xero.put("Contacts", body, **{"Idempotency-Key": "push-1"})
    second = xero.put("Contacts", body, **{"Idempotency-Key": "push-1"})
    reused = xero.put("Contacts", {"Contacts": [{"Name": "Other"}]}, **{"Idempotency-Key": "push-1"})
    too_long = xero.put("Contacts", body, **{"Idempotency-Key": "k" * 129})

    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert xero.sandbox.count(xero.tenant_id, "contacts") == before + 1
    assert reused.status_code == 400 and too_long.status_code == 400
    xero.clock.advance(24 * 3600 + 1)  # retention over: the key is forgotten, the same request writes again
    xero.token = xero.sandbox.issue_access_token([xero.tenant_id])
    assert validation_messages(xero.put("Contacts", body, **{"Idempotency-Key": "push-1"})) == [
        UNIQUE.format("Once Only Ltd")
    ]


def test_a_lost_response_retried_with_its_key_writes_once(xero: Xero) -> None:
    before = xero.sandbox.count(xero.tenant_id, "contacts")
    xero.knobs.lose_write_responses = 1

    lost = xero.put("Contacts", {"Contacts": [{"Name": "Lost Answer Ltd"}]}, **{"Idempotency-Key": "k-lost"})
    retried = xero.put("Contacts", {"Contacts": [{"Name": "Lost Answer Ltd"}]}, **{"Idempotency-Key": "k-lost"})

    assert lost.status_code == 504 and retried.status_code == 200
    assert xero.sandbox.count(xero.tenant_id, "contacts") == before + 1


def test_write_fault_knobs_and_rate_limits(xero: Xero) -> None:
    before = xero.sandbox.count(xero.tenant_id, "contacts")
    xero.knobs.fail_on_write, xero.knobs.fail_on_write_times = 2, 2
    assert xero.put("Contacts", {"Contacts": [{"Name": "First"}]}).status_code == 200
    assert xero.put("Contacts", {"Contacts": [{"Name": "Second"}]}).status_code == 500
    assert xero.put("Contacts", {"Contacts": [{"Name": "Second"}]}).status_code == 500
    assert xero.put("Contacts", {"Contacts": [{"Name": "Second"}]}).status_code == 200
    assert xero.sandbox.count(xero.tenant_id, "contacts") == before + 2
    xero.knobs.rate_limit_next = 1
    limited = xero.put("Contacts", {"Contacts": [{"Name": "Third"}]})
    assert limited.status_code == 429 and limited.headers["Retry-After"]
    assert int(xero.put("Contacts", {"Contacts": [{"Name": "Third"}]}).headers["X-MinLimit-Remaining"]) < 60
    xero.knobs.minute_limit = 1
    assert xero.put("Contacts", {"Contacts": [{"Name": "Fourth"}]}).status_code == 429


def test_writes_need_write_scopes_and_unbuilt_writes_say_so(xero: Xero) -> None:
    assert xero.put("Items", {"Items": [{"Code": "X"}]}).status_code == 501
    stranger = xero.http.put(
        "/api.xro/2.0/Contacts", json={"Contacts": [{"Name": "Y"}]}, headers={"xero-tenant-id": xero.tenant_id}
    )
    assert stranger.status_code == 401


# --- the spec and the SDK ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def accounting_spec() -> OpenAPI:
    return OpenAPI.from_file_path(str(SPECS / "xero-accounting.yaml"), config=Config(spec_validator_cls=None))


def validate(spec: OpenAPI, method: str, path: str, response: httpx.Response) -> None:
    request = MockRequest("https://api.xero.com", method, path, headers={"xero-tenant-id": "x"})
    spec.validate_response(
        request, MockResponse(response.content, status_code=response.status_code, headers=dict(response.headers))
    )


def test_write_responses_validate_against_xeros_accounting_spec(xero: Xero, accounting_spec: OpenAPI) -> None:
    contact = xero.put("Contacts", {"Contacts": [{"Name": "Spec Ltd", "EmailAddress": "a@spec.example.com"}]})
    contact_id = contact.json()["Contacts"][0]["ContactID"]
    updated = xero.post(f"Contacts/{contact_id}", {"Contacts": [{"FirstName": "Ann"}]})
    invoice = xero.put(
        "Invoices",
        {
            "Invoices": [
                {
                    "Type": "ACCREC",
                    "Contact": {"ContactID": contact_id},
                    "Status": "AUTHORISED",
                    "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 50, "AccountCode": "200"}],
                }
            ]
        },
    )
    invoice_id = invoice.json()["Invoices"][0]["InvoiceID"]
    payment = xero.put(
        "Payments", {"Payments": [{"Invoice": {"InvoiceID": invoice_id}, "Account": {"Code": "090"}, "Amount": 10}]}
    )
    refused = xero.put("Contacts", {"Contacts": [{"Name": "Spec Ltd"}]})

    validate(accounting_spec, "put", "/api.xro/2.0/Contacts", contact)
    validate(accounting_spec, "post", f"/api.xro/2.0/Contacts/{contact_id}", updated)
    validate(accounting_spec, "put", "/api.xro/2.0/Invoices", invoice)
    validate(accounting_spec, "put", "/api.xro/2.0/Payments", payment)
    validate(accounting_spec, "put", "/api.xro/2.0/Contacts", refused)


def test_xero_python_sdk_creates_a_contact_and_an_invoice_unchanged(xero: Xero) -> None:
    from xero_python.accounting import AccountingApi, Contacts, Invoices, LineItem
    from xero_python.accounting import Contact as SdkContact
    from xero_python.accounting import Invoice as SdkInvoice
    from xero_python.api_client import ApiClient, Configuration
    from xero_python.api_client.oauth2 import OAuth2Token
    from xero_python.exceptions.http_status_exceptions import BadRequestException

    from providers.xero.sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    token = {"access_token": xero.token, "token_type": "Bearer", "expires_in": 1800, "scope": ["accounting.contacts"]}
    # The SDK keeps its Configuration's OAuth client process-wide: other tests in this process use the demo app.
    client = ApiClient(
        Configuration(oauth2_token=OAuth2Token(client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET)),
        pool_threads=1,
        oauth2_token_getter=lambda: token,
        oauth2_token_saver=lambda new: None,
    )
    api = AccountingApi(client, base_url=f"{xero.http.base_url}/api.xro/2.0")

    created = api.create_contacts(
        xero.tenant_id,
        Contacts(contacts=[SdkContact(name="SDK Made Ltd", email_address="sdk@example.com")]),
        idempotency_key="sdk-1",
    )
    contact = created.contacts[0]
    lines = [LineItem(description="Widget", quantity=Decimal(3), unit_amount=Decimal("19.99"), account_code="200")]
    invoice = SdkInvoice(
        type="ACCREC",
        contact=SdkContact(contact_id=contact.contact_id),
        date=date(2026, 4, 1),
        due_date=date(2026, 4, 30),
        line_items=lines,
        status="AUTHORISED",
    )
    made = api.create_invoices(xero.tenant_id, Invoices(invoices=[invoice])).invoices[0]

    assert contact.name == "SDK Made Ltd" and contact.contact_status == "ACTIVE"
    assert made.status == "AUTHORISED" and made.total == Decimal("68.97") and made.date == date(2026, 4, 1)
    assert made.invoice_number.startswith("INV-") and made.contact.contact_id == contact.contact_id
    with pytest.raises(BadRequestException):
        api.create_contacts(xero.tenant_id, Contacts(contacts=[SdkContact(name="SDK Made Ltd")]))

"""How the core pushes to Xero: one canonical write -> one PUT (create) or POST (update) through ``XeroClient``.

API docs: https://developer.xero.com/documentation/api/accounting/contacts (PUT/POST Contacts),
https://developer.xero.com/documentation/api/accounting/invoices (PUT/POST Invoices),
https://developer.xero.com/documentation/api/accounting/payments (PUT Payments)

- A linked record is updated (POST), an unlinked one created (PUT), as the kit's ``create_or_update`` rules.
- Invoices are created with the connection's ``invoice_status_on_push``; an update keeps the invoice's status and
  ``approve``/``void``/``delete`` only change it (Status AUTHORISED / VOIDED / DELETED), as Xero's approval,
  voiding and deleting work. ``archive`` of a contact is Xero's only contact "delete" (ContactStatus ARCHIVED).
  These status changes need only the record's link, not its content.
- References (an invoice's contact, a payment's invoice) are VRTX ids resolved through the links (``linked``).
- Every write sends ``Idempotency-Key: request.idempotency_key``: the client retries it in-call, and the core's
  retries across runs can never write twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from providers.base import PushOutcome, PushRequest, PushSpec
from providers.kit import pushes
from providers.kit.client import ApiClient
from vrtx_pipelines.records.canonical import Contact, Invoice, InvoicePayment

from .mappers import to_contact, to_invoice, to_payment
from .push_mappers import contact_element, invoice_element, payment_element


def push(client: ApiClient, request: PushRequest) -> PushOutcome:
    model = pushes.canonical_model(PUSHES, request, "Xero")
    if (request.entity, request.operation) in _STATUS_WRITES:
        return _change_status(client, request)
    record = pushes.validated(model, request)
    if isinstance(record, Contact):
        envelope = _save(client, "Contacts", contact_element(record), request)
        return _outcome(envelope, "Contacts", "ContactID", to_contact)
    if isinstance(record, Invoice):
        envelope = _push_invoice(client, record, request)
        return _outcome(envelope, "Invoices", "InvoiceID", to_invoice)
    assert isinstance(record, InvoicePayment)
    invoice_id = pushes.linked(request, "invoice", record.invoice_id, "payment's invoice", "Xero")
    element = pushes.with_overrides(payment_element(record, invoice_id, request.settings), request.overrides)
    envelope = client.write("PUT", "Payments", {"Payments": [element]}, idempotency_key=request.idempotency_key)
    return _outcome(envelope, "Payments", "PaymentID", to_payment)


# (entity, operation) -> (endpoint, id field, status field, status): writes that only change a record's status.
# Xero deletes no contact (it archives them) and deletes only draft or submitted invoices (an approved one is
# voided); its own validation message explains a refusal.
_STATUS_WRITES = {
    ("contact", "archive"): ("Contacts", "ContactID", "ContactStatus", "ARCHIVED"),
    ("invoice", "approve"): ("Invoices", "InvoiceID", "Status", "AUTHORISED"),
    ("invoice", "void"): ("Invoices", "InvoiceID", "Status", "VOIDED"),
    ("invoice", "delete"): ("Invoices", "InvoiceID", "Status", "DELETED"),
}
_MAPPERS: dict[str, Callable[[Mapping[str, Any]], BaseModel]] = {"Contacts": to_contact, "Invoices": to_invoice}


def _change_status(client: ApiClient, request: PushRequest) -> PushOutcome:
    endpoint, id_field, status_field, status = _STATUS_WRITES[(request.entity, request.operation)]
    linked_id = pushes.require_link(request, "Xero")
    body = {endpoint: [{id_field: linked_id, status_field: status}]}
    envelope = client.write("POST", f"{endpoint}/{linked_id}", body, idempotency_key=request.idempotency_key)
    return _outcome(envelope, endpoint, id_field, _MAPPERS[endpoint])


def _push_invoice(client: ApiClient, invoice: Invoice, request: PushRequest) -> dict[str, Any]:
    contact_id = pushes.linked(request, "contact", invoice.contact_id, "invoice's contact", "Xero")
    element = invoice_element(invoice, contact_id, request.settings)
    if not request.external_id:
        element["Status"] = str(request.settings.get("invoice_status_on_push") or "DRAFT")
    return _save(client, "Invoices", element, request)


def _save(client: ApiClient, endpoint: str, element: dict[str, Any], request: PushRequest) -> dict[str, Any]:
    # The tenant's push mappings have the last word.
    body = {endpoint: [pushes.with_overrides(element, request.overrides)]}
    key = request.idempotency_key
    return pushes.create_or_update(
        request,
        "Xero",
        create=lambda: client.write("PUT", endpoint, body, idempotency_key=key),
        update=lambda linked_id: client.write("POST", f"{endpoint}/{linked_id}", body, idempotency_key=key),
    )


def _outcome(
    envelope: Mapping[str, Any], key: str, id_field: str, mapper: Callable[[Mapping[str, Any]], BaseModel]
) -> PushOutcome:
    record = pushes.written_record(envelope, key, "Xero")
    status = str(record.get("Status") or record.get("ContactStatus") or "")
    sample = {"envelope_id": str(envelope.get("Id", "")), id_field: str(record[id_field]), "Status": status}
    return pushes.outcome(str(record[id_field]), mapper(record), record, sample)


PUSHES = PushSpec(
    entities={
        "contact": (Contact, frozenset({"create", "update", "upsert", "archive"})),
        "invoice": (Invoice, frozenset({"create", "update", "upsert", "approve", "void", "delete"})),
        "payment": (InvoicePayment, frozenset({"create"})),
    },
    push=push,
)

"""How the core pushes to Xero: one canonical write -> one PUT (create) or POST (update) through ``XeroClient``.

API docs: https://developer.xero.com/documentation/api/accounting/contacts (PUT/POST Contacts),
https://developer.xero.com/documentation/api/accounting/invoices (PUT/POST Invoices),
https://developer.xero.com/documentation/api/accounting/payments (PUT Payments)

- A linked record (``request.external_id``) is updated, an unlinked one created, whatever the operation's name
  (create, update or upsert): a retried create of a record that got linked meanwhile never makes a second one.
  ``update`` of an unlinked record, and ``approve``/``void`` of an unlinked invoice, are refused.
- Invoices are created with the connection's ``invoice_status_on_push``; an update keeps the invoice's status and
  ``approve``/``void``/``delete`` only change it (Status AUTHORISED / VOIDED / DELETED), as Xero's approval,
  voiding and deleting work. ``archive`` of a contact is Xero's only contact "delete" (ContactStatus ARCHIVED).
  These status changes need only the record's link, not its content.
- References (an invoice's contact, a payment's invoice) are VRTX ids resolved through ``request.linked_id``: an
  unlinked one fails the push at once (``UnlinkedReference``, a ``ProviderRejected``), since retrying cannot help
  until the referenced record has been pushed.
- Every write sends ``Idempotency-Key: request.idempotency_key``, so the client retries 5xx in-call as well and the
  core's retries across runs can never write twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from providers.base import PullConnection, PushOutcome, PushRequest, PushSpec
from providers.errors import ProviderRejected
from vrtx_pipelines.canonical import Contact, Invoice, InvoicePayment

from .mappers import to_contact, to_invoice, to_payment
from .pulls import API_BASE_URL
from .push_mappers import contact_element, invoice_element, payment_element, with_overrides

if TYPE_CHECKING:
    from .client import XeroClient


class UnlinkedReference(ProviderRejected):
    """The pushed record names a VRTX record that has no Xero counterpart yet."""

    code = "unlinked_reference"


def push(connection: PullConnection, request: PushRequest) -> PushOutcome:
    operations = PUSHES.entities.get(request.entity)
    if operations is None or request.operation not in operations[1]:
        raise ProviderRejected(f"Xero cannot {request.operation} a {request.entity}.")
    if request.operation in _STATUS_CHANGES:
        return _change_status(_client(connection), request)
    try:
        model = operations[0].model_validate(request.payload)
    except ValidationError as exc:
        raise ProviderRejected(f"The {request.entity} is not valid: {exc.error_count()} field error(s).") from exc
    client = _client(connection)
    if isinstance(model, Contact):
        envelope = _save(client, "Contacts", contact_element(model), request)
        record = _first(envelope, "Contacts")
        return _outcome(record, "ContactID", to_contact(record), envelope)
    if isinstance(model, Invoice):
        envelope = _push_invoice(client, model, request)
        record = _first(envelope, "Invoices")
        return _outcome(record, "InvoiceID", to_invoice(record), envelope)
    assert isinstance(model, InvoicePayment)
    invoice_id = _linked(request, "invoice", model.invoice_id, "payment's invoice")
    element = with_overrides(payment_element(model, invoice_id, request.settings), request.overrides)
    envelope = client.write("PUT", "Payments", {"Payments": [element]}, idempotency_key=request.idempotency_key)
    record = _first(envelope, "Payments")
    return _outcome(record, "PaymentID", to_payment(record), envelope)


# (entity, operation) -> (endpoint, id field, status field, status): writes that only change a record's status.
# Xero deletes no contact (it archives them) and deletes only draft or submitted invoices (an approved one is
# voided); its own validation message explains a refusal.
_STATUS_CHANGES = {"archive", "approve", "void", "delete"}
_STATUS_WRITES = {
    ("contact", "archive"): ("Contacts", "ContactID", "ContactStatus", "ARCHIVED"),
    ("invoice", "approve"): ("Invoices", "InvoiceID", "Status", "AUTHORISED"),
    ("invoice", "void"): ("Invoices", "InvoiceID", "Status", "VOIDED"),
    ("invoice", "delete"): ("Invoices", "InvoiceID", "Status", "DELETED"),
}
_MAPPERS: dict[str, Callable[[Mapping[str, Any]], BaseModel]] = {"Contacts": to_contact, "Invoices": to_invoice}


def _change_status(client: XeroClient, request: PushRequest) -> PushOutcome:
    endpoint, id_field, status_field, status = _STATUS_WRITES[(request.entity, request.operation)]
    if not request.external_id:
        raise UnlinkedReference(f"The {request.entity} cannot be {request.operation}d: it is not linked to Xero yet.")
    body = {endpoint: [{id_field: request.external_id, status_field: status}]}
    envelope = client.write("POST", f"{endpoint}/{request.external_id}", body, idempotency_key=request.idempotency_key)
    record = _first(envelope, endpoint)
    return _outcome(record, id_field, _MAPPERS[endpoint](record), envelope)


def _push_invoice(client: XeroClient, invoice: Invoice, request: PushRequest) -> dict[str, Any]:
    contact_id = _linked(request, "contact", invoice.contact_id, "invoice's contact")
    element = invoice_element(invoice, contact_id, request.settings)
    if not request.external_id:
        element["Status"] = str(request.settings.get("invoice_status_on_push") or "DRAFT")
    return _save(client, "Invoices", element, request)


def _save(client: XeroClient, endpoint: str, element: dict[str, Any], request: PushRequest) -> dict[str, Any]:
    element = with_overrides(element, request.overrides)  # the tenant's push mappings have the last word
    if request.external_id:
        path = f"{endpoint}/{request.external_id}"
        return client.write("POST", path, {endpoint: [element]}, idempotency_key=request.idempotency_key)
    if request.operation == "update":
        raise UnlinkedReference(f"The {request.entity} cannot be updated: it is not linked to Xero yet.")
    return client.write("PUT", endpoint, {endpoint: [element]}, idempotency_key=request.idempotency_key)


def _linked(request: PushRequest, entity: str, vrtx_id: str, what: str) -> str:
    external_id = request.linked_id(entity, vrtx_id)
    if not external_id:
        raise UnlinkedReference(
            f"The {what} (VRTX id {vrtx_id}) is not linked to a Xero {entity} yet: push the {entity} first."
        )
    return external_id


def _first(envelope: Mapping[str, Any], key: str) -> dict[str, Any]:
    records = envelope.get(key)
    if not isinstance(records, list) or not records or not isinstance(records[0], dict):
        raise ProviderRejected(f"Xero's answer has no {key} record.", status=200)
    return records[0]


def _outcome(record: Mapping[str, Any], id_field: str, model: BaseModel, envelope: Mapping[str, Any]) -> PushOutcome:
    canonical: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
    updated = canonical.get("updated_at")
    sample = {
        "envelope_id": str(envelope.get("Id", "")),
        id_field: str(record[id_field]),
        "Status": str(record.get("Status") or record.get("ContactStatus") or ""),
        "UpdatedDateUTC": updated,
    }
    return PushOutcome(
        external_id=str(record[id_field]),
        remote_version=str(updated) if updated is not None else None,
        remote_hash=content_hash(canonical),
        canonical=canonical,
        raw=record,
        response_sample=sample,
    )


def content_hash(data: Mapping[str, Any]) -> str:
    """The hash a pull of the same record gives (``vrtx_pipelines.records.content_hash``): no false change."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _client(connection: PullConnection) -> XeroClient:
    if not connection.external_tenant_id:
        raise ProviderRejected("The Xero connection has no organisation chosen.")
    from .client import XeroClient  # as in pulls.make_source: loading the provider must not load the governor

    client = XeroClient(
        connection.http,
        base_url=connection.url(API_BASE_URL),
        tenant_id=connection.external_tenant_id,
        access_token=connection.access_token,
        on_unauthorized=connection.refresh_access_token,
        governor=connection.governor,
    )
    connection.stats = lambda: {"api_calls": client.api_calls, "rate_limited": client.rate_limited}
    return client


PUSHES = PushSpec(
    entities={
        "contact": (Contact, frozenset({"create", "update", "upsert", "archive"})),
        "invoice": (Invoice, frozenset({"create", "update", "upsert", "approve", "void", "delete"})),
        "payment": (InvoicePayment, frozenset({"create"})),
    },
    push=push,
)

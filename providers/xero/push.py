"""How the core pushes to Xero through ``XeroClient``: one canonical write -> one PUT (create) or POST (update).

API docs: https://developer.xero.com/documentation/api/accounting/ contacts, invoices, payments, requests-and-responses

- A linked record is updated (POST), an unlinked one created (PUT), as the kit's ``create_or_update`` rules;
  references (an invoice's contact, a payment's invoice) are VRTX ids resolved through the links (``linked``).
- Invoices are created with the connection's ``invoice_status_on_push``; an update keeps the invoice's status and
  ``approve``/``void``/``delete`` only change it (AUTHORISED / VOIDED / DELETED), as Xero's approval, voiding and
  deleting work; ``archive`` is Xero's only contact "delete" (ARCHIVED). These need only the record's link.
- Every write sends ``Idempotency-Key``: the client retries it in-call, and the core's retries never write twice.
- ``push_many``: up to 50 contact creates in one PUT, each element answered in order (a refused one with its errors).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from pydantic import BaseModel

from providers.base import PushOutcome, PushRequest, PushResult, PushSpec
from providers.kit import pushes
from providers.kit.client import ApiClient, ErrorWords
from providers.kit.values import records
from vrtx_pipelines.records.canonical import Contact, Invoice, InvoicePayment

from .mappers import to_contact, to_invoice, to_payment
from .push_mappers import contact_element, invoice_element, payment_element


def push(client: ApiClient, request: PushRequest) -> PushOutcome:
    pushes.canonical_model(PUSHES, request, "Xero")  # refuses what Xero does not take, before anything else
    endpoint, id_field, _mapper = _ENDPOINTS[request.entity]
    if (change := _STATUS_WRITES.get((request.entity, request.operation))) is not None:
        linked_id = pushes.require_link(request, "Xero")
        body, path = {endpoint: [{id_field: linked_id, change[0]: change[1]}]}, f"{endpoint}/{linked_id}"
    else:
        body = {endpoint: [_element(request)]}
        path = pushes.create_or_update(request, "Xero", lambda: endpoint, lambda linked_id: f"{endpoint}/{linked_id}")
        path = endpoint if request.entity == "payment" else path  # only created: POST Payments/{id} deletes one
    envelope = client.write("PUT" if path == endpoint else "POST", path, body, idempotency_key=request.idempotency_key)
    return _outcome(envelope, request.entity)


def push_many(client: ApiClient, requests: Sequence[PushRequest], key: str) -> list[PushResult]:
    endpoint, envelope = _ENDPOINTS[requests[0].entity][0], {}

    def send(elements: list[dict[str, Any]]) -> list[Mapping[str, Any]]:
        envelope.update(client.write("PUT", endpoint, {endpoint: elements}, idempotency_key=key, params=_PER_ELEMENT))
        return records(envelope.get(endpoint))

    def refused(record: Mapping[str, Any]) -> ErrorWords | None:
        flagged = record.get("HasValidationErrors") or record.get("ValidationErrors")
        return client.error_words({"Elements": [record]}) if flagged else None  # a 400's words for the element

    written = partial(_outcome, envelope, requests[0].entity)
    return pushes.batch_results(requests, _element, send, refused, written, "Xero")


_PER_ELEMENT = {"summarizeErrors": "false"}  # 200 with each element's errors, the valid ones saved
# entity -> (endpoint, id field, the pull's mapper): a write's answer is the record as a pull reads it.
_ENDPOINTS: dict[str, tuple[str, str, Callable[[Mapping[str, Any]], BaseModel]]] = {
    "contact": ("Contacts", "ContactID", to_contact),
    "invoice": ("Invoices", "InvoiceID", to_invoice),
    "payment": ("Payments", "PaymentID", to_payment),
}
# (entity, operation) -> (field, status): writes that only change a record's status; Xero's words explain a refusal.
_STATUS_WRITES = {
    ("contact", "archive"): ("ContactStatus", "ARCHIVED"),
    ("invoice", "approve"): ("Status", "AUTHORISED"),
    ("invoice", "void"): ("Status", "VOIDED"),
    ("invoice", "delete"): ("Status", "DELETED"),
}


def _element(request: PushRequest) -> dict[str, Any]:
    """The request element of a write, the tenant's push mappings having the last word."""
    record = pushes.validated(pushes.canonical_model(PUSHES, request, "Xero"), request)
    if isinstance(record, Contact):
        element = contact_element(record)
    elif isinstance(record, Invoice):
        contact_id = pushes.linked(request, "contact", record.contact_id, "invoice's contact", "Xero")
        element = invoice_element(record, contact_id, request.settings)
        if not request.external_id:
            element["Status"] = str(request.settings.get("invoice_status_on_push") or "DRAFT")
    else:
        assert isinstance(record, InvoicePayment)
        invoice_id = pushes.linked(request, "invoice", record.invoice_id, "payment's invoice", "Xero")
        element = payment_element(record, invoice_id, request.settings)
    return pushes.with_overrides(element, request.overrides)


def _outcome(envelope: Mapping[str, Any], entity: str, record: Mapping[str, Any] | None = None) -> PushOutcome:
    endpoint, id_field, mapper = _ENDPOINTS[entity]
    record = record if record is not None else pushes.written_record(envelope, endpoint, "Xero")
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
    batched_creates={"contact": 50},  # Xero's advice: at most 50 elements a request
    push_many=push_many,
)

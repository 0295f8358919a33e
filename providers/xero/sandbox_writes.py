"""Accounting API 2.0 writes: request bodies to validated changes, Xero's error bodies, and Idempotency-Key replay.

API docs: https://developer.xero.com/documentation/api/accounting/contacts (PUT/POST),
https://developer.xero.com/documentation/api/accounting/invoices, .../payments,
https://developer.xero.com/documentation/api/accounting/requests-and-responses (summarizeErrors, Idempotency-Key).

A body is ``{"Contacts": [...]}`` (or one bare object, as some clients send); each element is validated in turn and
committed only when the whole request is valid: Xero's default answer to any invalid element is one 400
``ValidationException`` naming every element (with ``summarizeErrors=false`` it is 200, valid elements saved, the
others echoed with their ``ValidationErrors``). Where Xero's exact words were not found they are marked "guess".
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from providers.xero import sandbox_contacts as contacts
from providers.xero import sandbox_invoicing as invoicing
from providers.xero.sandbox_accounting import NOT_FOUND_TEXT, Answer
from providers.xero.sandbox_org import Organisation
from providers.xero.sandbox_store import Record

IDEMPOTENCY_RETENTION_S = 24 * 3600.0
MAX_IDEMPOTENCY_KEY = 128  # spec parameter idempotencyKey: "128 character max"
# Write scopes per entity: the broad 2018 scope and the 2026 granular one (reference "Granular scopes").
WRITE_SCOPES: dict[str, frozenset[str]] = {
    "contacts": frozenset({"accounting.contacts"}),
    "invoices": frozenset({"accounting.transactions", "accounting.invoices"}),
    "payments": frozenset({"accounting.transactions", "accounting.payments"}),
}
# Path segment -> (entity, envelope key, ID field).
WRITABLE = {
    "contacts": ("contacts", "Contacts", "ContactID"),
    "invoices": ("invoices", "Invoices", "InvoiceID"),
    "payments": ("payments", "Payments", "PaymentID"),
}

Commit = Callable[[], Record]
Prepared = Commit | list[str]  # a commit to run, or the element's validation messages


@dataclass
class _Stored:
    fingerprint: str
    answer: Answer
    stored_at: float


@dataclass
class IdempotencyStore:
    """Answers already given, by (app, organisation, key). Only answers from requests that ran are kept (2xx and
    400): a 429 or 5xx did nothing, so a retry with the same key must run it for real."""

    entries: dict[tuple[str, str, str], _Stored] = field(default_factory=dict)

    def replay(self, scope: tuple[str, str, str], fingerprint: str, now: float) -> Answer | None:
        self._expire(now)
        stored = self.entries.get(scope)
        if stored is None:
            return None
        if stored.fingerprint != fingerprint:
            # Guess: Xero documents no answer for a key reused on another request; refuse it rather than replay.
            body = {
                "ErrorNumber": 10,
                "Type": "ValidationException",
                "Message": "A validation exception occurred",
                "Elements": [{"ValidationErrors": [{"Message": "Idempotency-Key was used for a different request"}]}],
            }
            return Answer(400, body)
        return stored.answer

    def keep(self, scope: tuple[str, str, str], fingerprint: str, answer: Answer, now: float) -> None:
        if answer.status < 300 or answer.status == 400:
            self.entries[scope] = _Stored(fingerprint, answer, now)

    def _expire(self, now: float) -> None:
        stale = [k for k, v in self.entries.items() if v.stored_at <= now - IDEMPOTENCY_RETENTION_S]
        for key in stale:
            del self.entries[key]


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    return hashlib.sha256(b"\n".join([method.encode(), path.lower().encode(), query.encode(), body])).hexdigest()


def write(
    org: Organisation,
    names: contacts.ContactNames,
    resource: str,
    record_id: str | None,
    body: bytes,
    params: Mapping[str, str],
    envelope: dict[str, Any],
) -> Answer:
    """One PUT/POST, with the organisation's lock held by the caller."""
    entity, key, id_field = WRITABLE[resource]
    try:
        decoded = json.loads(body or b"null", parse_float=Decimal)
    except ValueError as exc:
        return _post_data_invalid(f"JSON request body could not be read, Error: {exc}")
    elements = _elements(decoded, key)
    if elements is None:
        return _post_data_invalid(f"The request body must be an object with a {key} list")
    if record_id is not None:
        if org.index_of(entity, record_id) is None:
            return Answer(404, NOT_FOUND_TEXT)
        if entity == "payments":  # POST /Payments/{id} only deletes a payment: not built here
            return Answer(404, NOT_FOUND_TEXT)
        elements = [{**element, id_field: record_id} for element in elements[:1]]
    summarize = params.get("summarizeErrors", "true").lower() != "false"
    prepared: list[Prepared] = []
    batch = contacts.Batch()
    for element in elements:
        if entity == "contacts":
            prepared.append(contacts.prepare(org, names, element, batch))
        elif entity == "invoices":
            prepared.append(invoicing.prepare_invoice(org, element))
        else:
            prepared.append(invoicing.prepare_payment(org, element))
    failed = any(isinstance(p, list) for p in prepared)
    if failed and summarize:
        return Answer(400, validation_exception([_with_errors(e, p) for e, p in zip(elements, prepared, strict=True)]))
    written: list[Record] = []
    for element, outcome in zip(elements, prepared, strict=True):
        if isinstance(outcome, list):
            written.append({**_with_errors(element, outcome), "StatusAttributeString": "ERROR"})
        else:
            written.append(outcome())
    return Answer(200, {**envelope, key: written})


def validation_exception(elements: list[dict[str, Any]]) -> dict[str, Any]:
    """Xero's 400 body (reference "Errors"; spec ``Error``/``Element``/``ValidationError``)."""
    return {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": elements,
    }


def _with_errors(element: Mapping[str, Any], outcome: Prepared) -> dict[str, Any]:
    errors = outcome if isinstance(outcome, list) else []
    echoed = {k: _jsonable(v) for k, v in element.items() if k != "ValidationErrors"}
    return {**echoed, "ValidationErrors": [{"Message": message} for message in errors]}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _elements(decoded: Any, key: str) -> list[dict[str, Any]] | None:
    if not isinstance(decoded, dict):
        return None
    found = next((v for k, v in decoded.items() if k.lower() == key.lower()), None)
    if found is None:
        return [decoded] if decoded else None
    if not isinstance(found, list) or not all(isinstance(e, dict) for e in found):
        return None
    return found


def _post_data_invalid(message: str) -> Answer:
    # Xero's answer to a body it cannot read (seen in the wild: ErrorNumber 14, PostDataInvalidException).
    return Answer(400, {"ErrorNumber": 14, "Type": "PostDataInvalidException", "Message": message})


def new_envelope(provider_name: str, now_ms: int) -> dict[str, Any]:
    return {"Id": str(uuid.uuid4()), "Status": "OK", "ProviderName": provider_name, "DateTimeUTC": f"/Date({now_ms})/"}

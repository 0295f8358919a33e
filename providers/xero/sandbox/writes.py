"""Accounting API 2.0 writes: request bodies to validated changes, Xero's error bodies, and Idempotency-Key replay.

API docs: https://developer.xero.com/documentation/api/accounting/contacts (PUT/POST),
https://developer.xero.com/documentation/api/accounting/invoices, .../payments,
https://developer.xero.com/documentation/api/accounting/requests-and-responses (summarizeErrors, Idempotency-Key).

A body is ``{"Contacts": [...]}`` (or one bare object, as some clients send); each element is validated in turn and
committed only when the whole request is valid: Xero's default answer to any invalid element is one 400
``ValidationException`` naming every element (with ``summarizeErrors=false`` it is 200, valid elements saved, the
others echoed with their ``ValidationErrors``). Where Xero's exact words were not found they are marked "guess".

Contacts (https://developer.xero.com/documentation/api/accounting/contacts) are matched by ContactID (in the path or
the body); without one a contact is created. Names must be unique across active contacts (Xero's message below is
its own). ``IsCustomer``/``IsSupplier`` are read-only in Xero (set by transactions), so they are ignored on input.
Addresses and phones are merged by their type, as Xero keeps one of each. Invoices and payments: ``invoicing``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from typing import Any

import providers.xero.sandbox.invoicing as invoicing
from providers.sandbox_kit.store import Record
from providers.sandbox_kit.writes import (
    Prepared,
    batch_elements,
    commit_all,
    decode,
    jsonable,
    merge_by,
    merge_text,
    prepare_all,
    text,
)
from providers.xero.sandbox.org import Organisation, contact_name_key
from providers.xero.sandbox.reads import NOT_FOUND_TEXT, Answer
from providers.xero.sandbox.records import new_contact

MAX_IDEMPOTENCY_KEY = 128  # spec parameter idempotencyKey: "128 character max"
# Path segment -> (entity, envelope key, ID field, write scopes: the broad 2018 one and the 2026 granular one).
WRITABLE = {
    "contacts": ("contacts", "Contacts", "ContactID", frozenset({"accounting.contacts"})),
    "invoices": ("invoices", "Invoices", "InvoiceID", frozenset({"accounting.transactions", "accounting.invoices"})),
    "payments": ("payments", "Payments", "PaymentID", frozenset({"accounting.transactions", "accounting.payments"})),
}


def remembered(answer: Answer) -> bool:
    """Which answers an Idempotency-Key replays: those of requests that ran (2xx, and 400 refusals). A 429 or 5xx
    did nothing, so a retry with the same key must run for real."""
    return answer.status < 300 or answer.status == 400


def key_reused() -> Answer:
    # Guess: Xero documents no answer for a key reused on another request; refuse it rather than replay.
    message = "Idempotency-Key was used for a different request"
    return Answer(400, validation_exception([{"ValidationErrors": [{"Message": message}]}]))


def write(
    org: Organisation, resource: str, record_id: str | None, body: bytes, params: Mapping[str, str], envelope: Record
) -> Answer:
    """One PUT/POST, with the organisation's lock held by the caller."""
    entity, key, id_field, _ = WRITABLE[resource]
    try:
        decoded = decode(body)
    except ValueError as exc:
        return _post_data_invalid(f"JSON request body could not be read, Error: {exc}")
    elements = batch_elements(decoded, key)
    if elements is None:
        return _post_data_invalid(f"The request body must be an object with a {key} list")
    if record_id is not None:
        if org.index_of(entity, record_id) is None:
            return Answer(404, NOT_FOUND_TEXT)
        if entity == "payments":  # POST /Payments/{id} only deletes a payment: not built here
            return Answer(404, NOT_FOUND_TEXT)
        elements = [{**element, id_field: record_id} for element in elements[:1]]
    summarize = params.get("summarizeErrors", "true").lower() != "false"
    batch: dict[str, str] = {}
    prepare: Callable[[Organisation, Record], Prepared] = {
        "contacts": lambda org, element: prepare_contact(org, element, batch),
        "invoices": invoicing.prepare_invoice,
        "payments": invoicing.prepare_payment,
    }[entity]
    prepared = prepare_all(elements, lambda element: prepare(org, element))
    written = commit_all(elements, prepared, partial=not summarize, refused=_refused)
    if written is None:
        return Answer(400, validation_exception([_with_errors(e, p) for e, p in zip(elements, prepared, strict=True)]))
    return Answer(200, {**envelope, key: written})


def validation_exception(elements: list[dict[str, Any]]) -> dict[str, Any]:
    """Xero's 400 body (reference "Errors"; spec ``Error``/``Element``/``ValidationError``)."""
    return {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": elements,
    }


def _refused(element: dict[str, Any], errors: list[str]) -> Record:
    """An element ``summarizeErrors=false`` saved nothing of: echoed with its messages, flagged as the spec's
    examples flag one (``HasValidationErrors: true``, ``StatusAttributeString: ERROR``)."""
    return {**_with_errors(element, errors), "HasValidationErrors": True, "StatusAttributeString": "ERROR"}


def _with_errors(element: Mapping[str, Any], outcome: Prepared) -> dict[str, Any]:
    errors = outcome if isinstance(outcome, list) else []
    echoed = {k: jsonable(v) for k, v in element.items() if k != "ValidationErrors"}
    return {**echoed, "ValidationErrors": [{"Message": message} for message in errors]}


def _post_data_invalid(message: str) -> Answer:
    # Xero's answer to a body it cannot read (seen in the wild: ErrorNumber 14, PostDataInvalidException).
    return Answer(400, {"ErrorNumber": 14, "Type": "PostDataInvalidException", "Message": message})


# --- contacts --------------------------------------------------------------------------------------------

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TEXT_FIELDS = (
    "Name", "FirstName", "LastName", "EmailAddress", "ContactNumber", "AccountNumber", "TaxNumber",
    "BankAccountDetails", "DefaultCurrency",
)  # fmt: skip
_ADDRESS_FIELDS = (
    "AddressLine1", "AddressLine2", "AddressLine3", "AddressLine4", "City", "Region", "PostalCode", "Country",
    "AttentionTo",
)  # fmt: skip
_STATUSES = frozenset({"ACTIVE", "ARCHIVED"})


def prepare_contact(org: Organisation, element: dict[str, Any], batch: dict[str, str]) -> Prepared:
    """The commit of one contact element, or its validation messages. ``batch``: the names claimed by earlier
    elements of the same request, not stored yet (name key -> their ContactID, "" for a new contact)."""
    table = org.tables["contacts"]
    contact_id = text(element.get("ContactID"))
    index = org.index_of("contacts", contact_id) if contact_id else None
    if contact_id and index is None:
        return ["The contact could not be found."]  # guess at Xero's words for an unknown ContactID
    current = table.record(index) if index is not None else None
    errors: list[str] = []
    name = text(element["Name"]) if "Name" in element else (current or {}).get("Name")
    status = text(element.get("ContactStatus")) or (current or {}).get("ContactStatus") or "ACTIVE"
    if not name:
        errors.append("The contact name must be specified.")  # guess
    elif status == "ACTIVE":
        own_id = current["ContactID"] if current is not None else None
        if _active_namesake(org, name, own_id) or batch.get(contact_name_key(name), own_id) != own_id:
            errors.append(
                f"The contact name {name} is already assigned to another contact. "
                "The contact name must be unique across all active contacts."
            )
    if status not in _STATUSES:
        errors.append(f"ContactStatus {status} is not valid.")  # guess
    email = text(element.get("EmailAddress"))
    if email and not _EMAIL.match(email):
        errors.append("Email address must be valid.")
    if errors:
        return errors
    assert name is not None
    batch[contact_name_key(name)] = current["ContactID"] if current is not None else ""

    def commit() -> Record:
        now = org.stamp()
        target = index if index is not None else table.next_index
        base = copy.deepcopy(current) if current is not None else new_contact(table.id_of(target))
        record = _merged(base, element)
        record.update(Name=name, ContactStatus=status)
        org.save("contacts", target, record, now)
        org.changed()
        return record

    return commit


def _active_namesake(org: Organisation, name: str, own_id: str | None) -> bool:
    others = (org.index_of("contacts", other) for other in org.contact_names.owners(name) if other != own_id)
    return any(i is not None and org.record("contacts", i)["ContactStatus"] == "ACTIVE" for i in others)


def _merged(record: Record, element: dict[str, Any]) -> Record:
    merge_text(record, element, _TEXT_FIELDS)
    if isinstance(element.get("Addresses"), list):
        record["Addresses"] = merge_by(
            record.get("Addresses", []), element["Addresses"], "AddressType", _ADDRESS_FIELDS
        )
    if isinstance(element.get("Phones"), list):
        phones = ("PhoneNumber", "PhoneAreaCode", "PhoneCountryCode")
        record["Phones"] = merge_by(record.get("Phones", []), element["Phones"], "PhoneType", phones)
    return record

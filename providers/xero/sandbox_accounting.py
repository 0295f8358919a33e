"""Accounting API 2.0 reads: query parameters to a selection, and the selection to Xero's JSON envelope.

Envelope per the spec's examples: ``{"Id", "Status": "OK", "ProviderName", "DateTimeUTC", "pagination"?, "<Key>"}``.
Paging (``page`` 1-based, ``pageSize`` default 100, capped at 1000) exists on Contacts, Invoices and Payments only;
without ``page`` every matching record comes back in one response, and invoices then come without line items
("line items are returned when paging or fetching one invoice", Xero's GET Invoices doc).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from providers.xero.sandbox_org import Organisation, envelope_records
from providers.xero.sandbox_query import Predicate, QueryParseError, parse_if_modified_since, parse_order, parse_where

NOT_FOUND_TEXT = "The resource you're looking for cannot be found"  # a plain-text body: XeroAPI/Xero-OpenAPI#163
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

# Path segment (lower case) -> (entity, envelope key).
RESOURCES = {
    "contacts": ("contacts", "Contacts"),
    "invoices": ("invoices", "Invoices"),
    "payments": ("payments", "Payments"),
    "items": ("items", "Items"),
    "taxrates": ("tax_rates", "TaxRates"),
    "accounts": ("accounts", "Accounts"),
    "organisation": ("organisation", "Organisations"),
}
PAGED = frozenset({"contacts", "invoices", "payments"})
_SETTINGS = frozenset({"accounting.settings", "accounting.settings.read"})
# Scopes that open each entity (spec `security` per path, plus the 2026 granular scopes from the reference).
SCOPES: dict[str, frozenset[str]] = {
    "contacts": frozenset({"accounting.contacts", "accounting.contacts.read"}),
    "invoices": frozenset(
        {"accounting.transactions", "accounting.transactions.read", "accounting.invoices", "accounting.invoices.read"}
    ),
    "payments": frozenset(
        {"accounting.transactions", "accounting.transactions.read", "accounting.payments", "accounting.payments.read"}
    ),
    "items": _SETTINGS | {"accounting.invoices", "accounting.invoices.read"},
    "tax_rates": _SETTINGS,
    "accounts": _SETTINGS,
    "organisation": _SETTINGS,
}


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # JSON-able, or str for a text/plain body
    paged_page: int | None = None  # the page served, when a paged list was asked for


def page_of(params: Mapping[str, str]) -> int | None:
    """The page asked for; None when unpaged. ``pageSize`` alone implies page 1."""
    raw = params.get("page")
    if raw is None:
        return 1 if "pageSize" in params else None
    try:
        return max(int(raw), 1)
    except ValueError:
        return 1


def serve(
    org: Organisation,
    resource: str,
    record_id: str | None,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    provider_name: str,
    now_ms: int,
) -> Answer:
    entity, key = RESOURCES[resource]
    envelope: dict[str, Any] = {
        "Id": str(uuid.uuid4()),
        "Status": "OK",
        "ProviderName": provider_name,
        "DateTimeUTC": f"/Date({now_ms})/",
    }
    if entity == "organisation":
        return Answer(200, {**envelope, key: [org.organisation_record()]})
    if record_id is not None:
        index = org.index_of(entity, record_id)
        if index is None:
            return Answer(404, NOT_FOUND_TEXT)
        return Answer(200, {**envelope, key: [org.record(entity, index)]})
    try:  # a type clash only shows when a record is evaluated: selecting is part of parsing
        total, fetch = org.select(entity, **_selection(org, entity, params, headers))
    except QueryParseError as exc:
        return Answer(400, {"ErrorNumber": 16, "Type": "QueryParseException", "Message": str(exc)})
    summary = params.get("summaryOnly", "").lower() == "true"
    page = page_of(params) if entity in PAGED else None
    if page is None:
        records = fetch(0, total)
        if entity == "invoices":
            records = [{k: v for k, v in r.items() if k != "LineItems"} for r in records]
        return Answer(200, {**envelope, key: envelope_records(entity, records, summary=summary)})
    size = _page_size(params)
    records = fetch((page - 1) * size, page * size)
    envelope["pagination"] = {
        "page": page,
        "pageSize": size,
        "pageCount": math.ceil(total / size),
        "itemCount": total,
    }
    return Answer(200, {**envelope, key: envelope_records(entity, records, summary=summary)}, paged_page=page)


def _page_size(params: Mapping[str, str]) -> int:
    try:
        size = int(params.get("pageSize", DEFAULT_PAGE_SIZE))
    except ValueError:
        size = DEFAULT_PAGE_SIZE
    return min(max(size, 1), MAX_PAGE_SIZE)


def _csv(params: Mapping[str, str], name: str) -> list[str] | None:
    raw = params.get(name)
    if raw is None:
        return None
    return [part.strip().strip('"').strip() for part in raw.split(",") if part.strip().strip('"').strip()]


def _selection(org: Organisation, entity: str, params: Mapping[str, str], headers: Mapping[str, str]) -> dict[str, Any]:
    where = parse_where(entity, params.get("where"))
    lo, hi = where.lo_ms, where.hi_ms
    if entity != "tax_rates":  # TaxRates take no If-Modified-Since (spec getTaxRates parameters)
        since = parse_if_modified_since(headers.get("if-modified-since"))
        if since is not None:
            lo = since + 1 if lo is None else max(lo, since + 1)  # strictly after
    predicates: list[Predicate] = [] if where.predicate is None else [where.predicate]
    key: list[Any] = [params.get("where")]
    if entity == "contacts" and params.get("includeArchived", "").lower() != "true":
        predicates.append(lambda r: r.get("ContactStatus") != "ARCHIVED")
        key.append("no-archived")
    if entity == "invoices":
        for name, field in (("Statuses", "Status"), ("InvoiceNumbers", "InvoiceNumber")):
            values = _csv(params, name)
            if values is not None:
                wanted = {v.casefold() for v in values}
                predicates.append(lambda r, f=field, w=wanted: str(r.get(f, "")).casefold() in w)  # type: ignore[misc]
                key.append((name, tuple(sorted(wanted))))
        contact_ids = _csv(params, "ContactIDs")
        if contact_ids is not None:
            wanted_contacts = {c.lower() for c in contact_ids}
            predicates.append(lambda r: r["Contact"]["ContactID"] in wanted_contacts)
            key.append(("ContactIDs", tuple(sorted(wanted_contacts))))
    term = params.get("searchTerm")
    if term and entity in ("contacts", "invoices"):
        fields = (
            ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress")
            if entity == "contacts"
            else ("InvoiceNumber", "Reference")
        )
        needle = term.casefold()
        predicates.append(lambda r: any(needle in str(r.get(f) or "").casefold() for f in fields))
        key.append(("searchTerm", needle))
    ids = _csv(params, "IDs") if entity in ("contacts", "invoices") else None
    indices = None
    if ids is not None:
        indices = [i for i in (org.index_of(entity, value) for value in ids) if i is not None]
    predicate: Predicate | None = None
    if predicates:
        chosen = tuple(predicates)
        predicate = chosen[0] if len(chosen) == 1 else (lambda r: all(p(r) for p in chosen))
    return {
        "lo": lo,
        "hi": hi,
        "predicate": predicate,
        "predicate_key": tuple(key),
        "order": parse_order(entity, params.get("order")),
        "indices": indices,
    }

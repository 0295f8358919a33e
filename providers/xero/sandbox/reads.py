"""Accounting API 2.0 reads: Xero's resources declared for the kit's listing, its ``where``/``order`` dialect for the
kit's filter engine, and Xero's JSON envelope.

Envelope per the spec's examples: ``{"Id", "Status": "OK", "ProviderName", "DateTimeUTC", "pagination"?, "<Key>"}``.
Paging (``page`` 1-based, ``pageSize`` default 100, capped at 1000) exists on Contacts, Invoices and Payments only;
without ``page`` every matching record comes back in one response, and invoices then come without line items
("line items are returned when paging or fetching one invoice", Xero's GET Invoices doc).

``where`` is the .NET Dynamic-LINQ-like filter of the Accounting API (https://developer.xero.com/documentation/api/
accounting/requests-and-responses#retrieving-a-filtered-set-of-results): comparisons (``== != <> > >= < <=``) of a
field path with a literal (``"text"``, numbers, ``true``/``false``, ``null``, ``DateTime(2024,01,01[,h,m,s])``,
``DateTime.Parse("2024-01-01T00:00:00")``, ``Guid("...")``), ``AND``/``&&``, ``OR``/``||``, ``NOT``/``!``,
parentheses and the string methods ``Contains``/``StartsWith``/``EndsWith``/``ToString``/``ToLower``/``ToUpper``;
text compares without case. A malformed filter is Xero's ``400 {"ErrorNumber": 16, "Type": "QueryParseException",
"Message": ...}`` with .NET's words (as seen in XeroAPI/xero-php-oauth2#307 and freakboy3742/pyxero#272/#217).
Top-level ``UpdatedDateUTC`` bounds become the store's change-time range; the rest is evaluated per record.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from providers.sandbox_kit import filters
from providers.sandbox_kit.filters import Dialect, Filter, FilterError, Messages, Parser
from providers.sandbox_kit.listing import PageNumbers, Resource, selection
from providers.sandbox_kit.store import Record
from providers.xero.sandbox.catalog import QUERY_FIELDS
from providers.xero.sandbox.org import Organisation
from providers.xero.sandbox.records import plain

NOT_FOUND_TEXT = "The resource you're looking for cannot be found"  # a plain-text body: XeroAPI/Xero-OpenAPI#163
_PAGES = PageNumbers(default=100, maximum=1000)
_SETTINGS = frozenset({"accounting.settings", "accounting.settings.read"})
_INVOICES = frozenset({"accounting.invoices", "accounting.invoices.read"})
_TRANSACTIONS = frozenset({"accounting.transactions", "accounting.transactions.read"})
_PAYMENTS = frozenset({"accounting.payments", "accounting.payments.read"})
# Path segment (lower case) -> resource. Scopes per the spec's `security` per path, plus the 2026 granular ones.
RESOURCES = {
    "contacts": Resource(
        "contacts", "Contacts", frozenset({"accounting.contacts", "accounting.contacts.read"}), paging=_PAGES,
        ids="IDs", search=("searchTerm", ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress")),
        hidden=("includeArchived", "ContactStatus", "ARCHIVED"),
    ),
    "invoices": Resource(
        "invoices", "Invoices", _TRANSACTIONS | _INVOICES, paging=_PAGES, ids="IDs",
        value_filters={"Statuses": "Status", "InvoiceNumbers": "InvoiceNumber", "ContactIDs": "Contact.ContactID"},
        search=("searchTerm", ("InvoiceNumber", "Reference")),
    ),
    "payments": Resource("payments", "Payments", _TRANSACTIONS | _PAYMENTS, paging=_PAGES),
    "items": Resource("items", "Items", _SETTINGS | _INVOICES),
    "taxrates": Resource("tax_rates", "TaxRates", _SETTINGS, modified_since=False),  # spec: no If-Modified-Since
    "accounts": Resource("accounts", "Accounts", _SETTINGS),
    "organisation": Resource("organisation", "Organisations", _SETTINGS),
}  # fmt: skip
# What summaryOnly leaves out (spec ``summaryOnly``).
_HEAVY = {
    "invoices": ("LineItems", "Payments", "CreditNotes", "Prepayments", "Overpayments"),
    "contacts": ("Addresses", "Phones", "ContactPersons", "ContactGroups"),
}


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # JSON-able, or str for a text/plain body


def page_of(resource: str, params: Mapping[str, str]) -> int | None:
    """The page of a listing asked for; None when unpaged."""
    paging = RESOURCES[resource].paging
    return paging.page_of(params) if paging is not None else None


def envelope(provider_name: str, now_ms: int) -> dict[str, Any]:
    return {"Id": str(uuid.uuid4()), "Status": "OK", "ProviderName": provider_name, "DateTimeUTC": f"/Date({now_ms})/"}


def serve(
    org: Organisation, resource: str, record_id: str | None, params: Mapping[str, str], headers: Mapping[str, str],
    provider_name: str, now_ms: int,
) -> Answer:  # fmt: skip
    """One GET, with the organisation's lock held by the caller."""
    declared = RESOURCES[resource]
    entity, key, body = declared.entity, declared.key, envelope(provider_name, now_ms)
    if entity == "organisation":
        return Answer(200, {**body, key: [org.organisation_record()]})
    if record_id is not None:
        index = org.index_of(entity, record_id)
        if index is None:
            return Answer(404, NOT_FOUND_TEXT)
        return Answer(200, {**body, key: [org.record(entity, index)]})
    try:  # a type clash only shows when a record is evaluated: selecting is part of parsing
        where, order = parse_where(entity, params.get("where")), parse_order(entity, params.get("order"))
        chosen = selection(
            declared, params, headers, where=where, order=order, where_key=params.get("where"),
            index_of=lambda value: org.index_of(entity, value),
        )  # fmt: skip
        total, fetch = org.select(entity, **chosen)
    except FilterError as exc:
        return Answer(400, {"ErrorNumber": 16, "Type": "QueryParseException", "Message": str(exc)})
    summary = params.get("summaryOnly", "").lower() == "true"
    page = page_of(resource, params)
    if page is None:
        records = fetch(0, total)
        if entity == "invoices":
            records = [{k: v for k, v in r.items() if k != "LineItems"} for r in records]
        return Answer(200, {**body, key: _listed(entity, records, summary)})
    assert declared.paging is not None
    size = declared.paging.size_of(params)
    records = fetch((page - 1) * size, page * size)
    pages = declared.paging.count(total, size)
    body["pagination"] = {"page": page, "pageSize": size, "pageCount": pages, "itemCount": total}
    return Answer(200, {**body, key: _listed(entity, records, summary)})


def _listed(entity: str, records: list[Record], summary: bool) -> list[Any]:
    if not summary:
        return records
    heavy = _HEAVY.get(entity, ())
    return [{k: v for k, v in record.items() if k not in heavy} for record in records]


# --- where and order: the kit's filter engine in Xero's Dynamic-LINQ dialect -------------------------------

_GUID_FORMAT = "Guid should contain 32 digits with 4 dashes (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)."
_MESSAGES = Messages(  # .NET's words, as Xero sends them
    unknown_field="No property or field '{name}' exists in type '{type}'",
    unknown_member="No property or field '{name}' exists in type 'String'",
    bad_character="Syntax error '{char}'", trailing="Syntax error", expected="'{token}' expected",
    expression_expected="Expression expected", order_syntax="Syntax error in order by clause",
    incompatible="Operator '{op}' incompatible with operand types '{left}' and '{right}'",
    boolean_expected="Expression of type 'Boolean' expected",
    kinds={"boolean": "Boolean", "number": "Decimal", "datetime": "DateTime", "text": "String"},
)  # fmt: skip


def _date_time(parser: Parser) -> datetime:
    if parser.peek() == ("op", "."):
        parser.take(".")
        if parser.take()[1].lower() != "parse":
            raise FilterError("No applicable method exists in type 'DateTime'")
        args = parser.arguments()
        try:
            parsed = datetime.fromisoformat(str(args[0]).replace("Z", "+00:00"))
        except (ValueError, IndexError) as exc:
            raise FilterError("String was not recognized as a valid DateTime.") from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    numbers = parser.arguments()
    if not 3 <= len(numbers) <= 6 or not all(isinstance(n, float) and n.is_integer() for n in numbers):
        raise FilterError("No applicable constructor exists in type 'DateTime'")
    try:
        parts = [int(n) for n in numbers] + [0] * (6 - len(numbers))
        return datetime(parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], tzinfo=UTC)
    except ValueError as exc:
        raise FilterError("Year, Month, and Day parameters describe an un-representable DateTime.") from exc


def _guid(parser: Parser) -> str:
    args = parser.arguments()
    try:
        return str(uuid.UUID(str(args[0])))
    except (ValueError, IndexError) as exc:
        raise FilterError(_GUID_FORMAT) from exc


def _method(method: str, value: Any, args: tuple[Any, ...]) -> Any:
    name = method.lower()
    if name == "tostring":
        return None if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    if value is None:
        return None
    text = str(value)
    if name in ("tolower", "toupper"):
        return text.lower() if name == "tolower" else text.upper()
    if name in ("contains", "startswith", "endswith") and len(args) == 1 and isinstance(args[0], str):
        needle, hay = args[0].casefold(), text.casefold()
        return {"contains": needle in hay, "startswith": hay.startswith(needle), "endswith": hay.endswith(needle)}[name]
    raise FilterError(f"No applicable method '{method}' exists in type 'String'")


DIALECTS = {
    entity: Dialect(
        type_name,
        fields,
        constructors={"datetime": _date_time, "guid": _guid},
        method=_method,
        plain=plain,
        messages=_MESSAGES,
    )
    for entity, (type_name, fields) in QUERY_FIELDS.items()
}


def parse_where(entity: str, text: str | None) -> Filter:
    return filters.parse_filter(DIALECTS[entity], text, change_field="UpdatedDateUTC")


def parse_order(entity: str, text: str | None) -> list[tuple[str, bool]]:
    """``order`` as [(field, descending)]: ``UpdatedDateUTC DESC``, ``Name ASC, Date``..."""
    return filters.parse_order(DIALECTS[entity], text)

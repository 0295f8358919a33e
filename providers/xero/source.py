"""The Xero dlt source: one merge resource per catalog entity, incremental on ``UpdatedDateUTC``.

Pulls go through ``XeroClient`` (the connection's token, tenant header and rate-limit governor); the client is
injected so the core owns credentials and HTTP. Records land as Xero sends them, except that MS-JSON dates become
UTC datetimes and money is ``Decimal``. Invoice line items land in the ``invoices__line_items`` child table.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import dlt
from dlt.sources import DltResource

from providers.read_ahead import read_ahead
from providers.xero.client import XeroClient

CURSOR = "UpdatedDateUTC"


class XeroEndpoint(NamedTuple):
    endpoint: str  # path under /api.xro/2.0
    collection_key: str  # the envelope key holding the records
    paged: bool  # takes page/pageSize
    incremental: bool  # honours If-Modified-Since


# Resource name (the catalog entity) -> where it comes from.
RESOURCE_ENDPOINTS: dict[str, XeroEndpoint] = {
    # https://developer.xero.com/documentation/api/accounting/contacts#get-contacts
    "contacts": XeroEndpoint("Contacts", "Contacts", paged=True, incremental=True),
    # https://developer.xero.com/documentation/api/accounting/invoices#get-invoices
    "invoices": XeroEndpoint("Invoices", "Invoices", paged=True, incremental=True),
    # https://developer.xero.com/documentation/api/accounting/payments#get-payments
    "payments": XeroEndpoint("Payments", "Payments", paged=True, incremental=True),
    # https://developer.xero.com/documentation/api/accounting/items#get-items
    "products": XeroEndpoint("Items", "Items", paged=False, incremental=True),
    # https://developer.xero.com/documentation/api/accounting/taxrates#get-taxrates (no If-Modified-Since)
    "tax_rates": XeroEndpoint("TaxRates", "TaxRates", paged=False, incremental=False),
    # https://developer.xero.com/documentation/api/accounting/accounts#get-accounts
    "accounts": XeroEndpoint("Accounts", "Accounts", paged=False, incremental=True),
}
ENTITIES: tuple[str, ...] = tuple(RESOURCE_ENDPOINTS)

PRIMARY_KEYS: dict[str, str] = {
    "contacts": "ContactID",
    "invoices": "InvoiceID",
    "payments": "PaymentID",
    "products": "ItemID",
    "tax_rates": "TaxType",
    "accounts": "AccountID",
}

# Query parameters per resource. Paged lists are read oldest change first, so a record changed while we page
# moves behind us rather than past a page boundary we already read; unitdp=4 keeps unit prices exact.
_PARAMS: dict[str, dict[str, str]] = {
    "contacts": {"order": f"{CURSOR} ASC"},
    "invoices": {"order": f"{CURSOR} ASC", "unitdp": "4"},
    "payments": {"order": f"{CURSOR} ASC"},
    "products": {"unitdp": "4"},
}

# Nested lists and objects kept as json columns instead of child tables: only invoice LineItems earn a table.
_JSON_COLUMNS: dict[str, tuple[str, ...]] = {
    "contacts": (
        "Addresses",
        "Phones",
        "ContactPersons",
        "ContactGroups",
        "SalesTrackingCategories",
        "PurchasesTrackingCategories",
        "Attachments",
        "ValidationErrors",
    ),
    "invoices": (
        "Payments",
        "CreditNotes",
        "Prepayments",
        "Overpayments",
        "Attachments",
        "InvoiceAddresses",
        "Warnings",
        "ValidationErrors",
        "Contact__Addresses",
        "Contact__Phones",
        "Contact__ContactPersons",
        "Contact__ContactGroups",
    ),
    "payments": (
        "Invoice__LineItems",
        "Invoice__Payments",
        "Invoice__CreditNotes",
        "Invoice__Prepayments",
        "Invoice__Overpayments",
        "ValidationErrors",
        "Warnings",
    ),
    "products": ("ValidationErrors",),
    "tax_rates": ("TaxComponents",),
    "accounts": ("ValidationErrors",),
}
# Money and quantities are declared decimal: otherwise a first value of 1 types the column bigint and a later
# 1.5 lands in a variant column.
_DECIMAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "contacts": ("Discount",),
    "invoices": (
        "SubTotal",
        "TotalTax",
        "Total",
        "TotalDiscount",
        "AmountDue",
        "AmountPaid",
        "AmountCredited",
        "CurrencyRate",
        "CISDeduction",
        "CISRate",
    ),
    "payments": ("Amount", "BankAmount", "CurrencyRate"),
    "products": ("TotalCostPool", "QuantityOnHand", "PurchaseDetails__UnitPrice", "SalesDetails__UnitPrice"),
    "tax_rates": ("EffectiveRate", "DisplayTaxRate"),
}
_LINE_ITEM_DECIMALS = ("Quantity", "UnitAmount", "TaxAmount", "LineAmount", "DiscountRate", "DiscountAmount")
_LINE_ITEM_JSON = ("Tracking", "TaxBreakdown", "Item")


def _columns(json_columns: Sequence[str], decimal_columns: Sequence[str]) -> dict[str, dict[str, str]]:
    # Each hint names its column too: dlt's nested hints read the name from the hint, not the key.
    return {
        **{name: {"name": name, "data_type": "json"} for name in json_columns},
        **{name: {"name": name, "data_type": "decimal"} for name in decimal_columns},
    }


@dlt.source(name="xero", max_table_nesting=1)
def xero_source(
    client: XeroClient,
    entities: Sequence[str] = ENTITIES,
    initial_modified_since: datetime | None = None,
    include_archived_contacts: bool = True,
) -> list[DltResource]:
    """The Xero resources for ``entities``; ``initial_modified_since`` bounds the first run of each cursor.

    Archived contacts are included by default so an archive in Xero reaches VRTX as an update.
    """
    unknown = sorted(set(entities) - set(RESOURCE_ENDPOINTS))
    if unknown:
        raise ValueError(f"unknown Xero entities: {unknown}")
    initial = _as_utc(initial_modified_since)
    resources = []
    for name in entities:
        params = dict(_PARAMS.get(name, {}))
        if name == "contacts" and include_archived_contacts:
            params["includeArchived"] = "true"
        hints: dict[str, Any] = {
            "name": name,
            "primary_key": PRIMARY_KEYS[name],
            "write_disposition": "merge",
            "columns": _columns(_JSON_COLUMNS.get(name, ()), _DECIMAL_COLUMNS.get(name, ())),
        }
        if name == "invoices":
            hints["nested_hints"] = {"LineItems": {"columns": _columns(_LINE_ITEM_JSON, _LINE_ITEM_DECIMALS)}}
        endpoint = RESOURCE_ENDPOINTS[name]
        if endpoint.incremental:
            # "include": a record without UpdatedDateUTC is loaded rather than failing the run.
            cursor = dlt.sources.incremental(CURSOR, initial_value=initial, on_cursor_value_missing="include")
            resources.append(dlt.resource(_changed_records, **hints)(client, endpoint, params, updated_at=cursor))
        else:
            resources.append(dlt.resource(_all_records, **hints)(client, endpoint, params))
    return resources


def _changed_records(
    client: XeroClient,
    endpoint: XeroEndpoint,
    params: Mapping[str, str],
    updated_at: dlt.sources.incremental[datetime] = dlt.sources.incremental(CURSOR),  # noqa: B008 -- dlt's idiom
) -> Iterator[list[dict[str, Any]]]:
    """Records changed after the cursor: Xero filters (If-Modified-Since), dlt drops what it already has."""
    since: datetime | None = updated_at.last_value
    # Dates were converted while decoding (XeroClient), so dlt compares real datetimes.
    pages = client.iter_pages(
        endpoint.endpoint, endpoint.collection_key, params=params, modified_since=since, paged=endpoint.paged
    )
    yield from read_ahead(pages) if endpoint.paged else pages


def _all_records(
    client: XeroClient, endpoint: XeroEndpoint, params: Mapping[str, str]
) -> Iterator[list[dict[str, Any]]]:
    """Every record, every run (TaxRates cannot be filtered by change date; the merge keeps one row each)."""
    yield from client.iter_pages(endpoint.endpoint, endpoint.collection_key, params=params, paged=endpoint.paged)


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

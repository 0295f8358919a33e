"""The Xero streams: one merge resource per catalog entity, incremental on ``UpdatedDateUTC``.

Records land as Xero sends them, except that MS-JSON dates become UTC datetimes and money is ``Decimal`` (the
client decodes so). Column types come from the published fields (``fields.py``); invoice line items land in the
``invoices__line_items`` child table. Paged lists are read oldest change first, so a record changed while we page
moves behind us rather than past a page boundary we already read; ``unitdp=4`` keeps unit prices exact.

Webhooks name ids only, so contacts and invoices are read back by ``IDs=`` (an archived contact must still
arrive as an update; invoice line items only come with ``page``, which paging sends) and payments by the invoices
they pay (Xero sends no payment events: a payment shows as an update of its invoice).
"""

from __future__ import annotations

from collections.abc import Sequence

from providers.kit.paginators import PageNumber
from providers.kit.streams import ById, Child, Cursor, Stream, typed_columns
from providers.kit.values import uuid_text  # Xero ids are GUIDs: anything else names no Xero record
from providers.xero.dates import format_if_modified_since
from providers.xero.fields import RECORD_FIELDS

DEFAULT_PAGE_SIZE = 1000  # Xero's maximum; the default of 100 would cost ten times the calls
CHANGED_SINCE = Cursor("UpdatedDateUTC", header="If-Modified-Since", format=format_if_modified_since)
OLDEST_FIRST = {"order": "UpdatedDateUTC ASC"}


def pages(page_size: int = DEFAULT_PAGE_SIZE) -> PageNumber:
    """Xero's page/pageSize, read ahead on ``pagination.pageCount``."""
    return PageNumber(page_size, page_count="pagination.pageCount", applied_size="pagination.pageSize")


def _ids(ids: Sequence[str]) -> dict[str, str]:
    return {"IDs": ",".join(ids)}


def _payments_of_invoices(ids: Sequence[str]) -> dict[str, str]:
    return {"where": " OR ".join(f'Invoice.InvoiceID==guid("{invoice}")' for invoice in ids)}


STREAMS = (
    Stream(
        "contacts",
        doc_url="https://developer.xero.com/documentation/api/accounting/contacts#get-contacts",
        path="Contacts",
        records="Contacts",
        primary_key="ContactID",
        paginator=pages,
        params={**OLDEST_FIRST, "includeArchived": "true"},  # an archive in Xero reaches VRTX as an update
        cursor=CHANGED_SINCE,
        **typed_columns(RECORD_FIELDS["contacts"]),
        by_id=ById(_ids, params={"includeArchived": "true"}, valid=uuid_text),
    ),
    Stream(
        "invoices",
        doc_url="https://developer.xero.com/documentation/api/accounting/invoices#get-invoices",
        path="Invoices",
        records="Invoices",
        primary_key="InvoiceID",
        paginator=pages,
        params={**OLDEST_FIRST, "unitdp": "4"},
        cursor=CHANGED_SINCE,
        **typed_columns(RECORD_FIELDS["invoices"], tables=("LineItems",)),
        children=(Child("LineItems", **typed_columns(RECORD_FIELDS["invoices"], child="LineItems")),),
        by_id=ById(_ids, params={"unitdp": "4"}, valid=uuid_text),
    ),
    Stream(
        "payments",
        doc_url="https://developer.xero.com/documentation/api/accounting/payments#get-payments",
        path="Payments",
        records="Payments",
        primary_key="PaymentID",
        paginator=pages,
        params=OLDEST_FIRST,
        cursor=CHANGED_SINCE,
        **typed_columns(RECORD_FIELDS["payments"]),
        by_id=ById(_payments_of_invoices, per_call=20, valid=uuid_text),  # each id is a clause of the where filter
    ),
    Stream(
        "products",
        doc_url="https://developer.xero.com/documentation/api/accounting/items#get-items",  # not paged
        path="Items",
        records="Items",
        primary_key="ItemID",
        params={"unitdp": "4"},
        cursor=CHANGED_SINCE,
        **typed_columns(RECORD_FIELDS["products"]),
    ),
    Stream(
        "tax_rates",
        doc_url="https://developer.xero.com/documentation/api/accounting/taxrates#get-taxrates",  # no If-Modified-Since
        path="TaxRates",
        records="TaxRates",
        primary_key="TaxType",
        **typed_columns(RECORD_FIELDS["tax_rates"]),
    ),
    Stream(
        "accounts",
        doc_url="https://developer.xero.com/documentation/api/accounting/accounts#get-accounts",  # not paged
        path="Accounts",
        records="Accounts",
        primary_key="AccountID",
        cursor=CHANGED_SINCE,
        **typed_columns(RECORD_FIELDS["accounts"]),
    ),
)

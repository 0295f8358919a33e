"""Fetching the records a Xero webhook named, by id, decoded exactly as the pulls decode them.

Xero's webhooks carry ids only (``resourceId``), so applying an event means reading the record back:
- contacts: ``GET /Contacts?IDs=a,b&includeArchived=true`` (an archived contact must still arrive as an update)
  https://developer.xero.com/documentation/api/accounting/contacts#get-contacts
- invoices: ``GET /Invoices?IDs=a,b&page=1&unitdp=4`` (line items only come with ``page``; 4-dp unit amounts as the
  pull asks) https://developer.xero.com/documentation/api/accounting/invoices#get-invoices
- payments of invoices: ``GET /Payments?where=Invoice.InvoiceID==guid("a") OR ...`` (Xero sends no payment
  events: a payment shows as an update of the invoice it pays)
  https://developer.xero.com/documentation/api/accounting/payments#get-payments

This path gives up fast (one retry, no waiting out a 429): the targeted pull that follows every webhook is the
reliable path, and this one must not hold up its launch.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from providers.base import PullConnection

from .source import RESOURCE_ENDPOINTS

IDS_PER_CALL = 50  # ids in one IDs filter: well under URL limits, one page of results
INVOICES_PER_PAYMENTS_CALL = 20  # each is a clause of the where filter
PAGE_SIZE = 100
# Entity -> query parameters besides the ids, matching what the pull asks (source._PARAMS).
_PARAMS: dict[str, dict[str, str]] = {
    "contacts": {"includeArchived": "true"},
    "invoices": {"unitdp": "4"},
}
FETCHABLE = frozenset({"contacts", "invoices", "payments"})


def fetch_by_ids(connection: PullConnection, entity: str, ids: Sequence[str]) -> list[Mapping[str, Any]]:
    """Raw rows of ``entity`` for the webhook resource ids ``ids``: contacts and invoices by their own ids,
    payments by the ids of the invoices they pay. Ids that are not GUIDs (no Xero record has one) are ignored."""
    if entity not in FETCHABLE:
        raise ValueError(f"Xero records of {entity!r} cannot be fetched by id")
    guids = list(dict.fromkeys(g for g in (_guid(value) for value in ids) if g is not None))
    if not guids:
        return []
    from .pulls import connection_client  # pulls imports this module for its PullSpec

    client = connection_client(connection, max_attempts=2, max_rate_limit_waits=0, retry_base_delay_s=0.2)
    endpoint = RESOURCE_ENDPOINTS[entity]
    per_call = INVOICES_PER_PAYMENTS_CALL if entity == "payments" else IDS_PER_CALL
    rows: list[Mapping[str, Any]] = []
    for start in range(0, len(guids), per_call):
        chunk = guids[start : start + per_call]
        if entity == "payments":
            params = {"where": " OR ".join(f'Invoice.InvoiceID==guid("{g}")' for g in chunk)}
        else:
            params = {**_PARAMS.get(entity, {}), "IDs": ",".join(chunk)}
        for page in client.iter_pages(
            endpoint.endpoint, endpoint.collection_key, params=params, paged=True, page_size=PAGE_SIZE
        ):
            rows.extend(page)
    return rows


def _guid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        return None

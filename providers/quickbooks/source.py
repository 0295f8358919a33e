"""The QuickBooks streams: the query language for full listings, change data capture for the changes since.

- A full listing is ``SELECT * FROM <Entity> ... ORDERBY Id`` paged by ``STARTPOSITION``/``MAXRESULTS`` 1000 (the
  maximum; rendered into the statement by the kit's ``Offset``). By Id, a record changed while paging stays where
  it was (ordered by change time it would move behind us and shift the next page). Names (customers, items,
  accounts) are listed inactive ones included: making one inactive is how QuickBooks deletes it.
- The change token is the ``time`` of the first answer of a listing (``Stamped``): the next run asks ``/cdc`` for
  what changed since (``changedSince``), so a change made while the previous listing ran is not missed. CDC answers
  1,000 records per entity at most; a full answer is followed by another from its last change time
  (``ChangedSince``). Deleted records come as ``{"status": "Deleted"}`` tombstones and land as such.
- CDC reaches 30 days back: an older token is not sent, and the stream is listed in full again, which the sync
  log says (the kit's change feed of a token, ``TokenCursor``, with ``max_age_s``; an hour is kept for clocks and
  run time).
- Tax codes and rates have no CDC: they are listed whole every run (a handful of records).
- Webhooks name ids: records are read back by ``WHERE Id IN (...)``, 30 per statement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from providers.errors import ProviderError
from providers.kit.paginators import ChangedSince, Offset, Paginator, Stamped
from providers.kit.streams import ById, Child, Records, Stream, TokenCursor, typed_columns
from providers.kit.values import OBJECT, iso_utc

from .fields import RECORD_FIELDS

PAGE_SIZE = 1000  # QuickBooks' maximum MAXRESULTS; the default of 100 would cost ten times the calls
CDC_CAP = 1000
CDC_WINDOW_S = 30 * 86_400 - 3_600
DOCS = "https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/"


def query_pages() -> Paginator:
    """STARTPOSITION (1-based) and MAXRESULTS appended to the listing's statement; the first answer's time kept."""

    def render(params: dict[str, Any] | Any, offset: int, limit: int) -> dict[str, Any]:
        return {**params, "query": f"{params['query']} STARTPOSITION {offset} MAXRESULTS {limit}"}

    return Stamped(Offset(PAGE_SIZE, start=1, render=render), "time")


def cdc_pages() -> Paginator:
    return Stamped(ChangedSince("changedSince", "MetaData.LastUpdatedTime", CDC_CAP, format=_qbo_time), "time")


def _qbo_time(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def rows(entity: str) -> Callable[[Any], Records]:
    """The records of ``entity`` in a query answer (``QueryResponse.<Entity>``, left out when there are none) or a
    CDC answer (``CDCResponse[0].QueryResponse[].<Entity>``). Any other envelope is an error, never "no records"."""

    def select(body: Any) -> Records:
        if isinstance(body, OBJECT) and isinstance(body.get("QueryResponse"), OBJECT):
            found = body["QueryResponse"].get(entity, [])
            return found if isinstance(found, list) else []
        cdc = body.get("CDCResponse") if isinstance(body, OBJECT) else None
        if isinstance(cdc, list) and cdc and isinstance(cdc[0], OBJECT):
            responses = cdc[0].get("QueryResponse")
            if isinstance(responses, list):
                return [row for r in responses if isinstance(r, OBJECT) for row in r.get(entity) or []]
        raise ProviderError(f"QuickBooks answered without a QueryResponse for {entity}.", status=200)

    return select


def _numeric(value: str) -> str | None:
    text = value.strip()
    return text if text.isdigit() else None


def stream(name: str, entity: str, *, names: bool = False, cdc: bool = True, lines: bool = False) -> Stream:
    """One entity: listed by query, resumed by CDC (``cdc``), inactive names listed too (``names``), lines as a
    child table (``lines``)."""
    where = " WHERE Active IN (true, false)" if names else ""
    fields = RECORD_FIELDS[name]

    def by_ids(ids: Sequence[str]) -> dict[str, str]:
        chosen = ", ".join(f"'{i}'" for i in ids)
        # Ids reach here as digits only (``valid``): nothing else can enter the statement.
        return {"query": f"SELECT * FROM {entity}{where or ' WHERE'}{' AND' if where else ''} Id IN ({chosen})"}  # noqa: S608

    return Stream(
        name,
        doc_url=f"{DOCS}{entity.lower()}#query-{entity.lower()}",
        path="query",
        records=rows(entity),
        primary_key="Id",
        paginator=query_pages,
        params={"query": f"SELECT * FROM {entity}{where} ORDERBY Id"},  # noqa: S608 -- our own constants
        feed=TokenCursor(
            param="changedSince",
            path="cdc",
            params={"entities": entity},
            paginator=cdc_pages,
            max_age_s=CDC_WINDOW_S,
            issued_at=iso_utc,
        )
        if cdc
        else None,
        **typed_columns(fields, tables=("Line",) if lines else ()),
        children=(Child("Line", **typed_columns(fields, child="Line")),) if lines else (),
        by_id=ById(by_ids, per_call=30, valid=_numeric) if cdc else None,
    )


STREAMS = (
    stream("contacts", "Customer", names=True),
    stream("invoices", "Invoice", lines=True),
    stream("payments", "Payment", lines=True),
    stream("products", "Item", names=True),
    stream("tax_codes", "TaxCode", names=True, cdc=False),
    stream("tax_rates", "TaxRate", names=True, cdc=False),
    stream("accounts", "Account", names=True),
)

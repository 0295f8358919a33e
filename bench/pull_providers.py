"""What the pull bench (bench/pull.py) must know of each provider; everything else there is shared.

Per provider: its sandbox with the bench's data (limits on or off), the raw baseline's paging and the columns it
COPYs, the warehouse tables the platform loads, and the rate limit the second run is measured against. Sandbox
imports stay inside the functions: the sandbox's own process builds the data, the bench's only talks to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from providers.sandbox_kit.metering import CallStats

Row = list[Any]
PageCall = tuple[str, dict[str, Any], dict[str, str]]  # url, query parameters, headers besides the token


@dataclass(frozen=True)
class PullBench:
    slug: str
    name: str
    sandbox: Callable[[int, bool], tuple[Any, str, CallStats]]  # (invoices, limited) -> app, tenant id, its stats
    api_prefix: str  # the paths the sandbox's rate limit meters
    warehouse_tables: tuple[str, str]  # invoices and their lines, as the platform loads them
    invoice_columns: str  # the baseline's tables (invoices first)
    line_columns: str
    page_size: int  # the baseline asks for the provider's maximum, as the platform does
    page: Callable[[str, str, int], PageCall]  # (base url, tenant id, page index from 0)
    records: Callable[[Any], list[dict[str, Any]]]  # a page's invoices
    invoice_row: Callable[[dict[str, Any]], Row]
    line_rows: Callable[[dict[str, Any]], list[Row]]
    lines_words: str  # how many lines an invoice lands with, for the headline
    per_minute: int  # the rate limit the second run is paced under, and its floor
    limit_words: str
    wall_target: float  # wall time / floor, at most (the provider's issue)
    # The platform's page size for the rate-limited run where, at its maximum, the sync would make its calls more
    # slowly than the limit allows, so the limit would never bind: (size, setter, what the size is).
    limited_pages: tuple[int, Callable[[int], None], str] | None = None


# --- Xero (issue 2) ---------------------------------------------------------------------------------------------


def _xero_sandbox(invoices: int, limited: bool) -> tuple[Any, str, CallStats]:
    from providers.xero.sandbox import XeroSandbox, XeroSandboxKnobs, create_app

    sandbox = XeroSandbox(seed=1)
    org = sandbox.add_organisation(
        "Bench Ltd", contacts=100, invoices=invoices, lines_per_invoice=3, payments=10, items=10
    )
    # Open: budgets too large to matter, so the rate-limit headers never ask anyone to wait.
    big = 10**9
    knobs = XeroSandboxKnobs() if limited else XeroSandboxKnobs(minute_limit=big, day_limit=big, app_minute_limit=big)
    return create_app(sandbox, knobs=knobs), org, sandbox.stats


def _xero_invoice(inv: dict[str, Any]) -> Row:
    return [inv["InvoiceID"], inv.get("InvoiceNumber"), inv.get("Type"), inv.get("Status"),
            inv["Contact"]["ContactID"], inv.get("DateString"), inv.get("DueDateString"), inv.get("CurrencyCode"),
            inv.get("SubTotal"), inv.get("TotalTax"), inv.get("Total"), inv.get("AmountDue"),
            inv.get("UpdatedDateUTC")]  # fmt: skip


def _xero_lines(inv: dict[str, Any]) -> list[Row]:
    return [
        [line.get("LineItemID"), inv["InvoiceID"], line.get("Description"), line.get("Quantity"),
         line.get("UnitAmount"), line.get("AccountCode"), line.get("TaxType"), line.get("LineAmount")]
        for line in inv.get("LineItems", [])
    ]  # fmt: skip


XERO = PullBench(
    slug="xero",
    name="Xero",
    sandbox=_xero_sandbox,
    api_prefix="/api.xro/",
    warehouse_tables=("invoices", "invoices__line_items"),
    invoice_columns="invoice_id text primary key, invoice_number text, type text, status text, contact_id text, "
    "date text, due_date text, currency_code text, sub_total numeric, total_tax numeric, total numeric, "
    "amount_due numeric, updated_date_utc text",
    line_columns="line_item_id text, invoice_id text, description text, quantity numeric, unit_amount numeric, "
    "account_code text, tax_type text, line_amount numeric",
    page_size=1000,
    page=lambda base_url, org, n: (
        f"{base_url}/api.xro/2.0/Invoices",
        {"page": n + 1, "pageSize": 1000},
        {"xero-tenant-id": org},
    ),
    records=lambda body: list(body["Invoices"]),
    invoice_row=_xero_invoice,
    line_rows=_xero_lines,
    lines_words="3 lines",
    per_minute=60,
    limit_words="60 calls/min per organisation",
    wall_target=1.10,
)


# --- QuickBooks Online (issue 14) -------------------------------------------------------------------------------

QBO_MINOR_VERSION = "75"


def _quickbooks_sandbox(invoices: int, limited: bool) -> tuple[Any, str, CallStats]:
    from providers.quickbooks.sandbox import QuickBooksKnobs, QuickBooksSandbox, create_app

    sandbox = QuickBooksSandbox(seed=1)
    realm = sandbox.add_company(
        "Bench Inc", customers=100, invoices=invoices, lines_per_invoice=3, payments=10, items=10
    )
    # Open: calls are counted but never refused (Intuit's 500/min and 10 in flight are off).
    return create_app(sandbox, knobs=QuickBooksKnobs(enforce_rate_limits=limited)), realm, sandbox.stats


def _quickbooks_page(base_url: str, realm: str, n: int) -> PageCall:
    # https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/data-queries
    statement = f"SELECT * FROM Invoice ORDERBY Id STARTPOSITION {n * 1000 + 1} MAXRESULTS 1000"  # noqa: S608 -- our own constants
    return f"{base_url}/v3/company/{realm}/query", {"query": statement, "minorversion": QBO_MINOR_VERSION}, {}


def _ref(value: Any) -> Any:
    return value.get("value") if isinstance(value, dict) else None


def _quickbooks_invoice(inv: dict[str, Any]) -> Row:
    meta = inv.get("MetaData") or {}
    return [inv["Id"], inv.get("SyncToken"), inv.get("DocNumber"), _ref(inv.get("CustomerRef")), inv.get("TxnDate"),
            inv.get("DueDate"), _ref(inv.get("CurrencyRef")), inv.get("TotalAmt"), inv.get("Balance"),
            inv.get("EmailStatus"), inv.get("PrintStatus"), meta.get("LastUpdatedTime")]  # fmt: skip


def _quickbooks_lines(inv: dict[str, Any]) -> list[Row]:
    rows = []
    for line in inv.get("Line", []):  # the sales lines and QuickBooks' subtotal line, as the platform keeps them
        detail = line.get("SalesItemLineDetail") or {}
        rows.append(
            [line.get("Id"), inv["Id"], line.get("LineNum"), line.get("Description"), line.get("Amount"),
             line.get("DetailType"), _ref(detail.get("ItemRef")), detail.get("Qty"), detail.get("UnitPrice"),
             _ref(detail.get("TaxCodeRef"))]
        )  # fmt: skip
    return rows


def _quickbooks_page_size(size: int) -> None:
    import providers.quickbooks.source as source

    source.PAGE_SIZE = size  # read by every listing's paginator as it starts


QUICKBOOKS = PullBench(
    slug="quickbooks",
    name="QuickBooks Online",
    sandbox=_quickbooks_sandbox,
    api_prefix="/v3/company/",
    warehouse_tables=("invoices", "invoices__line"),
    invoice_columns="id text primary key, sync_token text, doc_number text, customer_id text, txn_date text, "
    "due_date text, currency text, total_amt numeric, balance numeric, email_status text, print_status text, "
    "last_updated_time text",
    line_columns="id text, invoice_id text, line_num integer, description text, amount numeric, "
    "detail_type text, item_id text, qty numeric, unit_price numeric, tax_code text",
    page_size=1000,
    page=_quickbooks_page,
    records=lambda body: list(body["QueryResponse"].get("Invoice", [])),
    invoice_row=_quickbooks_invoice,
    line_rows=_quickbooks_lines,
    lines_words="3 lines (+ QuickBooks' subtotal line)",
    per_minute=500,
    limit_words="500 calls/min and 10 in flight per company",
    wall_target=1.0,
    limited_pages=(
        100,
        _quickbooks_page_size,
        "QuickBooks' default MAXRESULTS, not its maximum of 1,000",
    ),
)

PROVIDERS = {bench.slug: bench for bench in (XERO, QUICKBOOKS)}

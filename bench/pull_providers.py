"""What the pull bench (bench/pull.py) must know of each provider; everything else there is shared.

Per provider: its sandbox with the bench's data (limits on or off), the listings both sides read (the raw
baseline's paging and the columns it COPYs, the warehouse tables the platform loads), and the rate limit the second
run is measured against. Sandbox imports stay inside the functions: the sandbox's own process builds the data, the
bench's only talks to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from providers.sandbox_kit.metering import CallStats
from providers.stripe.client import API_VERSION  # the version the platform pins: the baseline reads the same objects

Row = list[Any]
PageCall = tuple[str, dict[str, Any], dict[str, str]]  # url, query parameters, headers besides the credential
Record = dict[str, Any]


@dataclass(frozen=True)
class Table:
    """One table both sides fill from a listing's records: the platform's warehouse table and the baseline's."""

    warehouse: str
    columns: str  # the baseline's column definitions
    rows: Callable[[Record], list[Row]]  # the rows one record gives it


@dataclass(frozen=True)
class Listing:
    """One pull the bench syncs (the platform's entity) and how the baseline pages it."""

    entity: str
    page: Callable[[str, str, int, Record | None], PageCall]  # (base url, tenant id, page from 0, last record so far)
    records: Callable[[Any], list[Record]]  # a page's records
    more: Callable[[Any, int], bool]  # (page body, its record count): is there another page
    tables: tuple[Table, ...]


@dataclass(frozen=True)
class PullBench:
    slug: str
    name: str
    sandbox: Callable[[int, bool], tuple[Any, str, CallStats]]  # (invoices, limited) -> app, tenant id, its stats
    api_prefix: str  # the paths the sandbox's rate limit meters
    listings: tuple[Listing, ...]
    page_size: int  # the baseline asks for the provider's maximum, as the platform does
    data_words: str  # the headline's data, formatted with ``n`` (the invoice count)
    per_window: int  # the rate limit the second run is paced under, and its floor: calls per ``window_s``
    limit_words: str
    wall_target: float | None  # wall time / floor, at most (the provider's issue; None: it sets none)
    window_s: int = 60
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


def _full_page(body: Any, count: int) -> bool:
    return count >= 1000  # a short page is the last (Xero and QuickBooks pages hold 1,000)


XERO = PullBench(
    slug="xero",
    name="Xero",
    sandbox=_xero_sandbox,
    api_prefix="/api.xro/",
    listings=(
        Listing(
            "invoices",
            page=lambda base_url, org, n, last: (
                f"{base_url}/api.xro/2.0/Invoices",
                {"page": n + 1, "pageSize": 1000},
                {"xero-tenant-id": org},
            ),
            records=lambda body: list(body["Invoices"]),
            more=_full_page,
            tables=(
                Table(
                    "invoices",
                    "invoice_id text primary key, invoice_number text, type text, status text, contact_id text, "
                    "date text, due_date text, currency_code text, sub_total numeric, total_tax numeric, "
                    "total numeric, amount_due numeric, updated_date_utc text",
                    lambda inv: [_xero_invoice(inv)],
                ),
                Table(
                    "invoices__line_items",
                    "line_item_id text, invoice_id text, description text, quantity numeric, unit_amount numeric, "
                    "account_code text, tax_type text, line_amount numeric",
                    _xero_lines,
                ),
            ),
        ),
    ),
    page_size=1000,
    data_words="{n:,} invoices x 3 lines",
    per_window=60,
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


def _quickbooks_page(base_url: str, realm: str, n: int, last: Record | None) -> PageCall:
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
    listings=(
        Listing(
            "invoices",
            page=_quickbooks_page,
            records=lambda body: list(body["QueryResponse"].get("Invoice", [])),
            more=_full_page,
            tables=(
                Table(
                    "invoices",
                    "id text primary key, sync_token text, doc_number text, customer_id text, txn_date text, "
                    "due_date text, currency text, total_amt numeric, balance numeric, email_status text, "
                    "print_status text, last_updated_time text",
                    lambda inv: [_quickbooks_invoice(inv)],
                ),
                Table(
                    "invoices__line",
                    "id text, invoice_id text, line_num integer, description text, amount numeric, "
                    "detail_type text, item_id text, qty numeric, unit_price numeric, tax_code text",
                    _quickbooks_lines,
                ),
            ),
        ),
    ),
    page_size=1000,
    data_words="{n:,} invoices x 3 lines (+ QuickBooks' subtotal line)",
    per_window=500,
    limit_words="500 calls/min and 10 in flight per company",
    wall_target=1.0,
    limited_pages=(
        100,
        _quickbooks_page_size,
        "QuickBooks' default MAXRESULTS, not its maximum of 1,000",
    ),
)


# --- Stripe (issue 15) ------------------------------------------------------------------------------------------


def _stripe_sandbox(invoices: int, limited: bool) -> tuple[Any, str, CallStats]:
    from providers.stripe.sandbox import DEMO_ACCOUNT_ID, DEMO_SECRET_KEY, StripeSandbox, StripeSandboxKnobs, create_app

    # As many customers as invoices (the 100,000 + 100,000), rendered on demand from the seed.
    sandbox = StripeSandbox(seed=1)
    account = sandbox.add_account(
        "Bench Ltd", account_id=DEMO_ACCOUNT_ID, keys=(DEMO_SECRET_KEY,), customers=invoices, invoices=invoices,
        lines_per_invoice=3, payments=10,
    )  # fmt: skip
    # Open: calls are counted but never refused (test mode's 25 a second is off).
    return create_app(sandbox, knobs=StripeSandboxKnobs(enforce_rate_limits=limited)), account, sandbox.stats


def _stripe_page(path: str) -> Callable[[str, str, int, Record | None], PageCall]:
    # https://docs.stripe.com/api/pagination: newest first, the next page starts after the last id seen.
    def page(base_url: str, account: str, n: int, last: Record | None) -> PageCall:
        after = {"starting_after": last["id"]} if last is not None else {}
        return f"{base_url}/v1/{path}", {"limit": 100, **after}, {"Stripe-Version": API_VERSION}

    return page


def _stripe_customer(customer: Record) -> list[Row]:
    address = customer.get("address") or {}
    return [[customer["id"], customer.get("name"), customer.get("email"), customer.get("phone"),
             customer.get("currency"), customer.get("balance"), address.get("city"), address.get("country"),
             customer.get("created")]]  # fmt: skip


def _stripe_invoice(inv: Record) -> list[Row]:
    return [[inv["id"], inv.get("number"), inv.get("customer"), inv.get("status"), inv.get("currency"),
             inv.get("subtotal"), inv.get("total"), inv.get("amount_due"), inv.get("amount_paid"),
             inv.get("amount_remaining"), inv.get("due_date"), inv.get("created")]]  # fmt: skip


def _stripe_lines(inv: Record) -> list[Row]:
    return [
        [line["id"], inv["id"], line.get("description"), line.get("amount"), line.get("quantity"),
         line.get("currency"), ((line.get("pricing") or {}).get("price_details") or {}).get("price")]
        for line in (inv.get("lines") or {}).get("data", [])
    ]  # fmt: skip


STRIPE = PullBench(
    slug="stripe",
    name="Stripe",
    sandbox=_stripe_sandbox,
    api_prefix="/v1/",
    listings=(
        Listing(
            "customers",
            page=_stripe_page("customers"),
            records=lambda body: list(body["data"]),
            more=lambda body, count: bool(body["has_more"]),
            tables=(
                Table(
                    "customers",
                    "id text primary key, name text, email text, phone text, currency text, balance bigint, "
                    "city text, country text, created bigint",
                    _stripe_customer,
                ),
            ),
        ),
        Listing(
            "invoices",
            page=_stripe_page("invoices"),
            records=lambda body: list(body["data"]),
            more=lambda body, count: bool(body["has_more"]),
            tables=(
                Table(
                    "invoices",
                    "id text primary key, number text, customer_id text, status text, currency text, "
                    "subtotal bigint, total bigint, amount_due bigint, amount_paid bigint, amount_remaining bigint, "
                    "due_date bigint, created bigint",
                    _stripe_invoice,
                ),
                Table(
                    "invoices__lines",
                    "id text, invoice_id text, description text, amount bigint, quantity bigint, currency text, "
                    "price_id text",
                    _stripe_lines,
                ),
            ),
        ),
    ),
    page_size=100,
    data_words="{n:,} customers + {n:,} invoices x 3 lines",
    per_window=25,
    window_s=1,
    limit_words="test mode's 25 calls/s per account",
    wall_target=None,
)

PROVIDERS = {bench.slug: bench for bench in (XERO, QUICKBOOKS, STRIPE)}

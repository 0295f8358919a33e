"""QuickBooks Online records of one company, rendered on demand from the kit's generated books
(``sandbox_kit.books``): customers, items, invoices with their lines, payments, accounts, tax codes and rates and
the company's ``CompanyInfo``, in the shapes of the Accounting API v3 (``{"Id": "1", "SyncToken": "0",
"MetaData": {...}, ...}``; python-quickbooks' objects name the same fields).

Ids are numbers counted per entity from 1 (the record at index ``i`` is ``str(i + 1)``), as in QuickBooks; tax codes
are the US ones (``TAX``, ``NON``). Times are written in the company's offset (the sandbox's companies keep
Pacific daylight time, -07:00, all year: a simplification) to the second, like ``MetaData.LastUpdatedTime``;
the ``time`` of an answer carries milliseconds. Amounts are integer cents in the books, JSON numbers here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from providers.sandbox_kit import pools
from providers.sandbox_kit.books import Books, Line, Sizes
from providers.sandbox_kit.clock import ms_at
from providers.sandbox_kit.data import money, stable_key
from providers.sandbox_kit.store import Record

OFFSET = timezone(timedelta(hours=-7))
ACCOUNTS_MS = ms_at(2021, 1, 1)
ITEMS_SPAN = (ms_at(2021, 6, 1), ms_at(2022, 1, 1))
CUSTOMERS_SPAN = (ms_at(2022, 1, 1), ms_at(2023, 1, 1))
INVOICES_SPAN = (ms_at(2023, 1, 1), ms_at(2025, 1, 1))
SEED_END_MS = INVOICES_SPAN[1]
TAX_PERCENT = 8  # TAX: California 7.25% + San Francisco 0.75%
USD = {"value": "USD", "name": "United States Dollar"}
LOCALE = pools.UNITED_STATES
# (Id, Name, AccountType, AccountSubType, Classification, AcctNum): a US sample company's chart.
ACCOUNTS = (
    ("1", "Checking", "Bank", "Checking", "Asset", "1000"),
    ("2", "Savings", "Bank", "Savings", "Asset", "1010"),
    ("3", "Accounts Receivable (A/R)", "Accounts Receivable", "AccountsReceivable", "Asset", "1100"),
    ("4", "Undeposited Funds", "Other Current Asset", "UndepositedFunds", "Asset", "1200"),
    ("5", "Inventory Asset", "Other Current Asset", "Inventory", "Asset", "1300"),
    ("6", "Accounts Payable (A/P)", "Accounts Payable", "AccountsPayable", "Liability", "2000"),
    ("7", "Board of Equalization Payable", "Other Current Liability", "SalesTaxPayable", "Liability", "2100"),
    ("8", "Opening Balance Equity", "Equity", "OpeningBalanceEquity", "Equity", "3000"),
    ("9", "Sales of Product Income", "Income", "SalesOfProductIncome", "Revenue", "4000"),
    ("10", "Services", "Income", "ServiceFeeIncome", "Revenue", "4100"),
    ("11", "Cost of Goods Sold", "Cost of Goods Sold", "SuppliesMaterialsCogs", "Expense", "5000"),
    ("12", "Office Expenses", "Expense", "OfficeGeneralAdministrativeExpenses", "Expense", "6000"),
    ("13", "Advertising", "Expense", "AdvertisingPromotional", "Expense", "6100"),
)
BANK_ACCOUNT, INCOME_ACCOUNT, EXPENSE_ACCOUNT = "1", "9", "11"
# (Id, Name, Description, RateValue): the rates the TAX code combines.
TAX_RATES = (("1", "California", "State of California sales tax", 7.25), ("2", "San Francisco", "City tax", 0.75))
# (Id, Name, Description, Taxable, rate ids): US companies name TAX or NON on each line.
TAX_CODES = (("TAX", "TAX", "TAX", True, ("1", "2")), ("NON", "NON", "Non-Taxable", False, ()))
GLOBAL_TAX = {"exclusive": "TaxExcluded", "inclusive": "TaxInclusive", "none": "NotApplicable"}


def qbo_time(ms: int) -> str:
    """``2015-07-24T10:33:39-07:00``: QuickBooks' timestamps, to the second, in the company's offset."""
    return datetime.fromtimestamp(ms // 1000, OFFSET).isoformat()


def answer_time(ms: int) -> str:
    """An answer's ``time``: ``2015-07-24T10:33:39.110-07:00``."""
    return datetime.fromtimestamp(ms / 1000, OFFSET).isoformat(timespec="milliseconds")


def qbo_date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, OFFSET).date().isoformat()


def meta(created_ms: int, updated_ms: int) -> Record:
    return {"CreateTime": qbo_time(created_ms), "LastUpdatedTime": qbo_time(updated_ms)}


def ref(value: str, name: str | None = None) -> Record:
    return {"value": value, **({"name": name} if name is not None else {})}


def managed(record_id: str, created_ms: int, updated_ms: int, **fields: Any) -> Record:
    """What every entity carries: Id, SyncToken (0 until its first change), MetaData, domain, sparse."""
    return {
        **fields,
        "domain": "QBO",
        "sparse": False,
        "Id": record_id,
        "SyncToken": "0",
        "MetaData": meta(created_ms, updated_ms),
    }


class CompanyData:
    """Renders one company's records; ``customer_ref`` lets the store substitute a changed customer's name."""

    def __init__(self, seed: int, ordinal: int, realm_id: str, name: str, sizes: Sizes) -> None:
        self.key = stable_key("quickbooks-sandbox", seed, ordinal)
        self.realm_id, self.name, self.sizes = realm_id, name, sizes
        spans = {"items_span": ITEMS_SPAN, "customers_span": CUSTOMERS_SPAN, "invoices_span": INVOICES_SPAN}
        self.books = Books(self.key, sizes, **spans, tax_percent=TAX_PERCENT, locale=LOCALE)

    def seeded_ms(self, entity: str) -> Callable[[int], int]:
        books = self.books
        timelines = {"customers": books.customer_ms, "invoices": books.invoice_ms, "items": books.item_ms}
        if entity in timelines:
            return timelines[entity]
        if entity == "payments":
            return books.payment_ms
        return lambda i: ACCOUNTS_MS + i * 60_000  # accounts and tax predate everything else, a minute apart

    def customer_name(self, i: int) -> str:
        return self.books.customer_name(i)[0]

    def customer(self, i: int, updated_ms: int, *, active: bool | None = None) -> Record:
        c = self.books.customer(i, archived=None if active is None else not active)
        record = managed(
            str(i + 1),
            updated_ms,
            updated_ms,
            DisplayName=c.name,
            FullyQualifiedName=c.name,
            PrintOnCheckName=c.name,
            GivenName=c.first,
            FamilyName=c.last,
            Active=not c.archived,
            Taxable=True,
            Job=False,
            BillWithParent=False,
            IsProject=False,
            CurrencyRef=dict(USD),
            PreferredDeliveryMethod="Print",
            PrimaryEmailAddr={"Address": c.email},
            PrimaryPhone={"FreeFormNumber": f"(415) {c.phone}"},
            BillAddr=address(str(2 * i + 1), c.street, c.city, c.region, c.postcode),
        )
        if not c.person:
            record["CompanyName"] = c.name
        if c.mobile:
            record["Mobile"] = {"FreeFormNumber": c.mobile}
        return record

    def item(self, j: int, updated_ms: int) -> Record:
        p = self.books.product(j)
        record = managed(
            str(j + 1),
            updated_ms,
            updated_ms,
            Name=p.name,
            Sku=p.code,
            Description=p.description,
            Active=True,
            FullyQualifiedName=p.name,
            Taxable=True,
            UnitPrice=money(p.price),
            TrackQtyOnHand=False,
            Type="NonInventory" if p.purchased else "Service",
            IncomeAccountRef=self.account_ref(INCOME_ACCOUNT),
        )
        if p.purchased:
            record.update(PurchaseDesc=p.description, PurchaseCost=money(p.price * 6 // 10))
            record["ExpenseAccountRef"] = self.account_ref(EXPENSE_ACCOUNT)
        return record

    def item_ref(self, j: int) -> Record:
        return ref(str(j + 1), self.books.product(j).name)

    def account(self, i: int, updated_ms: int) -> Record:
        if i < len(ACCOUNTS):
            record_id, name, kind, sub_kind, classification, number = ACCOUNTS[i]
        else:  # accounts created later: more expense accounts
            n = i - len(ACCOUNTS) + 1
            record_id, name, kind, sub_kind, classification, number = (
                str(i + 1),
                f"Expense {n}",
                "Expense",
                "OtherMiscellaneousServiceCost",
                "Expense",
                f"6{200 + n}",
            )
        return managed(
            record_id,
            updated_ms,
            updated_ms,
            Name=name,
            SubAccount=False,
            FullyQualifiedName=name,
            Active=True,
            Classification=classification,
            AccountType=kind,
            AccountSubType=sub_kind,
            AcctNum=number,
            CurrentBalance=0,
            CurrentBalanceWithSubAccounts=0,
            CurrencyRef=dict(USD),
        )

    def account_ref(self, record_id: str) -> Record:
        return ref(record_id, ACCOUNTS[int(record_id) - 1][1])

    def tax_code(self, i: int, updated_ms: int) -> Record:
        record_id, name, description, taxable, rates = TAX_CODES[i]
        details = [
            {"TaxRateRef": ref(r, TAX_RATES[int(r) - 1][1]), "TaxTypeApplicable": "TaxOnAmount", "TaxOrder": n}
            for n, r in enumerate(rates)
        ]
        return managed(
            record_id,
            updated_ms,
            updated_ms,
            Name=name,
            Description=description,
            Active=True,
            Hidden=False,
            Taxable=taxable,
            TaxGroup=bool(rates),
            SalesTaxRateList={"TaxRateDetail": details},
            PurchaseTaxRateList={"TaxRateDetail": []},
        )

    def tax_rate(self, i: int, updated_ms: int) -> Record:
        record_id, name, description, rate = TAX_RATES[i]
        return managed(
            record_id,
            updated_ms,
            updated_ms,
            Name=name,
            Description=description,
            Active=True,
            RateValue=rate,
            AgencyRef=ref("1"),
            SpecialTaxType="NONE",
            DisplayType="ReadOnly",
        )

    def invoice(
        self, k: int, updated_ms: int, customer_ref: Callable[[int], Record], *, created: bool = False
    ) -> Record:
        """Invoice ``k`` from the books' sale ``k``; a voided one keeps its lines with nothing to pay."""
        sale = self.books.sale(k, updated_ms, created=created)
        voided = sale.state == "void"
        lines = [self._line(n, line, sale.tax_mode) for n, line in enumerate(sale.lines)]
        lines.append({"Amount": money(sale.sub_total), "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
        customer = customer_ref(sale.customer)
        record = managed(
            str(k + 1),
            updated_ms,
            updated_ms,
            DocNumber=str(1001 + k),
            TxnDate=qbo_date(sale.date_ms),
            DueDate=qbo_date(sale.due_ms),
            CurrencyRef=dict(USD),
            CustomerRef=customer,
            Line=lines,
            TxnTaxDetail={"TxnTaxCodeRef": ref("TAX"), "TotalTax": 0 if voided else money(sale.tax), "TaxLine": []},
            TotalAmt=0 if voided else money(sale.total),
            Balance=0 if voided else money(sale.total - sale.paid),
            GlobalTaxCalculation=GLOBAL_TAX[sale.tax_mode],
            ApplyTaxAfterDiscount=False,
            PrintStatus="NotSet",
            EmailStatus="EmailSent" if sale.sent else "NotSet",
            LinkedTxn=[],
        )
        if sale.reference:
            record["CustomerMemo"] = {"value": sale.reference}
        if voided:
            record["PrivateNote"] = "Voided"
        if sale.payment is not None and not voided:
            record["LinkedTxn"].append({"TxnId": str(sale.payment + 1), "TxnType": "Payment"})
        return record

    def _line(self, n: int, line: Line, tax_mode: str) -> Record:
        detail: Record = {
            "UnitPrice": money(line.unit),
            "Qty": line.quantity / 100,
            "TaxCodeRef": ref("NON" if tax_mode == "none" else "TAX"),
        }
        if line.product is not None:
            detail["ItemRef"] = self.item_ref(line.product)
        elif self.sizes.items:
            detail["ItemRef"] = self.item_ref(0)  # every sales line names an item: the first stands for services
        detail["ItemAccountRef"] = self.account_ref(INCOME_ACCOUNT)
        return {
            "Id": str(n + 1),
            "LineNum": n + 1,
            "Description": line.description,
            "Amount": money(line.amount),
            "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": detail,
        }

    def payment(
        self, i: int, updated_ms: int, invoice_id: str, customer: Record, terms: tuple[int, int, str]
    ) -> Record:
        """Payment ``i`` of ``terms`` (date ms, amount cents, reference) against one invoice of ``customer``."""
        date_ms, amount, reference = terms
        line = {"Amount": money(amount), "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]}
        record = managed(
            str(i + 1),
            updated_ms,
            updated_ms,
            TxnDate=qbo_date(date_ms),
            TotalAmt=money(amount),
            UnappliedAmt=0,
            ProcessPayment=False,
            CustomerRef=dict(customer),
            CurrencyRef=dict(USD),
            DepositToAccountRef=ref(BANK_ACCOUNT),
            Line=[line],
        )
        if reference:
            record["PaymentRefNum"] = reference
        return record

    def company_info(self, created_ms: int, updated_ms: int) -> Record:
        rng = self.books.rng("company", 0)
        city, region, postcode = rng.choice(LOCALE.cities)
        street = LOCALE.street(rng, highest_number=300)
        return managed(
            "1",
            created_ms,
            updated_ms,
            CompanyName=self.name,
            LegalName=self.name,
            Country="US",
            CompanyAddr=address("1", street, city, region, postcode),
            SupportedLanguages="en",
            FiscalYearStartMonth="January",
            CompanyStartDate=qbo_date(created_ms),
            Email={"Address": _mailbox(self.name)},
            PrimaryPhone={"FreeFormNumber": f"(415) {LOCALE.local_number(rng)}"},
            WebAddr={},
            NameValue=[{"Name": "OfferingSku", "Value": "QuickBooks Online Plus"}],
        )


def address(record_id: str, line1: str, city: str, region: str, postcode: str) -> Record:
    return {
        "Id": record_id,
        "Line1": line1,
        "City": city,
        "CountrySubDivisionCode": region,
        "PostalCode": postcode,
        "Country": LOCALE.country,
    }


def _mailbox(name: str) -> str:
    slug = "".join(ch for ch in name.lower() if ch.isalnum())[:24] or "company"
    return f"books@{slug}.example.com"

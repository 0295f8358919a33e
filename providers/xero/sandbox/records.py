"""Xero records of one organisation (contacts, items, accounts, tax rates, invoices with lines, payments, the
organisation itself), rendered on demand from the kit's generated books (``sandbox_kit.books``): nothing is
materialised up front, so 100,000 invoices cost no memory until served. Amounts are kept in integer cents, so
``SubTotal + TotalTax == Total`` and ``AmountPaid + AmountDue == Total`` hold exactly; they are sent as JSON
numbers like Xero's (``"Total": 46.0``). IDs are the kit's ``IdCodec`` of the index, so
``GET /Invoices/{InvoiceID}`` finds the index without a lookup table. Seeded ``UpdatedDateUTC`` values increase with
the index over fixed spans in the past (the same seed gives the same data on any day), so ordering and change-date
filters reduce to index arithmetic. The literal shapes below follow the spec's examples.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import providers.xero.sandbox.catalog as cat
from providers.sandbox_kit import pools
from providers.sandbox_kit.books import Books, Line, Sizes
from providers.sandbox_kit.clock import ms_at
from providers.sandbox_kit.data import IdCodec, cents, mix64, money, stable_key
from providers.sandbox_kit.store import Record, sort_key

# Seeded history (see the module docstring). Clocks given to the sandbox should read later than SEED_END_MS.
ACCOUNTS_MS = ms_at(2021, 1, 1)
ITEMS_SPAN = (ms_at(2021, 6, 1), ms_at(2022, 1, 1))
CONTACTS_SPAN = (ms_at(2022, 1, 1), ms_at(2023, 1, 1))
INVOICES_SPAN = (ms_at(2023, 1, 1), ms_at(2025, 1, 1))
SEED_END_MS = INVOICES_SPAN[1]
LOCALE = pools.NEW_ZEALAND


def ms_json(ms: int) -> str:
    """Xero's MS-JSON timestamp, ``/Date(1541176290160+0000)/`` (spec examples)."""
    return f"/Date({ms}+0000)/"


def date_string(ms: int) -> str:
    """The ``DateString`` companion of a date field: ``2018-10-20T00:00:00`` (spec getInvoices example)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")


class OrgData:
    """Renders one organisation's records. ``contact_ref``/``invoice_of`` let the store substitute overrides."""

    def __init__(self, seed: int, ordinal: int, tenant_id: str, name: str, sizes: Sizes) -> None:
        self.key = stable_key("xero-sandbox", seed, ordinal)
        self.tenant_id = tenant_id
        self.name = name
        self.sizes = sizes
        spans = {"items_span": ITEMS_SPAN, "customers_span": CONTACTS_SPAN, "invoices_span": INVOICES_SPAN}
        self.books = Books(self.key, sizes, **spans, tax_percent=cat.GST_RATE_PERCENT, locale=LOCALE)
        self.codecs = {e: IdCodec(stable_key(self.key, e)) for e in (*cat.QUERY_FIELDS, "lines", "branding")}
        self.branding_theme_id = self.codecs["branding"].encode(0)
        self.item_id = lru_cache(maxsize=4096)(self.codecs["items"].encode)  # invoice lines name items again and again
        self._account_refs = {
            row[0]: {"AccountID": self.id_of("accounts", i), "Code": row[0]}
            for i, row in enumerate(cat.CHART_OF_ACCOUNTS)
        }
        self.sales_account_id = self._account_refs[cat.SALES_ACCOUNT]["AccountID"]

    def id_of(self, entity: str, index: int) -> str:
        return self.codecs[entity].encode(index)

    def seeded_ms(self, entity: str) -> Callable[[int], int]:
        books = self.books
        if entity in ("accounts", "tax_rates"):  # they predate everything else, a minute apart
            return lambda i: ACCOUNTS_MS + i * 60_000
        timelines = {"contacts": books.customer_ms, "invoices": books.invoice_ms, "items": books.item_ms}
        return timelines.get(entity, books.payment_ms)

    def contact_name(self, i: int) -> str:
        return self.books.customer_name(i)[0]

    def contact(self, i: int, updated_ms: int, *, archived: bool | None = None) -> Record:
        c = self.books.customer(i, archived=archived)
        record = new_contact(self.id_of("contacts", i))
        addresses = [
            _address(kind, line, c.city, c.region, c.postcode)
            for kind, line in (("POBOX", c.po_box), ("STREET", c.street))
        ]
        phones = [
            _phone("DDI", ""),
            _phone("DEFAULT", c.phone, "09"),
            _phone("FAX", ""),
            _phone("MOBILE", c.mobile, "021"),
        ]
        record.update({
            "ContactStatus": "ARCHIVED" if c.archived else "ACTIVE", "Name": c.name, "FirstName": c.first,
            "LastName": c.last, "EmailAddress": c.email, "Addresses": addresses, "Phones": phones,
            "UpdatedDateUTC": ms_json(updated_ms), "IsSupplier": c.supplies, "IsCustomer": c.buys,
            "DefaultCurrency": cat.ORGANISATION_PROFILE["BaseCurrency"],
        })  # fmt: skip
        if c.tax_number:
            record["TaxNumber"] = c.tax_number
        return record

    # --- items, accounts, tax rates ------------------------------------------------------------------------

    def item(self, j: int, updated_ms: int) -> Record:
        p = self.books.product(j)
        bought = {"UnitPrice": money(p.price * 6 // 10), "AccountCode": cat.PURCHASES_ACCOUNT, "TaxType": "INPUT2"}
        sold = {"UnitPrice": money(p.price), "AccountCode": cat.SALES_ACCOUNT, "TaxType": "OUTPUT2"}
        return {
            "ItemID": self.id_of("items", j), "Code": p.code, "Name": p.name, "Description": p.description,
            "PurchaseDescription": p.description if p.purchased else "", "UpdatedDateUTC": ms_json(updated_ms),
            "PurchaseDetails": bought if p.purchased else {}, "SalesDetails": sold, "IsTrackedAsInventory": False,
            "IsSold": True, "IsPurchased": p.purchased,
        }  # fmt: skip

    def account(self, i: int, updated_ms: int) -> Record:
        if i < len(cat.CHART_OF_ACCOUNTS):
            code, name, kind, tax_type, system, description = cat.CHART_OF_ACCOUNTS[i]
        else:  # accounts created later: extra expense codes
            n = i - len(cat.CHART_OF_ACCOUNTS) + 1
            code, name, kind, tax_type, system, description = (f"5{n:02d}", f"Expense {n}", "EXPENSE", "INPUT2", "", "")
        record: Record = {
            "AccountID": self.id_of("accounts", i), "Code": code, "Name": name, "Status": "ACTIVE", "Type": kind,
            "TaxType": tax_type, "Class": cat.ACCOUNT_CLASS[kind], "EnablePaymentsToAccount": False,
            "ShowInExpenseClaims": kind in ("OVERHEADS", "EXPENSE"), "BankAccountType": "", "ReportingCode": "",
            "HasAttachments": False, "UpdatedDateUTC": ms_json(updated_ms), "AddToWatchlist": False,
        }  # fmt: skip
        if description:
            record["Description"] = description
        if system:
            record["SystemAccount"] = system
        if kind == "BANK":
            record.update(
                BankAccountNumber=f"0{i + 1}0209{10000000 + mix64(i, self.key) % 89999999}",
                BankAccountType="BANK",
                CurrencyCode=cat.ORGANISATION_PROFILE["BaseCurrency"],
                EnablePaymentsToAccount=True,
            )
        return record

    def account_ref(self, code: str) -> Record:
        return dict(self._account_refs[code])

    def tax_rate(self, i: int) -> Record:
        if i < len(cat.TAX_RATES):
            name, tax_type, report, rate, applies = cat.TAX_RATES[i]
        else:  # created later: Xero names custom rates TAX001, TAX002...
            n = i - len(cat.TAX_RATES) + 1
            name, tax_type, report, rate, applies = (f"Custom rate {n}", f"TAX{n:03d}", "OUTPUT", 5.0, (True,) * 5)
        applies_to = dict(zip(("Assets", "Equity", "Expenses", "Liabilities", "Revenue"), applies, strict=True))
        return {
            "Name": name, "TaxType": tax_type, "ReportTaxType": report,
            **{f"CanApplyTo{kind}": can for kind, can in applies_to.items()},
            "DisplayTaxRate": rate, "EffectiveRate": rate, "Status": "ACTIVE",
            "TaxComponents": [{"Name": "GST", "Rate": rate, "IsCompound": False, "IsNonRecoverable": False}],
        }  # fmt: skip


def new_contact(contact_id: str) -> Record:
    """A contact as Xero starts one: both address types, all four phone types, no transactions yet."""
    return {
        "ContactID": contact_id, "ContactStatus": "ACTIVE", "Name": "", "EmailAddress": "", "BankAccountDetails": "",
        "Addresses": [{"AddressType": "POBOX"}, {"AddressType": "STREET"}],
        "Phones": [{"PhoneType": kind} for kind in ("DDI", "DEFAULT", "FAX", "MOBILE")], "UpdatedDateUTC": "",
        "ContactGroups": [], "IsSupplier": False, "IsCustomer": False, "ContactPersons": [], "HasAttachments": False,
        "HasValidationErrors": False,
    }  # fmt: skip


def _address(kind: str, line1: str, city: str, region: str, postcode: str) -> Record:
    return {
        "AddressType": kind, "AddressLine1": line1, "City": city, "Region": region, "PostalCode": postcode,
        "Country": LOCALE.country,
    }  # fmt: skip


def _phone(kind: str, number: str, area: str = "") -> Record:
    country = LOCALE.dialing_code if number else ""
    return {
        "PhoneType": kind,
        "PhoneNumber": number,
        "PhoneAreaCode": area if number else "",
        "PhoneCountryCode": country,
    }


_MS_JSON = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
ContactRef = Callable[[int], Record]  # contact index -> the contact as an invoice embeds it


def plain(value: Any) -> Any:
    """A field's value as ``where`` and ``order`` compare it: MS-JSON dates as instants."""
    if isinstance(value, str):
        match = _MS_JSON.match(value)
        if match:
            return datetime.fromtimestamp(int(match.group(1)) / 1000, UTC)
    return value


def sort_value(value: Any) -> tuple[int, Any]:
    """The kit's total order over field values, MS-JSON dates by instant."""
    return sort_key(plain(value))


def parse_ms_json(value: str) -> int:
    match = _MS_JSON.match(value)
    if match is None:
        raise ValueError(f"not an MS-JSON date: {value!r}")
    return int(match.group(1))


def contact_embed(contact: Record) -> Record:
    """A contact as invoices and payments embed it (spec getInvoices example)."""
    return {
        "ContactID": contact["ContactID"], "Name": contact["Name"], "Addresses": [], "Phones": [], "ContactGroups": [],
        "ContactPersons": [], "HasValidationErrors": False,
    }  # fmt: skip


def new_invoice(data: OrgData, contact: Record, status: str, line_amount_types: str) -> Record:
    """An invoice as Xero starts one (ACCREC: the sandbox's organisations only sell), before dates and lines."""
    return {
        "Type": "ACCREC", "Payments": [], "CreditNotes": [], "Prepayments": [], "Overpayments": [], "AmountPaid": 0.0,
        "AmountCredited": 0.0, "SentToContact": False, "CurrencyRate": 1.0, "IsDiscounted": False,
        "HasAttachments": False, "HasErrors": False, "Contact": contact, "BrandingThemeID": data.branding_theme_id,
        "Status": status, "LineAmountTypes": line_amount_types,
        "CurrencyCode": cat.ORGANISATION_PROFILE["BaseCurrency"],
    }  # fmt: skip


def line_item(
    line_id: str, description: str, quantity: float, unit: float, tax_type: str, tax: int, amount: int
) -> Record:
    """An invoice line as Xero holds it; its account and item are added where it has them."""
    return {
        "LineItemID": line_id, "Description": description, "Quantity": quantity, "UnitAmount": unit,
        "TaxType": tax_type, "TaxAmount": money(tax), "LineAmount": money(amount), "Tracking": [],
    }  # fmt: skip


def invoice(data: OrgData, k: int, updated_ms: int, contact_ref: ContactRef, *, created: bool = False) -> Record:
    """Invoice ``k`` from the books' sale ``k``: seeded ones are issued before their update, ``created`` ones on
    the update day, unpaid. A seeded invoice with a seeded payment is PAID (or part-paid AUTHORISED)."""
    sale = data.books.sale(k, updated_ms, created=created)
    status = _STATUS[sale.state]
    record = new_invoice(data, contact_ref(sale.customer), status, _AMOUNT_TYPES[sale.tax_mode])
    if sale.payment is not None and sale.paid_date_ms is not None:
        record["Payments"].append(payment_embed(data.id_of("payments", sale.payment), sale.paid_date_ms, sale.paid))
    record.update({
        "InvoiceID": data.id_of("invoices", k), "InvoiceNumber": f"INV-{k + 1:06d}", "Reference": sale.reference,
        "AmountDue": 0.0 if status == "VOIDED" else money(sale.total - sale.paid), "AmountPaid": money(sale.paid),
        "SentToContact": sale.sent and status in ("AUTHORISED", "PAID"), "UpdatedDateUTC": ms_json(updated_ms),
        "DateString": date_string(sale.date_ms), "Date": ms_json(sale.date_ms),
        "DueDateString": date_string(sale.due_ms), "DueDate": ms_json(sale.due_ms),
        "LineItems": [_line_item(data, k, n, line, sale.tax_mode) for n, line in enumerate(sale.lines)],
        "SubTotal": money(sale.sub_total), "TotalTax": money(sale.tax), "Total": money(sale.total),
    })  # fmt: skip
    if status == "PAID" and sale.paid_date_ms is not None:
        record["FullyPaidOnDate"] = ms_json(sale.paid_date_ms)
    return record


_STATUS = {"draft": "DRAFT", "submitted": "SUBMITTED", "void": "VOIDED", "open": "AUTHORISED", "paid": "PAID"}
_AMOUNT_TYPES = {"exclusive": "Exclusive", "inclusive": "Inclusive", "none": "NoTax"}


def _line_item(data: OrgData, k: int, n: int, line: Line, tax_mode: str) -> Record:
    line_id = data.id_of("lines", k * data.sizes.lines_per_invoice + n)
    tax_type = "NONE" if tax_mode == "none" else "OUTPUT2"
    record = line_item(
        line_id, line.description, line.quantity / 100, money(line.unit), tax_type, line.tax, line.amount
    )
    record.update(AccountCode=cat.SALES_ACCOUNT, AccountID=data.sales_account_id)
    if line.product is not None:
        product = data.books.product(line.product)
        record["ItemCode"] = product.code
        record["Item"] = {"ItemID": data.item_id(line.product), "Name": product.name, "Code": product.code}
    return record


def payment_embed(payment_id: str, date_ms: int, amount_cents: int) -> Record:
    """A payment as an invoice lists it (spec getInvoices example)."""
    return {
        "PaymentID": payment_id, "Date": ms_json(date_ms), "Amount": money(amount_cents), "CurrencyRate": 1.0,
        "HasAccount": False, "HasValidationErrors": False,
    }  # fmt: skip


def invoice_summary(record: Record) -> Record:
    """An invoice as a payment embeds it (spec getPayments example)."""
    return {
        "Type": record["Type"], "InvoiceID": record["InvoiceID"], "InvoiceNumber": record["InvoiceNumber"],
        "Payments": [], "CreditNotes": [], "Prepayments": [], "Overpayments": [], "HasErrors": False,
        "IsDiscounted": False, "Contact": record["Contact"], "LineItems": [], "CurrencyCode": record["CurrencyCode"],
    }  # fmt: skip


def payment(data: OrgData, i: int, updated_ms: int, paid_invoice: Record, terms: tuple[int, int, str]) -> Record:
    """Payment ``i`` of ``terms`` (Date ms, Amount cents, Reference) against ``paid_invoice``, into account 090."""
    date_ms, amount, reference = terms
    return {
        "PaymentID": data.id_of("payments", i), "Date": ms_json(date_ms), "BankAmount": money(amount),
        "Amount": money(amount), "Reference": reference, "CurrencyRate": 1.0, "PaymentType": "ACCRECPAYMENT",
        "Status": "AUTHORISED", "UpdatedDateUTC": ms_json(updated_ms), "HasAccount": True,
        "IsReconciled": data.books.reconciled(i), "Account": data.account_ref(cat.BANK_ACCOUNT),
        "Invoice": invoice_summary(paid_invoice), "HasValidationErrors": False,
    }  # fmt: skip


def seeded_payment(data: OrgData, i: int, paid_invoice: Record) -> Record:
    terms = data.books.payment_terms(i, parse_ms_json(paid_invoice["Date"]), cents(paid_invoice["Total"]))
    return payment(data, i, data.books.payment_ms(i), paid_invoice, terms)


def organisation(data: OrgData, created_ms: int) -> Record:
    """The ``GET /Organisation`` record (spec getOrganisations example, NZ profile)."""
    rng = random.Random(data.key)
    city, region, postcode = rng.choice(LOCALE.cities)
    short = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789") for _ in range(5))
    tax_number = LOCALE.tax_number(rng)  # the draws keep this order: seeded records never drift
    address = _address("STREET", LOCALE.street(rng, highest_number=300), city, region, postcode)
    phone = f"{rng.randint(300, 999)} {rng.randint(1000, 9999)}"
    return {
        "Name": data.name, "LegalName": data.name, "PaysTax": True, **cat.ORGANISATION_PROFILE,
        "TaxNumber": tax_number, "CreatedDateUTC": ms_json(created_ms), "ShortCode": f"!{short}",
        "OrganisationID": data.tenant_id, "Addresses": [address],
        "Phones": [{"PhoneType": "OFFICE", "PhoneNumber": phone}], "ExternalLinks": [], "PaymentTerms": {},
    }  # fmt: skip

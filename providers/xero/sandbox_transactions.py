"""Invoices (with line items), payments and the organisation record, generated from an ``OrgData``.

Amounts are computed in integer cents so ``SubTotal + TotalTax == Total`` and ``AmountPaid + AmountDue == Total``
hold exactly; they are sent as JSON numbers like Xero's (``"Total": 46.0``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

from providers.xero import sandbox_catalog as cat
from providers.xero.sandbox_data import DAY_MS, OrgData, date_string, floor_day, mix64, money, ms_json

_MS_JSON = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
ContactRef = Callable[[int], dict[str, Any]]


def parse_ms_json(value: str) -> int:
    match = _MS_JSON.match(value)
    if match is None:
        raise ValueError(f"not an MS-JSON date: {value!r}")
    return int(match.group(1))


def cents(value: float) -> int:
    return round(value * 100)


def contact_embed(contact: dict[str, Any]) -> dict[str, Any]:
    """A contact as invoices and payments embed it (spec getInvoices example)."""
    return {
        "ContactID": contact["ContactID"],
        "Name": contact["Name"],
        "Addresses": [],
        "Phones": [],
        "ContactGroups": [],
        "ContactPersons": [],
        "HasValidationErrors": False,
    }


def invoice(
    data: OrgData,
    k: int,
    updated_ms: int,
    contact_ref: ContactRef,
    *,
    created: bool = False,
) -> dict[str, Any]:
    """Invoice ``k``. Seeded ones are issued before their update; ``created`` ones are issued on the update day
    and carry no payment. A seeded invoice with a seeded payment is PAID (or part-paid AUTHORISED)."""
    rng = data.rng("invoices", k)
    anchor = updated_ms if created else updated_ms - data.invoice_ms.step // 2
    date_ms = floor_day(anchor - rng.randint(0, 0 if created else 20) * DAY_MS)
    due_ms = date_ms + rng.choice((7, 14, 20, 30)) * DAY_MS
    amount_types = rng.choices(("Exclusive", "Inclusive", "NoTax"), weights=(70, 20, 10))[0]
    contact = data.customer_of_invoice(rng)
    lines, sub_total, total_tax, total = _line_items(data, rng, k, amount_types)
    reference = rng.choice(cat.REFERENCES)
    roll, sent = rng.random(), rng.random() < 0.6

    payments: list[dict[str, Any]] = []
    paid = 0
    paid_on: int | None = None
    payment = None if created else data.payment_of_invoice(k)
    if payment is not None:
        paid_date, paid, _ = data.payment_terms(payment, date_ms, total)
        payments.append(payment_embed(data.id_of("payments", payment), paid_date, paid))
        status = "PAID" if paid == total else "AUTHORISED"
        paid_on = paid_date if status == "PAID" else None
    elif created:
        status = "AUTHORISED" if roll < 0.7 else "DRAFT"
    else:
        status = "DRAFT" if roll < 0.2 else "SUBMITTED" if roll < 0.25 else "VOIDED" if roll < 0.35 else "AUTHORISED"

    record: dict[str, Any] = {
        "Type": "ACCREC",
        "InvoiceID": data.id_of("invoices", k),
        "InvoiceNumber": f"INV-{k + 1:06d}",
        "Reference": reference,
        "Payments": payments,
        "CreditNotes": [],
        "Prepayments": [],
        "Overpayments": [],
        "AmountDue": 0.0 if status == "VOIDED" else money(total - paid),
        "AmountPaid": money(paid),
        "AmountCredited": 0.0,
        "SentToContact": sent and status in ("AUTHORISED", "PAID"),
        "CurrencyRate": 1.0,
        "IsDiscounted": False,
        "HasAttachments": False,
        "HasErrors": False,
        "Contact": contact_ref(contact),
        "DateString": date_string(date_ms),
        "Date": ms_json(date_ms),
        "DueDateString": date_string(due_ms),
        "DueDate": ms_json(due_ms),
        "BrandingThemeID": data.branding_theme_id,
        "Status": status,
        "LineAmountTypes": amount_types,
        "LineItems": lines,
        "SubTotal": money(sub_total),
        "TotalTax": money(total_tax),
        "Total": money(total),
        "UpdatedDateUTC": ms_json(updated_ms),
        "CurrencyCode": cat.ORGANISATION_PROFILE["BaseCurrency"],
    }
    if paid_on is not None:
        record["FullyPaidOnDate"] = ms_json(paid_on)
    return record


def _line_items(
    data: OrgData, rng: random.Random, k: int, amount_types: str
) -> tuple[list[dict[str, Any]], int, int, int]:
    lines: list[dict[str, Any]] = []
    line_sum = tax_sum = 0
    sales_account = data.account_ref(cat.SALES_ACCOUNT)["AccountID"]
    per_invoice = data.sizes.lines_per_invoice
    for n in range(per_invoice):
        item: tuple[str, str, str, int, str] | None = None
        if data.sizes.items and rng.random() < 0.8:
            item = data.item_facts(rng.randrange(data.sizes.items))
            description, price = item[2], item[3]
        else:
            description, price = rng.choice(cat.SERVICE_LINES), rng.randint(20, 600) * 100 + rng.choice((0, 50, 95))
        quantity = rng.choice((100, 100, 100, 200, 200, 300, 500, 1000, 50, 150, 250))  # hundredths
        line_cents = (quantity * price + 50) // 100
        if amount_types == "NoTax":
            tax_type, tax_cents = "NONE", 0
        elif amount_types == "Exclusive":
            tax_type, tax_cents = "OUTPUT2", (line_cents * cat.GST_RATE_PERCENT * 2 + 100) // 200
        else:  # Inclusive: the line amount already holds the tax
            rate = cat.GST_RATE_PERCENT
            tax_type, tax_cents = "OUTPUT2", (line_cents * rate * 2 + 100 + rate) // (2 * (100 + rate))
        line: dict[str, Any] = {
            "LineItemID": data.id_of("lines", k * per_invoice + n),
            "Description": description,
            "Quantity": quantity / 100,
            "UnitAmount": money(price),
            "AccountCode": cat.SALES_ACCOUNT,
            "AccountID": sales_account,
            "TaxType": tax_type,
            "TaxAmount": money(tax_cents),
            "LineAmount": money(line_cents),
            "Tracking": [],
        }
        if item is not None:
            line["ItemCode"] = item[0]
            line["Item"] = {"ItemID": item[4], "Name": item[1], "Code": item[0]}
        lines.append(line)
        line_sum += line_cents
        tax_sum += tax_cents
    if amount_types == "Inclusive":
        return lines, line_sum - tax_sum, tax_sum, line_sum
    return lines, line_sum, tax_sum, line_sum + tax_sum


def payment_embed(payment_id: str, date_ms: int, amount_cents: int) -> dict[str, Any]:
    """A payment as an invoice lists it (spec getInvoices example)."""
    return {
        "PaymentID": payment_id,
        "Date": ms_json(date_ms),
        "Amount": money(amount_cents),
        "CurrencyRate": 1.0,
        "HasAccount": False,
        "HasValidationErrors": False,
    }


def invoice_summary(record: dict[str, Any]) -> dict[str, Any]:
    """An invoice as a payment embeds it (spec getPayments example)."""
    return {
        "Type": record["Type"],
        "InvoiceID": record["InvoiceID"],
        "InvoiceNumber": record["InvoiceNumber"],
        "Payments": [],
        "CreditNotes": [],
        "Prepayments": [],
        "Overpayments": [],
        "HasErrors": False,
        "IsDiscounted": False,
        "Contact": record["Contact"],
        "LineItems": [],
        "CurrencyCode": record["CurrencyCode"],
    }


def payment(
    data: OrgData,
    i: int,
    updated_ms: int,
    paid_invoice: dict[str, Any],
    terms: tuple[int, int, str],
    *,
    status: str = "AUTHORISED",
) -> dict[str, Any]:
    """Payment ``i`` of ``terms`` (Date ms, Amount cents, Reference) against ``paid_invoice``, into account 090."""
    date_ms, amount, reference = terms
    return {
        "PaymentID": data.id_of("payments", i),
        "Date": ms_json(date_ms),
        "BankAmount": money(amount),
        "Amount": money(amount),
        "Reference": reference,
        "CurrencyRate": 1.0,
        "PaymentType": "ACCRECPAYMENT",
        "Status": status,
        "UpdatedDateUTC": ms_json(updated_ms),
        "HasAccount": True,
        "IsReconciled": mix64(i, data.key) % 3 != 0,
        "Account": data.account_ref(cat.BANK_ACCOUNT),
        "Invoice": invoice_summary(paid_invoice),
        "HasValidationErrors": False,
    }


def seeded_payment(data: OrgData, i: int, paid_invoice: dict[str, Any]) -> dict[str, Any]:
    terms = data.payment_terms(i, parse_ms_json(paid_invoice["Date"]), cents(paid_invoice["Total"]))
    return payment(data, i, data.payment_ms(i), paid_invoice, terms)


def organisation(data: OrgData, created_ms: int) -> dict[str, Any]:
    """The ``GET /Organisation`` record (spec getOrganisations example, NZ profile)."""
    rng = random.Random(data.key)
    city, region, postcode = rng.choice(cat.CITIES)
    short = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789") for _ in range(5))
    return {
        "Name": data.name,
        "LegalName": data.name,
        "PaysTax": True,
        **cat.ORGANISATION_PROFILE,
        "TaxNumber": f"{rng.randint(10, 99)}-{rng.randint(100, 999)}-{rng.randint(100, 999)}",
        "CreatedDateUTC": ms_json(created_ms),
        "ShortCode": f"!{short}",
        "OrganisationID": data.tenant_id,
        "Addresses": [
            {
                "AddressType": "STREET",
                "AddressLine1": f"{rng.randint(1, 300)} {rng.choice(cat.STREETS)}",
                "City": city,
                "Region": region,
                "PostalCode": postcode,
                "Country": "New Zealand",
            }
        ],
        "Phones": [{"PhoneType": "OFFICE", "PhoneNumber": f"{rng.randint(300, 999)} {rng.randint(1000, 9999)}"}],
        "ExternalLinks": [],
        "PaymentTerms": {},
    }

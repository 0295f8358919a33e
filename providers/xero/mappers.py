"""Xero API objects -> canonical VRTX models (pull direction).

Input is a record as the Accounting API returns it (PascalCase keys), either straight from the JSON or after the
source's conversion of MS-JSON dates to datetimes; both are accepted.

API docs: https://developer.xero.com/documentation/api/accounting/contacts (and invoices, payments, items,
taxrates, accounts under the same path)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any, Literal, get_args

from providers.kit.values import OBJECT, UnmappableRecord, decimal, records, required, text
from providers.xero.dates import to_date, to_utc_datetime
from vrtx_pipelines.records.canonical import (
    ACCOUNTING_MODELS,
    Account,
    Address,
    CanonicalModel,
    Contact,
    Invoice,
    InvoiceLine,
    InvoicePayment,
    Product,
    TaxRate,
)

InvoiceStatus = Literal["draft", "submitted", "authorised", "paid", "voided", "deleted"]

INVOICE_STATUSES: dict[str, InvoiceStatus] = {status.upper(): status for status in get_args(InvoiceStatus)}
# GDPRREQUEST: Xero has erased the contact's personal data on request; it is as gone as an archived one.
_INACTIVE_CONTACT_STATUSES = frozenset({"ARCHIVED", "GDPRREQUEST"})


def to_contact(raw: Mapping[str, Any]) -> Contact:
    first_name = text(raw.get("FirstName"))
    last_name = text(raw.get("LastName"))
    person = " ".join(part for part in (first_name, last_name) if part) or None
    xero_name = text(raw.get("Name"))
    name = xero_name or person or text(raw.get("EmailAddress")) or required(raw, "ContactID")
    phones = {text(phone.get("PhoneType")): _phone_number(phone) for phone in records(raw.get("Phones"))}
    return Contact(
        external_id=required(raw, "ContactID"),
        updated_at=to_utc_datetime(raw.get("UpdatedDateUTC")),
        name=name,
        first_name=first_name,
        last_name=last_name,
        email=text(raw.get("EmailAddress")),
        phone=phones.get("DEFAULT") or phones.get("DDI") or phones.get("OFFICE"),
        mobile=phones.get("MOBILE"),
        # A Xero contact is usually an organisation with a primary person; when its name is just that person's
        # name it is an individual, not a company.
        company=xero_name if xero_name != person else None,
        tax_number=text(raw.get("TaxNumber")),
        addresses=[address for item in records(raw.get("Addresses")) if (address := _address(item)) is not None],
        is_customer=bool(raw.get("IsCustomer", True)),
        is_supplier=bool(raw.get("IsSupplier", False)),
        archived=raw.get("ContactStatus") in _INACTIVE_CONTACT_STATUSES,
    )


def to_invoice(raw: Mapping[str, Any]) -> Invoice:
    status = required(raw, "Status")
    if status not in INVOICE_STATUSES:
        raise ValueError(f"unknown Xero invoice status {status!r}")
    contact = raw.get("Contact")
    return Invoice(
        external_id=required(raw, "InvoiceID"),
        updated_at=to_utc_datetime(raw.get("UpdatedDateUTC")),
        number=text(raw.get("InvoiceNumber")),
        contact_id=required(contact if isinstance(contact, OBJECT) else {}, "ContactID"),
        status=INVOICE_STATUSES[status],
        issue_date=_required_date(raw, "Date"),
        due_date=_date(raw, "DueDate"),
        currency=required(raw, "CurrencyCode"),
        lines=[_invoice_line(line) for line in records(raw.get("LineItems"))],
        subtotal=decimal(raw.get("SubTotal")),
        total_tax=decimal(raw.get("TotalTax")),
        total=decimal(raw.get("Total")),
        amount_due=decimal(raw.get("AmountDue")),
        reference=text(raw.get("Reference")),
    )


def to_payment(raw: Mapping[str, Any]) -> InvoicePayment:
    """An AUTHORISED payment; a DELETED one is refused, since InvoicePayment cannot say it no longer counts."""
    invoice = raw.get("Invoice")
    if not isinstance(invoice, OBJECT) or not text(invoice.get("InvoiceID")):
        raise UnmappableRecord(f"Xero payment {raw.get('PaymentID')!r} settles no invoice")
    if raw.get("Status") == "DELETED":
        raise UnmappableRecord(f"Xero payment {raw.get('PaymentID')!r} is deleted")
    account = raw.get("Account")
    amount = decimal(raw.get("Amount"))
    if amount is None:
        raise ValueError(f"Xero payment {raw.get('PaymentID')!r} has no Amount")
    return InvoicePayment(
        external_id=required(raw, "PaymentID"),
        updated_at=to_utc_datetime(raw.get("UpdatedDateUTC")),
        invoice_id=required(invoice, "InvoiceID"),
        amount=amount,
        date=_required_date(raw, "Date"),
        # Payments carry no currency of their own: they are in the invoice's.
        currency=text(invoice.get("CurrencyCode")),
        account_code=text(account.get("Code")) if isinstance(account, OBJECT) else None,
        reference=text(raw.get("Reference")),
    )


def to_product(raw: Mapping[str, Any]) -> Product:
    """A Xero Item; the sale price is ``SalesDetails.UnitPrice``."""
    code = required(raw, "Code")
    sales = raw.get("SalesDetails")
    return Product(
        external_id=required(raw, "ItemID"),
        updated_at=to_utc_datetime(raw.get("UpdatedDateUTC")),
        code=code,
        name=text(raw.get("Name")) or code,
        description=text(raw.get("Description")),
        unit_price=decimal(sales.get("UnitPrice")) if isinstance(sales, OBJECT) else None,
        is_sold=bool(raw.get("IsSold", True)),
        is_purchased=bool(raw.get("IsPurchased", False)),
    )


def to_tax_rate(raw: Mapping[str, Any]) -> TaxRate:
    """Keyed by TaxType (Xero tax rates have no id and no UpdatedDateUTC)."""
    tax_type = required(raw, "TaxType")
    rate = decimal(raw.get("EffectiveRate"))
    if rate is None:
        rate = decimal(raw.get("DisplayTaxRate"))
    if rate is None:
        rate = sum((decimal(c.get("Rate")) or Decimal(0) for c in records(raw.get("TaxComponents"))), Decimal(0))
    return TaxRate(
        external_id=tax_type,
        name=text(raw.get("Name")) or tax_type,
        tax_type=tax_type,
        rate_percent=rate,
        is_active=raw.get("Status", "ACTIVE") == "ACTIVE",
    )


def to_account(raw: Mapping[str, Any]) -> Account:
    return Account(
        external_id=required(raw, "AccountID"),
        updated_at=to_utc_datetime(raw.get("UpdatedDateUTC")),
        code=text(raw.get("Code")),
        name=required(raw, "Name"),
        type=required(raw, "Type"),
        is_active=raw.get("Status", "ACTIVE") == "ACTIVE",
    )


MAPPERS: dict[str, Callable[[Mapping[str, Any]], CanonicalModel]] = {
    "contacts": to_contact,
    "invoices": to_invoice,
    "payments": to_payment,
    "products": to_product,
    "tax_rates": to_tax_rate,
    "accounts": to_account,
}
# The canonical model each resource's records are (``PullSpec.models``): an accounting system's usual six.
MODELS = ACCOUNTING_MODELS


# --- helpers ---------------------------------------------------------------------------------------------


def _invoice_line(raw: Mapping[str, Any]) -> InvoiceLine:
    quantity = decimal(raw.get("Quantity"))
    line_amount = decimal(raw.get("LineAmount"))
    unit_amount = decimal(raw.get("UnitAmount"))
    if unit_amount is None:
        # A description-only line (a heading or note) has no amounts at all.
        unit_amount = line_amount / quantity if line_amount is not None and quantity else Decimal(0)
    item = raw.get("Item")
    item_code = text(raw.get("ItemCode")) or (text(item.get("Code")) if isinstance(item, OBJECT) else None)
    return InvoiceLine(
        description=text(raw.get("Description")) or "",
        quantity=quantity if quantity is not None else Decimal(1),
        unit_amount=unit_amount,
        account_code=text(raw.get("AccountCode")),
        tax_type=text(raw.get("TaxType")),
        item_code=item_code,
        line_amount=line_amount,
    )


def _address(raw: Mapping[str, Any]) -> Address | None:
    """Xero always sends a STREET and a POBOX address, often empty: empty ones are dropped."""
    extra_lines = [text(raw.get(f"AddressLine{n}")) for n in (2, 3, 4)]
    address = Address(
        line1=text(raw.get("AddressLine1")),
        line2=", ".join(line for line in extra_lines if line) or None,
        city=text(raw.get("City")),
        region=text(raw.get("Region")),
        postal_code=text(raw.get("PostalCode")),
        country=text(raw.get("Country")),
    )
    return address if any(address.model_dump().values()) else None


def _phone_number(raw: Mapping[str, Any]) -> str | None:
    number = text(raw.get("PhoneNumber"))
    if number is None:
        return None
    parts = (text(raw.get("PhoneCountryCode")), text(raw.get("PhoneAreaCode")), number)
    return " ".join(part for part in parts if part)


def _date(raw: Mapping[str, Any], key: str) -> date | None:
    # The MS-JSON value first; its DateString companion when only that is there.
    return to_date(raw.get(key)) or to_date(raw.get(f"{key}String"))


def _required_date(raw: Mapping[str, Any], key: str) -> date:
    value = _date(raw, key)
    if value is None:
        raise ValueError(f"Xero record has no {key}")
    return value

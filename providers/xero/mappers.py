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
from typing import Any, Literal

from providers.xero.dates import to_date, to_utc_datetime
from vrtx_pipelines.canonical import (
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

INVOICE_STATUSES: dict[str, InvoiceStatus] = {
    "DRAFT": "draft",
    "SUBMITTED": "submitted",
    "AUTHORISED": "authorised",
    "PAID": "paid",
    "VOIDED": "voided",
    "DELETED": "deleted",
}
# A JSON object as the mappers accept it. dict first: decoded JSON is dicts, and the abstract Mapping check alone
# cost a tenth of mapping an invoice.
_OBJECT = (dict, Mapping)
# GDPRREQUEST: Xero has erased the contact's personal data on request; it is as gone as an archived one.
_INACTIVE_CONTACT_STATUSES = frozenset({"ARCHIVED", "GDPRREQUEST"})


class UnmappableRecord(ValueError):
    """A Xero record with no canonical counterpart (a payment that settles no invoice, or a deleted one)."""


def to_contact(raw: Mapping[str, Any]) -> Contact:
    first_name = _text(raw.get("FirstName"))
    last_name = _text(raw.get("LastName"))
    person = " ".join(part for part in (first_name, last_name) if part) or None
    xero_name = _text(raw.get("Name"))
    name = xero_name or person or _text(raw.get("EmailAddress")) or _required(raw, "ContactID")
    phones = {_text(phone.get("PhoneType")): _phone_number(phone) for phone in _records(raw.get("Phones"))}
    return Contact(
        external_id=_required(raw, "ContactID"),
        updated_at=to_utc_datetime(raw.get("UpdatedDateUTC")),
        name=name,
        first_name=first_name,
        last_name=last_name,
        email=_text(raw.get("EmailAddress")),
        phone=phones.get("DEFAULT") or phones.get("DDI") or phones.get("OFFICE"),
        mobile=phones.get("MOBILE"),
        # A Xero contact is usually an organisation with a primary person; when its name is just that person's
        # name it is an individual, not a company.
        company=xero_name if xero_name != person else None,
        tax_number=_text(raw.get("TaxNumber")),
        addresses=[address for item in _records(raw.get("Addresses")) if (address := _address(item)) is not None],
        is_customer=bool(raw.get("IsCustomer", True)),
        is_supplier=bool(raw.get("IsSupplier", False)),
        archived=raw.get("ContactStatus") in _INACTIVE_CONTACT_STATUSES,
    )


def to_invoice(raw: Mapping[str, Any]) -> Invoice:
    status = _required(raw, "Status")
    if status not in INVOICE_STATUSES:
        raise ValueError(f"unknown Xero invoice status {status!r}")
    contact = raw.get("Contact")
    return Invoice(
        external_id=_required(raw, "InvoiceID"),
        updated_at=to_utc_datetime(raw.get("UpdatedDateUTC")),
        number=_text(raw.get("InvoiceNumber")),
        contact_id=_required(contact if isinstance(contact, _OBJECT) else {}, "ContactID"),
        status=INVOICE_STATUSES[status],
        issue_date=_required_date(raw, "Date"),
        due_date=_date(raw, "DueDate"),
        currency=_required(raw, "CurrencyCode"),
        lines=[_invoice_line(line) for line in _records(raw.get("LineItems"))],
        subtotal=_decimal(raw.get("SubTotal")),
        total_tax=_decimal(raw.get("TotalTax")),
        total=_decimal(raw.get("Total")),
        amount_due=_decimal(raw.get("AmountDue")),
        reference=_text(raw.get("Reference")),
    )


def to_payment(raw: Mapping[str, Any]) -> InvoicePayment:
    """An AUTHORISED payment; a DELETED one is refused, since InvoicePayment cannot say it no longer counts."""
    invoice = raw.get("Invoice")
    if not isinstance(invoice, _OBJECT) or not _text(invoice.get("InvoiceID")):
        raise UnmappableRecord(f"Xero payment {raw.get('PaymentID')!r} settles no invoice")
    if raw.get("Status") == "DELETED":
        raise UnmappableRecord(f"Xero payment {raw.get('PaymentID')!r} is deleted")
    account = raw.get("Account")
    amount = _decimal(raw.get("Amount"))
    if amount is None:
        raise ValueError(f"Xero payment {raw.get('PaymentID')!r} has no Amount")
    return InvoicePayment(
        external_id=_required(raw, "PaymentID"),
        updated_at=to_utc_datetime(raw.get("UpdatedDateUTC")),
        invoice_id=_required(invoice, "InvoiceID"),
        amount=amount,
        date=_required_date(raw, "Date"),
        # Payments carry no currency of their own: they are in the invoice's.
        currency=_text(invoice.get("CurrencyCode")),
        account_code=_text(account.get("Code")) if isinstance(account, _OBJECT) else None,
        reference=_text(raw.get("Reference")),
    )


def to_product(raw: Mapping[str, Any]) -> Product:
    """A Xero Item; the sale price is ``SalesDetails.UnitPrice``."""
    code = _required(raw, "Code")
    sales = raw.get("SalesDetails")
    return Product(
        external_id=_required(raw, "ItemID"),
        updated_at=to_utc_datetime(raw.get("UpdatedDateUTC")),
        code=code,
        name=_text(raw.get("Name")) or code,
        description=_text(raw.get("Description")),
        unit_price=_decimal(sales.get("UnitPrice")) if isinstance(sales, _OBJECT) else None,
        is_sold=bool(raw.get("IsSold", True)),
        is_purchased=bool(raw.get("IsPurchased", False)),
    )


def to_tax_rate(raw: Mapping[str, Any]) -> TaxRate:
    """Keyed by TaxType (Xero tax rates have no id and no UpdatedDateUTC)."""
    tax_type = _required(raw, "TaxType")
    rate = _decimal(raw.get("EffectiveRate"))
    if rate is None:
        rate = _decimal(raw.get("DisplayTaxRate"))
    if rate is None:
        rate = sum((_decimal(c.get("Rate")) or Decimal(0) for c in _records(raw.get("TaxComponents"))), Decimal(0))
    return TaxRate(
        external_id=tax_type,
        name=_text(raw.get("Name")) or tax_type,
        tax_type=tax_type,
        rate_percent=rate,
        is_active=raw.get("Status", "ACTIVE") == "ACTIVE",
    )


def to_account(raw: Mapping[str, Any]) -> Account:
    return Account(
        external_id=_required(raw, "AccountID"),
        updated_at=to_utc_datetime(raw.get("UpdatedDateUTC")),
        code=_text(raw.get("Code")),
        name=_required(raw, "Name"),
        type=_required(raw, "Type"),
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


# --- helpers ---------------------------------------------------------------------------------------------


def _invoice_line(raw: Mapping[str, Any]) -> InvoiceLine:
    quantity = _decimal(raw.get("Quantity"))
    line_amount = _decimal(raw.get("LineAmount"))
    unit_amount = _decimal(raw.get("UnitAmount"))
    if unit_amount is None:
        # A description-only line (a heading or note) has no amounts at all.
        unit_amount = line_amount / quantity if line_amount is not None and quantity else Decimal(0)
    item = raw.get("Item")
    item_code = _text(raw.get("ItemCode")) or (_text(item.get("Code")) if isinstance(item, _OBJECT) else None)
    return InvoiceLine(
        description=_text(raw.get("Description")) or "",
        quantity=quantity if quantity is not None else Decimal(1),
        unit_amount=unit_amount,
        account_code=_text(raw.get("AccountCode")),
        tax_type=_text(raw.get("TaxType")),
        item_code=item_code,
        line_amount=line_amount,
    )


def _address(raw: Mapping[str, Any]) -> Address | None:
    """Xero always sends a STREET and a POBOX address, often empty: empty ones are dropped."""
    extra_lines = [_text(raw.get(f"AddressLine{n}")) for n in (2, 3, 4)]
    address = Address(
        line1=_text(raw.get("AddressLine1")),
        line2=", ".join(line for line in extra_lines if line) or None,
        city=_text(raw.get("City")),
        region=_text(raw.get("Region")),
        postal_code=_text(raw.get("PostalCode")),
        country=_text(raw.get("Country")),
    )
    return address if any(address.model_dump().values()) else None


def _phone_number(raw: Mapping[str, Any]) -> str | None:
    number = _text(raw.get("PhoneNumber"))
    if number is None:
        return None
    parts = (_text(raw.get("PhoneCountryCode")), _text(raw.get("PhoneAreaCode")), number)
    return " ".join(part for part in parts if part)


def _records(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, _OBJECT)] if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    """Xero sends empty strings for unset text fields; they are None here."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _required(raw: Mapping[str, Any], key: str) -> str:
    value = _text(raw.get(key))
    if value is None:
        raise ValueError(f"Xero record has no {key}")
    return value


def _decimal(value: Any) -> Decimal | None:
    if type(value) is Decimal:  # what the client decodes money to: the common case, checked first
        return value
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise TypeError(f"not an amount: {value!r}")
    # Through str: Decimal(0.1) would carry the float's binary error into the amount.
    return Decimal(str(value))


def _date(raw: Mapping[str, Any], key: str) -> date | None:
    # The MS-JSON value first; its DateString companion when only that is there.
    return to_date(raw.get(key)) or to_date(raw.get(f"{key}String"))


def _required_date(raw: Mapping[str, Any], key: str) -> date:
    value = _date(raw, key)
    if value is None:
        raise ValueError(f"Xero record has no {key}")
    return value

"""QuickBooks Online records -> canonical VRTX models (pull direction).

Input is a record as the Accounting API returns it, decoded by the client (money as ``Decimal``, MetaData times as
UTC datetimes). A CDC tombstone (``status: Deleted``) of any entity is ``Deleted``; so is an inactive item (making
it inactive is QuickBooks' delete of a name; a customer keeps its record, ``archived``). Invoice lines name an
item by its QuickBooks Id (``item_code``) and a tax code (TAX/NON in the US, an id elsewhere: ``tax_type``).

API docs: https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/customer (and invoice,
payment, item, taxrate, account under the same path)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from providers.kit.values import OBJECT, UnmappableRecord, calendar_date, decimal, records, required, text, timestamp
from vrtx_pipelines.records.canonical import (
    ACCOUNTING_MODELS,
    Account,
    Address,
    CanonicalModel,
    Contact,
    Deleted,
    Invoice,
    InvoiceLine,
    InvoicePayment,
    Product,
    TaxRate,
)

from .client import reference

DELETED = "Deleted"


def managed(raw: Mapping[str, Any]) -> dict[str, Any]:
    """What every record says about itself: its Id, when it last changed, its SyncToken."""
    meta = raw.get("MetaData")
    return {
        "external_id": required(raw, "Id"),
        "updated_at": timestamp(meta.get("LastUpdatedTime")) if isinstance(meta, OBJECT) else None,
        "version": text(raw.get("SyncToken")),
    }


def tombstone(raw: Mapping[str, Any]) -> Deleted:
    return Deleted(**{k: v for k, v in managed(raw).items() if k != "version"})


def deletable(mapper: Callable[[Mapping[str, Any]], CanonicalModel]) -> Callable[[Mapping[str, Any]], CanonicalModel]:
    """``mapper`` for live records, ``Deleted`` for CDC's tombstones."""

    def mapped(raw: Mapping[str, Any]) -> CanonicalModel:
        return tombstone(raw) if raw.get("status") == DELETED else mapper(raw)

    return mapped


def _inner(raw: Mapping[str, Any], key: str, field: str) -> str | None:
    value = raw.get(key)
    return text(value.get(field)) if isinstance(value, OBJECT) else None


def to_contact(raw: Mapping[str, Any]) -> Contact:
    name = text(raw.get("DisplayName")) or required(raw, "Id")
    addresses = [address for key in ("BillAddr", "ShipAddr") if (address := _address(raw.get(key))) is not None]
    return Contact(
        **managed(raw),
        name=name,
        first_name=text(raw.get("GivenName")),
        last_name=text(raw.get("FamilyName")),
        email=_inner(raw, "PrimaryEmailAddr", "Address"),
        phone=_inner(raw, "PrimaryPhone", "FreeFormNumber"),
        mobile=_inner(raw, "Mobile", "FreeFormNumber"),
        company=text(raw.get("CompanyName")),
        tax_number=text(raw.get("ResaleNum")),
        addresses=_unique(addresses),
        is_customer=True,
        archived=raw.get("Active") is False,
    )


def to_invoice(raw: Mapping[str, Any]) -> Invoice:
    total, balance = decimal(raw.get("TotalAmt")), decimal(raw.get("Balance"))
    lines = [line for line in records(raw.get("Line")) if line.get("DetailType") == "SalesItemLineDetail"]
    subtotal = next(
        (
            decimal(line.get("Amount"))
            for line in records(raw.get("Line"))
            if line.get("DetailType") == "SubTotalLineDetail"
        ),
        None,
    )
    tax = raw.get("TxnTaxDetail")
    return Invoice(
        **managed(raw),
        number=text(raw.get("DocNumber")),
        contact_id=reference(raw.get("CustomerRef")) or required({}, "CustomerRef"),
        status=_invoice_status(raw, total, balance),
        issue_date=_required_date(raw, "TxnDate"),
        due_date=calendar_date(text(raw.get("DueDate"))),
        currency=reference(raw.get("CurrencyRef")) or "USD",
        lines=[_line(line) for line in lines],
        subtotal=subtotal,
        total_tax=decimal(tax.get("TotalTax")) if isinstance(tax, OBJECT) else None,
        total=total,
        amount_due=balance,
        reference=_inner(raw, "CustomerMemo", "value"),
    )


def _invoice_status(raw: Mapping[str, Any], total: Decimal | None, balance: Decimal | None) -> Any:
    # QuickBooks has no draft invoices and no status field: a voided invoice keeps its lines with nothing to pay.
    if text(raw.get("PrivateNote")) == "Voided" and not total:
        return "voided"
    return "paid" if total and balance == 0 else "authorised"


def _line(raw: Mapping[str, Any]) -> InvoiceLine:
    detail = raw.get("SalesItemLineDetail")
    detail = detail if isinstance(detail, OBJECT) else {}
    amount = decimal(raw.get("Amount"))
    quantity = decimal(detail.get("Qty"))
    unit = decimal(detail.get("UnitPrice"))
    if unit is None:
        unit = amount / quantity if amount is not None and quantity else amount or Decimal(0)
    return InvoiceLine(
        description=text(raw.get("Description")) or "",
        quantity=quantity if quantity is not None else Decimal(1),
        unit_amount=unit,
        account_code=reference(detail.get("ItemAccountRef")),
        tax_type=reference(detail.get("TaxCodeRef")),
        item_code=reference(detail.get("ItemRef")),
        line_amount=amount,
    )


def to_payment(raw: Mapping[str, Any]) -> InvoicePayment:
    """A payment of the first invoice it is applied to; an unapplied payment (a credit) has no canonical form."""
    invoice = next(
        (
            text(linked.get("TxnId"))
            for line in records(raw.get("Line"))
            for linked in records(line.get("LinkedTxn"))
            if linked.get("TxnType") == "Invoice"
        ),
        None,
    )
    if invoice is None:
        raise UnmappableRecord(f"QuickBooks payment {raw.get('Id')!r} is applied to no invoice")
    amount = decimal(raw.get("TotalAmt"))
    if amount is None:
        raise ValueError(f"QuickBooks payment {raw.get('Id')!r} has no TotalAmt")
    return InvoicePayment(
        **managed(raw),
        invoice_id=invoice,
        amount=amount,
        date=_required_date(raw, "TxnDate"),
        currency=reference(raw.get("CurrencyRef")),
        account_code=reference(raw.get("DepositToAccountRef")),
        reference=text(raw.get("PaymentRefNum")),
    )


def to_product(raw: Mapping[str, Any]) -> CanonicalModel:
    if raw.get("Active") is False:
        return tombstone(raw)
    name = required(raw, "Name")
    return Product(
        **managed(raw),
        code=text(raw.get("Sku")) or name,
        name=name,
        description=text(raw.get("Description")),
        unit_price=decimal(raw.get("UnitPrice")),
        is_sold=isinstance(raw.get("IncomeAccountRef"), OBJECT),
        is_purchased=isinstance(raw.get("ExpenseAccountRef"), OBJECT),
    )


def to_tax_rate(raw: Mapping[str, Any]) -> TaxRate:
    rate = decimal(raw.get("RateValue"))
    return TaxRate(
        **managed(raw),
        name=required(raw, "Name"),
        tax_type=required(raw, "Id"),
        rate_percent=rate if rate is not None else Decimal(0),
        is_active=raw.get("Active") is not False,
    )


def to_account(raw: Mapping[str, Any]) -> Account:
    return Account(
        **managed(raw),
        code=text(raw.get("AcctNum")),
        name=required(raw, "Name"),
        type=required(raw, "AccountType"),
        is_active=raw.get("Active") is not False,
    )


MAPPERS: dict[str, Callable[[Mapping[str, Any]], CanonicalModel]] = {
    "contacts": deletable(to_contact),
    "invoices": deletable(to_invoice),
    "payments": deletable(to_payment),
    "products": deletable(to_product),
    "tax_rates": deletable(to_tax_rate),
    "accounts": deletable(to_account),
}
# The canonical model each resource's records are (``PullSpec.models``): an accounting system's usual six.
MODELS = ACCOUNTING_MODELS


def _address(raw: Any) -> Address | None:
    if not isinstance(raw, OBJECT):
        return None
    extra = [text(raw.get(f"Line{n}")) for n in (2, 3, 4, 5)]
    address = Address(
        line1=text(raw.get("Line1")),
        line2=", ".join(line for line in extra if line) or None,
        city=text(raw.get("City")),
        region=text(raw.get("CountrySubDivisionCode")),
        postal_code=text(raw.get("PostalCode")),
        country=text(raw.get("Country")),
    )
    return address if any(address.model_dump().values()) else None


def _unique(addresses: list[Address]) -> list[Address]:
    """A billing address that is also the shipping one is listed once."""
    kept: list[Address] = []
    for address in addresses:
        if address not in kept:
            kept.append(address)
    return kept


def _required_date(raw: Mapping[str, Any], key: str) -> Any:
    value = calendar_date(text(raw.get(key)))
    if value is None:
        raise ValueError(f"QuickBooks record has no {key}")
    return value

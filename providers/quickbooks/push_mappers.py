"""Canonical VRTX models -> QuickBooks Online request bodies (push direction).

API docs: https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/customer (and invoice,
payment, item). The inverse of ``mappers.py`` where QuickBooks lets it be: the first address is the billing one, a
second the shipping one; an invoice line names its item by QuickBooks Id (``item_code``, else the connection's
``default_item_id``) and its tax code (``tax_type``, else ``default_tax_type``); QuickBooks computes the totals.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from providers.errors import ProviderRejected
from providers.kit.values import json_number, setting
from vrtx_pipelines.records.canonical import Address, Contact, Invoice, InvoicePayment, Product


def customer_body(contact: Contact) -> dict[str, Any]:
    body: dict[str, Any] = {
        "DisplayName": contact.name,
        "GivenName": contact.first_name or "",
        "FamilyName": contact.last_name or "",
        "CompanyName": contact.company or "",
        "PrimaryEmailAddr": {"Address": contact.email or ""},
        "PrimaryPhone": {"FreeFormNumber": contact.phone or ""},
        "Mobile": {"FreeFormNumber": contact.mobile or ""},
        "ResaleNum": contact.tax_number or "",
        "Active": not contact.archived,
    }
    for key, address in zip(("BillAddr", "ShipAddr"), contact.addresses, strict=False):
        body[key] = _address(address)
    return body


def _address(address: Address) -> dict[str, Any]:
    return {
        "Line1": address.line1 or "",
        "Line2": address.line2 or "",
        "City": address.city or "",
        "CountrySubDivisionCode": address.region or "",
        "PostalCode": address.postal_code or "",
        "Country": address.country or "",
    }


def invoice_body(invoice: Invoice, customer_id: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    default_item, default_tax = setting(settings, "default_item_id"), setting(settings, "default_tax_type")
    lines = []
    for line in invoice.lines:
        detail: dict[str, Any] = {"Qty": json_number(line.quantity), "UnitPrice": json_number(line.unit_amount)}
        if item := line.item_code or default_item:
            detail["ItemRef"] = {"value": item}
        if tax := line.tax_type or default_tax:
            detail["TaxCodeRef"] = {"value": tax}
        amount = (line.quantity * line.unit_amount).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        lines.append(
            {
                "Description": line.description,
                "Amount": json_number(amount),
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": detail,
            }
        )
    body: dict[str, Any] = {
        "CustomerRef": {"value": customer_id},
        "TxnDate": invoice.issue_date.isoformat(),
        "CurrencyRef": {"value": invoice.currency},
        "Line": lines,
        "CustomerMemo": {"value": invoice.reference or ""},
        "EmailStatus": setting(settings, "invoice_status_on_push") or "NotSet",
    }
    if invoice.due_date is not None:
        body["DueDate"] = invoice.due_date.isoformat()
    if invoice.number:
        body["DocNumber"] = invoice.number
    return body


def payment_body(payment: InvoicePayment, invoice_id: str, customer_id: str) -> dict[str, Any]:
    amount = json_number(payment.amount)
    body: dict[str, Any] = {
        "CustomerRef": {"value": customer_id},
        "TotalAmt": amount,
        "TxnDate": payment.date.isoformat(),
        "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]}],
    }
    if payment.reference:
        body["PaymentRefNum"] = payment.reference
    if payment.account_code:
        body["DepositToAccountRef"] = {"value": payment.account_code}
    return body


def item_body(product: Product, settings: Mapping[str, Any]) -> dict[str, Any]:
    income = setting(settings, "default_sales_account_code")
    if income is None:
        raise ProviderRejected(
            "QuickBooks needs an income account for every product: set default_sales_account_code in the settings."
        )
    body: dict[str, Any] = {
        "Name": product.name,
        "Sku": product.code,
        "Description": product.description or "",
        "Type": "NonInventory" if product.is_purchased else "Service",
        "IncomeAccountRef": {"value": income},
        "Active": True,
    }
    if product.unit_price is not None:
        body["UnitPrice"] = json_number(product.unit_price)
    return body

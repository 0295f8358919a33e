"""Canonical VRTX models -> Xero Accounting API request elements (push direction).

API docs: https://developer.xero.com/documentation/api/accounting/contacts, .../invoices, .../payments
The inverse of ``mappers.py`` where Xero lets it be: a pushed record read back by a pull maps to the same canonical
data (phones are sent whole as ``PhoneNumber``; the first address is the STREET one, a second the POBOX one).
``IsCustomer``/``IsSupplier`` are not sent: Xero sets them from transactions and ignores them on input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from providers.kit.values import json_number, setting
from vrtx_pipelines.records.canonical import Address, Contact, Invoice, InvoicePayment

# The bank account payments go into when neither the payment nor the connection's settings name one: "090" is the
# business bank account of Xero's demo company (and of the sandbox's organisations).
DEFAULT_PAYMENT_ACCOUNT_CODE = "090"
_ADDRESS_TYPES = ("STREET", "POBOX")


def contact_element(contact: Contact) -> dict[str, Any]:
    return {
        "Name": contact.name,
        "FirstName": contact.first_name or "",
        "LastName": contact.last_name or "",
        "EmailAddress": contact.email or "",
        "TaxNumber": contact.tax_number or "",
        "ContactStatus": "ARCHIVED" if contact.archived else "ACTIVE",
        "Phones": [
            {"PhoneType": "DEFAULT", "PhoneNumber": contact.phone or ""},
            {"PhoneType": "MOBILE", "PhoneNumber": contact.mobile or ""},
        ],
        "Addresses": [
            _address(kind, contact.addresses[n] if n < len(contact.addresses) else Address())
            for n, kind in enumerate(_ADDRESS_TYPES)
        ],
    }


def _address(kind: str, address: Address) -> dict[str, Any]:
    return {
        "AddressType": kind,
        "AddressLine1": address.line1 or "",
        "AddressLine2": address.line2 or "",
        "City": address.city or "",
        "Region": address.region or "",
        "PostalCode": address.postal_code or "",
        "Country": address.country or "",
    }


def invoice_element(invoice: Invoice, contact_external_id: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """A full invoice (create, or update of a draft). Status is the connection's ``invoice_status_on_push``."""
    default_account = setting(settings, "default_sales_account_code")
    default_tax = setting(settings, "default_tax_type")
    element: dict[str, Any] = {
        "Type": "ACCREC",
        "Contact": {"ContactID": contact_external_id},
        "Date": invoice.issue_date.isoformat(),
        "LineAmountTypes": setting(settings, "line_amount_types") or "Exclusive",
        "CurrencyCode": invoice.currency,
        "Reference": invoice.reference or "",
        "LineItems": [
            {
                "Description": line.description,
                "Quantity": json_number(line.quantity),
                "UnitAmount": json_number(line.unit_amount),
                **({"AccountCode": code} if (code := line.account_code or default_account) else {}),
                **({"TaxType": tax} if (tax := line.tax_type or default_tax) else {}),
                **({"ItemCode": line.item_code} if line.item_code else {}),
            }
            for line in invoice.lines
        ],
    }
    if invoice.due_date is not None:
        element["DueDate"] = invoice.due_date.isoformat()
    if invoice.number:
        element["InvoiceNumber"] = invoice.number
    return element


def payment_element(payment: InvoicePayment, invoice_external_id: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    code = payment.account_code or setting(settings, "default_payment_account_code") or DEFAULT_PAYMENT_ACCOUNT_CODE
    element: dict[str, Any] = {
        "Invoice": {"InvoiceID": invoice_external_id},
        "Account": {"Code": code},
        "Amount": json_number(payment.amount),
        "Date": payment.date.isoformat(),
    }
    if payment.reference:
        element["Reference"] = payment.reference
    return element

"""Canonical VRTX models -> Stripe request parameters (push direction), the inverse of ``mappers.py`` where Stripe
lets it be. Amounts become integer minor units of the currency (an amount finer than the currency refuses the
push); every object carries ``metadata[vrtx_id]``, the CRM's own id, so it can be told apart in Stripe."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from providers.stripe.mappers import minor
from vrtx_pipelines.records.canonical import Contact, Invoice, InvoiceLine, Refund, Subscription

DEFAULT_DAYS_UNTIL_DUE = 30


def customer_params(contact: Contact) -> dict[str, Any]:
    address = contact.addresses[0] if contact.addresses else None
    params: dict[str, Any] = {
        "name": contact.name, "email": contact.email or "", "phone": contact.phone or "",
        "metadata": {"vrtx_id": contact.id or ""},
    }  # fmt: skip
    if address is not None:
        params["address"] = {
            "line1": address.line1 or "", "line2": address.line2 or "", "city": address.city or "",
            "state": address.region or "", "postal_code": address.postal_code or "", "country": address.country or "",
        }  # fmt: skip
    return params


def invoice_params(invoice: Invoice, customer: str) -> dict[str, Any]:
    """A draft ``send_invoice`` invoice; its lines are invoice items (``line_params``)."""
    days = (invoice.due_date - invoice.issue_date).days if invoice.due_date else DEFAULT_DAYS_UNTIL_DUE
    return {
        "customer": customer, "collection_method": "send_invoice", "days_until_due": max(days, 0),
        "currency": invoice.currency.lower(), "description": invoice.reference or "", "auto_advance": False,
        "metadata": {"vrtx_id": invoice.id or "", **({"number": invoice.number} if invoice.number else {})},
    }  # fmt: skip


def line_params(line: InvoiceLine, customer: str, invoice: str, currency: str) -> dict[str, Any]:
    quantity = line.quantity
    if quantity != quantity.to_integral_value() or quantity < 1:
        raise ValueError(f"Stripe invoice items take whole quantities, not {quantity}")
    return {
        "customer": customer, "invoice": invoice, "currency": currency.lower(), "description": line.description,
        "quantity": int(quantity), "unit_amount": minor(line.unit_amount, currency),
    }  # fmt: skip


def amount_due(invoice: Invoice) -> int:
    """What a collected CRM invoice asks for, in minor units: its amount due, else its total, else its lines'."""
    for value in (invoice.amount_due, invoice.total):
        if value is not None:
            return minor(value, invoice.currency)
    return sum(minor(line.line_amount or line.unit_amount * line.quantity, invoice.currency) for line in invoice.lines)


def payment_link_price(invoice: Invoice) -> dict[str, Any]:
    name = f"Invoice {invoice.number}" if invoice.number else f"Invoice {invoice.id or ''}".strip()
    return {"currency": invoice.currency.lower(), "unit_amount": amount_due(invoice), "product_data": {"name": name}}


def subscription_params(subscription: Subscription, customer: str) -> dict[str, Any]:
    if not subscription.items:
        raise ValueError("a subscription needs at least one item (a Stripe price)")
    return {
        "customer": customer,
        "items": [{"price": item.price_id, "quantity": item.quantity} for item in subscription.items],
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "metadata": {"vrtx_id": subscription.id or "", "plan": subscription.plan},
    }


def refund_params(refund: Refund, payment: str, currency: str | None) -> dict[str, Any]:
    key = "charge" if payment.startswith("ch_") else "payment_intent"
    params: dict[str, Any] = {key: payment, "metadata": {"vrtx_id": refund.id or ""}}
    if refund.amount is not None:
        params["amount"] = minor(refund.amount, refund.currency or currency or "usd")
    if refund.reason in ("duplicate", "fraudulent", "requested_by_customer"):
        params["reason"] = refund.reason
    return params


def day(value: date) -> str:
    return value.isoformat()


def settings_currency(settings: Mapping[str, Any]) -> str | None:
    value = settings.get("currency")
    return str(value) if value else None

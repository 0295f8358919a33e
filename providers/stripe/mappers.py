"""Stripe objects -> canonical VRTX models (pull direction), from records as the streams load them (nested lists
flattened) or as an event carries them (stamped with the event: ``updated_at`` is the event's time, so an older
event never overwrites a newer copy).

Money is exact: Stripe's integer minor units become ``Decimal`` major units by the currency's exponent (none for
zero-decimal currencies such as JPY: https://docs.stripe.com/currencies#zero-decimal); a subscription's MRR stays in
integer minor units. Currencies are upper-case ISO 4217, as the canonical models write them.
API docs: https://docs.stripe.com/api/customers/object (and products, invoices, payment_intents, subscriptions).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal

from providers.kit.values import OBJECT, UnmappableRecord, records, required, text
from vrtx_pipelines.records.canonical import (
    Address,
    CanonicalModel,
    Contact,
    Invoice,
    InvoiceLine,
    InvoicePayment,
    Product,
    Refund,
    Subscription,
    SubscriptionItem,
)

ZERO_DECIMAL = frozenset(
    ["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"]
)
THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])
# Stripe invoice status -> canonical: an open invoice is approved and payable; uncollectible is still owed.
InvoiceStatus = Literal["draft", "authorised", "paid", "voided"]
INVOICE_STATUSES: dict[str, InvoiceStatus] = {
    "draft": "draft", "open": "authorised", "uncollectible": "authorised", "paid": "paid", "void": "voided",
}  # fmt: skip
PAYMENT_LINK_KEY = "vrtx_payment_link"  # the metadata a collected CRM invoice's payment link puts on its payment
MONTHLY = {"day": Decimal(365) / 12, "week": Decimal(52) / 12, "month": Decimal(1), "year": Decimal(1) / 12}


def exponent(currency: str) -> int:
    code = currency.lower()
    return 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2


def major(amount: Any, currency: str) -> Decimal | None:
    """Integer minor units as exact major units (``1999`` GBP -> ``19.99``; ``1999`` JPY -> ``1999``)."""
    if amount is None:
        return None
    return Decimal(int(amount)).scaleb(-exponent(currency))


def minor(amount: Decimal, currency: str) -> int:
    """Major units as Stripe's integer minor units; refuses a fraction the currency cannot hold."""
    scaled = amount.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency.upper()} has more decimals than the currency has")
    return int(scaled)


def to_contact(raw: Mapping[str, Any]) -> Contact:
    address = raw.get("address")
    found = _address(address) if isinstance(address, OBJECT) else None
    return Contact(
        external_id=required(raw, "id"),
        updated_at=_version(raw),
        name=text(raw.get("name")) or text(raw.get("email")) or required(raw, "id"),
        email=text(raw.get("email")),
        phone=text(raw.get("phone")),
        addresses=[found] if found is not None else [],
        archived=bool(raw.get("deleted")),
        deleted=True if raw.get("deleted") else None,
    )


def to_product(raw: Mapping[str, Any]) -> Product:
    meta = _object(raw.get("metadata"))
    return Product(
        external_id=required(raw, "id"),
        updated_at=_time(raw.get("updated")) or _version(raw),
        code=text(meta.get("sku")) or required(raw, "id"),
        name=text(raw.get("name")) or required(raw, "id"),
        description=text(raw.get("description")),
        is_sold=bool(raw.get("active", True)) and not raw.get("deleted"),
        deleted=True if raw.get("deleted") else None,
    )


def to_invoice(raw: Mapping[str, Any]) -> Invoice:
    currency = required(raw, "currency")
    status = "deleted" if raw.get("deleted") else INVOICE_STATUSES.get(str(raw.get("status")))
    if status is None:
        raise ValueError(f"unknown Stripe invoice status {raw.get('status')!r}")
    total, excluding = raw.get("total"), raw.get("total_excluding_tax")
    tax = major(int(total) - int(excluding), currency) if total is not None and excluding is not None else None
    return Invoice(
        external_id=required(raw, "id"),
        updated_at=_version(raw),
        number=text(raw.get("number")),
        contact_id=_id(raw.get("customer")) or required(raw, "customer"),
        status=status,
        issue_date=_date(raw.get("effective_at")) or _date(raw.get("created")) or date(1970, 1, 1),
        due_date=_date(raw.get("due_date")),
        currency=currency.upper(),
        lines=[_line(line, currency) for line in records(raw.get("lines"))],
        subtotal=major(raw.get("subtotal_excluding_tax", raw.get("subtotal")), currency),
        total_tax=tax,
        total=major(total, currency),
        amount_due=major(raw.get("amount_remaining"), currency),
        reference=text(raw.get("description")),
        payment_url=text(raw.get("hosted_invoice_url")),
        deleted=True if raw.get("deleted") else None,
    )


def to_payment(raw: Mapping[str, Any]) -> InvoicePayment:
    """A succeeded payment intent that pays something the platform pushed: a CRM invoice collected through a
    payment link names the link in its metadata (the link is what that invoice is linked to). Other payments
    (of Stripe's own invoices, or unrelated) have no canonical payment: the raw row still loads."""
    meta = _object(raw.get("metadata"))
    paid_for = text(meta.get(PAYMENT_LINK_KEY))
    if raw.get("status") != "succeeded" or paid_for is None:
        raise UnmappableRecord(f"Stripe payment {raw.get('id')!r} pays no invoice the platform knows")
    currency = required(raw, "currency")
    received = major(raw.get("amount_received"), currency)
    assert received is not None
    return InvoicePayment(
        external_id=required(raw, "id"),
        updated_at=_version(raw),
        invoice_id=paid_for,
        amount=received,
        date=_date(raw.get("created")) or date(1970, 1, 1),
        currency=currency.upper(),
        reference=text(raw.get("latest_charge")),
    )


def to_subscription(raw: Mapping[str, Any]) -> Subscription:
    items = [_item(item) for item in records(raw.get("items"))]
    status = required(raw, "status")
    currency = required(raw, "currency")
    first = records(raw.get("items"))[:1]
    price = _object(first[0].get("price")) if first else {}
    plan = text(price.get("nickname")) or _id(price.get("product")) or (items[0].price_id if items else None)
    starts = [_time(item.get("current_period_start")) for item in records(raw.get("items"))]
    ends = [_time(item.get("current_period_end")) for item in records(raw.get("items"))]
    return Subscription(
        external_id=required(raw, "id"),
        updated_at=_version(raw),
        contact_id=_id(raw.get("customer")) or required(raw, "customer"),
        plan=plan or required(raw, "id"),
        status=status,  # pydantic checks the value against the Literal
        currency=currency.upper(),
        current_period_start=min((s for s in starts if s), default=None),
        current_period_end=min((e for e in ends if e), default=None),
        mrr=0 if status in ("canceled", "incomplete_expired") else mrr(items),
        cancel_at_period_end=bool(raw.get("cancel_at_period_end")),
        canceled_at=_time(raw.get("canceled_at")),
        items=items,
    )


def mrr(items: list[SubscriptionItem]) -> int:
    """Monthly recurring revenue in minor units: each item's amount per interval brought to a month (a year is a
    twelfth, a week 52/12), summed, rounded half to even once at the end."""
    total = sum(
        (
            Decimal(item.unit_amount or 0) * item.quantity * MONTHLY[item.interval] / item.interval_count
            for item in items
        ),
        Decimal(0),
    )
    return int(total.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def to_refund(raw: Mapping[str, Any]) -> Refund:
    currency = required(raw, "currency")
    return Refund(
        external_id=required(raw, "id"),
        updated_at=_version(raw),
        payment_id=_id(raw.get("payment_intent")) or _id(raw.get("charge")) or required(raw, "charge"),
        amount=major(raw.get("amount"), currency),
        currency=currency.upper(),
        status=text(raw.get("status")),
        reason=text(raw.get("reason")),
    )


MAPPERS: dict[str, Callable[[Mapping[str, Any]], CanonicalModel]] = {
    "customers": to_contact,
    "products": to_product,
    "invoices": to_invoice,
    "payment_intents": to_payment,
    "subscriptions": to_subscription,
    "refunds": to_refund,
}
# The canonical model each resource's records are (``PullSpec.models``): what field mappings are checked against.
MODELS: dict[str, type[CanonicalModel]] = {
    "customers": Contact,
    "products": Product,
    "invoices": Invoice,
    "payment_intents": InvoicePayment,
    "subscriptions": Subscription,
    "refunds": Refund,
}


# --- helpers ---------------------------------------------------------------------------------------------


def _version(raw: Mapping[str, Any]) -> datetime | None:
    """The event's time for a record an event carried; None for a listed one (it is as new as the listing)."""
    event = raw.get("event")
    return _time(event.get("created")) if isinstance(event, OBJECT) else None


def _time(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if isinstance(value, int | Decimal) and value else None


def _date(value: Any) -> date | None:
    moment = _time(value)
    return moment.date() if moment is not None else None


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, OBJECT) else {}


def _id(value: Any) -> str | None:
    """An id, or the id of an expanded object."""
    if isinstance(value, OBJECT):
        return text(value.get("id"))
    return text(value)


def _line(raw: Mapping[str, Any], currency: str) -> InvoiceLine:
    quantity = Decimal(int(raw.get("quantity") or 1))
    amount = major(raw.get("amount"), raw.get("currency") or currency) or Decimal(0)
    pricing = _object(raw.get("pricing"))
    details = _object(pricing.get("price_details"))
    return InvoiceLine(
        description=text(raw.get("description")) or "",
        quantity=quantity,
        unit_amount=amount / quantity if quantity else amount,
        item_code=_id(details.get("price")),
        line_amount=amount,
    )


def _address(raw: Mapping[str, Any]) -> Address | None:
    address = Address(
        line1=text(raw.get("line1")), line2=text(raw.get("line2")), city=text(raw.get("city")),
        region=text(raw.get("state")), postal_code=text(raw.get("postal_code")), country=text(raw.get("country")),
    )  # fmt: skip
    return address if any(address.model_dump().values()) else None


def _item(raw: Mapping[str, Any]) -> SubscriptionItem:
    price = _object(raw.get("price"))
    recurring = _object(price.get("recurring"))
    amount = price.get("unit_amount")
    return SubscriptionItem(
        price_id=_id(price) or required(raw, "id"),
        product_id=_id(price.get("product")),
        quantity=int(raw.get("quantity") or 0),
        unit_amount=int(amount) if amount is not None else None,
        interval=recurring.get("interval", "month"),
        interval_count=int(recurring.get("interval_count") or 1),
    )

"""A sandbox account's seeded objects, rendered on demand from the kit's books: every object is a pure function of
(seed, account, index), filled into Stripe's own template (``templates``), so an account of any size costs nothing
until it is read.

The facts come from ``providers.sandbox_kit.books``: its customers are Stripe customers, its catalogue products
(each with a one-time price), its sales invoices (one line per sale line) and its payments the payment intents
that paid them (each with its charge and balance transaction). Beside them: recurring prices and subscriptions,
a few refunds and payouts, and one payment link. Amounts are integer minor units of the account's currency
(yen for a JPY account: zero-decimal currencies have no minor unit), as Stripe writes them.

Seeded times run in this order, each object type strictly increasing with its index (the store lists them newest
first by that order): the catalogue, customers, invoices with their payments, subscriptions, refunds, payouts.
All of it predates ``SEED_END_MS``, so a fresh account has no events (Stripe keeps 30 days of them).
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from typing import Any

from providers.sandbox_kit import pools
from providers.sandbox_kit.books import Books, Sizes
from providers.sandbox_kit.clock import DAY_MS, ms_at
from providers.sandbox_kit.data import Timeline, stable_key
from providers.stripe.mappers import ZERO_DECIMAL as ZERO_DECIMAL
from providers.stripe.sandbox.templates import TEMPLATES
from providers.stripe.sandbox.wire import StripeIds

Record = dict[str, Any]
ITEMS_SPAN = (ms_at(2023, 6, 1), ms_at(2023, 12, 31))
CUSTOMERS_SPAN = (ms_at(2024, 1, 1), ms_at(2024, 12, 31))
INVOICES_SPAN = (ms_at(2025, 1, 1), ms_at(2025, 12, 31))
SUBSCRIPTIONS_SPAN = (ms_at(2026, 1, 1), ms_at(2026, 3, 31))
REFUNDS_SPAN = (ms_at(2026, 4, 1), ms_at(2026, 4, 30))
PAYOUTS_SPAN = (ms_at(2026, 5, 1), ms_at(2026, 5, 31))
SEED_END_MS = ms_at(2026, 6, 1)
# Prefix and object name per table; ``event`` is the prefix of the events a change of it raises (None: none).
KINDS: dict[str, tuple[str, str, str | None]] = {
    "customers": ("cus", "customer", "customer"),
    "products": ("prod", "product", "product"),
    "prices": ("price", "price", "price"),
    "invoices": ("in", "invoice", "invoice"),
    "invoice_items": ("ii", "invoiceitem", "invoiceitem"),
    "payment_intents": ("pi", "payment_intent", "payment_intent"),
    "charges": ("ch", "charge", "charge"),
    "refunds": ("re", "refund", "refund"),
    "subscriptions": ("sub", "subscription", "customer.subscription"),
    "balance_transactions": ("txn", "balance_transaction", None),
    "payouts": ("po", "payout", "payout"),
    "payment_links": ("plink", "payment_link", "payment_link"),
    "checkout_sessions": ("cs_test", "checkout.session", "checkout.session"),
    "events": ("evt", "event", None),
}


@dataclass(frozen=True)
class StripeSizes:
    customers: int = 30
    products: int = 8
    invoices: int = 60
    lines_per_invoice: int = 2
    payments: int = 20  # paid invoices: a payment intent, a charge and a balance transaction each
    subscriptions: int = 10
    refunds: int = 2
    payouts: int = 3
    payment_links: int = 1

    @property
    def recurring_prices(self) -> int:
        return min(self.products, 3) if self.subscriptions else 0

    def count(self, entity: str) -> int:
        return {
            "prices": self.products + self.recurring_prices,
            "payment_intents": self.payments, "charges": self.payments,
            "balance_transactions": self.payments + self.refunds + self.payouts,
            "invoice_items": 0, "checkout_sessions": 0, "events": 0,
        }.get(entity, getattr(self, entity, 0))  # fmt: skip


class AccountData:
    """What renders one account's seeded objects: its books, ids, timelines and currency."""

    def __init__(self, seed: int, account_id: str, currency: str, sizes: StripeSizes) -> None:
        if sizes.payments > sizes.invoices or sizes.refunds > sizes.payments or sizes.products < 1 < sizes.invoices:
            raise ValueError("payments must not exceed invoices, nor refunds payments; invoices need products")
        self.seed, self.account_id, self.currency, self.sizes = seed, account_id, currency, sizes
        self.key = stable_key("stripe-sandbox", seed, account_id)
        books_sizes = Sizes(sizes.customers, sizes.invoices, sizes.lines_per_invoice, sizes.payments, sizes.products)
        self.books = Books(
            self.key, books_sizes, items_span=ITEMS_SPAN, customers_span=CUSTOMERS_SPAN, invoices_span=INVOICES_SPAN,
            tax_percent=0, locale=pools.UNITED_STATES,
        )  # fmt: skip
        self.ids = {entity: StripeIds(seed, account_id, prefix) for entity, (prefix, _, _) in KINDS.items()}
        self.line_ids = StripeIds(seed, account_id, "il")
        self.item_ids = StripeIds(seed, account_id, "si")
        self.method_ids = StripeIds(seed, account_id, "pm")
        self.subscription_ms = Timeline(SUBSCRIPTIONS_SPAN, sizes.subscriptions)
        self.refund_ms = Timeline(REFUNDS_SPAN, sizes.refunds)
        self.payout_ms = Timeline(PAYOUTS_SPAN, sizes.payouts)

    def id_of(self, entity: str, index: int) -> str:
        return self.ids[entity].encode(index)

    def seeded_ms(self, entity: str, index: int) -> int:
        """When seeded object ``index`` of ``entity`` was created (strictly increasing with the index)."""
        books, sizes = self.books, self.sizes
        if entity in ("products", "prices"):
            return books.item_ms(index) if index < sizes.products else books.item_ms(sizes.products) + index
        if entity == "customers":
            return books.customer_ms(index)
        if entity == "invoices":
            return books.invoice_ms(index)
        if entity in ("payment_intents", "charges"):
            return books.payment_ms(index)
        if entity == "subscriptions":
            return self.subscription_ms(index)
        if entity == "refunds":
            return self.refund_ms(index)
        if entity == "payouts":
            return self.payout_ms(index)
        if entity == "balance_transactions":
            if index < sizes.payments:
                return books.payment_ms(index)
            if index < sizes.payments + sizes.refunds:
                return self.refund_ms(index - sizes.payments)
            return self.payout_ms(index - sizes.payments - sizes.refunds)
        return SEED_END_MS - DAY_MS + index  # payment links

    def refunded_charge(self, refund: int) -> int:
        return refund * max(self.sizes.payments // max(self.sizes.refunds, 1), 1)

    def refund_of_charge(self, charge: int) -> int | None:
        step = max(self.sizes.payments // max(self.sizes.refunds, 1), 1)
        refund = charge // step
        return refund if charge % step == 0 and refund < self.sizes.refunds else None

    # --- renderers ----------------------------------------------------------------------------------------

    def customer(self, i: int) -> Record:
        c, ms = self.books.customer(i), self.seeded_ms("customers", i)
        return new_object(
            "customer", self.id_of("customers", i), ms, name=c.name, email=c.email, phone=c.phone,
            address={"city": c.city, "country": "US", "line1": c.street, "line2": None, "postal_code": c.postcode,
                     "state": c.region},
            currency=self.currency, invoice_prefix=self.invoice_prefix(i), discount=None,
            next_invoice_sequence=1, description=None if c.person else f"Account contact: {c.first} {c.last}",
            metadata={}, shipping=None,
        )  # fmt: skip

    def product(self, j: int) -> Record:
        p, ms = self.books.product(j), self.seeded_ms("products", j)
        return new_object(
            "product", self.id_of("products", j), ms, name=p.name, description=p.description,
            default_price=self.id_of("prices", j), metadata={"sku": p.code}, package_dimensions=None,
            type="good" if p.purchased else "service", updated=ms // 1000,
        )  # fmt: skip

    def price(self, j: int) -> Record:
        sizes = self.sizes
        if j < sizes.products:
            product, amount, recurring = j, self.books.product(j).price, None
        else:
            product = (j - sizes.products) % sizes.products
            amount, yearly = self.books.product(product).price, (j - sizes.products) % 3 == 2
            recurring = {"interval": "year" if yearly else "month", "interval_count": 1, "meter": None,
                         "usage_type": "licensed", "trial_period_days": None}  # fmt: skip
        return price_object(self.id_of("prices", j), self.seeded_ms("prices", j), self.id_of("products", product),
                            amount, self.currency, recurring)  # fmt: skip

    def invoice(self, k: int) -> Record:
        ms = self.seeded_ms("invoices", k)
        sale = self.books.sale(k, ms)
        invoice_id = self.id_of("invoices", k)
        lines = []
        for n, line in enumerate(sale.lines):
            quantity = max(1, line.quantity // 100)
            price = self.id_of("prices", line.product) if line.product is not None else None
            lines.append(
                line_object(
                    self.line_ids.encode(k * 64 + n),
                    invoice_id,
                    line.description,
                    line.unit * quantity,
                    quantity,
                    self.currency,
                    price,
                    sale.date_ms // 1000,
                )
            )
        status = {"draft": "draft", "submitted": "open", "open": "open", "void": "void", "paid": "paid"}[sale.state]
        if sale.payment is not None:
            status = "paid"
        customer = self.id_of("customers", sale.customer)
        record = invoice_object(invoice_id, ms, customer, self.customer_name(sale.customer),
                                self.currency, lines, self.account_id)  # fmt: skip
        record.update(collection_method="send_invoice", due_date=sale.due_ms // 1000,
                      period_start=sale.date_ms // 1000, period_end=sale.date_ms // 1000)  # fmt: skip
        if status != "draft":
            finalize(record, self.account_id, ms // 1000, f"{self.invoice_prefix(sale.customer)}-{k + 1:04d}")
        if status == "paid":
            paid_at = (sale.paid_date_ms or sale.date_ms) // 1000
            record.update(status="paid", amount_paid=record["amount_due"], amount_remaining=0, paid=True)
            record["status_transitions"]["paid_at"] = paid_at
        elif status == "void":
            record.update(status="void", amount_remaining=record["amount_due"])
            record["status_transitions"]["voided_at"] = ms // 1000
        return record

    def invoice_prefix(self, i: int) -> str:
        return _hex(self.key, "prefix", i, 8).upper()

    def customer_name(self, i: int) -> tuple[str, str]:
        c = self.books.customer(i)
        return c.name, c.email

    def payment_intent(self, i: int) -> Record:
        k = self.books.invoice_of_payment(i)
        invoice = self.invoice(k)
        ms = self.seeded_ms("payment_intents", i)
        return payment_intent_object(
            self.id_of("payment_intents", i),
            ms,
            invoice["amount_due"],
            self.currency,
            invoice["customer"],
            self.id_of("charges", i),
            self.method_ids.encode(i),
            "Payment for Invoice",
        )

    def charge(self, i: int) -> Record:
        intent = self.payment_intent(i)
        record = charge_object(
            self.id_of("charges", i), self.seeded_ms("charges", i), intent, self.id_of("balance_transactions", i)
        )
        refund = self.refund_of_charge(i)
        if refund is not None:
            refund_record = self.refund(refund)
            record.update(amount_refunded=record["amount"], refunded=True)
            record["refunds"]["data"] = [refund_record]
        record["billing_details"]["name"] = self.invoice(self.books.invoice_of_payment(i))["customer_name"]
        return record

    def refund(self, r: int) -> Record:
        charge = self.refunded_charge(r)
        intent = self.payment_intent(charge)
        return refund_object(
            self.id_of("refunds", r),
            self.seeded_ms("refunds", r),
            intent["amount"],
            self.currency,
            self.id_of("charges", charge),
            intent["id"],
            self.id_of("balance_transactions", self.sizes.payments + r),
        )

    def subscription(self, s: int) -> Record:
        sizes, ms = self.sizes, self.seeded_ms("subscriptions", s)
        customer = (s * 7) % max(sizes.customers, 1)
        price = self.price(sizes.products + s % max(sizes.recurring_prices, 1))
        record = subscription_object(self.id_of("subscriptions", s), ms, self.id_of("customers", customer),
                                     self.currency, [(self.item_ids.encode(s * 16), price, 1 + s % 3)])  # fmt: skip
        if s % 5 == 4:
            cancel_subscription(record, ms // 1000 + 40 * 86_400)
        return record

    def balance_transaction(self, t: int) -> Record:
        sizes, ms = self.sizes, self.seeded_ms("balance_transactions", t)
        if t < sizes.payments:
            intent = self.payment_intent(t)
            return balance_object(self.id_of("balance_transactions", t), ms, intent["amount"], self.currency,
                                  "charge", self.id_of("charges", t), self.currency in ZERO_DECIMAL)  # fmt: skip
        if t < sizes.payments + sizes.refunds:
            refund = self.refund(t - sizes.payments)
            return balance_object(self.id_of("balance_transactions", t), ms, -refund["amount"], self.currency,
                                  "refund", refund["id"], self.currency in ZERO_DECIMAL)  # fmt: skip
        payout = self.payout(t - sizes.payments - sizes.refunds)
        return balance_object(self.id_of("balance_transactions", t), ms, -payout["amount"], self.currency, "payout",
                              payout["id"], self.currency in ZERO_DECIMAL)  # fmt: skip

    def payout(self, p: int) -> Record:
        ms = self.seeded_ms("payouts", p)
        amount = 10_000 + (stable_key(self.key, "payout", p) % 500_000)
        txn = self.id_of("balance_transactions", self.sizes.payments + self.sizes.refunds + p)
        return payout_object(self.id_of("payouts", p), ms, amount, self.currency, txn)

    def payment_link(self, n: int) -> Record:
        ms = self.seeded_ms("payment_links", n)
        return payment_link_object(self.id_of("payment_links", n), ms, self.currency, {})

    def render(self, entity: str, index: int) -> Record:
        return {
            "customers": self.customer, "products": self.product, "prices": self.price, "invoices": self.invoice,
            "payment_intents": self.payment_intent, "charges": self.charge, "refunds": self.refund,
            "subscriptions": self.subscription, "balance_transactions": self.balance_transaction,
            "payouts": self.payout, "payment_links": self.payment_link,
        }[entity](index)  # fmt: skip


# --- objects from templates: what the seeded data and the API's writes share ------------------------------------


def new_object(kind: str, object_id: str, ms: int, **values: Any) -> Record:
    """Stripe's template of ``kind`` with ``id``, ``created`` (seconds), test mode, and ``values``."""
    record = copy.deepcopy(TEMPLATES[kind])
    record.update(id=object_id, created=ms // 1000, livemode=False, **values)
    return record


def price_object(price_id: str, ms: int, product: str, amount: int, currency: str, recurring: Any) -> Record:
    return new_object(
        "price", price_id, ms, product=product, unit_amount=amount, unit_amount_decimal=str(amount),
        currency=currency, recurring=recurring, type="recurring" if recurring else "one_time", nickname=None,
        custom_unit_amount=None, transform_quantity=None, lookup_key=None, metadata={},
    )  # fmt: skip


def line_object(
    line_id: str, invoice: str, description: str, amount: int, quantity: int, currency: str, price: str | None,
    at: int,
) -> Record:  # fmt: skip
    record = new_object("line_item", line_id, at * 1000, invoice=invoice, description=description, amount=amount,
                        quantity=quantity, currency=currency, subtotal=amount, quantity_decimal=str(quantity),
                        period={"start": at, "end": at}, metadata={})  # fmt: skip
    del record["created"]  # line items carry no created
    record["pricing"] = {"type": "price_details", "price_details": {"price": price, "product": None},
                         "unit_amount_decimal": str(amount // max(quantity, 1))}  # fmt: skip
    record["parent"] = {"type": "invoice_item_details", "invoice_item_details": {
        "invoice_item": None, "proration": False, "proration_details": {"credited_items": None}, "subscription": None},
        "subscription_item_details": None}  # fmt: skip
    return record


def invoice_object(
    invoice_id: str, ms: int, customer: str, named: tuple[str, str], currency: str, lines: list[Record], account: str
) -> Record:
    record = new_object(
        "invoice", invoice_id, ms, customer=customer, customer_name=named[0], customer_email=named[1],
        currency=currency, status="draft", number=None, hosted_invoice_url=None, invoice_pdf=None, due_date=None,
        auto_advance=False, attempted=False, last_finalization_error=None, from_invoice=None, parent=None,
        account_name=None, amount_overpaid=0, shipping_cost=None, webhooks_delivered_at=None, effective_at=None,
        next_payment_attempt=None, metadata={}, billing_reason="manual", amount_paid=0,
        collection_method="send_invoice",
    )  # fmt: skip
    record["lines"] = {"object": "list", "data": lines, "has_more": False, "url": f"/v1/invoices/{invoice_id}/lines"}
    record["status_transitions"] = {"finalized_at": None, "marked_uncollectible_at": None, "paid_at": None,
                                    "voided_at": None}  # fmt: skip
    record["payment_settings"] = {"default_mandate": None, "payment_method_options": None,
                                  "payment_method_types": None}  # fmt: skip
    total_lines(record)
    return record


def total_lines(invoice: Record) -> None:
    total = sum(int(line["amount"]) for line in invoice["lines"]["data"])
    invoice.update(subtotal=total, subtotal_excluding_tax=total, total=total, total_excluding_tax=total,
                   amount_due=total, amount_remaining=total - int(invoice.get("amount_paid") or 0))  # fmt: skip


def finalize(invoice: Record, account: str, at: int, number: str) -> None:
    """Open: numbered, with its hosted page and PDF, nothing paid yet."""
    tail = invoice["id"].partition("_")[2]
    invoice.update(status="open", number=invoice.get("number") or number, effective_at=at,
                   hosted_invoice_url=f"https://invoice.stripe.com/i/{account}/test_{tail}",
                   invoice_pdf=f"https://pay.stripe.com/invoice/{account}/test_{tail}/pdf")  # fmt: skip
    invoice["status_transitions"]["finalized_at"] = at


def payment_intent_object(
    intent_id: str, ms: int, amount: int, currency: str, customer: str | None, charge: str | None, method: str,
    description: str | None, metadata: dict[str, Any] | None = None,
) -> Record:  # fmt: skip
    tail = intent_id.partition("_")[2]
    return new_object(
        "payment_intent", intent_id, ms, amount=amount, amount_received=amount, currency=currency, customer=customer,
        latest_charge=charge, payment_method=method, status="succeeded", description=description,
        client_secret=f"{intent_id}_secret_{tail[::-1]}", canceled_at=None, last_payment_error=None,
        next_action=None, processing=None, transfer_data=None, metadata=dict(metadata or {}), shipping=None,
        payment_method_configuration_details=None, amount_details={"tip": {}}, managed_payments=None,
    )  # fmt: skip


def charge_object(charge_id: str, ms: int, intent: Record, txn: str) -> Record:
    record = new_object(
        "charge", charge_id, ms, amount=intent["amount"], amount_captured=intent["amount"], currency=intent["currency"],
        customer=intent["customer"], description=intent["description"], payment_intent=intent["id"],
        payment_method=intent["payment_method"], balance_transaction=txn, captured=True, paid=True, refunded=False,
        amount_refunded=0, status="succeeded", source=None, transfer_data=None, metadata=dict(intent["metadata"]),
        receipt_url=f"https://pay.stripe.com/receipts/payment/{charge_id.partition('_')[2]}", shipping=None,
        outcome={"advice_code": None, "network_advice_code": None, "network_decline_code": None,
                 "network_status": "approved_by_network", "reason": None, "risk_level": "normal",
                 "seller_message": "Payment complete.", "type": "authorized"},
    )  # fmt: skip
    record["refunds"] = {"object": "list", "data": [], "has_more": False, "url": f"/v1/charges/{charge_id}/refunds"}
    return record


def refund_object(
    refund_id: str, ms: int, amount: int, currency: str, charge: str, intent: str | None, txn: str
) -> Record:
    return new_object("refund", refund_id, ms, amount=amount, currency=currency, charge=charge, payment_intent=intent,
                      balance_transaction=txn, status="succeeded", metadata={}, reason=None)  # fmt: skip


def balance_object(txn_id: str, ms: int, amount: int, currency: str, kind: str, source: str, zero: bool) -> Record:
    # Stripe's fee on a card charge: 2.9% + 30 cents (30 yen is a guess for zero-decimal currencies).
    fee = (amount * 29 + 500) // 1000 + 30 if kind == "charge" else 0
    category = {"charge": "charge", "refund": "refund", "payout": "payout"}[kind]
    details = [{"amount": fee, "application": None, "currency": currency, "description": "Stripe processing fees",
                "type": "stripe_fee"}] if fee else []  # fmt: skip
    return new_object("balance_transaction", txn_id, ms, amount=amount, fee=fee, net=amount - fee, currency=currency,
                      type=kind, reporting_category=category, source=source, status="available",
                      available_on=ms // 1000 + 2 * 86_400, fee_details=details,
                      description=None if kind != "payout" else "STRIPE PAYOUT")  # fmt: skip


def payout_object(payout_id: str, ms: int, amount: int, currency: str, txn: str) -> Record:
    return new_object("payout", payout_id, ms, amount=amount, currency=currency, balance_transaction=txn,
                      status="paid", arrival_date=ms // 1000 + 2 * 86_400, metadata={}, trace_id=None,
                      destination="ba_sandbox00000000000000")  # fmt: skip


def subscription_object(
    subscription_id: str, ms: int, customer: str, currency: str, items: list[tuple[str, Record, int]]
) -> Record:
    at = ms // 1000
    record = new_object(
        "subscription", subscription_id, ms, customer=customer, currency=currency, status="active", start_date=at,
        billing_cycle_anchor=at, cancel_at=None, canceled_at=None, ended_at=None, trial_start=None, trial_end=None,
        cancel_at_period_end=False, pending_update=None, pause_collection=None, transfer_data=None, metadata={},
        next_pending_invoice_item_invoice=None, pending_invoice_item_interval=None, billing_schedules=[],
        billing_cycle_anchor_config=None, managed_payments=None, latest_invoice=None,
    )  # fmt: skip
    data = []
    for item_id, price, quantity in items:
        item = copy.deepcopy(TEMPLATES["subscription_item"])
        start, end = current_period(at, price.get("recurring") or {})
        item.update(id=item_id, created=at, price=price, quantity=quantity, subscription=subscription_id,
                    plan=plan_of(price), current_period_start=start, current_period_end=end, metadata={},
                    billing_thresholds=None)  # fmt: skip
        data.append(item)
    record["items"] = {"object": "list", "data": data, "has_more": False,
                       "url": f"/v1/subscription_items?subscription={subscription_id}"}  # fmt: skip
    return record


def plan_of(price: Record) -> Record:
    """The legacy plan object Stripe still renders beside an item's recurring price."""
    recurring = price.get("recurring") or {}
    return {**copy.deepcopy(TEMPLATES["subscription_item"]["plan"]), "id": price["id"], "amount": price["unit_amount"],
            "amount_decimal": price["unit_amount_decimal"], "billing_scheme": "per_unit", "created": price["created"],
            "currency": price["currency"], "interval": recurring.get("interval", "month"),
            "interval_count": recurring.get("interval_count", 1), "livemode": False, "metadata": {},
            "product": price["product"], "transform_usage": None}  # fmt: skip


def current_period(anchor: int, recurring: dict[str, Any]) -> tuple[int, int]:
    """The first billing period from ``anchor`` (seconds): a month is 30 days, a year 365 (the sandbox's calendar)."""
    days = {"day": 1, "week": 7, "month": 30, "year": 365}[recurring.get("interval", "month")]
    return anchor, anchor + days * int(recurring.get("interval_count", 1)) * 86_400


def cancel_subscription(record: Record, at: int) -> None:
    record.update(status="canceled", canceled_at=at, ended_at=at, cancel_at_period_end=False)
    record["cancellation_details"] = {"comment": None, "feedback": None, "reason": "cancellation_requested"}


def payment_link_object(link_id: str, ms: int, currency: str, metadata: dict[str, Any]) -> Record:
    record = new_object("payment_link", link_id, ms, currency=currency, metadata=dict(metadata), transfer_data=None,
                        url=f"https://buy.stripe.com/test_{link_id.partition('_')[2]}", restrictions=None,
                        shipping_address_collection=None, managed_payments=None)  # fmt: skip
    record["payment_intent_data"] = None
    del record["created"]  # payment links carry no created
    return record


def _hex(key: int, what: str, index: int, length: int) -> str:
    return hashlib.blake2b(f"{key}|{what}|{index}".encode(), digest_size=16).hexdigest()[:length]

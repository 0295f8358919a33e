"""A small business's books, generated as facts: customers (people and companies), a catalogue, sales with lines
and tax, and the payments against them. Every accounting sandbox (Xero; next QuickBooks, Sage, FreshBooks)
renders the same facts in its own JSON; each is a pure function of (key, index), drawn from the record's own
random stream (``contacts``, ``invoices``, ``payments``), so books of any size cost nothing until served.

Seeded change times follow fixed spans in this order: the catalogue, then customers, then sales; seeded payment
``i`` pays sale ``invoice_of_payment(i)`` (spread evenly, at most one payment per sale) half a step before that
sale's change, since paying it is what changed it last. One customer in five also supplies; one in five of those
only supplies, and sales go to buyers only. Amounts are integer cents, so sub total plus tax is the total exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from providers.sandbox_kit import pools
from providers.sandbox_kit.clock import DAY_MS, floor_day
from providers.sandbox_kit.data import (
    Timeline,
    any_person,
    company_email,
    company_name,
    mix64,
    person_email,
    person_name,
    record_rng,
    stable_key,
)
from providers.sandbox_kit.pools import Locale


@dataclass(frozen=True)
class Sizes:
    customers: int
    invoices: int
    lines_per_invoice: int
    payments: int
    items: int

    def __post_init__(self) -> None:
        if min(self.customers, self.invoices, self.lines_per_invoice, self.payments, self.items) < 0:
            raise ValueError("sizes must not be negative")
        if self.invoices and not self.customers:
            raise ValueError("invoices need at least one contact")
        if self.payments > self.invoices:
            raise ValueError("each seeded payment pays a different invoice: payments must not exceed invoices")


class Customer(NamedTuple):  # named tuples: made for every record served, they must be cheap
    name: str  # unique among all customers
    first: str  # the person, or a company's contact person
    last: str
    person: bool
    email: str
    street: str
    city: str
    region: str
    postcode: str
    po_box: str
    phone: str
    mobile: str  # people only ("" for companies)
    tax_number: str  # companies only ("" for people)
    archived: bool
    buys: bool
    supplies: bool


class Product(NamedTuple):
    code: str
    name: str
    description: str
    price: int  # sale price, cents
    purchased: bool  # goods are bought in; services (every third) are only sold


class Line(NamedTuple):
    product: int | None  # the catalogue index, or None for a service line
    description: str
    quantity: int  # hundredths
    unit: int  # cents
    amount: int  # cents: what the line says (tax included when the sale is tax inclusive)
    tax: int  # cents


class Sale(NamedTuple):
    date_ms: int
    due_ms: int
    tax_mode: str  # "exclusive" | "inclusive" | "none"
    customer: int
    lines: tuple[Line, ...]
    sub_total: int
    tax: int
    total: int
    reference: str
    state: str  # "draft" | "submitted" | "void" | "open" | "paid"
    sent: bool
    payment: int | None  # the seeded payment of this sale
    paid: int  # cents
    paid_date_ms: int | None


class Books:
    def __init__(
        self,
        key: int,
        sizes: Sizes,
        *,
        items_span: tuple[int, int],
        customers_span: tuple[int, int],
        invoices_span: tuple[int, int],
        tax_percent: int,
        locale: Locale = pools.NEW_ZEALAND,
    ) -> None:
        self.key, self.sizes, self.tax_percent, self.locale = key, sizes, tax_percent, locale
        self.item_ms = Timeline(items_span, sizes.items)
        self.customer_ms = Timeline(customers_span, sizes.customers)
        self.invoice_ms = Timeline(invoices_span, sizes.invoices)
        self._streams: dict[str, int] = {}
        self.product = lru_cache(maxsize=4096)(self._product)

    def rng(self, stream: str, index: int) -> random.Random:
        key = self._streams.get(stream)
        if key is None:
            key = self._streams[stream] = stable_key(self.key, "rng", stream)
        return record_rng(key, index)

    # --- customers -----------------------------------------------------------------------------------------

    def customer_name(self, i: int) -> tuple[str, str, str, bool]:
        """(name, first, last, is_person): even indices are people, odd ones companies."""
        if i % 2 == 0:
            first, last, name = person_name(i // 2)
            return name, first, last, True
        first, last = any_person(self.rng("contacts", i))
        return company_name(i // 2), first, last, False

    def customer(self, i: int, *, archived: bool | None = None) -> Customer:
        """Customer ``i``; ``archived`` None draws it (one in 25), else it is as given (new customers)."""
        name, first, last, person = self.customer_name(i)
        rng, place = self.rng("contacts", i), self.locale
        email = person_email(first, last, rng) if person else company_email(name)
        city, region, postcode = rng.choice(place.cities)
        street = place.street(rng)
        is_archived = rng.random() < 0.04 if archived is None else archived
        phone, po_box = place.local_number(rng), place.po_box(rng)
        mobile = place.mobile_number(rng) if person else ""
        tax_number = "" if person else place.tax_number(rng)
        return Customer(
            name, first, last, person, email, street, city, region, postcode, po_box, phone, mobile, tax_number,
            is_archived, i % 5 != 4, i % 5 in (3, 4),
        )  # fmt: skip

    def buyer(self, rng: random.Random) -> int:
        c = rng.randrange(self.sizes.customers)
        return c - 1 if c % 5 == 4 else c

    # --- the catalogue -------------------------------------------------------------------------------------

    def _product(self, j: int) -> Product:
        prefix, name, description, price = pools.PRODUCTS[(j * 7) % len(pools.PRODUCTS)]
        lap = j // len(pools.PRODUCTS)
        if lap:
            name, description = f"{name} ({lap + 1})", f"{description} - range {lap + 1}"
            price = price + (price * lap) // 10
        return Product(f"{prefix}-{j + 1:03d}", name, description, price, j % 3 != 0)

    # --- sales and payments --------------------------------------------------------------------------------

    def sale(self, k: int, updated_ms: int, *, created: bool = False) -> Sale:
        """Sale ``k``, changed at ``updated_ms``. Seeded ones are issued before their change; ``created`` ones on
        the day of it, unpaid. A seeded sale with a seeded payment is paid (or part-paid and still open)."""
        rng = self.rng("invoices", k)
        anchor = updated_ms if created else updated_ms - self.invoice_ms.step // 2
        date_ms = floor_day(anchor - rng.randint(0, 0 if created else 20) * DAY_MS)
        due_ms = date_ms + rng.choice((7, 14, 20, 30)) * DAY_MS
        tax_mode = rng.choices(("exclusive", "inclusive", "none"), weights=(70, 20, 10))[0]
        customer = self.buyer(rng)
        lines = tuple(self._line(rng, tax_mode) for _ in range(self.sizes.lines_per_invoice))
        line_sum, tax = sum(line.amount for line in lines), sum(line.tax for line in lines)
        sub_total = line_sum - tax if tax_mode == "inclusive" else line_sum
        reference = rng.choice(pools.ORDER_REFERENCES)
        roll, sent = rng.random(), rng.random() < 0.6
        payment = None if created else self.payment_of_invoice(k)
        paid, paid_date = 0, None
        if payment is not None:
            paid_date, paid, _ = self.payment_terms(payment, date_ms, sub_total + tax)
            state = "paid" if paid == sub_total + tax else "open"
        elif created:
            state = "open" if roll < 0.7 else "draft"
        else:
            state = "draft" if roll < 0.2 else "submitted" if roll < 0.25 else "void" if roll < 0.35 else "open"
        return Sale(
            date_ms, due_ms, tax_mode, customer, lines, sub_total, tax, sub_total + tax, reference, state, sent,
            payment, paid, paid_date,
        )  # fmt: skip

    def _line(self, rng: random.Random, tax_mode: str) -> Line:
        product: int | None = None
        if self.sizes.items and rng.random() < 0.8:
            product = rng.randrange(self.sizes.items)
            description, price = self.product(product).description, self.product(product).price
        else:
            description, price = rng.choice(pools.SERVICE_LINES), rng.randint(20, 600) * 100 + rng.choice((0, 50, 95))
        quantity = rng.choice((100, 100, 100, 200, 200, 300, 500, 1000, 50, 150, 250))
        amount = (quantity * price + 50) // 100
        return Line(product, description, quantity, price, amount, line_tax(amount, self.tax_percent, tax_mode))

    def invoice_of_payment(self, i: int) -> int:
        return ((2 * i + 1) * self.sizes.invoices) // (2 * self.sizes.payments)

    def payment_of_invoice(self, k: int) -> int | None:
        if k >= self.sizes.invoices or self.sizes.payments == 0:
            return None
        guess = (k * self.sizes.payments) // self.sizes.invoices
        for i in (guess - 1, guess, guess + 1):
            if 0 <= i < self.sizes.payments and self.invoice_of_payment(i) == k:
                return i
        return None

    def payment_ms(self, i: int) -> int:
        return self.invoice_ms(self.invoice_of_payment(i)) - self.invoice_ms.step // 2

    def payment_terms(self, i: int, invoice_date_ms: int, total: int) -> tuple[int, int, str]:
        """(date ms, amount cents, reference) of seeded payment ``i``; one in five pays half (part-paid)."""
        rng = self.rng("payments", i)
        latest = floor_day(self.payment_ms(i))
        days = max(0, (latest - invoice_date_ms) // DAY_MS)
        date_ms = invoice_date_ms + rng.randint(0, days) * DAY_MS
        amount = total // 2 if rng.random() < 0.2 else total
        reference = rng.choice(("", "Direct credit", "Internet banking", "Cheque", "Card"))
        return date_ms, amount, reference

    def reconciled(self, i: int) -> bool:
        return mix64(i, self.key) % 3 != 0


def line_tax(amount: int, percent: int, tax_mode: str) -> int:
    """The tax of a line of ``amount`` cents, rounded half up: on top of it (exclusive) or within it (inclusive)."""
    if tax_mode == "none":
        return 0
    if tax_mode == "exclusive":
        return (amount * percent * 2 + 100) // 200
    return (amount * percent * 2 + 100 + percent) // (2 * (100 + percent))

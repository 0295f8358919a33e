"""Generated books: customers, a catalogue, sales with lines and tax, and payments, the same for the same key,
consistent in their sums, and paired one payment to one sale."""

from __future__ import annotations

import pytest

from providers.sandbox_kit.books import Books, Sizes, line_tax
from providers.sandbox_kit.clock import ms_at
from providers.sandbox_kit.data import stable_key

SPANS = {
    "items_span": (ms_at(2021, 6, 1), ms_at(2022, 1, 1)),
    "customers_span": (ms_at(2022, 1, 1), ms_at(2023, 1, 1)),
    "invoices_span": (ms_at(2023, 1, 1), ms_at(2025, 1, 1)),
}


def books(key: str = "books", **sizes: int) -> Books:
    chosen = {"customers": 40, "invoices": 300, "lines_per_invoice": 3, "payments": 120, "items": 30, **sizes}
    return Books(stable_key(key), Sizes(**chosen), tax_percent=15, **SPANS)  # type: ignore[arg-type]


def test_the_same_key_gives_the_same_books_and_another_key_other_books() -> None:
    one, same, other = books(), books(), books("other")
    assert [one.sale(k, one.invoice_ms(k)) for k in range(20)] == [same.sale(k, same.invoice_ms(k)) for k in range(20)]
    assert [one.customer(i) for i in range(10)] == [same.customer(i) for i in range(10)]
    assert [one.sale(k, one.invoice_ms(k)) for k in range(20)] != [
        other.sale(k, other.invoice_ms(k)) for k in range(20)
    ]


def test_sales_add_up_in_cents_and_go_to_customers_who_buy() -> None:
    b = books()
    for k in range(300):
        sale = b.sale(k, b.invoice_ms(k))
        line_sum, tax = sum(line.amount for line in sale.lines), sum(line.tax for line in sale.lines)
        assert sale.tax == tax and sale.sub_total + sale.tax == sale.total
        assert sale.total == (line_sum if sale.tax_mode == "inclusive" else line_sum + tax)
        assert all(line.amount == (line.quantity * line.unit + 50) // 100 for line in sale.lines)
        assert b.customer(sale.customer).buys and sale.date_ms <= sale.due_ms < b.invoice_ms(k) + 40 * 86_400_000
        assert (sale.state == "paid") == (sale.payment is not None and sale.paid == sale.total)


def test_each_payment_pays_one_sale_before_that_sale_last_changed() -> None:
    b = books()
    paid = [b.invoice_of_payment(i) for i in range(120)]
    assert len(set(paid)) == 120 and paid == sorted(paid)
    for i, k in enumerate(paid):
        assert b.payment_of_invoice(k) == i and b.payment_ms(i) < b.invoice_ms(k)
        sale = b.sale(k, b.invoice_ms(k))
        assert sale.payment == i and sale.paid in (sale.total, sale.total // 2)
        assert sale.paid_date_ms is not None and sale.date_ms <= sale.paid_date_ms <= b.payment_ms(i)
    assert sum(b.payment_of_invoice(k) is None for k in range(300)) == 180


def test_new_sales_are_unpaid_and_issued_on_their_day() -> None:
    b = books()
    now = ms_at(2026, 1, 1) + 5_000
    for k in range(300, 320):
        sale = b.sale(k, now, created=True)
        assert sale.payment is None and sale.paid == 0 and sale.state in ("open", "draft")
        assert sale.date_ms == ms_at(2026, 1, 1)


def test_customers_names_are_unique_people_and_companies_alternate() -> None:
    b = books(customers=500, invoices=0, payments=0)
    customers = [b.customer(i) for i in range(500)]
    assert len({c.name for c in customers}) == 500
    assert all(c.person == (i % 2 == 0) for i, c in enumerate(customers))
    assert all(bool(c.mobile) == c.person and bool(c.tax_number) != c.person for c in customers)
    assert not b.customer(3, archived=False).archived and b.customer(3, archived=True).archived


def test_the_catalogue_repeats_its_products_in_ranges_priced_up() -> None:
    b = books(items=60)
    first, again = b.product(0), b.product(24)
    assert first.code == "DEV-001" and again.name == "Developer hour (2)" and again.code == "DEV-025"
    assert again.price == first.price + first.price // 10 and not first.purchased and b.product(1).purchased


@pytest.mark.parametrize(
    ("amount", "mode", "tax"),
    [
        (10_000, "exclusive", 1500),
        (11_500, "inclusive", 1500),
        (999, "none", 0),
        (3, "exclusive", 0),
        (4, "exclusive", 1),
    ],
)
def test_line_tax_rounds_half_up_on_top_of_or_within_the_amount(amount: int, mode: str, tax: int) -> None:
    assert line_tax(amount, 15, mode) == tax


def test_sizes_that_cannot_make_books_are_refused() -> None:
    for sizes in ((-1, 0, 1, 0, 0), (0, 5, 1, 0, 0), (5, 2, 1, 3, 0)):
        with pytest.raises(ValueError):
            Sizes(*sizes)

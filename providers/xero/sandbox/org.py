"""One sandbox organisation: the kit's store of its entity tables, Xero's lookups, and the changes tests make."""

from __future__ import annotations

import random
from collections.abc import Callable

import providers.xero.sandbox.catalog as cat
import providers.xero.sandbox.records as records
from providers.sandbox_kit.clock import DAY_MS, Clock, floor_day
from providers.sandbox_kit.data import cents, mix64, money
from providers.sandbox_kit.store import Record, Store, UniqueIndex
from providers.xero.sandbox.records import ACCOUNTS_MS, SEED_END_MS, OrgData, ms_json, sort_value

ENTITIES = ("contacts", "invoices", "payments", "items", "tax_rates", "accounts")


def contact_name_key(name: str) -> str:
    """Xero compares contact names without case and runs of spaces."""
    return " ".join(name.split()).casefold()


class Organisation(Store):
    def __init__(self, data: OrgData, user_email: str, clock: Clock) -> None:
        super().__init__(
            clock, not_before_ms=SEED_END_MS, change_field="UpdatedDateUTC", render_ms=ms_json, sort_key=sort_value
        )
        self.data = data
        self.tenant_id = data.tenant_id
        self.name = data.name
        self.user_email = user_email
        self.created_ms = ACCOUNTS_MS - 30 * DAY_MS
        sizes = data.sizes
        fixed = ACCOUNTS_MS  # accounts and tax rates predate everything else
        self._table("contacts", sizes.customers, lambda i: data.contact(i, data.books.customer_ms(i)))
        self._table(
            "invoices", sizes.invoices, lambda k: records.invoice(data, k, data.books.invoice_ms(k), self.contact_ref)
        )
        self._table(
            "payments",
            sizes.payments,
            lambda i: records.seeded_payment(data, i, self.record("invoices", data.books.invoice_of_payment(i))),
        )
        self._table("items", sizes.items, lambda j: data.item(j, data.books.item_ms(j)))
        self._table("tax_rates", len(cat.TAX_RATES), data.tax_rate, stamped=False)  # no dates; named by TaxType
        self._table("accounts", len(cat.CHART_OF_ACCOUNTS), lambda i: data.account(i, fixed + i))
        # Names must be unique among active contacts: writes check them against every change, whoever made it.
        self.contact_names = UniqueIndex(
            self, "contacts", "Name", normalize=contact_name_key, seeded_value=data.contact_name
        )

    def _table(self, entity: str, seeded: int, generate: Callable[[int], Record], *, stamped: bool = True) -> None:
        data, id_field = self.data, None if stamped else "TaxType"
        self.add_table(
            entity, seeded, data.seeded_ms(entity), lambda i: data.id_of(entity, i), generate, stamped=stamped,
            id_field=id_field,
        )  # fmt: skip

    def index_of(self, entity: str, record_id: str) -> int | None:
        found = self.data.codecs[entity].decode(record_id)
        if found is not None:
            return found if self.tables[entity].exists(found) else None
        # Xero also finds an invoice by InvoiceNumber, an item by Code and a tax rate by TaxType.
        if entity == "invoices":
            tail = record_id.rpartition("-")[2]
            index = int(tail) - 1 if tail.isdigit() else -1
            numbered = record_id.upper() == f"INV-{index + 1:06d}"
            return index if numbered and self.tables[entity].exists(index) else None
        field = {"items": "Code", "tax_rates": "TaxType"}.get(entity)
        return self.find(entity, field, record_id) if field is not None else None

    def contact_ref(self, index: int) -> Record:
        seeded = {"ContactID": self.data.id_of("contacts", index), "Name": self.data.contact_name(index)}
        return records.contact_embed(self.tables["contacts"].overrides.get(index) or seeded)

    def organisation_record(self) -> Record:
        return records.organisation(self.data, self.created_ms)

    # --- changes tests make (API writes are in writes.py and invoicing.py) ----------------------------------

    def touched(self, entity: str, index: int, record: Record) -> None:
        if entity == "tax_rates":
            raise ValueError("tax rates carry no UpdatedDateUTC, so a touch would be invisible")
        rng = random.Random(mix64(index, self.data.key + self.version))
        if entity == "contacts":
            phone = next(p for p in record["Phones"] if p["PhoneType"] == "DEFAULT")
            phone.update(PhoneNumber=f"{rng.randint(200, 999)} {rng.randint(1000, 9999)}", PhoneAreaCode="09")
        elif entity in ("invoices", "payments"):
            record["Reference"] = f"Revised {rng.randint(1000, 9999)}"
        elif entity == "items":
            price = cents(record["SalesDetails"]["UnitPrice"])
            record["SalesDetails"]["UnitPrice"] = (price + max(1, price // 20)) / 100
        else:
            record["Description"] = f"Updated {rng.randint(1000, 9999)}"

    def made(self, entity: str, index: int, ms: int) -> Record:
        if entity in ("invoices", "payments") and not self.data.sizes.customers:
            raise ValueError(f"new {entity} need an invoice contact: this organisation was seeded without contacts")
        if entity == "payments":  # pays the newest unpaid AUTHORISED invoice in full, which changes it too
            return pay(self, self._payable(ms), None, None, floor_day(ms), "")
        if entity == "invoices":
            return records.invoice(self.data, index, ms, self.contact_ref, created=True)
        if entity == "contacts":
            return self.data.contact(index, ms, archived=False)
        if entity == "tax_rates":
            return self.data.tax_rate(index)
        return self.data.item(index, ms) if entity == "items" else self.data.account(index, ms)

    def _payable(self, now: int) -> int:
        """The newest AUTHORISED invoice with money due and nothing paid yet, or a new one."""
        invoices = self.tables["invoices"]
        window = invoices.window()
        for position in range(window.total - 1, max(window.total - 2000, 0) - 1, -1):
            candidate = window.indices(position, position + 1)[0]
            record = invoices.record(candidate)
            if record["Status"] == "AUTHORISED" and record["AmountPaid"] == 0 and record["AmountDue"] > 0:
                return candidate
        target = invoices.next_index
        new = records.invoice(self.data, target, now, self.contact_ref, created=True)
        self.save("invoices", target, {**new, "Status": "AUTHORISED"}, now)
        return target

    def archive_contact(self, contact_id: str) -> None:
        (index,) = self.resolve("contacts", [contact_id])
        self.change("contacts", index, lambda record: record.update(ContactStatus="ARCHIVED"))
        self.changed()

    def void_invoice(self, invoice_id: str) -> None:
        """VOIDED, as Xero allows once payments are removed: its payments become DELETED (changed now too)."""
        (index,) = self.resolve("invoices", [invoice_id])
        now = self.stamp()
        for embedded in self.record("invoices", index)["Payments"]:
            payment_index = self.index_of("payments", embedded["PaymentID"])
            if payment_index is not None:
                self.change("payments", payment_index, lambda payment: payment.update(Status="DELETED"), now)

        def voided(record: Record) -> None:
            record.pop("FullyPaidOnDate", None)
            record.update(Status="VOIDED", Payments=[], AmountDue=0.0, AmountPaid=0.0)

        self.change("invoices", index, voided, now)
        self.changed()


def pay(
    org: Organisation, invoice_index: int, amount: int | None, account: Record | None, date_ms: int, reference: str
) -> Record:
    """A new payment of ``amount`` cents (None: all that is due) against an invoice, into ``account`` (None: the
    bank account, reconciled as the books say): the invoice changes too, and is PAID once nothing is due."""
    now = org.stamp()
    payment_index = org.tables["payments"].next_index
    invoice = org.record("invoices", invoice_index)
    amount = cents(invoice["AmountDue"]) if amount is None else amount
    paid_cents = cents(invoice["AmountPaid"]) + amount
    due_cents = cents(invoice["Total"]) - paid_cents

    def paid(record: Record) -> None:
        record["Payments"].append(records.payment_embed(org.data.id_of("payments", payment_index), date_ms, amount))
        record.update(AmountPaid=money(paid_cents), AmountDue=money(due_cents))
        if due_cents == 0:
            record.update(Status="PAID", FullyPaidOnDate=ms_json(date_ms))

    settled = org.change("invoices", invoice_index, paid, now)
    record = records.payment(org.data, payment_index, now, settled, (date_ms, amount, reference))
    if account is not None:
        record.update(Account=account, IsReconciled=False)
    return org.save("payments", payment_index, record, now)

"""One sandbox company (a realm): the kit's store of its entity tables with QuickBooks' rules for every stored
change (the SyncToken counts changes, ``MetaData.LastUpdatedTime`` says when), deletes kept as the tombstones
change data capture reports, and the changes tests make."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import providers.quickbooks.sandbox.records as records
from providers.quickbooks.sandbox.records import SEED_END_MS, CompanyData, qbo_time
from providers.sandbox_kit.clock import DAY_MS, Clock
from providers.sandbox_kit.data import cents, mix64, money
from providers.sandbox_kit.store import Record, Store, UniqueIndex, sort_key

# Sandbox table -> the QuickBooks entity it holds (what queries, CDC and paths name).
ENTITIES = {
    "customers": "Customer",
    "items": "Item",
    "invoices": "Invoice",
    "payments": "Payment",
    "accounts": "Account",
    "tax_codes": "TaxCode",
    "tax_rates": "TaxRate",
}
TABLES = {name: table for table, name in ENTITIES.items()}
DELETED = "Deleted"
_TAX_CODE_IDS = {code[0]: n for n, code in enumerate(records.TAX_CODES)}


def sort_value(value: Any) -> tuple[int, Any]:
    """The kit's order with QuickBooks' numeric ids (and DocNumbers) as numbers."""
    if isinstance(value, str) and value.isdigit():
        return sort_key(int(value))
    return sort_key(value)


class Company(Store):
    def __init__(self, data: CompanyData, user_email: str, clock: Clock) -> None:
        super().__init__(clock, not_before_ms=SEED_END_MS, sort_key=sort_value)
        self.data, self.realm_id, self.name, self.user_email = data, data.realm_id, data.name, user_email
        self.created_ms = records.ACCOUNTS_MS - 30 * DAY_MS
        self.info_ms = self.created_ms
        self.deleted: dict[str, int] = {}  # table -> how many of its records are tombstones
        self.operation: str | None = None  # what the change being stored is, for webhooks (Create/Update/...)
        sizes, books = data.sizes, data.books
        self._table("customers", sizes.customers, lambda i: data.customer(i, books.customer_ms(i)))
        self._table("items", sizes.items, lambda j: data.item(j, books.item_ms(j)))
        self._table("invoices", sizes.invoices, lambda k: data.invoice(k, books.invoice_ms(k), self.customer_ref))
        self._table("payments", sizes.payments, self._seeded_payment)
        self._table("accounts", len(records.ACCOUNTS), lambda i: data.account(i, data.seeded_ms("accounts")(i)))
        self._table("tax_codes", len(records.TAX_CODES), lambda i: data.tax_code(i, data.seeded_ms("tax")(i)))
        self._table("tax_rates", len(records.TAX_RATES), lambda i: data.tax_rate(i, data.seeded_ms("tax")(i)))
        # Names are unique among customers and among items (QuickBooks' 6240 Duplicate Name Exists Error).
        self.names = {
            "customers": UniqueIndex(self, "customers", "DisplayName", seeded_value=data.customer_name),
            "items": UniqueIndex(self, "items", "Name", seeded_value=lambda j: books.product(j).name),
        }

    def _table(self, table: str, seeded: int, generate: Callable[[int], Record]) -> None:
        codes = table == "tax_codes"
        self.add_table(
            table,
            seeded,
            self.data.seeded_ms(table),
            (lambda i: records.TAX_CODES[i][0]) if codes else _numbered,
            generate,
            decode=_TAX_CODE_IDS.get if codes else _index,
        )

    def _seeded_payment(self, i: int) -> Record:
        books = self.data.books
        k = books.invoice_of_payment(i)
        sale = books.sale(k, books.invoice_ms(k))
        terms = books.payment_terms(i, sale.date_ms, sale.total)
        return self.data.payment(i, books.payment_ms(i), str(k + 1), self.customer_ref(sale.customer), terms)

    def customer_ref(self, index: int) -> Record:
        override = self.tables["customers"].overrides.get(index)
        name = override["DisplayName"] if override is not None else self.data.customer_name(index)
        return records.ref(str(index + 1), name)

    def save(self, entity: str, index: int, record: Record, ms: int) -> Record:
        """Every stored change: the SyncToken counts it and MetaData says when (a new record starts at 0)."""
        table = self.tables[entity]
        if table.exists(index):
            record["SyncToken"] = str(int(table.record(index).get("SyncToken", "0")) + 1)
            created = table.record(index).get("MetaData", {}).get("CreateTime") or qbo_time(ms)
        else:
            record["SyncToken"], created = "0", qbo_time(ms)
        record["MetaData"] = {"CreateTime": created, "LastUpdatedTime": qbo_time(ms)}
        return super().save(entity, index, record, ms)

    def live(self, entity: str, index: int | None) -> Record | None:
        """The record at ``index`` unless it does not exist or was deleted."""
        if index is None or not self.tables[entity].exists(index):
            return None
        record = self.tables[entity].record(index)
        return None if record.get("status") == DELETED else record

    def delete(self, entity: str, index: int, operation: str = "Delete") -> Record:
        """A delete: only a tombstone stays, which change data capture lists as ``status: Deleted``."""
        now = self.stamp()
        self.operation = operation
        tombstone: Record = {"domain": "QBO", "status": DELETED, "Id": self.tables[entity].id_of(index)}
        self.save(entity, index, tombstone, now)
        tombstone.pop("SyncToken", None)
        tombstone["MetaData"] = {"LastUpdatedTime": tombstone["MetaData"]["LastUpdatedTime"]}
        self.deleted[entity] = self.deleted.get(entity, 0) + 1
        self.changed()
        return tombstone

    def company_info(self) -> Record:
        return self.data.company_info(self.created_ms, self.info_ms)

    # --- changes tests make (API writes are in writes.py) -----------------------------------------------------

    def touched(self, entity: str, index: int, record: Record) -> None:
        if entity in ("tax_codes", "tax_rates"):
            raise ValueError("tax codes and rates are read-only in QuickBooks")
        if record.get("status") == DELETED:
            raise ValueError(f"{entity} record {index + 1} is deleted")
        self.operation = "Update"
        rng = random.Random(mix64(index, self.data.key + self.version))
        if entity == "customers":
            record["PrimaryPhone"] = {"FreeFormNumber": f"(415) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}"}
        elif entity == "invoices":
            record["CustomerMemo"] = {"value": f"Revised {rng.randint(1000, 9999)}"}
        elif entity == "payments":
            record["PaymentRefNum"] = f"Revised {rng.randint(1000, 9999)}"
        elif entity == "items":
            price = cents(record["UnitPrice"])
            record["UnitPrice"] = money(price + max(1, price // 20))
        else:
            record["Description"] = f"Updated {rng.randint(1000, 9999)}"

    def made(self, entity: str, index: int, ms: int) -> Record:
        self.operation = "Create"
        if entity in ("invoices", "payments") and not self.data.sizes.customers:
            raise ValueError(f"new {entity} need a customer: this company was seeded without customers")
        if entity == "customers":
            return self.data.customer(index, ms, active=True)
        if entity == "items":
            return self.data.item(index, ms)
        if entity == "invoices":
            return self.data.invoice(index, ms, self.customer_ref, created=True)
        if entity == "payments":
            invoice = self.record("invoices", self._payable(ms))
            record = self.pay(index, invoice, cents(invoice["Balance"]))
            self.operation = "Create"  # paying changed the invoice first
            return record
        if entity == "accounts":
            return self.data.account(index, ms)
        raise ValueError(f"{entity} are read-only in QuickBooks")

    def pay(self, index: int, invoice: Record, amount: int) -> Record:
        """New payment ``index`` of ``amount`` cents against ``invoice`` into the bank account: the invoice's
        balance falls at once (``Store.create`` stores the payment)."""
        payment_id = str(index + 1)
        line = {"Amount": money(amount), "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}
        self.apply(invoice["Id"], amount, payment_id)
        return records.managed(
            payment_id,
            self.stamp(),
            self.stamp(),
            TxnDate=records.qbo_date(self.stamp()),
            TotalAmt=money(amount),
            UnappliedAmt=0,
            ProcessPayment=False,
            CustomerRef=invoice["CustomerRef"],
            CurrencyRef=dict(records.USD),
            DepositToAccountRef=records.ref(records.BANK_ACCOUNT),
            Line=[line],
        )

    def apply(self, invoice_id: str, amount: int, payment_id: str) -> None:
        """A payment's ``amount`` cents applied to an invoice (checked by the caller): its balance falls."""
        index = self.index_of("invoices", invoice_id)
        assert index is not None

        def applied(record: Record) -> None:
            record["Balance"] = money(cents(record["Balance"]) - amount)
            link = {"TxnId": payment_id, "TxnType": "Payment"}
            if link not in record["LinkedTxn"]:
                record["LinkedTxn"].append(link)

        self.operation = "Update"
        self.change("invoices", index, applied)

    def unapply(self, payment: Record) -> None:
        """A payment's applications undone (before it is changed, voided or deleted)."""
        for line in payment.get("Line") or []:
            for linked in line.get("LinkedTxn") or []:
                index = self.index_of("invoices", str(linked.get("TxnId", "")))
                if linked.get("TxnType") != "Invoice" or index is None or self.live("invoices", index) is None:
                    continue

                def undone(record: Record, amount: int = cents(line["Amount"])) -> None:
                    record["Balance"] = money(cents(record["Balance"]) + amount)
                    record["LinkedTxn"] = [t for t in record["LinkedTxn"] if t.get("TxnId") != payment["Id"]]

                self.operation = "Update"
                self.change("invoices", index, undone)

    def _payable(self, now: int) -> int:
        """The newest invoice with a balance and no payment yet, or a new one."""
        invoices = self.tables["invoices"]
        for index in range(len(invoices) - 1, max(len(invoices) - 2000, 0) - 1, -1):
            record = self.live("invoices", index)
            if record is not None and not record["LinkedTxn"] and record["Balance"] > 0:
                return index
        target = invoices.next_index
        self.save("invoices", target, self.data.invoice(target, now, self.customer_ref, created=True), now)
        return target


def _numbered(index: int) -> str:
    return str(index + 1)


def _index(record_id: str) -> int | None:
    text = record_id.strip()
    return int(text) - 1 if text.isdigit() and 0 < int(text) < 1 << 62 else None

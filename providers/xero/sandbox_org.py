"""One sandbox organisation: its entity tables, the changes tests make to them, and record selection."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from providers.xero import sandbox_catalog as cat
from providers.xero import sandbox_transactions as tx
from providers.xero.sandbox_data import ACCOUNTS_MS, DAY_MS, SEED_END_MS, OrgData, OrgSizes, floor_day, mix64, ms_json
from providers.xero.sandbox_query import Predicate, sort_value
from providers.xero.sandbox_store import EntityTable, Record, SelectionCache

ENTITIES = ("contacts", "invoices", "payments", "items", "tax_rates", "accounts")
ID_FIELDS = {
    "contacts": "ContactID",
    "invoices": "InvoiceID",
    "payments": "PaymentID",
    "items": "ItemID",
    "tax_rates": "TaxType",
    "accounts": "AccountID",
}
Fetch = Callable[[int, int], list[Record]]
# (entity, record id, record, created, ms): told of every stored change (API writes and test helpers alike).
ChangeObserver = Callable[[str, str, Record, bool, int], None]


class Organisation:
    def __init__(self, data: OrgData, user_email: str, clock: Callable[[], float]) -> None:
        self.data = data
        self.tenant_id = data.tenant_id
        self.name = data.name
        self.user_email = user_email
        self.created_ms = ACCOUNTS_MS - 30 * DAY_MS
        self._clock = clock
        self._last_stamp = 0
        self.version = 0  # bumped by every change: selection caches key on it
        self.cache = SelectionCache()
        sizes = data.sizes
        fixed = ACCOUNTS_MS  # accounts and tax rates predate everything else
        self.tables: dict[str, EntityTable] = {
            "contacts": self._table("contacts", sizes.contacts, lambda i: data.contact(i, data.contact_ms(i))),
            "invoices": self._table(
                "invoices", sizes.invoices, lambda k: tx.invoice(data, k, data.invoice_ms(k), self.contact_ref)
            ),
            "payments": self._table(
                "payments",
                sizes.payments,
                lambda i: tx.seeded_payment(data, i, self.record("invoices", data.invoice_of_payment(i))),
            ),
            "items": self._table("items", sizes.items, lambda j: data.item(j, data.item_ms(j))),
            "tax_rates": self._table("tax_rates", len(cat.TAX_RATES), data.tax_rate),
            "accounts": self._table("accounts", len(cat.CHART_OF_ACCOUNTS), lambda i: data.account(i, fixed + i)),
        }
        self.observers: list[ChangeObserver] = []
        for entity, table in self.tables.items():
            table.on_put = self._observer_of(entity, table)

    def _table(self, entity: str, seeded: int, generate: Callable[[int], Record]) -> EntityTable:
        return EntityTable(seeded, self.data.seeded_ms(entity), lambda i: self.data.id_of(entity, i), generate)

    def _observer_of(self, entity: str, table: EntityTable) -> Callable[[int, Record, bool, int], None]:
        def told(index: int, record: Record, created: bool, ms: int) -> None:
            for observer in self.observers:
                observer(entity, table.id_of(index), record, created, ms)

        return told

    def record(self, entity: str, index: int) -> Record:
        return self.tables[entity].record(index)

    def index_of(self, entity: str, record_id: str) -> int | None:
        table = self.tables[entity]
        found = self.data.codecs[entity].decode(record_id)
        if found is not None:
            return found if table.exists(found) else None
        # Xero also finds an invoice by InvoiceNumber, an item by Code and a tax rate by TaxType.
        tail = record_id.rpartition("-")[2]
        index = int(tail) - 1 if tail.isdigit() else -1
        if entity == "invoices" and record_id.upper() != f"INV-{index + 1:06d}":
            return None
        if entity == "items" and (not table.exists(index) or table.record(index)["Code"] != record_id.upper()):
            return None
        if entity == "tax_rates":
            wanted = record_id.upper()
            return next(
                (i for i in range(len(table)) if table.exists(i) and table.record(i)["TaxType"] == wanted), None
            )
        if entity not in ("invoices", "items"):
            return None
        return index if table.exists(index) else None

    def contact_ref(self, index: int) -> Record:
        override = self.tables["contacts"].overrides.get(index)
        if override is not None:
            return tx.contact_embed(override)
        return tx.contact_embed(
            {"ContactID": self.data.id_of("contacts", index), "Name": self.data.contact_name(index)[0]}
        )

    def organisation_record(self) -> Record:
        return tx.organisation(self.data, self.created_ms)

    # --- selection -------------------------------------------------------------------------------------

    def select(
        self,
        entity: str,
        *,
        lo: int | None = None,
        hi: int | None = None,
        predicate: Predicate | None = None,
        predicate_key: Hashable = None,
        order: Sequence[tuple[str, bool]] = (),
        indices: Sequence[int] | None = None,
    ) -> tuple[int, Fetch]:
        """(total, fetch(start, stop)) of the records with UpdatedDateUTC in [lo, hi] matching ``predicate``,
        in ``order`` (default UpdatedDateUTC ASC then ID); ``indices`` restricts to those records (IDs=...)."""
        table = self.tables[entity]
        order = list(order)
        if indices is None and predicate is None and (not order or [f for f, _ in order] == ["UpdatedDateUTC"]):
            window = table.window(lo, hi)  # the fast path: index arithmetic, nothing scanned
            descending = bool(order) and order[0][1]
            total = window.total

            def fetch_window(start: int, stop: int) -> list[Record]:
                if not descending:
                    return [table.record(i) for i in window.indices(start, stop)]
                return [table.record(i) for i in reversed(window.indices(max(total - stop, 0), total - start))]

            return total, fetch_window
        key = (entity, self.version, lo, hi, predicate_key, tuple(order), None if indices is None else tuple(indices))
        chosen = self.cache.get(key)
        if chosen is None:
            chosen = self._scan(table, lo, hi, predicate, order, indices)
            self.cache.put(key, chosen)
        found = chosen
        return len(found), lambda start, stop: [table.record(i) for i in found[start:stop]]

    def _scan(
        self,
        table: EntityTable,
        lo: int | None,
        hi: int | None,
        predicate: Predicate | None,
        order: list[tuple[str, bool]],
        indices: Sequence[int] | None,
    ) -> list[int]:
        if indices is None:
            candidates = table.window(lo, hi).indices()
        else:
            wanted = {i for i in indices if table.exists(i)}
            in_range = [
                i
                for i in wanted
                if (lo is None or table.updated_ms(i) >= lo) and (hi is None or table.updated_ms(i) <= hi)
            ]
            candidates = sorted(in_range, key=lambda i: (table.updated_ms(i), table.id_of(i)))
        # Stream: keep indices (and sort keys), never every record at once.
        rows: list[tuple[int, tuple[tuple[int, Any], ...]]] = []
        for i in candidates:
            record = table.record(i)
            if predicate is None or predicate(record):
                rows.append((i, tuple(sort_value(record.get(field)) for field, _ in order)))
        for position in reversed(range(len(order))):  # stable sorts, last key first
            rows.sort(key=lambda row: row[1][position], reverse=order[position][1])
        return [i for i, _ in rows]

    # --- changes -----------------------------------------------------------------------------------------

    def stamp(self) -> int:
        """Now, in ms, for a change: never before the seeded history nor an earlier change (see ``touch``)."""
        self._last_stamp = max(int(self._clock() * 1000), SEED_END_MS, self._last_stamp)
        return self._last_stamp

    def _changed(self) -> None:
        self.version += 1
        self.cache.clear()

    def _resolve(self, entity: str, record_ids: Sequence[str] | int) -> list[int]:
        table = self.tables[entity]
        if isinstance(record_ids, int):
            return table.window().indices(0, record_ids)
        if isinstance(record_ids, str):  # one ID, not a sequence of characters
            record_ids = [record_ids]
        found = []
        for record_id in record_ids:
            index = self.index_of(entity, record_id)
            if index is None:
                raise KeyError(f"no {entity} record {record_id!r} in {self.name}")
            found.append(index)
        return found

    def touch(self, entity: str, record_ids: Sequence[str] | int) -> list[str]:
        if entity == "tax_rates":
            raise ValueError("tax rates carry no UpdatedDateUTC, so a touch would be invisible")
        table = self.tables[entity]
        now = self.stamp()
        touched = []
        for index in self._resolve(entity, record_ids):
            record = copy.deepcopy(table.record(index))
            rng = random.Random(mix64(index, self.data.key + self.version))
            if entity == "contacts":
                phone = next(p for p in record["Phones"] if p["PhoneType"] == "DEFAULT")
                phone.update(PhoneNumber=f"{rng.randint(200, 999)} {rng.randint(1000, 9999)}", PhoneAreaCode="09")
            elif entity in ("invoices", "payments"):
                record["Reference"] = f"Revised {rng.randint(1000, 9999)}"
            elif entity == "items":
                price = tx.cents(record["SalesDetails"]["UnitPrice"])
                record["SalesDetails"]["UnitPrice"] = (price + max(1, price // 20)) / 100
            else:
                record["Description"] = f"Updated {rng.randint(1000, 9999)}"
            record["UpdatedDateUTC"] = ms_json(now)
            table.put(index, record, now)
            touched.append(table.id_of(index))
        self._changed()
        return touched

    def create(self, entity: str, n: int) -> list[str]:
        if entity in ("invoices", "payments") and not self.data.sizes.contacts:
            raise ValueError(f"new {entity} need an invoice contact: this organisation was seeded without contacts")
        table = self.tables[entity]
        created = []
        for _ in range(n):
            now = self.stamp()
            index = table.next_index
            if entity == "contacts":
                record = self.data.contact(index, now, archived=False)
            elif entity == "invoices":
                record = tx.invoice(self.data, index, now, self.contact_ref, created=True)
            elif entity == "payments":
                self._create_payment(index, now)
                created.append(table.id_of(index))
                continue
            elif entity == "items":
                record = self.data.item(index, now)
            elif entity == "accounts":
                record = self.data.account(index, now)
            else:
                record = self.data.tax_rate(index)
            table.put(index, record, now)
            created.append(str(record[ID_FIELDS[entity]]))
        self._changed()
        return created

    def _create_payment(self, index: int, now: int) -> None:
        """Pay the newest AUTHORISED invoice with money due in full (creating one if none): both change."""
        invoices = self.tables["invoices"]
        window = invoices.window()
        target = None
        for position in range(window.total - 1, max(window.total - 2000, 0) - 1, -1):
            candidate = window.indices(position, position + 1)[0]
            record = invoices.record(candidate)
            if record["Status"] == "AUTHORISED" and record["AmountPaid"] == 0 and record["AmountDue"] > 0:
                target = candidate
                break
        if target is None:
            target = invoices.next_index
            invoices.put(
                target,
                {**tx.invoice(self.data, target, now, self.contact_ref, created=True), "Status": "AUTHORISED"},
                now,
            )
        paid = copy.deepcopy(invoices.record(target))
        amount = tx.cents(paid["AmountDue"])
        date_ms = floor_day(now)
        payment_id = self.data.id_of("payments", index)
        paid["Payments"].append(tx.payment_embed(payment_id, date_ms, amount))
        paid.update(AmountDue=0.0, AmountPaid=paid["Total"], Status="PAID", FullyPaidOnDate=ms_json(date_ms))
        paid["UpdatedDateUTC"] = ms_json(now)
        invoices.put(target, paid, now)
        self.tables["payments"].put(index, tx.payment(self.data, index, now, paid, (date_ms, amount, "")), now)

    def archive_contact(self, contact_id: str) -> None:
        (index,) = self._resolve("contacts", [contact_id])
        now = self.stamp()
        record = copy.deepcopy(self.tables["contacts"].record(index))
        record.update(ContactStatus="ARCHIVED", UpdatedDateUTC=ms_json(now))
        self.tables["contacts"].put(index, record, now)
        self._changed()

    def void_invoice(self, invoice_id: str) -> None:
        """VOIDED, as Xero allows once payments are removed: its payments become DELETED (changed now too)."""
        (index,) = self._resolve("invoices", [invoice_id])
        now = self.stamp()
        invoices, payments = self.tables["invoices"], self.tables["payments"]
        record = copy.deepcopy(invoices.record(index))
        for embedded in record["Payments"]:
            payment_index = self.index_of("payments", embedded["PaymentID"])
            if payment_index is not None:
                deleted = copy.deepcopy(payments.record(payment_index))
                deleted.update(Status="DELETED", UpdatedDateUTC=ms_json(now))
                payments.put(payment_index, deleted, now)
        record.pop("FullyPaidOnDate", None)
        record.update(Status="VOIDED", Payments=[], AmountDue=0.0, AmountPaid=0.0, UpdatedDateUTC=ms_json(now))
        invoices.put(index, record, now)
        self._changed()


def sizes_for(contacts: int, invoices: int, lines_per_invoice: int, payments: int, items: int) -> OrgSizes:
    if min(contacts, invoices, lines_per_invoice, payments, items) < 0:
        raise ValueError("sizes must not be negative")
    if invoices and not contacts:
        raise ValueError("invoices need at least one contact")
    if payments > invoices:
        raise ValueError("each seeded payment pays a different invoice: payments must not exceed invoices")
    return OrgSizes(contacts, invoices, lines_per_invoice, payments, items)


def envelope_records(entity: str, records: list[Record], *, summary: bool) -> list[Any]:
    """Records as a list response carries them: summaryOnly drops the heavy parts (spec ``summaryOnly``)."""
    if not summary:
        return records
    heavy = {
        "invoices": ("LineItems", "Payments", "CreditNotes", "Prepayments", "Overpayments"),
        "contacts": ("Addresses", "Phones", "ContactPersons", "ContactGroups"),
    }.get(entity, ())
    return [{k: v for k, v in record.items() if k not in heavy} for record in records]

"""Deterministic Xero records generated from (seed, index) on demand: nothing is materialised up front.

Every seeded record of an organisation is a pure function of the sandbox seed, the organisation's ordinal and the
record's index, so 100,000 invoices cost no memory until served. IDs are an invertible keyed permutation of the
index (a Feistel network), so ``GET /Invoices/{InvoiceID}`` finds the index without a lookup table.

Seeded ``UpdatedDateUTC`` values increase with the index and are all in the past (fixed spans, so the same seed
gives the same data on any day): items, then contacts, then invoices, with each seeded payment just before the
update of the invoice it paid. Ordering and change-date filters therefore reduce to index arithmetic.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from providers.xero import sandbox_catalog as cat

DAY_MS = 86_400_000
_M64 = (1 << 64) - 1
_M31 = (1 << 31) - 1
_M62 = (1 << 62) - 1


def _ms(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, tzinfo=UTC).timestamp() * 1000)


# Seeded history (see the module docstring). Clocks given to the sandbox should read later than SEED_END_MS.
ACCOUNTS_MS = _ms(2021, 1, 1)
ITEMS_SPAN = (_ms(2021, 6, 1), _ms(2022, 1, 1))
CONTACTS_SPAN = (_ms(2022, 1, 1), _ms(2023, 1, 1))
INVOICES_SPAN = (_ms(2023, 1, 1), _ms(2025, 1, 1))
SEED_END_MS = INVOICES_SPAN[1]


def ms_json(ms: int) -> str:
    """Xero's MS-JSON timestamp, ``/Date(1541176290160+0000)/`` (spec examples)."""
    return f"/Date({ms}+0000)/"


def date_string(ms: int) -> str:
    """The ``DateString`` companion of a date field: ``2018-10-20T00:00:00`` (spec getInvoices example)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def floor_day(ms: int) -> int:
    return ms - ms % DAY_MS


def money(cents: int) -> float:
    return cents / 100


def stable_key(*parts: object) -> int:
    """A 64-bit key from parts, stable across processes (unlike ``hash``)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def mix64(x: int, key: int) -> int:
    """splitmix64-style mixing: cheap, well spread, deterministic."""
    x = ((x ^ key) * 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


class IdCodec:
    """Index <-> version-4-looking UUID: a 4-round Feistel network over 62 bits plus a keyed 64-bit check half."""

    def __init__(self, key: int) -> None:
        self._rounds = tuple(mix64(n, key) for n in range(4))
        self._check = mix64(99, key)

    def encode(self, index: int) -> str:
        left, right = index >> 31, index & _M31
        for round_key in self._rounds:
            left, right = right, left ^ _feistel(right, round_key)
        low = (left << 31) | right
        h = f"{(self._high(low) << 64) | (2 << 62) | low:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def decode(self, value: str) -> int | None:
        try:
            number = uuid.UUID(value).int
        except (ValueError, AttributeError, TypeError):
            return None
        low, high = number & _M62, number >> 64
        if (number >> 62) & 3 != 2 or high != self._high(low):
            return None
        left, right = low >> 31, low & _M31
        for round_key in reversed(self._rounds):
            left, right = right ^ _feistel(left, round_key), left
        return (left << 31) | right

    def _high(self, low: int) -> int:
        return (mix64(low, self._check) & ~0xF000) | 0x4000  # the version nibble reads 4


def _feistel(half: int, round_key: int) -> int:
    """A cheap keyed round function (31 bits out); any function keeps the network invertible."""
    x = ((half ^ round_key) * 0x9E3779B97F4A7C15) & _M64
    x ^= x >> 29
    return (((x * 0xBF58476D1CE4E5B9) & _M64) >> 33) & _M31


@dataclass(frozen=True)
class OrgSizes:
    contacts: int
    invoices: int
    lines_per_invoice: int
    payments: int
    items: int


class Timeline:
    """Seeded UpdatedDateUTC (ms) by index: strictly increasing, evenly spread over a fixed span."""

    def __init__(self, span: tuple[int, int], count: int) -> None:
        self.start = span[0]
        self.step = max(1, (span[1] - span[0]) // max(count, 1))

    def __call__(self, index: int) -> int:
        return self.start + index * self.step


class OrgData:
    """Generates one organisation's records. ``contact_ref``/``invoice_of`` let the store substitute overrides."""

    def __init__(self, seed: int, ordinal: int, tenant_id: str, name: str, sizes: OrgSizes) -> None:
        self.key = stable_key("xero-sandbox", seed, ordinal)
        self.tenant_id = tenant_id
        self.name = name
        self.sizes = sizes
        self.codecs = {e: IdCodec(stable_key(self.key, e)) for e in (*cat.QUERY_FIELDS, "lines", "branding")}
        self._rng_keys = {e: stable_key(self.key, "rng", e) for e in cat.QUERY_FIELDS}
        self.invoice_ms = Timeline(INVOICES_SPAN, sizes.invoices)
        self.contact_ms = Timeline(CONTACTS_SPAN, sizes.contacts)
        self.item_ms = Timeline(ITEMS_SPAN, sizes.items)
        self.branding_theme_id = self.codecs["branding"].encode(0)
        self.item_facts = lru_cache(maxsize=4096)(self._item_facts)
        self._account_refs = {
            row[0]: {"AccountID": self.id_of("accounts", i), "Code": row[0]}
            for i, row in enumerate(cat.CHART_OF_ACCOUNTS)
        }

    def rng(self, entity: str, index: int) -> random.Random:
        return random.Random(mix64(index, self._rng_keys[entity]))

    def id_of(self, entity: str, index: int) -> str:
        return self.codecs[entity].encode(index)

    def seeded_ms(self, entity: str) -> Callable[[int], int]:
        timelines: dict[str, Callable[[int], int]] = {
            "contacts": self.contact_ms,
            "invoices": self.invoice_ms,
            "payments": self.payment_ms,
            "items": self.item_ms,
            "accounts": lambda i: ACCOUNTS_MS + i * 60_000,
            "tax_rates": lambda i: ACCOUNTS_MS + i * 60_000,
        }
        return timelines[entity]

    # --- payments <-> invoices: seeded payment i pays invoice k(i), spread evenly, injective ----------------

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
        # Half a step before the paid invoice's update: paying it is what last changed that invoice.
        return self.invoice_ms(self.invoice_of_payment(i)) - self.invoice_ms.step // 2

    def payment_terms(self, i: int, invoice_date_ms: int, total_cents: int) -> tuple[int, int, str]:
        """(Date, Amount in cents, Reference) of seeded payment ``i``; one in five pays half (part-paid)."""
        rng = self.rng("payments", i)
        latest = floor_day(self.payment_ms(i))
        days = max(0, (latest - invoice_date_ms) // DAY_MS)
        date_ms = invoice_date_ms + rng.randint(0, days) * DAY_MS
        amount = total_cents // 2 if rng.random() < 0.2 else total_cents
        reference = rng.choice(("", "Direct credit", "Internet banking", "Cheque", "Card"))
        return date_ms, amount, reference

    # --- contacts ---------------------------------------------------------------------------------------

    def contact_name(self, i: int) -> tuple[str, str, str, bool]:
        """(Name, FirstName, LastName, is_person), unique by construction: Xero requires unique contact names."""
        j, person = i // 2, i % 2 == 0
        if person:
            n_first, n_last = len(cat.FIRST_NAMES), len(cat.LAST_NAMES)
            space = n_first * n_last  # 40 x 43: gcd(41, 43) = 1 keeps (first, last) unique below `space`
            scrambled = (j % space) * 1117 % space
            first = cat.FIRST_NAMES[scrambled % n_first]
            last = cat.LAST_NAMES[(scrambled // n_first + scrambled) % n_last]
            name = f"{first} {last}" + (f" {j // space + 1}" if j >= space else "")
            return name, first, last, True
        n_word, n_trade = len(cat.COMPANY_WORDS), len(cat.COMPANY_TRADES)
        space = n_word * n_trade
        scrambled = (j % space) * 7919 % space
        word, trade = cat.COMPANY_WORDS[scrambled % n_word], cat.COMPANY_TRADES[scrambled // n_word]
        suffix = cat.COMPANY_SUFFIXES[j % len(cat.COMPANY_SUFFIXES)]
        name = f"{word} {trade} {suffix}" + (f" {j // space + 1}" if j >= space else "")
        rng = self.rng("contacts", i)
        return name, rng.choice(cat.FIRST_NAMES), rng.choice(cat.LAST_NAMES), False

    def contact(self, i: int, updated_ms: int, *, archived: bool | None = None) -> dict[str, Any]:
        name, first, last, person = self.contact_name(i)
        rng = self.rng("contacts", i)
        slug = "".join(ch for ch in name.lower() if ch.isalnum())[:24]
        # RFC 2606 example domains: nothing generated here can reach a real mailbox.
        email = (
            f"{first}.{last}@example.{rng.choice(('com', 'net', 'org'))}" if person else f"accounts@{slug}.example.com"
        )
        city, region, postcode = rng.choice(cat.CITIES)
        street = f"{rng.randint(1, 480)} {rng.choice(cat.STREETS)}"
        is_archived = rng.random() < 0.04 if archived is None else archived
        phone = f"{rng.randint(200, 999)} {rng.randint(1000, 9999)}"
        record: dict[str, Any] = {
            "ContactID": self.id_of("contacts", i),
            "ContactStatus": "ARCHIVED" if is_archived else "ACTIVE",
            "Name": name,
            "FirstName": first,
            "LastName": last,
            "EmailAddress": email.lower(),
            "BankAccountDetails": "",
            "Addresses": [
                _address("POBOX", f"PO Box {rng.randint(100, 99999)}", city, region, postcode),
                _address("STREET", street, city, region, postcode),
            ],
            "Phones": [
                _phone("DDI", ""),
                _phone("DEFAULT", phone, "09"),
                _phone("FAX", ""),
                _phone("MOBILE", f"21 {rng.randint(100, 999)} {rng.randint(1000, 9999)}" if person else "", "021"),
            ],
            "UpdatedDateUTC": ms_json(updated_ms),
            "ContactGroups": [],
            # Invoices only go to customers (i % 5 != 4); a fifth supply to us, two of those buy too.
            "IsSupplier": i % 5 in (3, 4),
            "IsCustomer": i % 5 != 4,
            "DefaultCurrency": cat.ORGANISATION_PROFILE["BaseCurrency"],
            "ContactPersons": [],
            "HasAttachments": False,
            "HasValidationErrors": False,
        }
        if not person:
            record["TaxNumber"] = f"{rng.randint(10, 99)}-{rng.randint(100, 999)}-{rng.randint(100, 999)}"
        return record

    def customer_of_invoice(self, rng: random.Random) -> int:
        c = rng.randrange(self.sizes.contacts)
        return c - 1 if c % 5 == 4 else c

    # --- items, accounts, tax rates ------------------------------------------------------------------------

    def _item_facts(self, j: int) -> tuple[str, str, str, int, str]:
        """(Code, Name, Description, sale price cents, ItemID) of item ``j``: what invoice lines copy."""
        prefix, name, description, price = cat.PRODUCTS[(j * 7) % len(cat.PRODUCTS)]
        lap = j // len(cat.PRODUCTS)
        if lap:
            name, description = f"{name} ({lap + 1})", f"{description} - range {lap + 1}"
            price = price + (price * lap) // 10
        return f"{prefix}-{j + 1:03d}", name, description, price, self.id_of("items", j)

    def item(self, j: int, updated_ms: int) -> dict[str, Any]:
        code, name, description, price, item_id = self.item_facts(j)
        purchased = j % 3 != 0  # services (every third) are sold only
        return {
            "ItemID": item_id,
            "Code": code,
            "Description": description,
            "PurchaseDescription": description if purchased else "",
            "UpdatedDateUTC": ms_json(updated_ms),
            "PurchaseDetails": (
                {"UnitPrice": money(price * 6 // 10), "AccountCode": cat.PURCHASES_ACCOUNT, "TaxType": "INPUT2"}
                if purchased
                else {}
            ),
            "SalesDetails": {"UnitPrice": money(price), "AccountCode": cat.SALES_ACCOUNT, "TaxType": "OUTPUT2"},
            "Name": name,
            "IsTrackedAsInventory": False,
            "IsSold": True,
            "IsPurchased": purchased,
        }

    def account(self, i: int, updated_ms: int) -> dict[str, Any]:
        if i < len(cat.CHART_OF_ACCOUNTS):
            code, name, kind, tax_type, system, description = cat.CHART_OF_ACCOUNTS[i]
        else:  # accounts created later: extra expense codes
            n = i - len(cat.CHART_OF_ACCOUNTS) + 1
            code, name, kind, tax_type, system, description = (f"5{n:02d}", f"Expense {n}", "EXPENSE", "INPUT2", "", "")
        record: dict[str, Any] = {
            "AccountID": self.id_of("accounts", i),
            "Code": code,
            "Name": name,
            "Status": "ACTIVE",
            "Type": kind,
            "TaxType": tax_type,
            "Class": cat.ACCOUNT_CLASS[kind],
            "EnablePaymentsToAccount": False,
            "ShowInExpenseClaims": kind in ("OVERHEADS", "EXPENSE"),
            "BankAccountType": "",
            "ReportingCode": "",
            "HasAttachments": False,
            "UpdatedDateUTC": ms_json(updated_ms),
            "AddToWatchlist": False,
        }
        if description:
            record["Description"] = description
        if system:
            record["SystemAccount"] = system
        if kind == "BANK":
            record.update(
                BankAccountNumber=f"0{i + 1}0209{10000000 + mix64(i, self.key) % 89999999}",
                BankAccountType="BANK",
                CurrencyCode=cat.ORGANISATION_PROFILE["BaseCurrency"],
                EnablePaymentsToAccount=True,
            )
        return record

    def account_ref(self, code: str) -> dict[str, Any]:
        return dict(self._account_refs[code])

    def tax_rate(self, i: int) -> dict[str, Any]:
        if i < len(cat.TAX_RATES):
            name, tax_type, report, rate, applies = cat.TAX_RATES[i]
        else:  # created later: Xero names custom rates TAX001, TAX002...
            n = i - len(cat.TAX_RATES) + 1
            name, tax_type, report, rate, applies = (f"Custom rate {n}", f"TAX{n:03d}", "OUTPUT", 5.0, (True,) * 5)
        return {
            "Name": name,
            "TaxType": tax_type,
            "ReportTaxType": report,
            "CanApplyToAssets": applies[0],
            "CanApplyToEquity": applies[1],
            "CanApplyToExpenses": applies[2],
            "CanApplyToLiabilities": applies[3],
            "CanApplyToRevenue": applies[4],
            "DisplayTaxRate": rate,
            "EffectiveRate": rate,
            "Status": "ACTIVE",
            "TaxComponents": [{"Name": "GST", "Rate": rate, "IsCompound": False, "IsNonRecoverable": False}],
        }


def _address(kind: str, line1: str, city: str, region: str, postcode: str) -> dict[str, Any]:
    return {
        "AddressType": kind,
        "AddressLine1": line1,
        "City": city,
        "Region": region,
        "PostalCode": postcode,
        "Country": "New Zealand",
    }


def _phone(kind: str, number: str, area: str = "") -> dict[str, Any]:
    return {
        "PhoneType": kind,
        "PhoneNumber": number,
        "PhoneAreaCode": area if number else "",
        "PhoneCountryCode": "64" if number else "",
    }

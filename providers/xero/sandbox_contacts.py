"""Contact writes (PUT /Contacts, POST /Contacts, POST /Contacts/{ContactID}): validation and the stored record.

API doc: https://developer.xero.com/documentation/api/accounting/contacts
A contact is matched by ContactID (in the path or the body); without one it is created. Names must be unique across
active contacts (Xero's message below is its own). ``IsCustomer``/``IsSupplier`` are read-only in Xero (set by
transactions), so they are ignored on input. Addresses and phones are merged by their type, as Xero keeps one of each.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from providers.xero.sandbox_data import ms_json
from providers.xero.sandbox_org import Organisation
from providers.xero.sandbox_store import Record

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TEXT_FIELDS = (
    "Name",
    "FirstName",
    "LastName",
    "EmailAddress",
    "ContactNumber",
    "AccountNumber",
    "TaxNumber",
    "BankAccountDetails",
    "DefaultCurrency",
)
_ADDRESS_FIELDS = (
    "AddressLine1",
    "AddressLine2",
    "AddressLine3",
    "AddressLine4",
    "City",
    "Region",
    "PostalCode",
    "Country",
    "AttentionTo",
)
_PHONE_TYPES = ("DDI", "DEFAULT", "FAX", "MOBILE")
_STATUSES = frozenset({"ACTIVE", "ARCHIVED"})


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


class ContactNames:
    """Which contact IDs carry each name (case- and space-insensitive), built on first use, then kept current by
    the organisation's change observer so every change (writes, ``touch``, ``create``) is seen."""

    def __init__(self, org: Organisation) -> None:
        self._org = org
        self._ids: dict[str, set[str]] | None = None
        self._name_of: dict[str, str] = {}
        org.observers.append(self._observe)

    def owners(self, name: str) -> set[str]:
        if self._ids is None:
            self._build()
        assert self._ids is not None
        return self._ids.get(_key(name), set())

    def _build(self) -> None:
        self._ids = {}
        table = self._org.tables["contacts"]
        for index in range(len(table)):
            if not table.exists(index):
                continue
            override = table.overrides.get(index)
            name = override["Name"] if override is not None else self._org.data.contact_name(index)[0]
            self._add(table.id_of(index), name)

    def _add(self, contact_id: str, name: str) -> None:
        assert self._ids is not None
        key = _key(name)
        self._ids.setdefault(key, set()).add(contact_id)
        self._name_of[contact_id] = key

    def _observe(self, entity: str, record_id: str, record: Record, created: bool, ms: int) -> None:
        if entity != "contacts" or self._ids is None:
            return
        old = self._name_of.get(record_id)
        if old is not None:
            self._ids.get(old, set()).discard(record_id)
        self._add(record_id, str(record.get("Name", "")))


@dataclass
class Batch:
    """Names claimed by earlier elements of the same request, which are not stored yet."""

    names: dict[str, str] = field(default_factory=dict)  # name key -> ContactID or "" for a new contact


def prepare(
    org: Organisation, names: ContactNames, element: dict[str, Any], batch: Batch
) -> Callable[[], Record] | list[str]:
    """The commit of one contact element, or its validation messages."""
    table = org.tables["contacts"]
    contact_id = _text(element.get("ContactID"))
    index = org.index_of("contacts", contact_id) if contact_id else None
    if contact_id and index is None:
        return ["The contact could not be found."]  # guess at Xero's words for an unknown ContactID
    current = table.record(index) if index is not None else None
    errors: list[str] = []
    name = _text(element["Name"]) if "Name" in element else (current or {}).get("Name")
    status = _text(element.get("ContactStatus")) or (current or {}).get("ContactStatus") or "ACTIVE"
    if not name:
        errors.append("The contact name must be specified.")  # guess
    elif status == "ACTIVE":
        own_id = current["ContactID"] if current is not None else None
        if _active_namesake(org, names, name, own_id) or batch.names.get(_key(name), own_id) != own_id:
            errors.append(
                f"The contact name {name} is already assigned to another contact. "
                "The contact name must be unique across all active contacts."
            )
    if status not in _STATUSES:
        errors.append(f"ContactStatus {status} is not valid.")  # guess
    email = _text(element.get("EmailAddress"))
    if email and not _EMAIL.match(email):
        errors.append("Email address must be valid.")
    if errors:
        return errors
    assert name is not None
    batch.names[_key(name)] = current["ContactID"] if current is not None else ""

    def commit() -> Record:
        now = org.stamp()
        target = index if index is not None else table.next_index
        base = copy.deepcopy(current) if current is not None else _blank(table.id_of(target))
        record = _merged(base, element)
        record.update(Name=name, ContactStatus=status, UpdatedDateUTC=ms_json(now))
        table.put(target, record, now)
        org._changed()
        return record

    return commit


def _active_namesake(org: Organisation, names: ContactNames, name: str, own_id: str | None) -> bool:
    for other in names.owners(name):
        other_index = org.index_of("contacts", other)
        if other == own_id or other_index is None:
            continue
        if org.record("contacts", other_index)["ContactStatus"] == "ACTIVE":
            return True
    return False


def _blank(contact_id: str) -> Record:
    """A new contact as Xero stores it: both address types, all four phone types, no transactions yet."""
    return {
        "ContactID": contact_id,
        "ContactStatus": "ACTIVE",
        "Name": "",
        "EmailAddress": "",
        "BankAccountDetails": "",
        "Addresses": [{"AddressType": "POBOX"}, {"AddressType": "STREET"}],
        "Phones": [{"PhoneType": kind} for kind in _PHONE_TYPES],
        "UpdatedDateUTC": "",
        "ContactGroups": [],
        "IsSupplier": False,
        "IsCustomer": False,
        "ContactPersons": [],
        "HasAttachments": False,
        "HasValidationErrors": False,
    }


def _merged(record: Record, element: dict[str, Any]) -> Record:
    for name in _TEXT_FIELDS:
        if name in element:
            record[name] = _text(element[name]) or ""
    if isinstance(element.get("Addresses"), list):
        addresses = element["Addresses"]
        record["Addresses"] = _merge_by(record.get("Addresses", []), addresses, "AddressType", _ADDRESS_FIELDS)
    if isinstance(element.get("Phones"), list):
        phones = ("PhoneNumber", "PhoneAreaCode", "PhoneCountryCode")
        record["Phones"] = _merge_by(record.get("Phones", []), element["Phones"], "PhoneType", phones)
    return record


def _merge_by(current: list[Any], sent: list[Any], kind: str, fields: tuple[str, ...]) -> list[Any]:
    merged: dict[str, dict[str, Any]] = {str(item.get(kind)): dict(item) for item in current if isinstance(item, dict)}
    for item in sent:
        if not isinstance(item, dict) or not _text(item.get(kind)):
            continue
        key = str(item[kind]).upper()
        # A sent address replaces the stored one of its type whole, as Xero does.
        merged[key] = {kind: key, **{f: _text(item.get(f)) or "" for f in fields if f in item}}
    return list(merged.values())


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None

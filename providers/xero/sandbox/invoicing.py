"""Invoice and payment writes: PUT/POST /Invoices, POST /Invoices/{InvoiceID}, PUT /Payments.

API docs: https://developer.xero.com/documentation/api/accounting/invoices, .../payments
Rules kept (Xero's own messages where known, "guess" where not):
- Invoices are ACCREC (sales; the sandbox's organisations only sell). New ones are DRAFT, SUBMITTED or AUTHORISED;
  DRAFT/SUBMITTED ones may change anything, move to AUTHORISED (approve) or DELETED; an AUTHORISED one may change
  its reference and due date, or become VOIDED when it has no payments; its lines are fixed (the sandbox is
  stricter than Xero here, which allows some edits of unpaid approved invoices); PAID/VOIDED/DELETED are final.
- Totals are computed per line from the tax rate's EffectiveRate, rounded half up to cents per line, so
  ``SubTotal + TotalTax == Total`` exactly; ``InvoiceNumber`` is assigned (INV-nnnnnn) when none is sent.
- A payment needs an AUTHORISED invoice and at most its AmountDue, and a bank account (or one that takes payments);
  it updates the invoice's AmountPaid/AmountDue and makes it PAID when settled.
"""

from __future__ import annotations

import copy
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

import providers.xero.sandbox.records as records
from providers.sandbox_kit.clock import floor_day
from providers.sandbox_kit.data import cents, money
from providers.sandbox_kit.store import Record
from providers.sandbox_kit.writes import Prepared, half_up, iso_day_ms, number, text
from providers.xero.sandbox.org import Organisation, pay
from providers.xero.sandbox.records import date_string, ms_json

_AMOUNT_TYPES = frozenset({"Exclusive", "Inclusive", "NoTax"})
_CREATE_STATUSES = frozenset({"DRAFT", "SUBMITTED", "AUTHORISED"})
_NEXT = {
    "DRAFT": frozenset({"DRAFT", "SUBMITTED", "AUTHORISED", "DELETED"}),
    "SUBMITTED": frozenset({"DRAFT", "SUBMITTED", "AUTHORISED", "DELETED"}),
    "AUTHORISED": frozenset({"AUTHORISED", "VOIDED"}),
}
NOT_MODIFIABLE = "Invoice not of valid status for modification"
HAS_PAYMENTS = "This document cannot be edited as it has a payment or credit note allocated to it."
_LINE_KEYS = ("Description", "Quantity", "UnitAmount", "AccountCode", "TaxType", "ItemCode")


def prepare_invoice(org: Organisation, element: dict[str, Any]) -> Prepared:
    table = org.tables["invoices"]
    wanted = text(element.get("InvoiceID")) or text(element.get("InvoiceNumber"))
    index = org.index_of("invoices", wanted) if wanted else None
    if text(element.get("InvoiceID")) and index is None:
        return ["Invoice could not be found."]  # guess
    current = table.record(index) if index is not None else None
    errors: list[str] = []
    record = _updated(org, current, element, errors) if current is not None else _created(org, element, errors)
    if errors or record is None:
        return errors or [NOT_MODIFIABLE]

    def commit() -> Record:
        now = org.stamp()
        target = index if index is not None else table.next_index
        if index is None:
            record["InvoiceID"] = table.id_of(target)
            record.setdefault("InvoiceNumber", f"INV-{target + 1:06d}")
        org.save("invoices", target, record, now)
        org.changed()
        return record

    return commit


def _created(org: Organisation, element: dict[str, Any], errors: list[str]) -> Record | None:
    kind = text(element.get("Type"))
    if kind is None:
        errors.append("Invoice Type must be specified.")  # guess
    elif kind != "ACCREC":
        errors.append(f"Invoice Type {kind} is not supported by this sandbox: ACCREC only.")
    status = text(element.get("Status")) or "DRAFT"
    if status not in _CREATE_STATUSES:
        errors.append(f"Invoice Status {status} is not valid for a new invoice.")  # guess
    contact = _contact(org, element, errors)
    today = floor_day(org.stamp())
    record = records.new_invoice(org.data, contact, status, text(element.get("LineAmountTypes")) or "Exclusive")
    record.update(InvoiceID="", Reference=text(element.get("Reference")) or "", UpdatedDateUTC="")
    currency = text(element.get("CurrencyCode"))
    if currency and currency != record["CurrencyCode"]:
        errors.append(f"The currency {currency} is not enabled for this organisation.")  # guess
    if text(element.get("InvoiceNumber")):
        record["InvoiceNumber"] = text(element.get("InvoiceNumber"))
    _set_dates(record, element, errors, default_date=today)
    _set_lines(org, record, element.get("LineItems", []), errors)
    return record


def _updated(org: Organisation, current: Record, element: dict[str, Any], errors: list[str]) -> Record | None:
    status = current["Status"]
    wanted = text(element.get("Status")) or status
    if status not in _NEXT:
        errors.append(NOT_MODIFIABLE)
        if current["Payments"]:
            errors.append(HAS_PAYMENTS)
        return None
    if wanted not in _NEXT[status]:
        errors.append(NOT_MODIFIABLE)
        return None
    record = copy.deepcopy(current)
    if status == "AUTHORISED":
        if current["Payments"] or current["AmountPaid"]:
            errors.append(HAS_PAYMENTS)
            return None
        fixed = ("Contact", "LineAmountTypes", "Date", "CurrencyCode", "InvoiceNumber", "Type")
        if _lines_changed(current, element) or any(_differs(current, element, key) for key in fixed):
            errors.append(NOT_MODIFIABLE)
            return None
    else:
        if "Contact" in element:
            record["Contact"] = _contact(org, element, errors)
        if text(element.get("LineAmountTypes")):
            record["LineAmountTypes"] = text(element["LineAmountTypes"])
        if text(element.get("InvoiceNumber")):
            record["InvoiceNumber"] = text(element["InvoiceNumber"])
        sent_lines = element.get("LineItems")
        lines = sent_lines if isinstance(sent_lines, list) else current["LineItems"]
        record["Status"] = wanted
        _set_lines(org, record, lines, errors)
    if "Reference" in element:
        record["Reference"] = text(element["Reference"]) or ""
    _set_dates(record, element, errors, default_date=None)
    record["Status"] = wanted
    if wanted in ("VOIDED", "DELETED"):
        record["AmountDue"] = 0.0
    return record


def _contact(org: Organisation, element: dict[str, Any], errors: list[str]) -> Record:
    sent = element.get("Contact")
    contact_id = text(sent.get("ContactID")) if isinstance(sent, dict) else None
    if contact_id is None:
        errors.append("A Contact must be specified for this type of transaction")
        return {}
    index = org.index_of("contacts", contact_id)
    if index is None:
        errors.append("The contact could not be found.")  # guess
        return {}
    if org.record("contacts", index)["ContactStatus"] == "ARCHIVED":
        errors.append(
            "The contact with the specified contact details has been archived. The contact must be un-archived "
            "before creating new invoices or credit notes"
        )
    return org.contact_ref(index)


def _set_dates(record: Record, element: dict[str, Any], errors: list[str], *, default_date: int | None) -> None:
    for key in ("Date", "DueDate"):
        value = element.get(key)
        ms = default_date if key == "Date" else None
        if value not in (None, ""):
            try:
                ms = parse_date(value)
            except ValueError:
                errors.append(f"{key} is not a valid date.")  # guess
                continue
        if ms is not None:
            record[key], record[f"{key}String"] = ms_json(ms), date_string(ms)


def _set_lines(org: Organisation, record: Record, sent: Any, errors: list[str]) -> None:
    amount_types = record["LineAmountTypes"]
    if amount_types not in _AMOUNT_TYPES:
        errors.append(f"LineAmountTypes {amount_types} is not valid.")  # guess
        return
    lines = [line for line in sent if isinstance(line, dict)] if isinstance(sent, list) else []
    if not lines and record["Status"] != "DRAFT":
        errors.append("One or more line items must be specified")  # guess
    built: list[Record] = []
    line_sum = tax_sum = 0
    for line in lines:
        account = _account(org, text(line.get("AccountCode")), errors)
        if account is None and record["Status"] != "DRAFT" and not text(line.get("AccountCode")):
            errors.append("Account code must be specified")
        tax_type = "NONE" if amount_types == "NoTax" else text(line.get("TaxType"))
        tax_type = tax_type or (account["TaxType"] if account is not None else None) or "NONE"
        rate = _tax_rate(org, tax_type, errors)
        try:
            quantity = number(line.get("Quantity"), Decimal(1))
            unit = number(line.get("UnitAmount"), Decimal(0))
        except (InvalidOperation, ValueError):
            errors.append("Quantity and UnitAmount must be numbers.")  # guess
            continue
        line_cents = half_up(quantity * unit * 100)
        inclusive = amount_types == "Inclusive"
        tax = half_up(Decimal(line_cents) * rate / (100 + rate if inclusive else 100))
        line_id, description = text(line.get("LineItemID")) or str(uuid.uuid4()), text(line.get("Description")) or ""
        built.append(records.line_item(line_id, description, float(quantity), float(unit), tax_type, tax, line_cents))
        if account is not None:
            built[-1].update(AccountCode=account["Code"], AccountID=account["AccountID"])
        code = text(line.get("ItemCode"))
        item_index = org.index_of("items", code) if code else None
        if item_index is not None:
            item = org.record("items", item_index)
            built[-1].update(ItemCode=item["Code"], Item={k: item[k] for k in ("ItemID", "Name", "Code")})
        line_sum, tax_sum = line_sum + line_cents, tax_sum + tax
    sub_total = line_sum - tax_sum if amount_types == "Inclusive" else line_sum
    total, paid = sub_total + tax_sum, cents(record.get("AmountPaid", 0.0))
    record.update(
        LineItems=built,
        SubTotal=money(sub_total),
        TotalTax=money(tax_sum),
        Total=money(total),
        AmountDue=money(total - paid),
    )


def prepare_payment(org: Organisation, element: dict[str, Any]) -> Prepared:
    errors: list[str] = []
    sent_invoice = element.get("Invoice")
    wanted = None
    if isinstance(sent_invoice, dict):
        wanted = text(sent_invoice.get("InvoiceID")) or text(sent_invoice.get("InvoiceNumber"))
    index = org.index_of("invoices", wanted) if wanted else None
    if index is None:
        errors.append("Invoice could not be found." if wanted else "An Invoice must be specified.")  # guesses
    sent_account = element.get("Account")
    account = None
    if isinstance(sent_account, dict) and text(sent_account.get("AccountID")):
        account_index = org.index_of("accounts", str(sent_account["AccountID"]))
        account = org.record("accounts", account_index) if account_index is not None else None
        if account is None:
            errors.append("Account could not be found.")  # guess
    elif isinstance(sent_account, dict) and text(sent_account.get("Code")):
        account = _account(org, text(sent_account.get("Code")), errors)
    else:
        errors.append("Account code must be specified")
    if account is not None and account["Type"] != "BANK" and not account.get("EnablePaymentsToAccount"):
        errors.append(f"Account code '{account['Code']}' is not a valid code for this document.")
    try:
        amount = half_up(number(element.get("Amount"), Decimal(0)) * 100)
        date_ms = parse_date(element["Date"]) if element.get("Date") else floor_day(org.stamp())
    except (InvalidOperation, ValueError):
        return [*errors, "Amount and Date must be valid."]  # guess
    if amount <= 0:
        errors.append("Payment amount must be greater than zero.")  # guess
    if index is not None:
        invoice = org.record("invoices", index)
        if invoice["Status"] != "AUTHORISED":
            errors.append("Payments can only be made against Authorised documents")
        if amount > cents(invoice["AmountDue"]):
            errors.append("Payment amount exceeds the amount outstanding on this document")
    if errors or index is None or account is None:
        return errors
    reference = text(element.get("Reference")) or ""
    account_ref = {"AccountID": account["AccountID"], "Code": account["Code"]}
    return lambda: _pay(org, index, amount, account_ref, date_ms, reference)


def _pay(org: Organisation, index: int, amount: int, account: Record, date_ms: int, reference: str) -> Record:
    record = pay(org, index, amount, account, date_ms, reference)
    org.changed()
    return record


def _account(org: Organisation, code: str | None, errors: list[str]) -> Record | None:
    if code is None:
        return None
    index = org.find("accounts", "Code", code)
    if index is None:
        errors.append(f"Account code '{code}' is not a valid code for this document.")
    return org.record("accounts", index) if index is not None else None


def _tax_rate(org: Organisation, tax_type: str, errors: list[str]) -> Decimal:
    index = org.index_of("tax_rates", tax_type)
    if index is None:
        errors.append(f"The TaxType code {tax_type} does not exist or cannot be used for this type of transaction.")
        return Decimal(0)
    return Decimal(str(org.record("tax_rates", index)["EffectiveRate"]))


def _lines_changed(current: Record, element: dict[str, Any]) -> bool:
    sent = element.get("LineItems")
    if not isinstance(sent, list):
        return False
    if len(sent) != len(current["LineItems"]):
        return True
    for old, new in zip(current["LineItems"], sent, strict=True):
        for key in _LINE_KEYS:
            if key in new and str(_plain(new[key])) != str(_plain(old.get(key))):
                return True
    return False


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal | float | int) and not isinstance(value, bool):
        return Decimal(str(value)).normalize()
    return value


def _differs(current: Record, element: dict[str, Any], key: str) -> bool:
    if key not in element:
        return False
    if key == "Contact":
        sent = element["Contact"]
        return isinstance(sent, dict) and text(sent.get("ContactID")) not in (None, current["Contact"]["ContactID"])
    if key == "Date":
        try:
            return parse_date(element[key]) != records.parse_ms_json(current[key])
        except ValueError:
            return True
    return text(element[key]) not in (None, current.get(key))


def parse_date(value: Any) -> int:
    """A date Xero accepts on input (ISO date or datetime, or MS-JSON) as ms at midnight UTC."""
    value = str(value).strip()
    return floor_day(records.parse_ms_json(value)) if value.startswith("/Date(") else iso_day_ms(value)

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
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from providers.xero import sandbox_transactions as tx
from providers.xero.sandbox_data import date_string, floor_day, money, ms_json
from providers.xero.sandbox_org import Organisation
from providers.xero.sandbox_store import Record

Commit = Callable[[], Record]
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


def prepare_invoice(org: Organisation, element: dict[str, Any]) -> Commit | list[str]:
    table = org.tables["invoices"]
    wanted = _text(element.get("InvoiceID")) or _text(element.get("InvoiceNumber"))
    index = org.index_of("invoices", wanted) if wanted else None
    if _text(element.get("InvoiceID")) and index is None:
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
        record["UpdatedDateUTC"] = ms_json(now)
        table.put(target, record, now)
        org._changed()
        return record

    return commit


def _created(org: Organisation, element: dict[str, Any], errors: list[str]) -> Record | None:
    kind = _text(element.get("Type"))
    if kind is None:
        errors.append("Invoice Type must be specified.")  # guess
    elif kind != "ACCREC":
        errors.append(f"Invoice Type {kind} is not supported by this sandbox: ACCREC only.")
    status = _text(element.get("Status")) or "DRAFT"
    if status not in _CREATE_STATUSES:
        errors.append(f"Invoice Status {status} is not valid for a new invoice.")  # guess
    contact = _contact(org, element, errors)
    today = floor_day(org.stamp())
    record: Record = {
        "Type": "ACCREC",
        "InvoiceID": "",
        "Reference": _text(element.get("Reference")) or "",
        "Payments": [],
        "CreditNotes": [],
        "Prepayments": [],
        "Overpayments": [],
        "AmountPaid": 0.0,
        "AmountCredited": 0.0,
        "SentToContact": False,
        "CurrencyRate": 1.0,
        "IsDiscounted": False,
        "HasAttachments": False,
        "HasErrors": False,
        "Contact": contact,
        "BrandingThemeID": org.data.branding_theme_id,
        "Status": status,
        "LineAmountTypes": _text(element.get("LineAmountTypes")) or "Exclusive",
        "UpdatedDateUTC": "",
        "CurrencyCode": org.organisation_record()["BaseCurrency"],
    }
    currency = _text(element.get("CurrencyCode"))
    if currency and currency != record["CurrencyCode"]:
        errors.append(f"The currency {currency} is not enabled for this organisation.")  # guess
    if _text(element.get("InvoiceNumber")):
        record["InvoiceNumber"] = _text(element.get("InvoiceNumber"))
    _set_dates(record, element, errors, default_date=today)
    _set_lines(org, record, element.get("LineItems", []), errors)
    return record


def _updated(org: Organisation, current: Record, element: dict[str, Any], errors: list[str]) -> Record | None:
    status = current["Status"]
    wanted = _text(element.get("Status")) or status
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
        if _text(element.get("LineAmountTypes")):
            record["LineAmountTypes"] = _text(element["LineAmountTypes"])
        if _text(element.get("InvoiceNumber")):
            record["InvoiceNumber"] = _text(element["InvoiceNumber"])
        sent_lines = element.get("LineItems")
        lines = sent_lines if isinstance(sent_lines, list) else current["LineItems"]
        record["Status"] = wanted
        _set_lines(org, record, lines, errors)
    if "Reference" in element:
        record["Reference"] = _text(element["Reference"]) or ""
    _set_dates(record, element, errors, default_date=None)
    record["Status"] = wanted
    if wanted in ("VOIDED", "DELETED"):
        record["AmountDue"] = 0.0
    return record


def _contact(org: Organisation, element: dict[str, Any], errors: list[str]) -> Record:
    sent = element.get("Contact")
    contact_id = _text(sent.get("ContactID")) if isinstance(sent, dict) else None
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
        account = _account(org, _text(line.get("AccountCode")), errors)
        if account is None and record["Status"] != "DRAFT" and not _text(line.get("AccountCode")):
            errors.append("Account code must be specified")
        tax_type = "NONE" if amount_types == "NoTax" else _text(line.get("TaxType"))
        tax_type = tax_type or (account["TaxType"] if account is not None else None) or "NONE"
        rate = _tax_rate(org, tax_type, errors)
        try:
            quantity = _decimal(line.get("Quantity"), Decimal(1))
            unit = _decimal(line.get("UnitAmount"), Decimal(0))
        except (InvalidOperation, ValueError):
            errors.append("Quantity and UnitAmount must be numbers.")  # guess
            continue
        cents = _cents(quantity * unit * 100)
        if amount_types == "Inclusive":
            tax = _cents(Decimal(cents) * rate / (100 + rate))
        else:
            tax = _cents(Decimal(cents) * rate / 100)
        built.append(_line_record(org, line, quantity, unit, account, tax_type, tax, cents))
        line_sum, tax_sum = line_sum + cents, tax_sum + tax
    sub_total = line_sum - tax_sum if amount_types == "Inclusive" else line_sum
    total = sub_total + tax_sum
    paid = tx.cents(record.get("AmountPaid", 0.0))
    record.update(
        LineItems=built,
        SubTotal=money(sub_total),
        TotalTax=money(tax_sum),
        Total=money(total),
        AmountDue=money(total - paid),
    )


def _line_record(
    org: Organisation,
    line: dict[str, Any],
    quantity: Decimal,
    unit: Decimal,
    account: Record | None,
    tax_type: str,
    tax: int,
    cents: int,
) -> Record:
    built: Record = {
        "LineItemID": _text(line.get("LineItemID")) or str(uuid.uuid4()),
        "Description": _text(line.get("Description")) or "",
        "Quantity": float(quantity),
        "UnitAmount": float(unit),
        "TaxType": tax_type,
        "TaxAmount": money(tax),
        "LineAmount": money(cents),
        "Tracking": [],
    }
    if account is not None:
        built.update(AccountCode=account["Code"], AccountID=account["AccountID"])
    code = _text(line.get("ItemCode"))
    item_index = org.index_of("items", code) if code else None
    if code and item_index is not None:
        item = org.record("items", item_index)
        built.update(ItemCode=item["Code"], Item={"ItemID": item["ItemID"], "Name": item["Name"], "Code": item["Code"]})
    return built


def prepare_payment(org: Organisation, element: dict[str, Any]) -> Commit | list[str]:
    errors: list[str] = []
    sent_invoice = element.get("Invoice")
    wanted = None
    if isinstance(sent_invoice, dict):
        wanted = _text(sent_invoice.get("InvoiceID")) or _text(sent_invoice.get("InvoiceNumber"))
    index = org.index_of("invoices", wanted) if wanted else None
    if index is None:
        errors.append("Invoice could not be found." if wanted else "An Invoice must be specified.")  # guesses
    sent_account = element.get("Account")
    account = None
    if isinstance(sent_account, dict) and _text(sent_account.get("AccountID")):
        account_index = org.index_of("accounts", str(sent_account["AccountID"]))
        account = org.record("accounts", account_index) if account_index is not None else None
        if account is None:
            errors.append("Account could not be found.")  # guess
    elif isinstance(sent_account, dict) and _text(sent_account.get("Code")):
        account = _account(org, _text(sent_account.get("Code")), errors)
    else:
        errors.append("Account code must be specified")
    if account is not None and account["Type"] != "BANK" and not account.get("EnablePaymentsToAccount"):
        errors.append(f"Account code '{account['Code']}' is not a valid code for this document.")
    try:
        amount = _cents(_decimal(element.get("Amount"), Decimal(0)) * 100)
        date_ms = parse_date(element["Date"]) if element.get("Date") else floor_day(org.stamp())
    except (InvalidOperation, ValueError):
        return [*errors, "Amount and Date must be valid."]  # guess
    if amount <= 0:
        errors.append("Payment amount must be greater than zero.")  # guess
    if index is not None:
        invoice = org.record("invoices", index)
        if invoice["Status"] != "AUTHORISED":
            errors.append("Payments can only be made against Authorised documents")
        if amount > tx.cents(invoice["AmountDue"]):
            errors.append("Payment amount exceeds the amount outstanding on this document")
    if errors or index is None or account is None:
        return errors
    reference = _text(element.get("Reference")) or ""
    account_ref = {"AccountID": account["AccountID"], "Code": account["Code"]}
    return lambda: _pay(org, index, account_ref, amount, date_ms, reference)


def _pay(org: Organisation, invoice_index: int, account: Record, amount: int, date_ms: int, reference: str) -> Record:
    now = org.stamp()
    invoices, payments = org.tables["invoices"], org.tables["payments"]
    payment_index = payments.next_index
    payment_id = payments.id_of(payment_index)
    paid = copy.deepcopy(invoices.record(invoice_index))
    paid["Payments"].append(tx.payment_embed(payment_id, date_ms, amount))
    paid_cents = tx.cents(paid["AmountPaid"]) + amount
    due_cents = tx.cents(paid["Total"]) - paid_cents
    paid.update(AmountPaid=money(paid_cents), AmountDue=money(due_cents), UpdatedDateUTC=ms_json(now))
    if due_cents == 0:
        paid.update(Status="PAID", FullyPaidOnDate=ms_json(date_ms))
    invoices.put(invoice_index, paid, now)
    record = tx.payment(org.data, payment_index, now, paid, (date_ms, amount, reference))
    record.update(Account=account, IsReconciled=False)
    payments.put(payment_index, record, now)
    org._changed()
    return record


def _account(org: Organisation, code: str | None, errors: list[str]) -> Record | None:
    if code is None:
        return None
    table = org.tables["accounts"]
    for index in range(len(table)):
        if table.exists(index) and table.record(index)["Code"].upper() == code.upper():
            return table.record(index)
    errors.append(f"Account code '{code}' is not a valid code for this document.")
    return None


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
        return isinstance(sent, dict) and _text(sent.get("ContactID")) not in (None, current["Contact"]["ContactID"])
    if key == "Date":
        try:
            return parse_date(element[key]) != tx.parse_ms_json(current[key])
        except ValueError:
            return True
    return _text(element[key]) not in (None, current.get(key))


def parse_date(value: Any) -> int:
    """A date Xero accepts on input (ISO date or datetime, or MS-JSON) as ms at midnight UTC."""
    text = str(value).strip()
    if text.startswith("/Date("):
        return floor_day(tx.parse_ms_json(text))
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return floor_day(int(parsed.timestamp() * 1000))


def _decimal(value: Any, default: Decimal) -> Decimal:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ValueError("not a number")
    return Decimal(str(value))


def _cents(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None

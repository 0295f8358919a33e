"""Writes: create (``POST /{entity}``), full or sparse update (the same POST with ``Id`` and ``SyncToken``),
``?operation=delete`` and ``?operation=void`` for customers, items, invoices and payments.

Reference (``provider-apis.md`` section 2, "Base URL and conventions"): an update or delete names the record's
current ``SyncToken``; any other is the stale-object fault (5010), so two writers never silently overwrite each
other. A full update sets the writable fields left out to nothing; ``"sparse": true`` changes only what is sent.
Customers and items are never deleted (QuickBooks makes them inactive: ``Active: false``); invoices and payments
are, leaving the tombstone change data capture reports. Totals are computed here as QuickBooks does (a line's
Amount is Qty x UnitPrice; TAX lines carry the company's 8%; payments lower the balance of the invoices they
name). Where QuickBooks' exact words were not found they are marked "guess".
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from providers.quickbooks.sandbox.answers import Answer, Fault, invalid, not_found, stale
from providers.quickbooks.sandbox.company import ENTITIES, Company
from providers.quickbooks.sandbox.records import (
    TAX_PERCENT,
    USD,
    answer_time,
    qbo_date,
    ref,
)
from providers.sandbox_kit.books import line_tax
from providers.sandbox_kit.data import cents, money
from providers.sandbox_kit.store import Record
from providers.sandbox_kit.writes import half_up, number, text

WRITABLE = {"customer": "customers", "item": "items", "invoice": "invoices", "payment": "payments"}
READ_ONLY = frozenset({"Id", "SyncToken", "MetaData", "domain", "sparse", "status"})
UNDEPOSITED_FUNDS = "4"
_TAX_MODES = {"TaxExcluded": "exclusive", "TaxInclusive": "inclusive", "NotApplicable": "none"}


def remembered(answer: Answer) -> bool:
    """Which answers a ``requestid`` replays: those of writes that were applied. A refused write (a Fault: a stale
    SyncToken, a 429, a 5xx) changed nothing, so its requestid stays free for the corrected resend (a choice:
    Intuit does not say)."""
    return answer.status < 300


def request_reused() -> Answer:
    # Guess: QuickBooks documents no answer for a requestid reused on another request; refuse rather than replay.
    return Fault("6000", "Duplicate requestid", "The requestid was used for a different request").answer(0)


def write(company: Company, table: str, body: bytes, params: Mapping[str, str], now_ms: int) -> Answer:
    """One write, with the company's lock held by the caller."""
    try:
        element = json.loads(body or b"null", parse_float=Decimal)
    except ValueError:
        element = None
    entity = ENTITIES[table]
    if isinstance(element, dict) and isinstance(element.get(entity), dict):
        element = element[entity]  # some clients wrap the object in its entity name
    if not isinstance(element, dict):
        raise invalid(
            "Request has invalid or unsupported property", "The request body must be a JSON object", code="2010"
        )
    operation, include = params.get("operation", "").lower(), params.get("include", "").lower()
    if operation == "delete":
        record = _delete(company, table, element)
    elif operation == "void" or (operation == "update" and include == "void"):
        record = _void(company, table, element)
    elif operation not in ("", "update", "create"):
        raise Fault("500", "Unsupported Operation", f"Operation {operation} is not supported.")
    elif text(element.get("Id")):
        record = _update(company, table, element)
    else:
        record = _create(company, table, element)
    company.changed()
    return Answer(200, {entity: record, "time": answer_time(now_ms)})


def _current(company: Company, table: str, element: Mapping[str, Any]) -> tuple[int, Record]:
    record_id = text(element.get("Id")) or ""
    index = company.index_of(table, record_id)
    record = company.live(table, index)
    if index is None or record is None:
        raise not_found("Id")
    if text(element.get("SyncToken")) != record["SyncToken"]:
        raise stale()
    return index, record


def _create(company: Company, table: str, element: Mapping[str, Any]) -> Record:
    index = company.tables[table].next_index
    sent = {k: v for k, v in element.items() if k not in READ_ONLY}
    record = RULES[table](company, index, {"domain": "QBO", "sparse": False, "Id": str(index + 1), **sent}, None)
    company.operation = "Create"
    return company.save(table, index, record, company.stamp())


def _update(company: Company, table: str, element: Mapping[str, Any]) -> Record:
    index, current = _current(company, table, element)
    sent = {k: v for k, v in element.items() if k not in READ_ONLY}
    if element.get("sparse") is True:
        record = {**copy.deepcopy(current), **sent}
    else:  # a full update: writable fields left out are cleared
        record = {**{k: v for k, v in current.items() if k in READ_ONLY}, **sent}
    record["sparse"] = False
    record = RULES[table](company, index, record, current)
    company.operation = "Update"
    return company.save(table, index, record, company.stamp())


def _delete(company: Company, table: str, element: Mapping[str, Any]) -> Record:
    if table in ("customers", "items"):  # QuickBooks makes names inactive instead
        raise Fault("500", "Unsupported Operation", f"Operation Delete is not supported for {ENTITIES[table]}.")
    index, current = _current(company, table, element)
    if table == "payments":
        company.unapply(current)
    return company.delete(table, index)


def _void(company: Company, table: str, element: Mapping[str, Any]) -> Record:
    if table not in ("invoices", "payments"):
        raise Fault("500", "Unsupported Operation", f"Operation Void is not supported for {ENTITIES[table]}.")
    index, current = _current(company, table, element)
    record = copy.deepcopy(current)
    if table == "payments":
        company.unapply(current)
        for line in record["Line"]:
            line["Amount"] = 0
    elif current["Balance"] != current["TotalAmt"]:  # guess at the words: an invoice with payments is not voided
        raise Fault(
            "6000",
            "A business validation error has occurred while processing your request",
            "Business Validation Error: This invoice has payments applied. Delete them first.",
        )
    else:
        record["Balance"] = 0
        record["TxnTaxDetail"] = {**record.get("TxnTaxDetail", {}), "TotalTax": 0}
    record.update(TotalAmt=0, PrivateNote="Voided")
    company.operation = "Void"
    return company.save(table, index, record, company.stamp())


# --- the rules of each entity -------------------------------------------------------------------------------

Rule = Callable[[Company, int, Record, Record | None], Record]


def _customer(company: Company, index: int, record: Record, current: Record | None) -> Record:
    parts = [text(record.get(k)) for k in ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")]
    name = text(record.get("DisplayName")) or " ".join(p for p in parts if p) or text(record.get("CompanyName"))
    if not name:
        raise invalid(
            "Required param missing, need to supply the required value for the API",
            "Required parameter DisplayName is missing in the request",
            "DisplayName",
        )
    _unique(company, "customers", name, record["Id"])
    record.update(DisplayName=name, FullyQualifiedName=name, Active=record.get("Active") is not False)
    record.setdefault("PrintOnCheckName", name)
    record.setdefault("CurrencyRef", dict(USD))
    for flag, default in (("Taxable", True), ("Job", False), ("BillWithParent", False), ("IsProject", False)):
        record[flag] = bool(record.get(flag, default))
    return record


def _item(company: Company, index: int, record: Record, current: Record | None) -> Record:
    name = text(record.get("Name"))
    if not name:
        raise invalid(
            "Required param missing, need to supply the required value for the API",
            "Required parameter Name is missing in the request",
            "Name",
        )
    _unique(company, "items", name, record["Id"])
    kind = text(record.get("Type")) or "Service"
    income = _ref_value(record.get("IncomeAccountRef"))
    if kind in ("Service", "NonInventory", "Inventory") and income is None:
        raise invalid(
            "Required param missing, need to supply the required value for the API",
            "Required parameter IncomeAccountRef is missing in the request",
            "IncomeAccountRef",
        )
    if income is not None:
        _exists(company, "accounts", income, "IncomeAccountRef")
    record.update(
        Name=name,
        FullyQualifiedName=name,
        Type=kind,
        Active=record.get("Active") is not False,
        UnitPrice=money(_cents(record.get("UnitPrice"), "UnitPrice")),
    )
    record.setdefault("Taxable", False)
    record.setdefault("TrackQtyOnHand", False)
    return record


def _invoice(company: Company, index: int, record: Record, current: Record | None) -> Record:
    customer = _ref_value(record.get("CustomerRef"))
    if customer is None:
        raise invalid(
            "Required param missing, need to supply the required value for the API",
            "Required parameter CustomerRef is missing in the request",
            "CustomerRef",
        )
    found = _exists(company, "customers", customer, "CustomerRef")
    record["CustomerRef"] = ref(found["Id"], found["DisplayName"])
    mode = _TAX_MODES.get(str(record.get("GlobalTaxCalculation") or "TaxExcluded"), "exclusive")
    lines: list[Record] = []
    sub_total = tax = 0
    for line in record.get("Line") or []:
        if not isinstance(line, dict) or line.get("DetailType") == "SubTotalLineDetail":
            continue  # QuickBooks computes the sub total itself
        if line.get("DetailType") == "SalesItemLineDetail":
            amount, taxed = _sales_line(company, line)
            sub_total += amount
            tax += line_tax(amount, TAX_PERCENT, mode) if taxed else 0
        lines.append({**line, "Id": str(len(lines) + 1), "LineNum": len(lines) + 1})
    if not any(line.get("DetailType") == "SalesItemLineDetail" for line in lines):
        raise invalid(
            "Required param missing, need to supply the required value for the API",
            "Required parameter Line is missing in the request",
            "Line",
        )
    lines.append({"Amount": money(sub_total), "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
    total = sub_total + tax if mode == "exclusive" else sub_total
    paid = cents(current["TotalAmt"]) - cents(current["Balance"]) if current is not None else 0
    issued = _day(record.get("TxnDate"), "TxnDate", date.fromisoformat(qbo_date(company.stamp())))
    record.update(
        Line=lines,
        TxnDate=issued.isoformat(),
        DueDate=_day(record.get("DueDate"), "DueDate", issued + timedelta(days=30)).isoformat(),
        TotalAmt=money(total),
        Balance=money(max(total - paid, 0)),
        TxnTaxDetail={"TxnTaxCodeRef": ref("TAX"), "TotalTax": money(tax), "TaxLine": []},
        GlobalTaxCalculation={"exclusive": "TaxExcluded", "inclusive": "TaxInclusive"}.get(mode, "NotApplicable"),
        CurrencyRef=dict(USD),
        LinkedTxn=current["LinkedTxn"] if current is not None else [],
        DocNumber=text(record.get("DocNumber")) or str(1001 + index),
        EmailStatus=text(record.get("EmailStatus")) or "NotSet",
        PrintStatus=text(record.get("PrintStatus")) or "NotSet",
    )
    return record


def _sales_line(company: Company, line: Record) -> tuple[int, bool]:
    """A sales line's Amount in cents (checked against Qty x UnitPrice) and whether it is taxed."""
    detail = line.get("SalesItemLineDetail")
    if not isinstance(detail, dict):
        detail = line["SalesItemLineDetail"] = {}
    amount = _cents(line.get("Amount"), "Amount")
    if "Qty" in detail and "UnitPrice" in detail:
        quantity, unit = _decimal(detail["Qty"], "Qty"), _decimal(detail["UnitPrice"], "UnitPrice")
        if half_up(quantity * unit * 100) != amount:
            raise Fault(
                "6070",
                "Amount is not equal to UnitPrice * Qty",
                "Amount calculation incorrect in the request. Amount should be equal to Qty * UnitPrice.",
                element="Amount",
            )
        detail.update(Qty=float(quantity), UnitPrice=float(unit))
    item = _ref_value(detail.get("ItemRef"))
    if item is not None:
        found = _exists(company, "items", item, "ItemRef")
        detail["ItemRef"] = ref(found["Id"], found["Name"])
    elif company.tables["items"].next_index:
        detail["ItemRef"] = ref("1", company.record("items", 0)["Name"])  # QuickBooks' default item stands in
    code = (_ref_value(detail.get("TaxCodeRef")) or "NON").upper()
    if code not in ("TAX", "NON"):
        raise invalid(
            "Invalid Reference Id", f"Invalid Reference Id : TaxCode {code} not found", "TaxCodeRef", code="2500"
        )
    detail["TaxCodeRef"] = ref(code)
    line["Amount"] = money(amount)
    return amount, code == "TAX"


def _payment(company: Company, index: int, record: Record, current: Record | None) -> Record:
    customer = _ref_value(record.get("CustomerRef"))
    if customer is None:
        raise invalid(
            "Required param missing, need to supply the required value for the API",
            "Required parameter CustomerRef is missing in the request",
            "CustomerRef",
        )
    found = _exists(company, "customers", customer, "CustomerRef")
    total = _cents(record.get("TotalAmt"), "TotalAmt")
    applications: list[tuple[str, int]] = []
    lines: list[Record] = []
    for line in record.get("Line") or []:
        if not isinstance(line, dict):
            continue
        amount = _cents(line.get("Amount"), "Amount")
        for linked in line.get("LinkedTxn") or []:
            if isinstance(linked, dict) and linked.get("TxnType") == "Invoice":
                applications.append((str(linked.get("TxnId", "")), amount))
        lines.append({**line, "Amount": money(amount)})
    applied = sum(cents(line["Amount"]) for line in lines)
    if applied > total:
        raise Fault(
            "6000",
            "A business validation error has occurred while processing your request",
            "Business Validation Error: The applied amount exceeds the payment's TotalAmt.",
        )
    _check_applications(company, applications, current)  # all checked before anything changes
    if current is not None:
        company.unapply(current)
    for invoice_id, amount in applications:
        company.apply(invoice_id, amount, record["Id"])
    paid_on = _day(record.get("TxnDate"), "TxnDate", date.fromisoformat(qbo_date(company.stamp())))
    record.update(
        CustomerRef=ref(found["Id"], found["DisplayName"]),
        TotalAmt=money(total),
        UnappliedAmt=money(total - applied),
        Line=lines,
        TxnDate=paid_on.isoformat(),
        CurrencyRef=dict(USD),
        ProcessPayment=False,
        DepositToAccountRef=record.get("DepositToAccountRef") or ref(UNDEPOSITED_FUNDS),
    )
    return record


def _check_applications(company: Company, applications: list[tuple[str, int]], current: Record | None) -> None:
    """Every invoice a payment names exists and has the balance (what the payment applied before counts back)."""
    wanted: dict[str, int] = {}
    for invoice_id, amount in applications:
        wanted[invoice_id] = wanted.get(invoice_id, 0) + amount
    before: dict[str, int] = {}
    for line in (current or {}).get("Line") or []:
        for linked in line.get("LinkedTxn") or []:
            before[str(linked.get("TxnId"))] = before.get(str(linked.get("TxnId")), 0) + cents(line["Amount"])
    for invoice_id, amount in wanted.items():
        invoice = company.live("invoices", company.index_of("invoices", invoice_id))
        if invoice is None:
            raise invalid(
                "Invalid Reference Id",
                f"Invalid Reference Id : Invoice {invoice_id} not found",
                "LinkedTxn",
                code="2500",
            )
        if amount > cents(invoice["Balance"]) + before.get(invoice_id, 0):
            raise Fault(
                "6000",
                "A business validation error has occurred while processing your request",
                "Business Validation Error: The payment amount exceeds the invoice's open balance.",
            )


RULES: dict[str, Rule] = {"customers": _customer, "items": _item, "invoices": _invoice, "payments": _payment}


# --- values ------------------------------------------------------------------------------------------------


def _unique(company: Company, table: str, name: str, own_id: str) -> None:
    others = sorted(other for other in company.names[table].owners(name) if other != own_id)
    if others:
        raise Fault(
            "6240",
            "Duplicate Name Exists Error",
            f"The name supplied already exists. : Id={others[0]}",
            element="Name" if table == "items" else "DisplayName",
        )


def _ref_value(value: Any) -> str | None:
    return text(value.get("value")) if isinstance(value, dict) else None


def _exists(company: Company, table: str, record_id: str, element: str) -> Record:
    found = company.live(table, company.index_of(table, record_id))
    if found is None or found.get("Active") is False:
        raise invalid(
            "Invalid Reference Id",
            f"Invalid Reference Id : {ENTITIES[table]} {record_id} not found",
            element,
            code="2500",
        )
    return found


def _decimal(value: Any, element: str) -> Decimal:
    try:
        return number(value, Decimal(0))
    except (ValueError, InvalidOperation):
        raise invalid(
            "Request has invalid or unsupported property", f"{element} must be a number", element, code="2010"
        ) from None


def _cents(value: Any, element: str) -> int:
    return half_up(_decimal(value, element) * 100)


def _day(value: Any, element: str, default: date) -> date:
    if not text(value):
        return default
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise invalid(
            "Request has invalid or unsupported property",
            f"{element} must be a date (yyyy-mm-dd)",
            element,
            code="2010",
        ) from None

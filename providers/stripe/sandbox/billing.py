"""Invoices (with invoice items as their lines) and subscriptions, with Stripe's state rules.

https://docs.stripe.com/api/invoices, https://docs.stripe.com/api/invoiceitems, https://docs.stripe.com/api/subscriptions:
- An invoice is created ``draft``; invoice items added with ``invoice=in_...`` (or pending items of the customer,
  with ``pending_invoice_items_behavior=include``) are its lines. Only a draft changes its lines or is deleted.
- ``finalize`` opens it (number, hosted page, PDF; ``invoice.finalized``); ``pay`` charges it (a payment intent, a
  charge and a balance transaction, or nothing with ``paid_out_of_band``; ``invoice.paid``); ``send`` emails a
  ``send_invoice`` one (``invoice.sent``); ``void`` voids an open one (``invoice.voided``). Anything else is
  Stripe's ``invoice_not_editable``-style refusal in Stripe's words.
- A subscription starts ``active`` (the sandbox makes no first invoice: deviation); items are prices and
  quantities; ``DELETE`` cancels at once (``customer.subscription.deleted``), ``cancel_at_period_end`` later.
"""

from __future__ import annotations

import copy
from typing import Any

from providers.stripe.sandbox.catalog import Record, Write, amount, currency, equals, known, required, text
from providers.stripe.sandbox.objects import (
    cancel_subscription,
    current_period,
    finalize,
    invoice_object,
    line_object,
    new_object,
    plan_of,
    subscription_object,
    total_lines,
)
from providers.stripe.sandbox.payments import charge_for
from providers.stripe.sandbox.wire import StripeError, boolean, integer, invalid, metadata, state_error

_INVOICE_FIELDS = ("customer", "collection_method", "days_until_due", "due_date", "description", "metadata",
                   "auto_advance", "pending_invoice_items_behavior", "currency", "footer")  # fmt: skip
INVOICE_FILTERS = {"customer": equals("customer"), "status": equals("status"),
                   "collection_method": equals("collection_method")}  # fmt: skip


def create_invoice(w: Write) -> Record:
    known(w.params, _INVOICE_FIELDS)
    account = w.account
    customer_id = required(w.params, "customer")
    _, customer = account.get("customers", customer_id, "customer")
    method = text(w.params, "collection_method") or "charge_automatically"
    if method not in ("charge_automatically", "send_invoice"):
        raise invalid(f"Invalid collection_method: {method}", "collection_method")
    days = integer(w.params, "days_until_due", low=0)
    due = integer(w.params, "due_date", low=0)
    if method == "send_invoice" and days is None and due is None:
        raise invalid("Invoices with `collection_method=send_invoice` must have either a `due_date` or "
                      "`days_until_due`.", "days_until_due")  # fmt: skip
    cur = currency(w.params, customer.get("currency") or account.currency)

    def build(object_id: str, ms: int) -> Record:
        named = (str(customer.get("name") or ""), str(customer.get("email") or ""))
        record = invoice_object(object_id, ms, customer_id, named, cur, [],
                                account.id)  # fmt: skip
        at = ms // 1000
        record.update(collection_method=method, description=text(w.params, "description"), period_start=at,
                      period_end=at, metadata=metadata({}, w.params.get("metadata")),
                      auto_advance=boolean(w.params, "auto_advance") or False, account_name=account.name,
                      account_country=account.country, footer=text(w.params, "footer"))  # fmt: skip
        record["due_date"] = due if due is not None else (at + days * 86_400 if days is not None else None)
        return record

    index, invoice = account.create_object("invoices", build)
    if text(w.params, "pending_invoice_items_behavior") == "include":
        for item_index, item in _pending_items(account, customer_id):
            account.update_object("invoice_items", item_index, lambda r, i=invoice["id"]: r.update(invoice=i))  # type: ignore[misc]
            _, invoice = account.update_object("invoices", index, lambda r, i=item: _add_line(r, i))  # type: ignore[misc]
    account.emit("invoice.created", invoice, request=w.request)
    return invoice


def _pending_items(account: Any, customer: str) -> list[tuple[int, Record]]:
    total, fetch = account.select("invoice_items")
    rows = fetch(0, total)
    return [(account.index_of("invoice_items", r["id"]), r) for r in rows
            if r.get("customer") == customer and r.get("invoice") is None and not r.get("deleted")]  # fmt: skip


_ITEM_FIELDS = ("customer", "invoice", "amount", "currency", "description", "price", "quantity", "unit_amount",
                "metadata", "period", "discountable", "pricing", "unit_amount_decimal")  # fmt: skip


def create_invoice_item(w: Write) -> Record:
    known(w.params, _ITEM_FIELDS)
    account = w.account
    customer_id = required(w.params, "customer")
    _, customer = account.get("customers", customer_id, "customer")
    invoice_index = None
    if (invoice_id := text(w.params, "invoice")) is not None:
        invoice_index, invoice = account.get("invoices", invoice_id, "invoice")
        if invoice["status"] != "draft":
            raise state_error(f"You cannot add invoice items to an invoice that is not a draft ({invoice_id}).")
        if invoice["customer"] != customer_id:
            raise invalid("The invoice and the invoice item must be for the same customer.", "invoice")
    quantity = integer(w.params, "quantity", low=1) or 1
    price_id = text(w.params, "price") or _pricing_price(w.params)
    if price_id is not None:
        _, price = account.get("prices", price_id, "price")
        unit, cur = int(price["unit_amount"]), str(price["currency"])
    else:
        cur = currency(w.params, customer.get("currency") or account.currency)
        given = amount(w.params, "amount")
        unit_amount = amount(w.params, "unit_amount")
        if given is None and unit_amount is None:
            raise invalid("You must specify either `amount`, `unit_amount` or `price`.", "amount")
        unit = unit_amount if unit_amount is not None else (given or 0) // quantity
    total = unit * quantity if amount(w.params, "amount") is None else int(amount(w.params, "amount") or 0)

    def build(object_id: str, ms: int) -> Record:
        at = ms // 1000
        record = new_object("invoiceitem", object_id, ms, customer=customer_id, invoice=invoice_id, amount=total,
                            currency=cur, description=text(w.params, "description"), quantity=quantity,
                            quantity_decimal=str(quantity), metadata=metadata({}, w.params.get("metadata")),
                            period={"start": at, "end": at}, date=at, parent=None, net_amount=total,
                            test_clock=None)  # fmt: skip
        record["pricing"] = {"type": "price_details", "price_details": {"price": price_id, "product": None},
                             "unit_amount_decimal": str(unit)}  # fmt: skip
        return record

    _, item = account.create_object("invoice_items", build)
    account.emit("invoiceitem.created", item, request=w.request)
    if invoice_index is not None:
        before, after = account.update_object("invoices", invoice_index, lambda r: _add_line(r, item))
        account.changed_event("invoices", before, after, w.request)
    return item


def _pricing_price(params: Any) -> str | None:
    pricing = params.get("pricing")
    return str(pricing["price"]) if isinstance(pricing, dict) and pricing.get("price") else None


def _add_line(invoice: Record, item: Record) -> None:
    n = len(invoice["lines"]["data"])
    line = line_object(
        "il_" + item["id"].partition("_")[2][: 20 - len(str(n))] + str(n), invoice["id"], item.get("description") or "",
        int(item["amount"]), int(item["quantity"]), str(item["currency"]), item["pricing"]["price_details"]["price"],
        int(item["period"]["start"]),
    )  # fmt: skip
    line["parent"]["invoice_item_details"]["invoice_item"] = item["id"]
    invoice["lines"]["data"].append(line)
    total_lines(invoice)


def update_invoice(w: Write, index: int) -> Record:
    known(w.params, ("description", "metadata", "due_date", "days_until_due", "auto_advance", "footer",
                     "collection_method"))  # fmt: skip
    current = w.account.record("invoices", index)
    if current["status"] != "draft" and set(w.params) - {"metadata", "expand"}:
        raise state_error("Finalized invoices can't be updated in this way")

    def edit(record: Record) -> None:
        for name in ("description", "footer"):
            if name in w.params:
                record[name] = text(w.params, name)
        if (due := integer(w.params, "due_date", low=0)) is not None:
            record["due_date"] = due
        if (auto := boolean(w.params, "auto_advance")) is not None:
            record["auto_advance"] = auto
        record["metadata"] = metadata(record.get("metadata") or {}, w.params.get("metadata"))

    before, after = w.account.update_object("invoices", index, edit)
    w.account.changed_event("invoices", before, after, w.request)
    return after


def delete_invoice(w: Write, index: int) -> Record:
    invoice = w.account.record("invoices", index)
    if invoice["status"] != "draft":
        raise state_error("You can only delete draft invoices.")
    last = w.account.delete_object("invoices", index)
    w.account.emit("invoice.deleted", last, request=w.request)
    return {"id": last["id"], "object": "invoice", "deleted": True}


def finalize_invoice(w: Write, index: int) -> Record:
    known(w.params, ("auto_advance",))
    account = w.account
    invoice = account.record("invoices", index)
    if invoice["status"] != "draft":
        raise state_error("This invoice is already finalized, you can't re-finalize a non-draft invoice.")
    found = account.lookup("customers", str(invoice["customer"]))
    prefix = found[1].get("invoice_prefix") if found is not None else None
    number = f"{prefix or 'INV'}-{index + 1:04d}"
    _, after = account.update_object("invoices", index, lambda r: finalize(r, account.id, account.now(), number))
    account.emit("invoice.finalized", after, request=w.request)
    if after["amount_due"] == 0:
        return _mark_paid(w, index, None)
    return after


def pay_invoice(w: Write, index: int) -> Record:
    known(w.params, ("paid_out_of_band", "payment_method", "source", "forgive", "off_session"))
    invoice = w.account.record("invoices", index)
    if invoice["status"] == "draft":
        finalize_invoice(Write(w.account, {}, w.request), index)
        invoice = w.account.record("invoices", index)
    if invoice["status"] == "paid":
        raise state_error("Invoice is already paid")
    if invoice["status"] != "open":
        raise state_error(f"You can only pay an open invoice; this one is {invoice['status']}.")
    if boolean(w.params, "paid_out_of_band"):
        return _mark_paid(w, index, None)
    intent = charge_for(w, int(invoice["amount_remaining"]), str(invoice["currency"]), invoice["customer"],
                        text(w.params, "payment_method"), "Payment for Invoice", {})  # fmt: skip
    return _mark_paid(w, index, intent)


def _mark_paid(w: Write, index: int, intent: Record | None) -> Record:
    now = w.account.now()

    def paid(record: Record) -> None:
        record.update(status="paid", amount_paid=record["amount_due"], amount_remaining=0, attempted=True,
                      attempt_count=1 if intent else 0)  # fmt: skip
        record["status_transitions"]["paid_at"] = now

    _, after = w.account.update_object("invoices", index, paid)
    w.account.emit("invoice.paid", after, request=w.request)
    if intent is not None:
        w.account.emit("invoice.payment_succeeded", after, request=w.request)
    return after


def send_invoice(w: Write, index: int) -> Record:
    invoice = w.account.record("invoices", index)
    if invoice["collection_method"] != "send_invoice":
        raise state_error("You can only manually send an invoice if its collection method is 'send_invoice'.")
    if invoice["status"] != "open":
        raise state_error("You can only manually send an invoice that is open.")
    w.account.emit("invoice.sent", invoice, request=w.request)
    return invoice


def void_invoice(w: Write, index: int) -> Record:
    invoice = w.account.record("invoices", index)
    if invoice["status"] not in ("open", "uncollectible"):
        raise state_error(f"You can only pass in open invoices. This invoice isn't open ({invoice['status']}).")
    now = w.account.now()

    def voided(record: Record) -> None:
        record.update(status="void", amount_remaining=0)
        record["status_transitions"]["voided_at"] = now

    _, after = w.account.update_object("invoices", index, voided)
    w.account.emit("invoice.voided", after, request=w.request)
    return after


def invoice_lines(invoice: Record, params: Any) -> dict[str, Any]:
    from providers.stripe.sandbox.wire import list_object

    limit = integer(params, "limit", low=1, high=100) or 10
    lines = invoice["lines"]["data"]
    after = params.get("starting_after")
    start = next((n + 1 for n, line in enumerate(lines) if line["id"] == after), 0) if after else 0
    return list_object(f"/v1/invoices/{invoice['id']}/lines", lines[start : start + limit],
                       len(lines) > start + limit)  # fmt: skip


# --- subscriptions ----------------------------------------------------------------------------------------------

_SUBSCRIPTION_FIELDS = ("customer", "items", "metadata", "cancel_at_period_end", "collection_method",
                        "days_until_due", "description", "default_payment_method", "payment_behavior",
                        "proration_behavior", "trial_period_days", "currency")  # fmt: skip
SUBSCRIPTION_FILTERS = {"customer": equals("customer"), "status": equals("status"), "price": lambda r, v: any(
    item["price"]["id"] == v for item in r["items"]["data"])}  # fmt: skip


def _items(w: Write, subscription_id: str, sent: Any, prefix: int) -> list[tuple[str, Record, int]]:
    if not isinstance(sent, list) or not sent:
        raise invalid("Missing required param: items.", "items", "parameter_missing")
    items = []
    for n, item in enumerate(sent):
        if not isinstance(item, dict) or not item.get("price"):
            raise invalid(f"Missing required param: items[{n}][price].", f"items[{n}][price]", "parameter_missing")
        _, price = w.account.get("prices", str(item["price"]), f"items[{n}][price]")
        if not price.get("recurring"):
            raise invalid("The price specified is set to `type=one_time` but this field only accepts prices with "
                          "`type=recurring`.", f"items[{n}][price]")  # fmt: skip
        quantity = integer(item, "quantity", low=0)
        items.append((f"si_{subscription_id.partition('_')[2][:18]}{prefix + n:02d}", price, 1 if quantity is None
                      else quantity))  # fmt: skip
    return items


def create_subscription(w: Write) -> Record:
    known(w.params, _SUBSCRIPTION_FIELDS)
    account = w.account
    customer_id = required(w.params, "customer")
    _, customer = account.get("customers", customer_id, "customer")

    def build(object_id: str, ms: int) -> Record:
        items = _items(w, object_id, w.params.get("items"), 0)
        cur = str(items[0][1]["currency"])
        record = subscription_object(object_id, ms, customer_id, cur, items)
        record.update(metadata=metadata({}, w.params.get("metadata")), description=text(w.params, "description"),
                      cancel_at_period_end=boolean(w.params, "cancel_at_period_end") or False,
                      collection_method=text(w.params, "collection_method") or "charge_automatically",
                      days_until_due=integer(w.params, "days_until_due"))  # fmt: skip
        return record

    _, record = account.create_object("subscriptions", build)
    if not customer.get("currency"):
        account.update_object("customers", account.get("customers", customer_id)[0],
                              lambda r: r.update(currency=record["currency"]))  # fmt: skip
    account.emit("customer.subscription.created", record, request=w.request)
    return record


def update_subscription(w: Write, index: int) -> Record:
    known(w.params, ("items", "metadata", "cancel_at_period_end", "description", "proration_behavior",
                     "payment_behavior", "default_payment_method"))  # fmt: skip
    current = w.account.record("subscriptions", index)
    if current["status"] == "canceled":
        raise invalid("A canceled subscription can only update its cancellation_details and metadata.")

    def edit(record: Record) -> None:
        if "items" in w.params:
            _update_items(w, record, w.params["items"])
        if (at_end := boolean(w.params, "cancel_at_period_end")) is not None:
            record["cancel_at_period_end"] = at_end
            record["cancel_at"] = record["items"]["data"][0]["current_period_end"] if at_end else None
        if "description" in w.params:
            record["description"] = text(w.params, "description")
        record["metadata"] = metadata(record.get("metadata") or {}, w.params.get("metadata"))

    before, after = w.account.update_object("subscriptions", index, edit)
    w.account.changed_event("subscriptions", before, after, w.request)
    return after


def _update_items(w: Write, record: Record, sent: Any) -> None:
    if not isinstance(sent, list):
        raise invalid("Invalid array", "items")
    data = record["items"]["data"]
    for n, item in enumerate(sent):
        if not isinstance(item, dict):
            raise invalid("Invalid object", f"items[{n}]")
        existing = next((i for i in data if i["id"] == item.get("id")), None) if item.get("id") else None
        if existing is None:
            (new,) = _items(w, record["id"], [item], len(data))
            start, end = current_period(int(record["start_date"]), new[1].get("recurring") or {})
            data.append(_item(record["id"], new, start, end))
            continue
        if item.get("deleted") == "true":
            data.remove(existing)
            continue
        if item.get("price"):
            _, price = w.account.get("prices", str(item["price"]), f"items[{n}][price]")
            existing.update(price=price, plan=plan_of(price))
        if (quantity := integer(item, "quantity", low=0)) is not None:
            existing["quantity"] = quantity


def _item(subscription_id: str, new: tuple[str, Record, int], start: int, end: int) -> Record:
    template = subscription_object(subscription_id, start * 1000, "", "", [new])["items"]["data"][0]
    template.update(current_period_start=start, current_period_end=end)
    return copy.deepcopy(template)


def cancel(w: Write, index: int) -> Record:
    known(w.params, ("invoice_now", "prorate", "cancellation_details"))
    current = w.account.record("subscriptions", index)
    if current["status"] == "canceled":
        raise StripeError(400, "invalid_request_error", f"No such subscription: '{current['id']}'", "resource_missing")
    _, after = w.account.update_object("subscriptions", index, lambda r: cancel_subscription(r, w.account.now()))
    w.account.emit("customer.subscription.deleted", after, request=w.request)
    return after

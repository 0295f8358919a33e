"""Payment intents and their charges, refunds, payouts and payment links (with a test helper that completes a
payment link's checkout, as a customer paying it would).

https://docs.stripe.com/api/payment_intents, .../refunds, .../payouts, .../payment_links. Test payment methods
follow Stripe's test cards (https://docs.stripe.com/testing): ``pm_card_visa`` succeeds (and is what a payment
names when it names none), ``pm_card_chargeDeclined`` is declined with a 402 ``card_error``.
Every successful charge has a balance transaction (Stripe's fee: 2.9% + 30); a refund has a negative one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from providers.stripe.sandbox.catalog import Record, Write, amount, currency, equals, known, required, text
from providers.stripe.sandbox.objects import (
    ZERO_DECIMAL,
    balance_object,
    charge_object,
    payment_intent_object,
    payment_link_object,
    payout_object,
    refund_object,
)
from providers.stripe.sandbox.wire import StripeError, boolean, integer, invalid, metadata

DECLINED = "pm_card_chargeDeclined"
PAYMENT_FILTERS = {"customer": equals("customer")}
CHARGE_FILTERS = {"customer": equals("customer"), "payment_intent": equals("payment_intent")}
REFUND_FILTERS = {"charge": equals("charge"), "payment_intent": equals("payment_intent")}
BALANCE_FILTERS = {"type": equals("type"), "source": equals("source")}
PAYOUT_FILTERS = {"status": equals("status")}


def charge_for(
    w: Write, total: int, cur: str, customer: str | None, method: str | None, description: str | None,
    meta: Mapping[str, Any],
) -> Record:  # fmt: skip
    """A succeeded payment intent of ``total`` with its charge and balance transaction (events for each)."""
    if method == DECLINED:
        raise _declined()
    account = w.account
    pm = method or "pm_card_visa"
    charge_id = account.tables["charges"].id_of(account.tables["charges"].next_index)
    _, intent = account.create_object("payment_intents", lambda object_id, ms: payment_intent_object(
        object_id, ms, total, cur, customer, charge_id, pm, description, dict(meta)))  # fmt: skip
    account.emit("payment_intent.created", intent, request=w.request)
    _record_charge(w, intent)
    account.emit("payment_intent.succeeded", intent, request=w.request)
    return intent


def _record_charge(w: Write, intent: Record) -> Record:
    account = w.account
    txn_id = account.tables["balance_transactions"].id_of(account.tables["balance_transactions"].next_index)
    _, charge = account.create_object("charges", lambda object_id, ms: charge_object(object_id, ms, intent, txn_id))
    zero = intent["currency"] in ZERO_DECIMAL
    account.create_object("balance_transactions", lambda object_id, ms: balance_object(
        object_id, ms, intent["amount"], intent["currency"], "charge", charge["id"], zero))  # fmt: skip
    account.emit("charge.succeeded", charge, request=w.request)
    return charge


def _declined() -> StripeError:
    return StripeError(402, "card_error", "Your card was declined.", "card_declined", None,
                       {"decline_code": "generic_decline"})  # fmt: skip


_INTENT_FIELDS = ("amount", "currency", "customer", "description", "metadata", "payment_method", "confirm",
                  "payment_method_types", "receipt_email", "automatic_payment_methods", "capture_method",
                  "statement_descriptor", "setup_future_usage", "off_session", "return_url")  # fmt: skip


def create_payment_intent(w: Write) -> Record:
    known(w.params, _INTENT_FIELDS)
    account = w.account
    total = amount(w.params, "amount", needed=True)
    assert total is not None
    cur = currency({"currency": required(w.params, "currency")}, account.currency)
    minimum = 50  # https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts: 50 cents, ¥50
    if total < minimum:
        raise invalid(f"Amount must be at least {minimum} {cur}", "amount", "amount_too_small")
    customer = text(w.params, "customer")
    if customer is not None:
        account.get("customers", customer, "customer")
    method = text(w.params, "payment_method")
    meta = metadata({}, w.params.get("metadata"))
    if boolean(w.params, "confirm"):
        return charge_for(w, total, cur, customer, method, text(w.params, "description"), meta)

    def build(object_id: str, ms: int) -> Record:
        record = payment_intent_object(object_id, ms, total, cur, customer, None, method or "", text(
            w.params, "description"), meta)  # fmt: skip
        record.update(status="requires_confirmation" if method else "requires_payment_method", amount_received=0,
                      payment_method=method)  # fmt: skip
        return record

    _, intent = account.create_object("payment_intents", build)
    account.emit("payment_intent.created", intent, request=w.request)
    return intent


def confirm_payment_intent(w: Write, index: int) -> Record:
    known(w.params, ("payment_method", "return_url", "off_session", "receipt_email"))
    account = w.account
    intent = account.record("payment_intents", index)
    if intent["status"] not in ("requires_payment_method", "requires_confirmation"):
        raise invalid(f"This PaymentIntent's status is {intent['status']}; it cannot be confirmed.", None,
                      "payment_intent_unexpected_state")  # fmt: skip
    method = text(w.params, "payment_method") or intent.get("payment_method") or None
    if method is None:
        raise invalid("You cannot confirm this PaymentIntent because it's missing a payment method.",
                      "payment_method", "payment_intent_unexpected_state")  # fmt: skip
    if method == DECLINED:
        error = _declined()
        account.update_object("payment_intents", index, lambda r: r.update(
            status="requires_payment_method", last_payment_error={"type": "card_error", "code": "card_declined",
                                                                  "message": error.message}))  # fmt: skip
        raise error
    charge_id = account.tables["charges"].id_of(account.tables["charges"].next_index)
    _, after = account.update_object("payment_intents", index, lambda r: r.update(
        status="succeeded", payment_method=method, latest_charge=charge_id, amount_received=r["amount"]))  # fmt: skip
    _record_charge(w, after)
    account.emit("payment_intent.succeeded", after, request=w.request)
    return after


def cancel_payment_intent(w: Write, index: int) -> Record:
    intent = w.account.record("payment_intents", index)
    if intent["status"] == "succeeded":
        raise invalid("You cannot cancel this PaymentIntent because it has a status of succeeded.", None,
                      "payment_intent_unexpected_state")  # fmt: skip
    now = w.account.now()
    _, after = w.account.update_object("payment_intents", index, lambda r: r.update(
        status="canceled", canceled_at=now, cancellation_reason=text(w.params, "cancellation_reason")))  # fmt: skip
    w.account.emit("payment_intent.canceled", after, request=w.request)
    return after


def create_refund(w: Write) -> Record:
    known(w.params, ("charge", "payment_intent", "amount", "reason", "metadata"))
    account = w.account
    charge_id = text(w.params, "charge")
    if charge_id is None:
        intent_id = text(w.params, "payment_intent")
        if intent_id is None:
            raise invalid("One of the following params should be provided for this request: payment_intent or "
                          "charge.", "charge", "parameter_missing")  # fmt: skip
        _, intent = account.get("payment_intents", intent_id, "payment_intent")
        charge_id = intent.get("latest_charge")
        if not charge_id:
            raise invalid(f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
                          "payment_intent", "charge_not_refundable")  # fmt: skip
    charge_index, charge = account.get("charges", str(charge_id), "charge")
    left = int(charge["amount"]) - int(charge["amount_refunded"])
    wanted = amount(w.params, "amount")
    value = left if wanted is None else wanted
    if value > left or left == 0:
        raise invalid(f"Refund amount ({value}) is greater than unrefunded amount on charge ({left})", "amount",
                      "amount_too_large" if left else "charge_already_refunded")  # fmt: skip
    if value <= 0:
        raise invalid("Amount must be at least 1", "amount", "amount_too_small")
    cur, zero = str(charge["currency"]), charge["currency"] in ZERO_DECIMAL
    txn_id = account.tables["balance_transactions"].id_of(account.tables["balance_transactions"].next_index)

    def build(object_id: str, ms: int) -> Record:
        record = refund_object(object_id, ms, value, cur, charge["id"], charge.get("payment_intent"), txn_id)
        record.update(reason=text(w.params, "reason"), metadata=metadata({}, w.params.get("metadata")))
        return record

    _, refund = account.create_object("refunds", build)
    account.create_object("balance_transactions", lambda object_id, ms: balance_object(
        object_id, ms, -value, cur, "refund", refund["id"], zero))  # fmt: skip

    def refunded(record: Record) -> None:
        record["amount_refunded"] = int(record["amount_refunded"]) + value
        record["refunded"] = record["amount_refunded"] == record["amount"]
        record["refunds"]["data"].insert(0, refund)

    _, after = account.update_object("charges", charge_index, refunded)
    account.emit("refund.created", refund, request=w.request)
    account.emit("charge.refunded", after, {"amount_refunded": charge["amount_refunded"]}, w.request)
    return refund


def create_payout(w: Write) -> Record:
    known(w.params, ("amount", "currency", "description", "metadata", "method", "statement_descriptor"))
    account = w.account
    value = amount(w.params, "amount", needed=True)
    assert value is not None
    cur = currency({"currency": required(w.params, "currency")}, account.currency)
    txn_id = account.tables["balance_transactions"].id_of(account.tables["balance_transactions"].next_index)

    def build(object_id: str, ms: int) -> Record:
        record = payout_object(object_id, ms, value, cur, txn_id)
        record.update(status="pending", automatic=False, description=text(w.params, "description"),
                      metadata=metadata({}, w.params.get("metadata")))  # fmt: skip
        return record

    _, payout = account.create_object("payouts", build)
    account.create_object("balance_transactions", lambda object_id, ms: balance_object(
        object_id, ms, -value, cur, "payout", payout["id"], cur in ZERO_DECIMAL))  # fmt: skip
    account.emit("payout.created", payout, request=w.request)
    return payout


# --- payment links -----------------------------------------------------------------------------------------------

_LINK_FIELDS = ("line_items", "metadata", "payment_intent_data", "after_completion", "currency", "active",
                "allow_promotion_codes", "invoice_creation", "customer_creation")  # fmt: skip


def create_payment_link(w: Write) -> Record:
    known(w.params, _LINK_FIELDS)
    account = w.account
    lines = w.params.get("line_items")
    if not isinstance(lines, list) or not lines:
        raise invalid("Missing required param: line_items.", "line_items", "parameter_missing")
    items = []
    for n, line in enumerate(lines):
        if not isinstance(line, dict) or not line.get("price"):
            raise invalid(f"Missing required param: line_items[{n}][price].", f"line_items[{n}][price]",
                          "parameter_missing")  # fmt: skip
        _, price = account.get("prices", str(line["price"]), f"line_items[{n}][price]")
        items.append((price, integer(line, "quantity", low=1) or 1))
    cur = str(items[0][0]["currency"])

    def build(object_id: str, ms: int) -> Record:
        record = payment_link_object(object_id, ms, cur, metadata({}, w.params.get("metadata")))
        record["payment_intent_data"] = _intent_data(None, w.params.get("payment_intent_data"))
        record["line_items"] = [{"price": p["id"], "quantity": q, "amount": int(p["unit_amount"]) * q}
                                for p, q in items]  # kept for checkout; not rendered  # fmt: skip
        return record

    _, link = account.create_object("payment_links", build)
    account.emit("payment_link.created", rendered_link(link), request=w.request)
    return rendered_link(link)


def update_payment_link(w: Write, index: int) -> Record:
    known(w.params, ("active", "metadata", "payment_intent_data", "after_completion"))

    def edit(record: Record) -> None:
        if (active := boolean(w.params, "active")) is not None:
            record["active"] = active
        record["metadata"] = metadata(record.get("metadata") or {}, w.params.get("metadata"))
        if "payment_intent_data" in w.params:
            record["payment_intent_data"] = _intent_data(record.get("payment_intent_data"),
                                                         w.params["payment_intent_data"])  # fmt: skip

    before, after = w.account.update_object("payment_links", index, edit)
    w.account.changed_event("payment_links", rendered_link(before), rendered_link(after), w.request)
    return rendered_link(after)


def _intent_data(current: Any, sent: Any) -> Record | None:
    if sent is None:
        return current if isinstance(current, dict) else None
    if not isinstance(sent, dict):
        raise invalid("Invalid object", "payment_intent_data")
    base = dict(current or {"capture_method": None, "description": None, "metadata": {}, "setup_future_usage": None,
                            "statement_descriptor": None, "statement_descriptor_suffix": None,
                            "transfer_group": None})  # fmt: skip
    base["metadata"] = metadata(base.get("metadata") or {}, sent.get("metadata"), "payment_intent_data[metadata]")
    if "description" in sent:
        base["description"] = sent["description"] or None
    return base


def rendered_link(record: Record) -> Record:
    return {k: v for k, v in record.items() if k != "line_items"}


def link_line_items(record: Record) -> dict[str, Any]:
    from providers.stripe.sandbox.wire import list_object

    data = [{"id": f"li_{record['id'].partition('_')[2][:16]}{n}", "object": "item", "amount_total": line["amount"],
             "amount_subtotal": line["amount"], "currency": record["currency"], "quantity": line["quantity"],
             "price": line["price"], "description": None}
            for n, line in enumerate(record.get("line_items", []))]  # fmt: skip
    return list_object(f"/v1/payment_links/{record['id']}/line_items", data, False)


def complete_checkout(w: Write, index: int, email: str) -> Record:
    """A customer pays the link: a completed checkout session, a succeeded payment intent carrying the link's
    ``payment_intent_data.metadata``, its charge and balance transaction."""
    account = w.account
    link = account.record("payment_links", index)
    if not link.get("active", True):
        raise invalid("This payment link is no longer active.")
    total = sum(int(line["amount"]) for line in link.get("line_items", []))
    meta = (link.get("payment_intent_data") or {}).get("metadata") or {}
    intent = charge_for(w, total, str(link["currency"]), None, None, None, meta)

    def build(object_id: str, ms: int) -> Record:
        from providers.stripe.sandbox.objects import new_object

        return new_object("checkout.session", object_id, ms, payment_link=link["id"], payment_intent=intent["id"],
                          amount_total=total, amount_subtotal=total, currency=link["currency"], status="complete",
                          payment_status="paid", metadata=dict(link.get("metadata") or {}), customer_email=email,
                          url=None, expires_at=ms // 1000 + 86_400)  # fmt: skip

    _, session = account.create_object("checkout_sessions", build)
    account.emit("checkout.session.completed", session, request=w.request)
    return intent

"""Customers, products and prices: create, update, delete, with Stripe's validation words.

https://docs.stripe.com/api/customers, https://docs.stripe.com/api/products, https://docs.stripe.com/api/prices.
Parameters the sandbox does not know are refused the way Stripe refuses them (``Received unknown parameter``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from providers.stripe.sandbox.account import StripeAccount
from providers.stripe.sandbox.objects import new_object, price_object
from providers.stripe.sandbox.wire import ParamError, boolean, integer, invalid, metadata

Record = dict[str, Any]
Request = tuple[str | None, str | None]  # (request id, idempotency key): what the event names
_ADDRESS = ("city", "country", "line1", "line2", "postal_code", "state")


@dataclass(frozen=True)
class Write:
    """What a handler gets: the account, the parameters, and the request the event names."""

    account: StripeAccount
    params: Mapping[str, Any]
    request: Request


def known(params: Mapping[str, Any], allowed: Collection[str]) -> None:
    for name in params:
        if name not in allowed and name != "expand":
            raise ParamError(f"Received unknown parameter: {name}", name)


def text(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ParamError("Invalid string: {...}", name)
    return value or None


def required(params: Mapping[str, Any], name: str, what: str = "") -> str:
    value = text(params, name)
    if value is None:
        raise invalid(f"Missing required param: {name}.", name, "parameter_missing")
    return value


def amount(params: Mapping[str, Any], name: str, *, needed: bool = False) -> int | None:
    value = integer(params, name, low=0)
    if value is None and needed:
        raise invalid(f"Missing required param: {name}.", name, "parameter_missing")
    return value


def currency(params: Mapping[str, Any], default: str) -> str:
    value = (text(params, "currency") or default).lower()
    if len(value) != 3 or not value.isalpha():
        raise invalid(f"Invalid currency: {value}. Stripe currently supports these currencies: usd, gbp, eur, jpy, ...",
                      "currency")  # fmt: skip
    return value


def _address(current: Any, sent: Any) -> Any:
    if sent is None:
        return current
    if sent == "":
        return None
    if not isinstance(sent, dict):
        raise ParamError("Invalid object", "address")
    base = dict(current or dict.fromkeys(_ADDRESS))
    for key, value in sent.items():
        if key not in _ADDRESS:
            raise ParamError(f"Received unknown parameter: address[{key}]", f"address[{key}]")
        base[key] = value or None
    return base


# --- customers -----------------------------------------------------------------------------------------------

_CUSTOMER_FIELDS = ("name", "email", "phone", "description", "address", "metadata", "preferred_locales", "shipping")


def create_customer(w: Write) -> Record:
    known(w.params, _CUSTOMER_FIELDS)

    def build(object_id: str, ms: int) -> Record:
        record = new_object(
            "customer", object_id, ms, name=None, email=None, phone=None, description=None, discount=None,
            metadata={}, shipping=None, currency=None, invoice_prefix=object_id[-8:].upper(), address=None,
        )  # fmt: skip
        _customer_fields(record, w.params)
        return record

    _, record = w.account.create_object("customers", build)
    w.account.emit("customer.created", record, request=w.request)
    return record


def update_customer(w: Write, index: int) -> Record:
    known(w.params, _CUSTOMER_FIELDS)
    before, after = w.account.update_object("customers", index, lambda r: _customer_fields(r, w.params))
    w.account.changed_event("customers", before, after, w.request)
    return after


def _customer_fields(record: Record, params: Mapping[str, Any]) -> None:
    for name in ("name", "email", "phone", "description"):
        if name in params:
            record[name] = text(params, name)
    email = record.get("email")
    if email and "@" not in email:
        raise invalid(f"Invalid email address: {email}", "email", "email_invalid")
    record["address"] = _address(record.get("address"), params.get("address"))
    record["metadata"] = metadata(record.get("metadata") or {}, params.get("metadata"))


def delete_customer(w: Write, index: int) -> Record:
    last = w.account.delete_object("customers", index)
    w.account.emit("customer.deleted", last, request=w.request)
    return {"id": last["id"], "object": "customer", "deleted": True}


# --- products and prices -------------------------------------------------------------------------------------

_PRODUCT_FIELDS = ("name", "description", "active", "metadata", "type", "unit_label", "url", "default_price_data")


def create_product(w: Write) -> Record:
    known(w.params, _PRODUCT_FIELDS)
    name = required(w.params, "name")

    def build(object_id: str, ms: int) -> Record:
        return new_object("product", object_id, ms, name=name, description=None, default_price=None, metadata={},
                          package_dimensions=None, type="service", updated=ms // 1000)  # fmt: skip

    index, record = w.account.create_object("products", build)
    _, record = w.account.update_object("products", index, lambda r: _product_fields(r, w.params))
    w.account.emit("product.created", record, request=w.request)
    price_data = w.params.get("default_price_data")
    if isinstance(price_data, dict):
        price = _new_price(w, {**price_data, "product": record["id"]})
        _, record = w.account.update_object("products", index, lambda r: r.update(default_price=price["id"]))
    return record


def update_product(w: Write, index: int) -> Record:
    known(w.params, (*_PRODUCT_FIELDS, "default_price"))
    now = w.account.now()

    def edit(record: Record) -> None:
        _product_fields(record, w.params)
        if "default_price" in w.params:
            record["default_price"] = text(w.params, "default_price")
        record["updated"] = now

    before, after = w.account.update_object("products", index, edit)
    w.account.changed_event("products", before, after, w.request)
    return after


def _product_fields(record: Record, params: Mapping[str, Any]) -> None:
    for name in ("name", "description", "unit_label", "url"):
        if name in params:
            record[name] = text(params, name)
    if not record.get("name"):
        raise invalid("Missing required param: name.", "name", "parameter_missing")
    active = boolean(params, "active")
    if active is not None:
        record["active"] = active
    record["metadata"] = metadata(record.get("metadata") or {}, params.get("metadata"))


def delete_product(w: Write, index: int) -> Record:
    product = w.account.record("products", index)
    prices = w.account.listing("prices", {"product": product["id"], "limit": "1"}, "/v1/prices", where=PRICE_FILTERS)
    if prices["data"]:
        raise invalid("This product cannot be deleted because it has one or more user-created prices.")
    last = w.account.delete_object("products", index)
    w.account.emit("product.deleted", last, request=w.request)
    return {"id": last["id"], "object": "product", "deleted": True}


_PRICE_FIELDS = ("currency", "unit_amount", "product", "product_data", "recurring", "nickname", "metadata", "active",
                 "lookup_key", "tax_behavior", "unit_amount_decimal")  # fmt: skip


def create_price(w: Write) -> Record:
    known(w.params, _PRICE_FIELDS)
    return _new_price(w, w.params)


def _new_price(w: Write, params: Mapping[str, Any]) -> Record:
    account = w.account
    cur = currency({"currency": required(params, "currency")}, account.currency)
    unit = amount(params, "unit_amount", needed=True)
    assert unit is not None
    product = text(params, "product")
    if product is None:
        data = params.get("product_data")
        if not isinstance(data, dict) or not data.get("name"):
            raise invalid("You must specify either `product` or `product_data` when creating a price.", "product")
        product = create_product(Write(account, {"name": data["name"], "metadata": data.get("metadata") or {}},
                                       w.request))["id"]  # fmt: skip
    else:
        account.get("products", product, "product")
    recurring = params.get("recurring")
    if recurring is not None:
        if not isinstance(recurring, dict) or recurring.get("interval") not in ("day", "week", "month", "year"):
            raise invalid("Invalid recurring[interval]: must be one of day, week, month, or year",
                          "recurring[interval]")  # fmt: skip
        count = integer(recurring, "interval_count", low=1) or 1
        recurring = {"interval": recurring["interval"], "interval_count": count, "meter": None,
                     "usage_type": "licensed", "trial_period_days": None}  # fmt: skip

    def build(object_id: str, ms: int) -> Record:
        record = price_object(object_id, ms, product, unit, cur, recurring)
        record.update(nickname=text(params, "nickname"), metadata=metadata({}, params.get("metadata")),
                      lookup_key=text(params, "lookup_key"))  # fmt: skip
        return record

    _, record = account.create_object("prices", build)
    account.emit("price.created", record, request=w.request)
    return record


def update_price(w: Write, index: int) -> Record:
    known(w.params, ("active", "metadata", "nickname", "lookup_key"))

    def edit(record: Record) -> None:
        active = boolean(w.params, "active")
        if active is not None:
            record["active"] = active
        for name in ("nickname", "lookup_key"):
            if name in w.params:
                record[name] = text(w.params, name)
        record["metadata"] = metadata(record.get("metadata") or {}, w.params.get("metadata"))

    before, after = w.account.update_object("prices", index, edit)
    w.account.changed_event("prices", before, after, w.request)
    return after


def equals(field: str) -> Callable[[Any, str], bool]:
    return lambda record, value: str(record.get(field)) == value


def active_filter(record: Any, value: str) -> bool:
    return str(record.get("active")).lower() == value.lower()


PRICE_FILTERS = {"product": equals("product"), "active": active_filter, "currency": equals("currency")}
PRODUCT_FILTERS = {"active": active_filter}
CUSTOMER_FILTERS = {"email": equals("email")}

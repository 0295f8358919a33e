"""The Stripe streams: one merge resource per object type, listed 100 at a time by ``starting_after`` while
``has_more`` (https://docs.stripe.com/api/pagination), incremental through ``/v1/events`` (``events.EventsFeed``).

Records land as Stripe sends them at the pinned API version, except that nested list objects are plain lists
(``lines`` and ``items`` are child tables). Deleted customers, products, prices and draft invoices (a ``*.deleted``
event) are deleted from the warehouse. Balance transactions raise no events: they are incremental by ``created``
(they are made once; a later status change shows on the next full pull). Webhooks carry whole objects, so reading
by id is only for events that carry part of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from providers.kit.paginators import AfterLastRecord
from providers.kit.streams import ById, Child, Cursor, Stream, typed_columns
from providers.stripe.events import EventsFeed
from providers.stripe.fields import RECORD_FIELDS
from providers.stripe.webhooks import flatten_lists

PAGE_SIZE = 100  # Stripe's maximum; the default of 10 would cost ten times the calls


def _page() -> AfterLastRecord:
    return AfterLastRecord(PAGE_SIZE)


def _listed(body: Any) -> list[dict[str, Any]]:
    return [flatten_lists(record) for record in body["data"]]


def _one(body: Any) -> list[dict[str, Any]]:
    return [flatten_lists(body)]


def _no_filter(ids: Sequence[str]) -> dict[str, str]:
    return {}


def _events(kind: str, *, deleted: bool = False, more: tuple[str, ...] = ()) -> EventsFeed:
    suffixes = ("created", "updated", *(("deleted",) if deleted else ()))
    return EventsFeed(kind, (*(f"{kind}.{s}" for s in suffixes), *more))


def _stream(
    name: str, path: str, doc: str, feed: EventsFeed | None, *, deleted: bool = False, children: tuple[str, ...] = ()
) -> Stream:
    fields = RECORD_FIELDS[name]
    return Stream(
        name,
        doc_url=f"https://docs.stripe.com/api/{doc}/list",
        path=path,
        records=_listed,
        primary_key="id",
        paginator=_page,
        feed=feed,
        cursor=None if feed is not None else Cursor("created", param="created[gte]"),
        deleted="deleted" if deleted else None,
        **typed_columns(fields, tables=children),
        children=tuple(Child(child, **typed_columns(fields, child=child)) for child in children),
        by_id=ById(_no_filter, per_call=1, path=f"{path}/{{id}}", records=_one),
    )


def _types(prefix: str, *kinds: str) -> tuple[str, ...]:
    return tuple(f"{prefix}.{kind}" for kind in kinds)


# https://docs.stripe.com/api/events/types: what changes each object.
INVOICE_EVENTS = _types(
    "invoice",
    "created",
    "updated",
    "deleted",
    "finalized",
    "paid",
    "payment_succeeded",
    "payment_failed",
    "sent",
    "voided",
    "marked_uncollectible",
    "finalization_failed",
    "overdue",
)
PAYMENT_INTENT_EVENTS = _types(
    "payment_intent",
    "created",
    "succeeded",
    "canceled",
    "payment_failed",
    "processing",
    "requires_action",
    "amount_capturable_updated",
)
CHARGE_EVENTS = _types("charge", "succeeded", "failed", "pending", "captured", "expired", "refunded", "updated")
SUBSCRIPTION_EVENTS = _types(
    "customer.subscription", "created", "updated", "deleted", "paused", "resumed", "trial_will_end"
)
PAYOUT_EVENTS = _types("payout", "created", "updated", "paid", "failed", "canceled", "reconciliation_completed")

STREAMS = (
    _stream("customers", "customers", "customers", _events("customer", deleted=True), deleted=True),
    _stream("products", "products", "products", _events("product", deleted=True), deleted=True),
    _stream("prices", "prices", "prices", _events("price", deleted=True), deleted=True),
    _stream(
        "invoices", "invoices", "invoices", EventsFeed("invoice", INVOICE_EVENTS), deleted=True, children=("lines",)
    ),
    _stream(
        "payment_intents", "payment_intents", "payment_intents", EventsFeed("payment_intent", PAYMENT_INTENT_EVENTS)
    ),
    _stream("charges", "charges", "charges", EventsFeed("charge", CHARGE_EVENTS)),
    _stream("refunds", "refunds", "refunds", _events("refund", more=("refund.failed",))),
    _stream(
        "subscriptions",
        "subscriptions",
        "subscriptions",
        EventsFeed("subscription", SUBSCRIPTION_EVENTS),
        children=("items",),
    ),
    _stream("balance_transactions", "balance_transactions", "balance_transactions", None),
    _stream("payouts", "payouts", "payouts", EventsFeed("payout", PAYOUT_EVENTS)),
)

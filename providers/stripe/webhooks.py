"""Stripe webhooks: the signature and the event (https://docs.stripe.com/webhooks#verify-events; stripe-python's
``_webhook.py``, reference section 3 "Webhooks").

- ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...][,v0=...]``: v1 is hex HMAC-SHA256 of ``"{t}.{raw body}"``
  keyed by the endpoint's signing secret (``whsec_...``); any v1 may match (several during a secret's rolling),
  in constant time; ``t`` more than 300 s from now is refused, so a captured delivery cannot be replayed later
  (a replay within the window is the same event id: stored once).
- The body is one Event, read within the kit's limits (``strict_json``: size, depth, NaN, NUL, lone surrogates).
  ``entity`` is the pull its object belongs to; the event's object is the record as of the event (``record``),
  applied without a fetch when it is complete (no nested list that has more), stamped with the event's id and
  time so an older event never overwrites a newer copy. ``*.deleted`` events carry the object as it was, marked
  deleted.
- Connect: events of a connected account name it in ``account`` (``external_tenant_id``), which routes deliveries
  to the platform's app URL.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from providers.base import WebhookEvent, WebhookSpec, from_body, with_shared_secret
from providers.kit import strict_json
from providers.kit.signatures import hex_signature_matches, hmac_sha256

SIGNATURE_HEADER = "stripe-signature"
TOLERANCE_S = 300  # stripe-python's DEFAULT_TOLERANCE
# Event type prefix -> the pull it refreshes (longest first: customer.subscription.* is not a customer's event).
ENTITIES = (
    ("customer.subscription.", "subscriptions"),
    ("customer.", "customers"),
    ("product.", "products"),
    ("price.", "prices"),
    ("invoice.", "invoices"),
    ("payment_intent.", "payment_intents"),
    ("charge.refund.", "refunds"),
    ("charge.", "charges"),
    ("refund.", "refunds"),
    ("payout.", "payouts"),
)
# The object each pull holds: an event whose object is another (customer.discount.*, customer.source.*) is not
# that pull's record.
OBJECTS = {
    "subscriptions": "subscription", "customers": "customer", "products": "product", "prices": "price",
    "invoices": "invoice", "payment_intents": "payment_intent", "refunds": "refund", "charges": "charge",
    "payouts": "payout",
}  # fmt: skip


def entity_of(event_type: str) -> str | None:
    return next((entity for prefix, entity in ENTITIES if event_type.startswith(prefix)), None)


def signature_header(body: bytes, secret: str, timestamp: int) -> str:
    digest = hmac_sha256(secret, f"{timestamp}.".encode() + body).hex()
    return f"t={timestamp},v1={digest}"


def verify(body: bytes, headers: Mapping[str, str], secret: str, now: float | None = None) -> bool:
    sent = headers.get(SIGNATURE_HEADER, "")
    pairs = [part.strip().partition("=") for part in sent.split(",")]
    stamps = [value for key, _, value in pairs if key == "t"]
    signatures = [value for key, _, value in pairs if key == "v1"]
    if not secret or len(stamps) != 1 or not stamps[0].isdigit() or not signatures:
        return False
    timestamp = int(stamps[0])
    if abs((time.time() if now is None else now) - timestamp) > TOLERANCE_S:
        return False
    expected = hmac_sha256(secret, f"{timestamp}.".encode() + body)
    # Every candidate is compared (no early exit), so the time taken says nothing about which one matched.
    matches = [hex_signature_matches(signature, expected) for signature in signatures]
    return any(matches)


def parse(body: bytes) -> list[WebhookEvent]:
    event = strict_json.loads(body)  # JSONRefused (a ValueError) says why not
    if not isinstance(event, dict) or event.get("object") != "event":
        raise ValueError("a Stripe webhook body is an Event object")
    event_id, event_type, created = event.get("id"), event.get("type"), event.get("created")
    obj = (event.get("data") or {}).get("object") if isinstance(event.get("data"), dict) else None
    if not isinstance(event_id, str) or not isinstance(event_type, str) or not isinstance(created, int):
        raise ValueError("a Stripe event needs an id, a type and a created time")
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        raise ValueError("a Stripe event's data.object is an object with an id")
    entity = entity_of(event_type)
    record = changed_record(event) if entity is not None and obj.get("object") == OBJECTS[entity] else None
    return [
        WebhookEvent(
            event_id=event_id,
            event_type=event_type,
            entity=entity,
            external_id=obj["id"],
            external_tenant_id=event.get("account") if isinstance(event.get("account"), str) else None,
            occurred_at=datetime.fromtimestamp(created, UTC),
            data={"api_version": event.get("api_version"), "livemode": event.get("livemode")},
            record=flatten_lists(record) if record is not None and complete(record) else None,
        )
    ]


def changed_record(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event's object as the record the pulls load: marked deleted for ``*.deleted`` (a subscription's
    ``customer.subscription.deleted`` is a cancellation: the object says so itself), stamped with the event."""
    obj = dict(event["data"]["object"])
    event_type = str(event["type"])
    if event_type.endswith(".deleted") and not event_type.startswith("customer.subscription."):
        obj["deleted"] = True
    obj["event"] = {"id": event["id"], "type": event_type, "created": event["created"]}
    return obj


def flatten_lists(record: dict[str, Any]) -> dict[str, Any]:
    """Nested list objects (an invoice's ``lines``, a subscription's ``items``, a charge's ``refunds``) as plain
    lists of their data, so that the warehouse gets child tables and mappers one shape from every path."""
    for key, value in record.items():
        if isinstance(value, dict) and value.get("object") == "list" and isinstance(value.get("data"), list):
            record[key] = value["data"]
    return record


def complete(record: Mapping[str, Any]) -> bool:
    """Whether an event's object holds all of itself: a nested list (an invoice's lines, a subscription's items)
    with more than the event carries needs a fetch."""
    return not any(isinstance(v, dict) and v.get("object") == "list" and v.get("has_more") for v in record.values())


WEBHOOKS = WebhookSpec(
    verify=with_shared_secret(verify),
    parse=from_body(parse),
    # Stripe retries a failed delivery for up to three days; the signature's own 300 s window is what refuses a
    # replay, so a retried event (signed afresh) is kept however old its change is.
    tolerance_s=3 * 86_400 + 3600.0,
)

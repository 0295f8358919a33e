"""Xero webhooks: signature check and events (https://developer.xero.com/documentation/guides/webhooks/overview/).

- ``x-xero-signature`` is base64(HMAC-SHA256(raw body, webhook key)), compared in constant time.
- A verified body with no events is Xero's intent-to-receive handshake: ``parse`` returns ``[]``.
- Xero sends no event id: ``event_id`` is None and the core dedupes on the organisation, event type, resource and
  the parsed ``eventDateUtc`` (Xero retries for up to a day, not always writing the date the same way).
- ``entity`` is the pull entity to refresh: CONTACT -> "contacts", INVOICE -> "invoices". Payments reach Xero's
  webhooks only as INVOICE updates (the paid invoice changes), so an ``invoice.*`` event means "refresh invoices
  and payments": the core maps the event type to both pulls. Other categories (CREDITNOTE, SUBSCRIPTION) carry
  ``entity`` None: verified and stored, but no pull follows.
- Xero signs no timestamp; the core's staleness check applies to ``eventDateUtc`` (``occurred_at``).
  ``tolerance_s`` is a day and an hour: Xero retries a failed delivery for up to 24 hours, and a retried event
  refused as stale would be lost until the next scheduled pull.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from providers.base import WebhookEvent, WebhookSpec, from_body, with_shared_secret
from providers.kit import strict_json
from providers.kit.signatures import base64_signature_matches, hmac_sha256
from providers.kit.values import iso_utc

SIGNATURE_HEADER = "x-xero-signature"
ENTITIES = {"CONTACT": "contacts", "INVOICE": "invoices"}
_REQUIRED = ("resourceId", "eventDateUtc", "eventType", "eventCategory", "tenantId")


def sign(body: bytes, key: str) -> str:
    return base64.b64encode(hmac_sha256(key, body)).decode()


def verify(body: bytes, headers: Mapping[str, str], secret: str) -> bool:
    sent = headers.get(SIGNATURE_HEADER, "")
    return bool(sent.strip() and secret) and base64_signature_matches(sent, hmac_sha256(secret, body))


def parse(body: bytes) -> list[WebhookEvent]:
    payload = strict_json.loads(body)  # JSONRefused (a ValueError) says why not
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        raise ValueError("a Xero webhook body is an object with an events list")
    return [_event(raw) for raw in payload["events"]]


def _event(raw: Any) -> WebhookEvent:
    if not isinstance(raw, dict) or any(not isinstance(raw.get(key), str) or not raw[key] for key in _REQUIRED):
        raise ValueError(f"a Xero webhook event needs {', '.join(_REQUIRED)} as strings")
    category, kind = raw["eventCategory"].upper(), raw["eventType"].upper()
    return WebhookEvent(
        event_id=None,
        event_type=f"{category.lower()}.{kind.lower()}",
        entity=ENTITIES.get(category),
        external_id=raw["resourceId"],
        external_tenant_id=raw["tenantId"],
        occurred_at=_event_date(raw["eventDateUtc"]),
        data={k: v for k, v in raw.items() if k in ("resourceUrl", "tenantType", "data")},
    )


def _event_date(value: str) -> datetime:
    """``2017-06-21T01:15:39.902`` (Xero writes no offset: it is UTC), with or without a ``Z``/offset."""
    try:
        return iso_utc(value)
    except ValueError as exc:
        raise ValueError(f"eventDateUtc {value!r} is not a date-time") from exc


WEBHOOKS = WebhookSpec(
    verify=with_shared_secret(verify),
    parse=from_body(parse),
    tolerance_s=25 * 3600.0,
    # Xero sends no payment events: a payment applied to (or removed from) an invoice arrives as an invoice update.
    refreshes={"invoices": ("payments",)},
)

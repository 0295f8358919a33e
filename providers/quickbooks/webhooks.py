"""QuickBooks Online webhooks: signature check and events, in both of Intuit's payload shapes.

Reference (``provider-apis.md`` section 2, "Webhooks"):
- ``intuit-signature`` is base64(HMAC-SHA256(raw body, the app's verifier token)), compared in constant time.
- The legacy shape: ``{"eventNotifications": [{"realmId", "dataChangeEvent": {"entities": [{"name", "id",
  "operation": Create|Update|Delete|Merge|Void, "lastUpdated"}]}}]}``, one company per notification, no event id:
  ``event_id`` is a hash of realm, entity, id, operation and time, so a redelivery dedupes.
- The CloudEvents shape Intuit is moving every app to: a JSON array of ``{"specversion": "1.0", "id", "type":
  "qbo.invoice.created.v1", "time", "intuitentityid", "intuitaccountid", ...}``; its ``id`` is the event id.
- Events are routed by ``realmId`` (``external_tenant_id``): Intuit sends every company's events to the app's one
  URL. ``entity`` is the pull entity to refresh; other QuickBooks entities are stored, and no pull follows.
- A payment changes the balance of the invoices it pays: a payment event also refreshes invoices.
- ``tolerance_s`` is a day and an hour: Intuit retries failed deliveries for hours.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from providers.base import WebhookEvent, WebhookSpec, from_body, with_shared_secret
from providers.kit import strict_json
from providers.kit.signatures import base64_signature_matches, hmac_sha256
from providers.kit.values import iso_utc

SIGNATURE_HEADER = "intuit-signature"
ENTITIES = {
    "customer": "contacts",
    "invoice": "invoices",
    "payment": "payments",
    "item": "products",
    "account": "accounts",
}
# CloudEvents verbs <-> the legacy operations.
OPERATIONS = {"created": "create", "updated": "update", "deleted": "delete", "voided": "void", "merged": "merge"}


def sign(body: bytes, verifier_token: str) -> str:
    return base64.b64encode(hmac_sha256(verifier_token, body)).decode()


def verify(body: bytes, headers: Mapping[str, str], secret: str) -> bool:
    sent = headers.get(SIGNATURE_HEADER, "")
    return bool(sent.strip() and secret) and base64_signature_matches(sent, hmac_sha256(secret, body))


def parse(body: bytes) -> list[WebhookEvent]:
    try:
        payload = strict_json.loads(body)  # bounded depth and size, no BOM, NaN or duplicate keys
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"the QuickBooks webhook body is not accepted JSON: {exc}") from exc
    if isinstance(payload, list):
        return [_cloud_event(raw) for raw in payload]
    notifications = payload.get("eventNotifications") if isinstance(payload, dict) else None
    if not isinstance(notifications, list):
        raise ValueError("a QuickBooks webhook body is an eventNotifications object or a list of CloudEvents")
    return [event for notification in notifications for event in _notification(notification)]


def _notification(raw: Any) -> list[WebhookEvent]:
    realm = raw.get("realmId") if isinstance(raw, dict) else None
    change = raw.get("dataChangeEvent") if isinstance(raw, dict) else None
    entities = change.get("entities") if isinstance(change, dict) else None
    if not isinstance(realm, str) or not realm or not isinstance(entities, list):
        raise ValueError("each eventNotification needs a realmId and dataChangeEvent.entities")
    return [_event(realm, entity) for entity in entities]


def _event(realm: str, raw: Any) -> WebhookEvent:
    fields = ("name", "id", "operation", "lastUpdated")
    if not isinstance(raw, dict) or any(not isinstance(raw.get(key), str) or not raw[key] for key in fields):
        raise ValueError(f"a QuickBooks change event needs {', '.join(fields)} as strings")
    name, operation = raw["name"].lower(), raw["operation"].lower()
    identity = "|".join((realm, name, raw["id"], operation, raw["lastUpdated"]))
    return _webhook_event(
        hashlib.sha256(identity.encode()).hexdigest(),
        name,
        operation,
        raw["id"],
        realm,
        raw["lastUpdated"],
        {"deletedId": raw["deletedId"]} if "deletedId" in raw else {},
    )


def _cloud_event(raw: Any) -> WebhookEvent:
    fields = ("id", "type", "time", "intuitentityid", "intuitaccountid")
    if not isinstance(raw, dict) or any(not isinstance(raw.get(key), str) or not raw[key] for key in fields):
        raise ValueError(f"a QuickBooks CloudEvent needs {', '.join(fields)} as strings")
    parts = raw["type"].lower().split(".")  # qbo.invoice.created.v1
    if len(parts) < 3 or parts[0] != "qbo":
        raise ValueError(f"unknown QuickBooks event type {raw['type']!r}")
    operation = OPERATIONS.get(parts[2], parts[2])
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    return _webhook_event(
        raw["id"], parts[1], operation, raw["intuitentityid"], raw["intuitaccountid"], raw["time"], dict(data or {})
    )


def _webhook_event(
    event_id: str, name: str, operation: str, record_id: str, realm: str, when: str, data: Mapping[str, Any]
) -> WebhookEvent:
    return WebhookEvent(
        event_id=event_id,
        event_type=f"{name}.{operation}",
        entity=ENTITIES.get(name),
        external_id=record_id,
        external_tenant_id=realm,
        occurred_at=_time(when),
        data={"operation": operation, **data},
    )


def _time(value: str) -> datetime:
    """``2015-10-05T14:42:19-0700`` (legacy) or ``2025-09-10T21:31:25.179Z`` (CloudEvents)."""
    try:
        return iso_utc(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a date-time") from exc


WEBHOOKS = WebhookSpec(
    verify=with_shared_secret(verify),
    parse=from_body(parse),
    tolerance_s=25 * 3600.0,
    refreshes={"payments": ("invoices",)},
)

"""Microsoft Graph change notifications (https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks)
at the connection's own URL, ``POST /api/v1/webhooks/microsoft365/{tenant}``, for the subscriptions ``watch`` keeps.

- Graph first proves the URL is ours: ``POST ?validationToken=...``, answered at once, 200 ``text/plain`` with the
  token decoded, before anything is verified (``handshake``); lifecycle URLs get the same.
- Every notification carries the subscription's ``clientState``, which is the connection's webhook secret: each of
  a delivery's notifications must carry it (compared in constant time), or the delivery is refused whole.
- A notification names the message or event that changed; it triggers that mailbox's delta pull (the fast path
  reads the stream's changes from the position the watch keeps), so the record lands within seconds.
- Lifecycle notifications (https://learn.microsoft.com/en-us/graph/change-notifications-lifecycle-events):
  ``reauthorizationRequired`` and ``subscriptionRemoved`` have the webhook worker start the watch again now (a
  renewal, or new subscriptions); ``missed`` means notifications were lost: both streams are pulled.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from providers.base import HandshakeAnswer, WebhookEvent, WebhookProof, WebhookSpec
from providers.kit import strict_json

MAX_TOKEN_CHARS = 4096  # Graph's validation tokens are a few hundred characters
MAX_NOTIFICATIONS = 1000
ENTITIES = {"#microsoft.graph.message": "messages", "#microsoft.graph.event": "events"}
RENEWING = frozenset({"reauthorizationRequired", "subscriptionRemoved"})
LIFECYCLE_EVENTS = frozenset({*RENEWING, "missed"})


def handshake(params: Mapping[str, str], _headers: Mapping[str, str]) -> HandshakeAnswer | None:
    token = params.get("validationToken")
    if token is None:
        return None
    if not 0 < len(token) <= MAX_TOKEN_CHARS:
        return HandshakeAnswer(400, "text/plain; charset=utf-8", b"validationToken out of bounds")
    return HandshakeAnswer(200, "text/plain; charset=utf-8", token.encode())


def _notifications(body: bytes) -> list[Mapping[str, Any]]:
    envelope = strict_json.loads(body)
    found = envelope.get("value") if isinstance(envelope, dict) else None
    if not isinstance(found, list) or not 0 < len(found) <= MAX_NOTIFICATIONS:
        raise ValueError("a Graph notification body is an object whose value lists the notifications")
    if not all(isinstance(item, dict) for item in found):
        raise ValueError("each Graph notification is an object")
    return found


def verify(body: bytes, headers: Mapping[str, str], proof: WebhookProof) -> bool:
    if not proof.secret:
        return False
    try:
        found = _notifications(body)
    except ValueError:
        return False
    secret = str(proof.secret).encode()
    return all(hmac.compare_digest(str(item.get("clientState") or "").encode(), secret) for item in found)


def _text(item: Mapping[str, Any], key: str, limit: int = 512) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise ValueError(f"a Graph notification's {key} is missing or too long")
    return value


def parse(body: bytes, _headers: Mapping[str, str]) -> list[WebhookEvent]:
    events = []
    for item in _notifications(body):
        subscription = _text(item, "subscriptionId", 64)
        expires = str(item.get("subscriptionExpirationDateTime") or "")[:64]
        lifecycle = item.get("lifecycleEvent")
        if lifecycle is not None:
            if lifecycle not in LIFECYCLE_EVENTS:
                raise ValueError(f"unknown lifecycleEvent {str(lifecycle)[:40]!r}")
            entities = ("messages", "events") if lifecycle == "missed" else ("messages",)
            events += [
                WebhookEvent(
                    event_id=f"lifecycle:{subscription}:{lifecycle}:{expires}:{entity}",
                    event_type=f"subscription.{lifecycle}", entity=entity, external_id=None,
                    external_tenant_id=None, occurred_at=None, data={"subscription_id": subscription},
                    renews_watch=lifecycle in RENEWING,
                )
                for entity in entities
            ]  # fmt: skip
            continue
        change = _text(item, "changeType", 32)
        found = item.get("resourceData")
        data: Mapping[str, Any] = found if isinstance(found, dict) else {}
        entity = ENTITIES.get(str(data.get("@odata.type") or "").lower())
        if entity is None:
            raise ValueError("a Graph notification names a message or an event in its resourceData")
        record_id = _text(data, "id")
        version = str(data.get("@odata.etag") or expires or "")[:128]
        events.append(
            WebhookEvent(
                event_id=f"{subscription}:{change}:{record_id}:{version}",
                event_type=f"{entity}.{change}",
                entity=entity,
                # The fast path reads the mailbox's delta from the watch's position: the notification is the cue.
                external_id=None,
                external_tenant_id=None,
                occurred_at=None,  # Graph dates no notification
                data={"id": record_id, "change_type": change, "subscription_id": subscription},
            )
        )
    return events


# 202: queued (Graph waits 3 s for the answer); no staleness check, as Graph dates no notification.
WEBHOOKS = WebhookSpec(verify=verify, parse=parse, handshake=handshake, accepted_status=202)

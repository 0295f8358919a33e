"""Xero webhooks from the sandbox: events for every data change, sent by the kit's ``WebhookSender`` in Xero's
payload and signature, and Xero's intent-to-receive check.

Format: https://developer.xero.com/documentation/guides/webhooks/overview/ (reference "Webhooks", xero-webhooks.yaml)
    {"events": [{"resourceUrl", "resourceId", "eventDateUtc", "eventType": "CREATE"|"UPDATE",
                 "eventCategory": "CONTACT"|"INVOICE", "tenantId", "tenantType": "ORGANISATION"}],
     "firstEventSequence", "lastEventSequence", "entropy"}
    x-xero-signature: base64(HMAC-SHA256(raw body, webhook key))   (the verifier's ``sign``)

Only contacts and invoices raise events, as in Xero; a payment shows up as an update of the invoice it pays (which
the store changes at the same time).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from providers.sandbox_kit.store import ChangeObserver, Record
from providers.sandbox_kit.webhooks import WebhookSender
from providers.xero.webhooks import SIGNATURE_HEADER, sign

API_BASE = "https://api.xero.com/api.xro/2.0"
CATEGORIES = {"contacts": ("CONTACT", "Contacts"), "invoices": ("INVOICE", "Invoices")}
HANDSHAKE_DEADLINE_S = 5.0  # Xero requires the answer within 5 seconds


def new_sender() -> WebhookSender:
    return WebhookSender(
        sign=lambda body, key: {SIGNATURE_HEADER: sign(body, key)}, payload=_payload, name="xero-sandbox-webhooks"
    )


def _payload(events: list[Any], first: int, last: int) -> dict[str, Any]:
    entropy = secrets.token_hex(10).upper()
    return {"events": events, "firstEventSequence": first, "lastEventSequence": last, "entropy": entropy}


def event_date(ms: int) -> str:
    """Xero's ``eventDateUtc``: ISO 8601 with milliseconds and no offset (``2017-06-21T01:15:39.902``)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def change_events(sender: WebhookSender, tenant_id: str) -> ChangeObserver:
    """What an organisation's store tells of each change (under the sandbox lock: it only queues)."""

    def changed(entity: str, record_id: str, record: Record, created: bool, ms: int) -> None:
        if entity not in CATEGORIES or not sender.listening:
            return
        category, path = CATEGORIES[entity]
        event = {
            "resourceUrl": f"{API_BASE}/{path}/{record_id}", "resourceId": record_id, "eventDateUtc": event_date(ms),
            "eventType": "CREATE" if created else "UPDATE", "eventCategory": category, "tenantId": tenant_id,
            "tenantType": "ORGANISATION",
        }  # fmt: skip
        sender.publish(tenant_id, event)

    return changed


@dataclass(frozen=True)
class IntentToReceive:
    """What Xero's handshake saw: a signed payload must get 200, a mis-signed one 401, each with an empty body and
    no cookie (``bare_answers``), within the deadline."""

    signed_status: int | None
    bare_answers: bool
    forged_status: int | None
    slowest_s: float

    @property
    def passed(self) -> bool:
        return (
            self.signed_status == 200
            and self.bare_answers
            and self.forged_status == 401
            and self.slowest_s < HANDSHAKE_DEADLINE_S
        )


def intent_to_receive(url: str, key: str) -> IntentToReceive:
    """Xero's intent-to-receive: an empty-events payload signed with ``key``, then one signed with another key."""
    statuses: list[int | None] = []
    bare, slowest = True, 0.0
    with httpx.Client(timeout=HANDSHAKE_DEADLINE_S) as http:
        for signing_key in (key, secrets.token_urlsafe(32)):
            body = json.dumps(_payload([], 0, 0), separators=(",", ":")).encode()
            headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, signing_key)}
            started = time.monotonic()
            try:
                answer: httpx.Response | None = http.post(url, content=body, headers=headers)
            except httpx.HTTPError:
                answer = None
            slowest = max(slowest, time.monotonic() - started)
            statuses.append(answer.status_code if answer is not None else None)
            bare = bare and answer is not None and answer.content == b"" and "set-cookie" not in answer.headers
    return IntentToReceive(statuses[0], bare, statuses[1], slowest)

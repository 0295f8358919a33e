"""QuickBooks webhooks from the sandbox: an event for every change of a customer, item, invoice, payment or
account, sent by the kit's ``WebhookSender`` signed with ``intuit-signature``, in the legacy ``eventNotifications``
shape (default) or as CloudEvents (``sandbox.webhook_format = "cloudevents"``). The verifier token is the
subscription's secret."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

from providers.quickbooks.sandbox.company import ENTITIES, Company
from providers.quickbooks.sandbox.records import OFFSET
from providers.quickbooks.webhooks import OPERATIONS, SIGNATURE_HEADER, sign
from providers.sandbox_kit.store import ChangeObserver, Record
from providers.sandbox_kit.webhooks import WebhookSender

ANNOUNCED = frozenset({"customers", "items", "invoices", "payments", "accounts"})
LEGACY, CLOUD_EVENTS = "legacy", "cloudevents"
_VERBS = {operation: verb for verb, operation in OPERATIONS.items()}


class Format:
    """Which payload shape the sandbox sends (changeable while it runs)."""

    def __init__(self) -> None:
        self.value = LEGACY


def new_sender(shape: Format) -> WebhookSender:
    def payload(events: list[Any], first: int, last: int) -> Any:
        if shape.value == CLOUD_EVENTS:
            return [_cloud_event(event) for event in events]
        return {
            "eventNotifications": [
                {"realmId": realm, "dataChangeEvent": {"entities": [event["entity"] for event in grouped]}}
                for realm, grouped in groupby(events, key=lambda event: event["realm"])
            ]
        }

    return WebhookSender(
        sign=lambda body, key: {SIGNATURE_HEADER: sign(body, key)}, payload=payload, name="quickbooks-sandbox-webhooks"
    )


def change_events(sender: WebhookSender, company: Company) -> ChangeObserver:
    """What a company's store tells of each change (under the sandbox lock: it only queues)."""

    def changed(entity: str, record_id: str, record: Record, created: bool, ms: int) -> None:
        if entity not in ANNOUNCED or not sender.listening:
            return
        operation = company.operation or ("Create" if created else "Update")
        when = datetime.fromtimestamp(ms / 1000, OFFSET).strftime("%Y-%m-%dT%H:%M:%S%z")
        change = {"name": ENTITIES[entity], "id": record_id, "operation": operation, "lastUpdated": when}
        sender.publish(company.realm_id, {"realm": company.realm_id, "entity": change, "ms": ms})

    return changed


def _cloud_event(event: dict[str, Any]) -> dict[str, Any]:
    change = event["entity"]
    verb = _VERBS.get(change["operation"].lower(), change["operation"].lower())
    moment = datetime.fromtimestamp(event["ms"] / 1000, UTC)
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "intuit.vrtx-sandbox",
        "type": f"qbo.{change['name'].lower()}.{verb}.v1",
        "datacontenttype": "application/json",
        "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "intuitentityid": change["id"],
        "intuitaccountid": event["realm"],
        "data": {},
    }

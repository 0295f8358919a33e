"""Xero webhooks from the sandbox: signed event deliveries on every data change, and the intent-to-receive check.

Format: https://developer.xero.com/documentation/guides/webhooks/overview/ (reference "Webhooks", xero-webhooks.yaml)
    {"events": [{"resourceUrl", "resourceId", "eventDateUtc", "eventType": "CREATE"|"UPDATE",
                 "eventCategory": "CONTACT"|"INVOICE", "tenantId", "tenantType": "ORGANISATION"}],
     "firstEventSequence", "lastEventSequence", "entropy"}
    x-xero-signature: base64(HMAC-SHA256(raw body, webhook key))

Only contacts and invoices raise events, as in Xero; a payment shows up as an update of the invoice it pays (which
the store changes at the same time). Deliveries run on one background thread fed by a queue, so a write never waits
for them: events queued together go out in one payload per subscription; a failed delivery (not 2xx, or no answer)
is retried with backoff a few times, then counted as failed. Nothing is ever raised into the request that changed
the data.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import queue
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from providers.xero.sandbox_org import ChangeObserver
from providers.xero.sandbox_store import Record

API_BASE = "https://api.xero.com/api.xro/2.0"
CATEGORIES = {"contacts": ("CONTACT", "Contacts"), "invoices": ("INVOICE", "Invoices")}
HANDSHAKE_DEADLINE_S = 5.0  # Xero requires the answer within 5 seconds


def signature(body: bytes, key: str) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def event_date(ms: int) -> str:
    """Xero's ``eventDateUtc``: ISO 8601 with milliseconds and no offset (``2017-06-21T01:15:39.902``)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


@dataclass
class Subscription:
    url: str
    key: str
    organisations: frozenset[str] | None  # None: every organisation of the sandbox
    sequence: int = 0
    delivered: int = 0  # payloads answered 2xx
    failed: int = 0  # payloads given up on after every retry

    def wants(self, tenant_id: str) -> bool:
        return self.organisations is None or tenant_id in self.organisations


@dataclass
class WebhookStats:
    delivered: int = 0
    failed: int = 0
    attempts: int = 0
    events: int = 0
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=200))  # payloads delivered


class WebhookHub:
    """Subscriptions and the sender thread (started with the first subscription)."""

    def __init__(self, *, attempts: int = 4, backoff_s: float = 0.2, timeout_s: float = 5.0, max_batch: int = 100):
        self.attempts, self.backoff_s, self.timeout_s, self.max_batch = attempts, backoff_s, timeout_s, max_batch
        self.subscriptions: list[Subscription] = []
        self.stats = WebhookStats()
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._idle = threading.Condition()
        self._pending = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def subscribe(self, url: str, key: str, organisations: list[str] | None = None) -> Subscription:
        subscription = Subscription(url, key, frozenset(organisations) if organisations is not None else None)
        with self._lock:
            self.subscriptions.append(subscription)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="xero-sandbox-webhooks", daemon=True)
                self._thread.start()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self.subscriptions = [s for s in self.subscriptions if s is not subscription]

    def observer(self, tenant_id: str) -> ChangeObserver:
        """What an organisation calls on each stored change (under the sandbox lock: it only queues)."""

        def changed(entity: str, record_id: str, record: Record, created: bool, ms: int) -> None:
            if entity not in CATEGORIES or not self.subscriptions:
                return
            category, path = CATEGORIES[entity]
            event = {
                "resourceUrl": f"{API_BASE}/{path}/{record_id}",
                "resourceId": record_id,
                "eventDateUtc": event_date(ms),
                "eventType": "CREATE" if created else "UPDATE",
                "eventCategory": category,
                "tenantId": tenant_id,
                "tenantType": "ORGANISATION",
            }
            with self._idle:
                self._pending += 1
            self._queue.put(event)

        return changed

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued event was delivered or given up on; False when ``timeout_s`` ran out first."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # --- the sender ---------------------------------------------------------------------------------------

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout_s) as http:
            while not self._stop.is_set():
                try:
                    first = self._queue.get(timeout=0.5)
                except queue.Empty:
                    continue
                events = [first]
                while len(events) < self.max_batch:
                    try:
                        events.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                try:
                    self._deliver_all(http, events)
                finally:
                    with self._idle:
                        self._pending -= len(events)
                        self._idle.notify_all()

    def _deliver_all(self, http: httpx.Client, events: list[dict[str, Any]]) -> None:
        with self._lock:
            subscriptions = list(self.subscriptions)
        for subscription in subscriptions:
            wanted = [e for e in events if subscription.wants(e["tenantId"])]
            if not wanted:
                continue
            first = subscription.sequence + 1
            subscription.sequence += len(wanted)
            payload = {
                "events": wanted,
                "firstEventSequence": first,
                "lastEventSequence": subscription.sequence,
                "entropy": secrets.token_hex(10).upper(),
            }
            self._deliver(http, subscription, payload)

    def _deliver(self, http: httpx.Client, subscription: Subscription, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "x-xero-signature": signature(body, subscription.key)}
        for attempt in range(self.attempts):
            self.stats.attempts += 1
            try:
                answer = http.post(subscription.url, content=body, headers=headers)
                if 200 <= answer.status_code < 300:
                    subscription.delivered += 1
                    self.stats.delivered += 1
                    self.stats.events += len(payload["events"])
                    self.stats.recent.append(payload)
                    return
            except httpx.HTTPError:
                pass  # counted below like any failed attempt: Xero retries unreachable endpoints too
            if attempt + 1 < self.attempts and self._stop.wait(self.backoff_s * 2**attempt):
                break
        subscription.failed += 1
        self.stats.failed += 1


@dataclass(frozen=True)
class IntentToReceive:
    """What Xero's handshake saw: a signed payload must get 200 with an empty body, a mis-signed one 401."""

    signed_status: int | None
    signed_body_empty: bool
    forged_status: int | None
    slowest_s: float

    @property
    def passed(self) -> bool:
        return (
            self.signed_status == 200
            and self.signed_body_empty
            and self.forged_status == 401
            and self.slowest_s < HANDSHAKE_DEADLINE_S
        )


def intent_to_receive(url: str, key: str) -> IntentToReceive:
    """Xero's intent-to-receive: an empty-events payload signed with ``key``, then one signed with another key."""
    statuses: list[int | None] = []
    empty = False
    slowest = 0.0
    with httpx.Client(timeout=HANDSHAKE_DEADLINE_S) as http:
        for signing_key in (key, secrets.token_urlsafe(32)):
            body = json.dumps(
                {"events": [], "firstEventSequence": 0, "lastEventSequence": 0, "entropy": secrets.token_hex(10)},
                separators=(",", ":"),
            ).encode()
            headers = {"Content-Type": "application/json", "x-xero-signature": signature(body, signing_key)}
            started = time.monotonic()
            try:
                answer = http.post(url, content=body, headers=headers)
            except httpx.HTTPError:
                statuses.append(None)
                slowest = max(slowest, time.monotonic() - started)
                continue
            slowest = max(slowest, time.monotonic() - started)
            statuses.append(answer.status_code)
            if signing_key == key:
                empty = answer.content == b""
    return IntentToReceive(statuses[0], empty, statuses[1], slowest)

"""Sending a provider's webhooks from its sandbox: subscriptions, one background sender fed by a queue (a write
never waits for a delivery), retries with backoff, stats, and the provider's own payload and signature as hooks.

    sender = WebhookSender(sign=lambda body, key: {"x-xero-signature": sign(body, key)}, payload=xero_payload)
    sender.subscribe("http://127.0.0.1:8000/hook", key, tenants=["org-1"])
    sender.publish("org-1", event)         # under the sandbox's lock: it only queues
    sender.flush()                         # tests: wait until every queued event was delivered or given up

Events queued together go out together: up to ``max_batch`` per payload, per subscription, numbered by the
subscription's sequence (``payload(events, first, last)`` builds the body). A delivery that is not answered 2xx
(or not answered) is retried ``attempts`` times with doubling backoff, then counted as failed. Nothing is ever
raised into the request that changed the data. Every attempt is kept with the subscriber's answer (``stats.answers``:
status or none, and how long it took), so tests can check retries and a slow endpoint's timeouts.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

Signer = Callable[[bytes, str], Mapping[str, str]]  # (raw body, subscription secret) -> headers to send
# (events, first sequence, last sequence) -> the JSON body, or a ``Raw`` delivery
Payload = Callable[[list[Any], int, int], Any]


@dataclass(frozen=True)
class Raw:
    """A payload sent as these bytes with these headers, not as JSON: for providers whose notifications say what
    changed in headers (Google's channel notifications have an empty body)."""

    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivery:
    """A delivery as it was sent: what a test replays to send "the same delivery again"."""

    url: str
    body: bytes
    headers: Mapping[str, str]
    payload: Any


@dataclass(frozen=True)
class Answer:
    """One attempt at a delivery and the subscriber's answer to it."""

    url: str
    payload: Any
    attempt: int  # 1: the first try
    status: int | None  # None: no answer (refused, reset or timed out)
    seconds: float  # from sending to the answer (or to giving up on it)
    sent_at: float  # wall-clock time.time() of the send


@dataclass
class Subscription:
    url: str
    secret: str
    tenants: frozenset[str] | None  # None: every tenant of the sandbox
    sequence: int = 0  # events sent so far
    delivered: int = 0  # payloads answered 2xx
    failed: int = 0  # payloads given up on after every attempt

    def wants(self, tenant_id: str) -> bool:
        return self.tenants is None or tenant_id in self.tenants


@dataclass
class WebhookStats:
    delivered: int = 0
    failed: int = 0
    attempts: int = 0
    events: int = 0
    recent: deque[Delivery] = field(default_factory=lambda: deque(maxlen=200))  # deliveries answered 2xx
    answers: deque[Answer] = field(default_factory=lambda: deque(maxlen=1000))  # every attempt, answered or not


class WebhookSender:
    """Subscriptions and the sender thread (started with the first subscription)."""

    def __init__(
        self,
        *,
        sign: Signer,
        payload: Payload,
        attempts: int = 4,
        backoff_s: float = 0.2,
        timeout_s: float = 5.0,
        max_batch: int = 100,
        name: str = "sandbox-webhooks",
    ) -> None:
        self.sign, self.payload, self.name = sign, payload, name
        self.attempts, self.backoff_s, self.timeout_s, self.max_batch = attempts, backoff_s, timeout_s, max_batch
        self.subscriptions: list[Subscription] = []
        self.stats = WebhookStats()
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._idle = threading.Condition()
        self._pending = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def subscribe(self, url: str, secret: str, tenants: Sequence[str] | None = None) -> Subscription:
        subscription = Subscription(url, secret, frozenset(tenants) if tenants is not None else None)
        with self._lock:
            self.subscriptions.append(subscription)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self.subscriptions = [s for s in self.subscriptions if s is not subscription]

    @property
    def listening(self) -> bool:
        """Whether anyone is subscribed: a sandbox can skip building events nobody would get."""
        return bool(self.subscriptions)

    def publish(self, tenant_id: str, event: Any) -> None:
        """Queue ``event`` of ``tenant_id`` for every subscription that wants it; never blocks."""
        if not self.subscriptions:
            return
        with self._idle:
            self._pending += 1
        self._queue.put((tenant_id, event))

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
                batch = [first]
                while len(batch) < self.max_batch:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                try:
                    self._deliver_all(http, batch)
                finally:
                    with self._idle:
                        self._pending -= len(batch)
                        self._idle.notify_all()

    def _deliver_all(self, http: httpx.Client, batch: list[tuple[str, Any]]) -> None:
        with self._lock:
            subscriptions = list(self.subscriptions)
        for subscription in subscriptions:
            wanted = [event for tenant_id, event in batch if subscription.wants(tenant_id)]
            if not wanted:
                continue
            first = subscription.sequence + 1
            subscription.sequence += len(wanted)
            self._deliver(http, subscription, self.payload(wanted, first, subscription.sequence), len(wanted))

    def _deliver(self, http: httpx.Client, subscription: Subscription, payload: Any, events: int) -> None:
        if isinstance(payload, Raw):
            body, headers = payload.body, {**payload.headers, **self.sign(payload.body, subscription.secret)}
        else:
            body = json.dumps(payload, separators=(",", ":")).encode()
            headers = {"Content-Type": "application/json", **self.sign(body, subscription.secret)}
        for attempt in range(self.attempts):
            self.stats.attempts += 1
            sent_at, started = time.time(), time.monotonic()
            status: int | None = None
            try:
                answer = http.post(subscription.url, content=body, headers=headers)
                status = answer.status_code
                if 200 <= answer.status_code < 300:
                    subscription.delivered += 1
                    self.stats.delivered += 1
                    self.stats.events += events
                    self.stats.recent.append(Delivery(subscription.url, body, headers, payload))
                    return
            except httpx.HTTPError:
                pass  # counted below like any failed attempt: providers retry unreachable endpoints too
            finally:
                elapsed = time.monotonic() - started
                self.stats.answers.append(Answer(subscription.url, payload, attempt + 1, status, elapsed, sent_at))
            if attempt + 1 < self.attempts and self._stop.wait(self.backoff_s * 2**attempt):
                break
        subscription.failed += 1
        self.stats.failed += 1

"""The webhook sender over real HTTP: subscriptions per tenant, payloads numbered by sequence and signed by the
provider's signer, deliveries from a background thread, retries, and stats."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response

from providers.sandbox_kit.serve import ServedApp
from providers.sandbox_kit.webhooks import WebhookSender


def b64_hmac(body: bytes, key: str) -> dict[str, str]:
    return {"x-signature": base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()}


def payload(events: list[Any], first: int, last: int) -> dict[str, Any]:
    return {"events": events, "first": first, "last": last}


class Receiver:
    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.fail_first = fail_first
        self.app = FastAPI()

        @self.app.post("/hook")
        async def hook(request: Request) -> Response:
            if self.fail_first > 0:
                self.fail_first -= 1
                return Response(status_code=503)
            self.received.append((dict(request.headers), json.loads(await request.body())))
            return Response(status_code=200)


@pytest.fixture
def sender() -> Iterator[WebhookSender]:
    sender = WebhookSender(sign=b64_hmac, payload=payload, backoff_s=0.01)
    yield sender
    sender.close()


def test_events_reach_the_subscriptions_that_want_them_signed_and_in_sequence(sender: WebhookSender) -> None:
    everything, only_t1 = Receiver(), Receiver()
    with ServedApp(everything.app) as a, ServedApp(only_t1.app) as b:
        assert not sender.listening
        all_sub = sender.subscribe(f"{a.base_url}/hook", "key-a")
        t1_sub = sender.subscribe(f"{b.base_url}/hook", "key-b", tenants=["t1"])
        for n in range(5):
            sender.publish("t1" if n % 2 == 0 else "t2", {"n": n})
        assert sender.flush()
    events = [e["n"] for _, body in everything.received for e in body["events"]]
    assert events == [0, 1, 2, 3, 4]
    assert [e["n"] for _, body in only_t1.received for e in body["events"]] == [0, 2, 4]
    for receiver, key in ((everything, "key-a"), (only_t1, "key-b")):
        last = 0
        for headers, body in receiver.received:
            raw = json.dumps(body, separators=(",", ":")).encode()
            assert headers["x-signature"] == b64_hmac(raw, key)["x-signature"]
            assert headers["content-type"] == "application/json"
            assert body["first"] == last + 1 and body["last"] == last + len(body["events"])
            last = body["last"]
    assert all_sub.sequence == 5 and t1_sub.sequence == 3 and sender.stats.events == 8


def test_a_failing_endpoint_is_retried_then_given_up_on(sender: WebhookSender) -> None:
    flaky = Receiver(fail_first=2)
    with ServedApp(flaky.app) as served:
        subscription = sender.subscribe(f"{served.base_url}/hook", "k")
        sender.publish("t1", {"n": 1})
        assert sender.flush()
        assert len(flaky.received) == 1 and subscription.delivered == 1 and sender.stats.attempts == 3
    dead = sender.subscribe("http://127.0.0.1:9/hook", "k")  # nothing listens on the discard port
    sender.unsubscribe(subscription)
    sender.publish("t1", {"n": 2})
    assert sender.flush()
    assert dead.failed == 1 and sender.stats.failed == 1 and sender.stats.delivered == 1


def test_publishing_never_waits_for_a_slow_endpoint(sender: WebhookSender) -> None:
    release = threading.Event()
    slow = FastAPI()

    @slow.post("/hook")
    async def hook() -> Response:
        while not release.is_set():  # answered only once the test has published everything
            await asyncio.sleep(0.01)
        return Response(status_code=200)

    with ServedApp(slow) as served:
        sender.subscribe(f"{served.base_url}/hook", "k")
        started = time.monotonic()
        for n in range(50):
            sender.publish("t1", {"n": n})
        assert time.monotonic() - started < 0.5
        assert not sender.flush(timeout_s=0.2)  # still delivering
        release.set()
        assert sender.flush()


def test_nothing_is_queued_when_no_one_listens(sender: WebhookSender) -> None:
    sender.publish("t1", {"n": 1})
    assert sender.flush(timeout_s=0.1) and sender.stats.attempts == 0

"""The state every sandbox holds: tenants looked up with clear errors, counts, calls in flight across apps, and
webhook subscriptions delivered over real HTTP on loopback."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI, Request, Response

from providers.sandbox_kit.clock import ManualClock
from providers.sandbox_kit.data import IdCodec, stable_key
from providers.sandbox_kit.idempotency import IdempotencyStore
from providers.sandbox_kit.metering import RateLimits
from providers.sandbox_kit.sandbox import Sandbox
from providers.sandbox_kit.serve import ServedApp
from providers.sandbox_kit.store import Store
from providers.sandbox_kit.webhooks import WebhookSender

CODEC = IdCodec(stable_key("toy"))


def toy() -> Sandbox[Store, int]:
    sender = WebhookSender(sign=lambda body, key: {"x-sig": key}, payload=lambda events, first, last: events)
    sandbox: Sandbox[Store, int] = Sandbox(
        seed=1, clock=ManualClock(), webhooks=sender, idempotency=IdempotencyStore[int](), entities=("things",)
    )
    store = Store(sandbox.clock)
    store.add_table("things", 7, lambda i: i, CODEC.encode, lambda i: {"n": i})
    sandbox.tenants["t1"] = store
    return sandbox


def test_tenants_entities_and_counts() -> None:
    sandbox = toy()
    assert sandbox.count("t1", "things") == 7
    with pytest.raises(KeyError, match="unknown tenant 't9'"):
        sandbox.count("t9", "things")
    with pytest.raises(ValueError, match="unknown entity 'thing'"):
        sandbox.count("t1", "thing")


def test_calls_in_flight_count_per_app_or_for_every_app() -> None:
    sandbox = toy()
    for app in ("a", "b", "b"):
        assert sandbox.meter.acquire(app, "t1", 0.0, RateLimits(())) is None
    assert (sandbox.in_flight("t1", "b"), sandbox.in_flight("t1"), sandbox.in_flight("t2")) == (2, 3, 0)


def test_webhook_subscriptions_go_through_the_sandbox() -> None:
    sandbox, received = toy(), []
    hook = FastAPI()

    @hook.post("/hook")
    async def receive(request: Request) -> Response:
        received.append((request.headers["x-sig"], json.loads(await request.body())))
        return Response(status_code=200)

    with ServedApp(hook) as served:
        subscription = sandbox.subscribe_webhooks(f"{served.base_url}/hook", "s3cret", tenants=["t1"])
        sandbox.webhooks.publish("t2", {"n": 0})
        sandbox.webhooks.publish("t1", {"n": 1})
        assert sandbox.flush_webhooks()
        sandbox.unsubscribe_webhooks(subscription)
        sandbox.webhooks.publish("t1", {"n": 2})
        assert sandbox.flush_webhooks()
    sandbox.webhooks.close()
    assert received == [("s3cret", [{"n": 1}])]


def test_oauth_sandboxes_register_apps_and_mint_tokens_for_known_tenants() -> None:
    from providers.sandbox_kit.oauth import OAuthPolicy, OAuthServer

    sandbox = toy()
    sandbox.oauth = OAuthServer(sandbox.clock, OAuthPolicy())
    sandbox.register_client("app", None, name="Pocket")
    assert sandbox.app_name("app") == "Pocket" and sandbox.app_name("other") == "other"
    token = sandbox.access_token_for(["t1"], client_id="app", scopes=["read"], expires_in=60)
    access = sandbox.oauth.authenticate(token)
    assert not isinstance(access, str) and access.user == "minted-1@sandbox.invalid" and access.scopes == {"read"}
    with pytest.raises(KeyError, match="unknown tenants"):
        sandbox.access_token_for(["t9"], client_id="app", scopes=[], expires_in=60)

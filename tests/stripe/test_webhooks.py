"""Stripe's webhooks at the platform: the signature's 300 s tolerance, a replay, several v1 signatures, a forged one;
the event's object applied without a fetch and never over a newer copy when events arrive out of order; and the
Connect app-level URL routing each event by its ``account``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from providers.sandbox_kit.serve import free_port
from providers.stripe.webhooks import signature_header
from tests.flows.harness import consent
from tests.helpers import bearer, make_tenant, running_worker
from tests.stripe.conftest import WEBHOOK_SECRET, Stripe, connect_with_key, records
from vrtx_pipelines.config import Settings
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.db.models import WebhookInbox
from vrtx_pipelines.db.session import engine_for, session_factory, session_scope
from vrtx_pipelines.webhooks.apply import DagsterReporter, WebhookApplier
from vrtx_pipelines.webhooks.launch import GraphQLRunLauncher, ImmediateDispatcher
from vrtx_pipelines.webhooks.worker import WebhookWorker

SECRET = "whsec_tenant_" + "t" * 30


def event(
    event_id: str, created: int, obj: dict[str, Any], event_type: str = "customer.updated", **extra: Any
) -> bytes:
    body = {"id": event_id, "object": "event", "api_version": "2026-10-28.endive", "created": created,
            "data": {"object": obj}, "livemode": False, "pending_webhooks": 1, "type": event_type,
            "request": {"id": None, "idempotency_key": None}, **extra}  # fmt: skip
    return json.dumps(body).encode()


def customer(customer_id: str, email: str) -> dict[str, Any]:
    return {"id": customer_id, "object": "customer", "name": "Out Of Order", "email": email, "metadata": {}}


def deliver(api: TestClient, body: bytes, signature: str, path: str = "/api/v1/webhooks/stripe/acme") -> int:
    answer = api.post(path, content=body, headers={"Content-Type": "application/json", "Stripe-Signature": signature})
    return answer.status_code


def stored(settings: Settings) -> list[str]:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        return [row.provider_event_id for row in session.scalars(select(WebhookInbox).order_by(WebhookInbox.id))]


@pytest.fixture
def acme(api: TestClient, settings: Settings, stripe: Stripe) -> str:
    token = make_tenant(settings, "acme")
    connect_with_key(api, token)
    answer = api.put("/api/v1/integrations/stripe/webhook", json={"secret": SECRET}, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return token


@pytest.fixture
def fast_path(settings: Settings) -> Iterator[WebhookWorker]:
    """The webhook worker with the fast path on (no Dagster: its launcher points at a closed port)."""
    sessions = session_factory(engine_for(settings.sqlalchemy_url))
    applier = WebhookApplier(
        sessions, vault_from_settings(settings), settings, reporter=DagsterReporter(from_environment=False)
    )
    dispatcher = ImmediateDispatcher(sessions, GraphQLRunLauncher(f"http://127.0.0.1:{free_port()}", timeout_s=1),
                                     applier=applier)  # fmt: skip
    with running_worker(dispatcher) as worker:
        yield worker


def test_a_signature_older_than_300_seconds_a_replay_several_v1_and_a_forged_one(
    api: TestClient, settings: Settings, acme: str
) -> None:
    now = int(time.time())
    body = event("evt_1", now, customer("cus_1", "a@example.com"))
    assert deliver(api, body, signature_header(body, SECRET, now - 301)) == 401  # too old: a captured delivery
    assert deliver(api, body, signature_header(body, "whsec_forged", now)) == 401
    rolled = f"{signature_header(body, 'whsec_old', now)},v1={signature_header(body, SECRET, now).split('v1=')[1]}"
    assert deliver(api, body, rolled) == 200  # one of several v1 matches (a secret being rolled)
    assert deliver(api, body, signature_header(body, SECRET, now)) == 200  # Stripe's retry: the same event again
    assert stored(settings) == ["evt_1"]


@pytest.mark.parametrize(
    ("case", "body"),
    [
        ("a NaN literal", event("evt_nan", 0, {**customer("cus_nan", "n@example.com"), "balance": 0}).replace(
            b'"balance": 0', b'"balance": NaN')),
        ("an escaped NUL", event("evt_nul", 0, customer("cus_nul\u0000", "n@example.com"))),
        ("nested 5,000 deep", event("evt_deep", 0, {**customer("cus_deep", "d@example.com"), "metadata": {}}).replace(
            b'"metadata": {}', b'"metadata": ' + b"[" * 5000 + b"]" * 5000)),
    ],
)  # fmt: skip
def test_a_signed_body_the_json_limits_refuse_is_a_400_with_nothing_stored(
    api: TestClient, settings: Settings, acme: str, case: str, body: bytes
) -> None:
    now = int(time.time())
    assert deliver(api, body, signature_header(body, SECRET, now)) == 400, case
    assert stored(settings) == []


def test_out_of_order_events_never_overwrite_a_newer_copy_and_apply_without_a_fetch(
    api: TestClient, settings: Settings, acme: str, stripe: Stripe, fast_path: WebhookWorker
) -> None:
    now = int(time.time())
    calls_before = stripe.sandbox.stats.api_calls
    newer = event("evt_new", now, customer("cus_ooo", "newer@example.com"))
    older = event("evt_old", now - 60, customer("cus_ooo", "older@example.com"))
    assert deliver(api, newer, signature_header(newer, SECRET, now)) == 200
    assert fast_path.wait_idle(10)
    assert deliver(api, older, signature_header(older, SECRET, now)) == 200
    assert fast_path.wait_idle(10)
    record = records(api, acme, "customers")["cus_ooo"]
    assert record["data"]["email"] == "newer@example.com"
    assert stripe.sandbox.stats.api_calls == calls_before  # the events' objects were applied: nothing fetched


def test_the_connect_app_url_routes_each_event_by_its_account(
    api: TestClient, settings: Settings, stripe: Stripe
) -> None:
    token = make_tenant(settings, "acme")
    url = api.get("/api/v1/integrations/stripe/oauth/url", headers=bearer(token)).json()["url"]
    callback = urlsplit(consent(url))
    assert api.get(f"{callback.path}?{callback.query}").status_code in (200, 201)
    account = api.get("/api/v1/integrations/stripe/status", headers=bearer(token)).json()["account"]
    connected = account["external_account_id"]
    now = int(time.time())
    ours = event("evt_ours", now, customer("cus_a", "a@example.com"), account=connected)
    theirs = event("evt_theirs", now, customer("cus_b", "b@example.com"), account="acct_1SomeoneElse0000")
    for body in (ours, theirs):
        assert deliver(api, body, signature_header(body, WEBHOOK_SECRET, now), "/api/v1/webhooks/stripe") == 200
    assert stored(settings) == ["evt_ours"]
    forged = event("evt_forged", now, customer("cus_c", "c@example.com"), account=connected)
    assert deliver(api, forged, signature_header(forged, SECRET, now), "/api/v1/webhooks/stripe") == 401

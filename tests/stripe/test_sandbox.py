"""The Stripe sandbox's wire rules beyond what the SDK test exercises: bracket parameters, cursors both ways,
created windows, the 429, idempotency, Stripe-Version, Stripe-Account, event retention and webhook signatures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from providers.sandbox_kit.clock import DAY_S, ManualClock
from providers.sandbox_kit.faults import knobs_of
from providers.sandbox_kit.serve import ServedApp
from providers.stripe.sandbox import (
    DEMO_ACCOUNT_ID,
    DEMO_CONNECTED_ACCOUNT_ID,
    DEMO_SECRET_KEY,
    StripeSandbox,
    StripeSandboxKnobs,
    create_app,
    demo_sandbox,
)
from providers.stripe.sandbox.wire import decode_params
from providers.stripe.webhooks import signature_header, verify

KEY = {"Authorization": f"Bearer {DEMO_SECRET_KEY}"}


class Api:
    def __init__(self, sandbox: StripeSandbox, base_url: str, knobs: StripeSandboxKnobs) -> None:
        self.sandbox, self.base_url, self.knobs = sandbox, base_url, knobs

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(self.base_url + path, params=params, headers=KEY)

    def post(self, path: str, data: dict[str, str], **headers: str) -> httpx.Response:
        return httpx.post(self.base_url + path, data=data, headers={**KEY, **headers})


@pytest.fixture
def clock() -> ManualClock:
    import time

    return ManualClock(time.time())


@pytest.fixture
def api(clock: ManualClock) -> Iterator[Api]:
    sandbox = demo_sandbox(seed=5, clock=clock)
    app = create_app(sandbox)
    with ServedApp(app) as served:
        yield Api(sandbox, served.base_url, knobs_of(app, StripeSandboxKnobs))


def test_bracket_parameters_nest_into_objects_and_lists_whether_indexed_or_appended() -> None:
    pairs = [
        ("metadata[order]", "7"), ("items[0][price]", "p1"), ("items[1][price]", "p2"), ("items[1][quantity]", "3"),
        ("expand[]", "customer"), ("expand[]", "lines"), ("address[city]", "Leeds"),
    ]  # fmt: skip
    assert decode_params(pairs) == {
        "metadata": {"order": "7"}, "items": [{"price": "p1"}, {"price": "p2", "quantity": "3"}],
        "expand": ["customer", "lines"], "address": {"city": "Leeds"},
    }  # fmt: skip


def test_a_list_pages_newest_first_both_ways_and_windows_by_created(api: Api) -> None:
    everything = api.get("/v1/customers", limit=100).json()["data"]
    first = api.get("/v1/customers", limit=4).json()
    second = api.get("/v1/customers", limit=4, starting_after=first["data"][-1]["id"]).json()
    assert [c["id"] for c in first["data"] + second["data"]] == [c["id"] for c in everything[:8]]
    back = api.get("/v1/customers", limit=4, ending_before=second["data"][0]["id"]).json()
    assert back["data"] == first["data"] and back["has_more"] is False
    middle = everything[10]["created"]
    newer = api.get("/v1/customers", limit=100, **{"created[gte]": str(middle)}).json()["data"]
    assert newer == [c for c in everything if c["created"] >= middle]
    refused = api.get("/v1/customers", limit=101)
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "limit"


def test_a_429_says_whether_to_retry(api: Api) -> None:
    api.knobs.rate_limit_next, api.knobs.should_retry = 1, False
    limited = api.get("/v1/customers")
    assert limited.status_code == 429 and limited.headers["stripe-should-retry"] == "false"
    assert limited.json()["error"]["code"] == "rate_limit"
    assert api.get("/v1/customers").status_code == 200


def test_the_same_idempotency_key_replays_the_answer_and_another_request_under_it_is_refused(api: Api) -> None:
    before = api.sandbox.count(DEMO_ACCOUNT_ID, "customers")
    first = api.post("/v1/customers", {"name": "Once"}, **{"Idempotency-Key": "k-1"})
    again = api.post("/v1/customers", {"name": "Once"}, **{"Idempotency-Key": "k-1"})
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    other = api.post("/v1/customers", {"name": "Twice"}, **{"Idempotency-Key": "k-1"})
    assert other.status_code == 400 and other.json()["error"]["type"] == "idempotency_error"
    assert api.sandbox.count(DEMO_ACCOUNT_ID, "customers") == before + 1


def test_stripe_version_is_checked_and_echoed(api: Api) -> None:
    ok = httpx.get(api.base_url + "/v1/customers", headers={**KEY, "Stripe-Version": "2024-06-20"})
    assert ok.status_code == 200 and ok.headers["stripe-version"] == "2024-06-20"
    bad = httpx.get(api.base_url + "/v1/customers", headers={**KEY, "Stripe-Version": "latest-please"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "api_version_invalid"


def test_stripe_account_acts_only_for_an_account_connected_to_the_platform(api: Api) -> None:
    acting = {**KEY, "Stripe-Account": DEMO_CONNECTED_ACCOUNT_ID}
    refused = httpx.get(api.base_url + "/v1/customers", headers=acting)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "account_invalid"
    api.sandbox.connect(DEMO_ACCOUNT_ID, DEMO_CONNECTED_ACCOUNT_ID)
    theirs = httpx.get(api.base_url + "/v1/customers", headers=acting).json()["data"]
    ours = api.get("/v1/customers").json()["data"]
    assert theirs and {c["id"] for c in theirs}.isdisjoint(c["id"] for c in ours)


def test_events_are_kept_thirty_days(api: Api, clock: ManualClock) -> None:
    created = api.post("/v1/customers", {"name": "Old news"}).json()
    (event,) = api.get("/v1/events").json()["data"]
    assert event["type"] == "customer.created" and event["data"]["object"]["id"] == created["id"]
    clock.advance(29 * DAY_S)
    assert [e["id"] for e in api.get("/v1/events").json()["data"]] == [event["id"]]
    clock.advance(2 * DAY_S)
    assert api.get("/v1/events").json()["data"] == []
    assert api.get(f"/v1/events/{event['id']}").status_code == 404


def test_an_update_records_its_previous_attributes_and_a_delete_its_last_state(api: Api) -> None:
    customer = api.post("/v1/customers", {"name": "Ada", "email": "ada@example.com"}).json()
    api.post(f"/v1/customers/{customer['id']}", {"email": "ada.l@example.com"})
    httpx.delete(f"{api.base_url}/v1/customers/{customer['id']}", headers=KEY)
    deleted, updated, _ = api.get("/v1/events").json()["data"]
    assert updated["type"] == "customer.updated"
    assert updated["data"]["previous_attributes"] == {"email": "ada@example.com"}
    assert deleted["type"] == "customer.deleted" and deleted["data"]["object"]["email"] == "ada.l@example.com"
    assert customer["id"] not in {c["id"] for c in api.get("/v1/customers", limit=100).json()["data"]}


def test_a_signature_verifies_with_any_of_several_v1_within_300_seconds_only() -> None:
    body, now = b'{"id":"evt_1"}', 1_800_000_000
    good = signature_header(body, "whsec_new", now)
    rolled = f"{good},v1={signature_header(body, 'whsec_old', now).split('v1=')[1]}"
    assert verify(body, {"stripe-signature": rolled}, "whsec_old", now=now)
    assert verify(body, {"stripe-signature": rolled}, "whsec_new", now=now + 300)
    assert not verify(body, {"stripe-signature": good}, "whsec_new", now=now + 301)
    assert not verify(body + b" ", {"stripe-signature": good}, "whsec_new", now=now)
    assert not verify(body, {"stripe-signature": "t=abc,v1=00"}, "whsec_new", now=now)

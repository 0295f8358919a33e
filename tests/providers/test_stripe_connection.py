"""Connecting Stripe: the connection test against the Stripe sandbox, served over real HTTP on loopback."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
from jsonschema import Draft202012Validator

import providers.stripe.connection as stripe_connection
from providers.errors import ProviderAuthError, ProviderRateLimited, ProviderUnavailable
from providers.sandbox_kit.faults import knobs_of
from providers.sandbox_kit.serve import ServedApp, free_port
from providers.schema import defaults_from_schema
from providers.stripe import PROVIDER
from providers.stripe.sandbox import (
    DEMO_ACCOUNT_ID,
    DEMO_RESTRICTED_KEY,
    DEMO_SECRET_KEY,
    StripeSandboxKnobs,
    create_app,
    demo_sandbox,
)

SPECS_DIR = Path(os.environ.get("VRTX_PROVIDER_SPECS_DIR", "/work/shared/specs"))
LIVE_KEY = "sk_live_51VrtxLive00000002SandboxKey9876"
UNKNOWN_KEY = "sk_test_51VrtxRevoked000003NoLongerValid1234"


class Sandbox(NamedTuple):
    base_url: str
    state: StripeSandboxKnobs


def connect(secret_key: str, base_url: str, *, timeout: float = 5.0) -> Any:
    with httpx.Client(timeout=timeout) as client:
        return stripe_connection.test_connection({"secret_key": secret_key}, base_url, client)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    stripe = demo_sandbox()
    stripe.add_account("", account_id="acct_1VrtxLive00000002", keys=(LIVE_KEY,), email="owner@live.example", live=True)
    app = create_app(stripe)
    with ServedApp(app) as served:
        yield Sandbox(served.base_url, knobs_of(app, StripeSandboxKnobs))


def test_stripe_connection_identifies_the_account_behind_a_valid_secret_key(sandbox: Sandbox) -> None:
    info = connect(DEMO_SECRET_KEY, sandbox.base_url)

    assert info.external_account_id == DEMO_ACCOUNT_ID
    assert info.external_account_name == "Vrtx Demo Coffee Roasters"
    assert info.details == {
        "livemode": False,
        "mode": "test",
        "key_type": "secret",
        "country": "GB",
        "default_currency": "gbp",
        "charges_enabled": True,
        "payouts_enabled": True,
        "details_submitted": True,
        "account_type": "standard",
    }
    assert sandbox.state.request_count == 1
    assert DEMO_SECRET_KEY not in repr(info)


def test_stripe_connection_accepts_a_restricted_key_and_says_so(sandbox: Sandbox) -> None:
    info = connect(DEMO_RESTRICTED_KEY, sandbox.base_url)

    assert info.external_account_id == DEMO_ACCOUNT_ID
    assert info.details["key_type"] == "restricted"
    assert info.details["livemode"] is False


def test_stripe_connection_marks_a_live_key_as_livemode(sandbox: Sandbox) -> None:
    info = connect(LIVE_KEY, sandbox.base_url)

    assert info.external_account_id == "acct_1VrtxLive00000002"
    assert info.external_account_name == "owner@live.example"  # no business or dashboard name: the email
    assert info.details["livemode"] is True


def test_stripe_connection_rejects_revoked_key_with_stripes_own_message(sandbox: Sandbox) -> None:
    with pytest.raises(ProviderAuthError) as caught:
        connect(UNKNOWN_KEY, sandbox.base_url)

    tail = UNKNOWN_KEY.removeprefix("sk_test_")
    assert caught.value.message == f"Invalid API Key provided: sk_test_{'*' * (len(tail) - 4)}{tail[-4:]}"
    assert caught.value.status == 401
    assert caught.value.provider_code == "invalid_request_error"
    assert UNKNOWN_KEY not in str(caught.value)
    assert tail[:-4] not in str(caught.value)


def test_stripe_connection_rejects_a_publishable_key_without_calling_stripe(sandbox: Sandbox) -> None:
    with pytest.raises(ProviderAuthError) as caught:
        connect("pk_test_51VrtxPublishable0000000000000", sandbox.base_url)

    assert "secret key" in caught.value.message
    assert "pk_test_51Vrtx" not in caught.value.message
    assert sandbox.state.request_count == 0


def test_stripe_connection_reports_a_429_as_rate_limited_with_retry_after(sandbox: Sandbox) -> None:
    sandbox.state.rate_limit_next = 1
    sandbox.state.retry_after_s = 7

    with pytest.raises(ProviderRateLimited) as caught:
        connect(DEMO_SECRET_KEY, sandbox.base_url)

    assert caught.value.retry_after == 7.0
    assert caught.value.status == 429
    assert caught.value.message.startswith("Request rate limit exceeded.")
    # The knob is spent: the next attempt goes through.
    assert connect(DEMO_SECRET_KEY, sandbox.base_url).external_account_id == DEMO_ACCOUNT_ID


@pytest.mark.parametrize("status", [500, 503])
def test_stripe_connection_reports_a_5xx_as_provider_unavailable(sandbox: Sandbox, status: int) -> None:
    sandbox.state.fail_next_with_status = status

    with pytest.raises(ProviderUnavailable) as caught:
        connect(DEMO_SECRET_KEY, sandbox.base_url)

    assert caught.value.status == status
    assert caught.value.provider_code == "api_error"


def test_stripe_connection_reports_an_unreachable_host_as_provider_unavailable() -> None:
    with pytest.raises(ProviderUnavailable) as caught:
        connect(DEMO_SECRET_KEY, f"http://127.0.0.1:{free_port()}")

    assert DEMO_SECRET_KEY not in str(caught.value)


def test_stripe_connection_reports_a_timeout_as_provider_unavailable(sandbox: Sandbox) -> None:
    sandbox.state.latency_s = 0.5

    with pytest.raises(ProviderUnavailable, match="did not answer in time"):
        connect(DEMO_SECRET_KEY, sandbox.base_url, timeout=0.1)


def test_stripe_connection_masks_a_key_the_provider_echoes_in_clear() -> None:
    def echo_key(request: httpx.Request) -> httpx.Response:
        key = request.headers["authorization"].removeprefix("Bearer ")
        return httpx.Response(401, json={"error": {"type": "invalid_request_error", "message": f"Bad key {key}"}})

    with (
        httpx.Client(transport=httpx.MockTransport(echo_key)) as client,
        pytest.raises(ProviderAuthError) as caught,
    ):
        stripe_connection.test_connection({"secret_key": UNKNOWN_KEY}, "https://api.stripe.com", client)

    assert UNKNOWN_KEY not in caught.value.message
    assert caught.value.message.startswith("Bad key sk_test_****")
    assert caught.value.message.endswith(UNKNOWN_KEY[-4:])


# --- The sandbox speaks Stripe's wire protocol -----------------------------------------------------------


def test_stripe_sandbox_account_object_has_the_shape_of_stripes_fixture(sandbox: Sandbox) -> None:
    fixtures = SPECS_DIR / "stripe-fixtures3.json"
    if not fixtures.exists():
        pytest.skip(f"{fixtures} is not available")
    expected = json.loads(fixtures.read_text())["resources"]["account"]

    response = httpx.get(f"{sandbox.base_url}/v1/account", headers={"Authorization": f"Bearer {DEMO_SECRET_KEY}"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["request-id"].startswith("req_")
    assert _key_tree(response.json()) == _key_tree(expected)
    assert response.json()["object"] == "account"


def test_stripe_sandbox_accepts_basic_auth_with_the_key_as_username(sandbox: Sandbox) -> None:
    response = httpx.get(f"{sandbox.base_url}/v1/account", auth=(DEMO_SECRET_KEY, ""))

    assert response.status_code == 200
    assert response.json()["id"] == DEMO_ACCOUNT_ID


def test_stripe_sandbox_answers_a_missing_key_as_stripe_does(sandbox: Sandbox) -> None:
    response = httpx.get(f"{sandbox.base_url}/v1/account")

    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("You did not provide an API key.")


def test_stripe_sandbox_answers_unknown_urls_with_stripes_404(sandbox: Sandbox) -> None:
    response = httpx.get(f"{sandbox.base_url}/v1/widgets", headers={"Authorization": f"Bearer {DEMO_SECRET_KEY}"})

    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("Unrecognized request URL (GET: /v1/widgets).")


def test_stripe_sandbox_rate_limit_body_is_stripes(sandbox: Sandbox) -> None:
    sandbox.state.rate_limit_next = 2

    responses = [httpx.get(f"{sandbox.base_url}/v1/account", auth=(DEMO_SECRET_KEY, "")) for _ in range(3)]

    assert [r.status_code for r in responses] == [429, 429, 200]
    assert responses[0].json()["error"]["code"] == "rate_limit"
    assert responses[0].headers["retry-after"] == "1"


# --- The catalog entry -----------------------------------------------------------------------------------


def test_stripe_connects_with_a_key_or_through_connect_oauth() -> None:
    assert "connect" in PROVIDER.implemented
    assert PROVIDER.auth.oauth2 is not None and PROVIDER.discover_tenants is not None
    assert PROVIDER.connectable
    assert PROVIDER.connection_tester is stripe_connection.test_connection
    assert PROVIDER.api_base_url == "https://api.stripe.com"
    assert PROVIDER.sandbox == "providers.stripe.sandbox:create_app"
    (field,) = PROVIDER.auth.fields
    assert field.name == "secret_key" and field.secret and field.pattern
    for key in (DEMO_SECRET_KEY, DEMO_RESTRICTED_KEY, LIVE_KEY):
        assert re.fullmatch(field.pattern, key)
    assert not re.fullmatch(field.pattern, "pk_test_51VrtxPublishable0000000000000")


def test_stripe_settings_schema_is_valid_and_its_defaults_validate() -> None:
    Draft202012Validator.check_schema(PROVIDER.config_schema)
    defaults: Mapping[str, Any] = defaults_from_schema(PROVIDER.config_schema)
    Draft202012Validator(PROVIDER.config_schema).validate(defaults)
    assert defaults["currency"] == "usd"
    assert defaults["entities"] == [
        "customers", "products", "prices", "invoices", "payment_intents", "charges", "refunds", "subscriptions",
        "balance_transactions", "payouts",
    ]  # fmt: skip


def _key_tree(value: Any) -> Any:
    """The nested keys of a JSON object (list items are not compared: the fixture's lists are examples)."""
    if isinstance(value, dict):
        return {key: _key_tree(item) for key, item in value.items()}
    return None

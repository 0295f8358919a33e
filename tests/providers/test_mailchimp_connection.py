"""Connecting Mailchimp: the connection test against its sandbox, served over real HTTP on loopback."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import NamedTuple

import httpx
import pytest
from jsonschema import Draft202012Validator

import providers.mailchimp.connection as mailchimp_connection
from providers.base import ConnectionInfo
from providers.errors import ProviderAuthError, ProviderRateLimited, ProviderUnavailable
from providers.mailchimp import PROVIDER
from providers.mailchimp.sandbox import (
    DEMO_ACCOUNT,
    DEMO_ACCOUNT_ID,
    DEMO_API_KEY,
    MailchimpSandboxAccount,
    api_base_url,
    create_app,
)
from providers.sandbox_kit.faults import FaultKnobs, knobs_of
from providers.sandbox_kit.serve import ServedApp, free_port
from providers.schema import defaults_from_schema

UNKNOWN_KEY = "0123456789abcdef0123456789abcdef-us21"
OTHER_DATACENTER_KEY = "fedcba9876543210fedcba9876543210-us6"


class Sandbox(NamedTuple):
    base_url: str  # the API base, ending in /3.0
    state: FaultKnobs


def connect(api_key: str, base_url: str) -> ConnectionInfo:
    with httpx.Client(timeout=5.0) as client:
        return mailchimp_connection.test_connection({"api_key": api_key}, base_url, client)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    elsewhere = MailchimpSandboxAccount(
        api_key=OTHER_DATACENTER_KEY,
        account_id="aa11bb22cc33dd44ee55ff667",
        account_name="Lives in us6",
        email="us6@example.com",
        first_name="Sam",
        last_name="Six",
        username="samsix",
    )
    app = create_app([DEMO_ACCOUNT, elsewhere])  # serves data center us21
    with ServedApp(app) as served:
        yield Sandbox(api_base_url(served.base_url), knobs_of(app))


def test_mailchimp_connection_identifies_the_account_behind_a_valid_key(sandbox: Sandbox) -> None:
    info = connect(DEMO_API_KEY, sandbox.base_url)

    assert info.external_account_id == DEMO_ACCOUNT_ID
    assert info.external_account_name == "Vrtx Demo Coffee Roasters"
    assert info.details["datacenter"] == "us21"
    assert info.details["email"] == "marketing@demo-coffee.example"
    assert info.details["role"] == "owner"
    assert info.details["total_subscribers"] == 1280
    assert DEMO_API_KEY.split("-")[0] not in repr(info)
    assert sandbox.state.request_count == 1


def test_mailchimp_connection_rejects_an_invalid_key_with_mailchimps_own_message(sandbox: Sandbox) -> None:
    with pytest.raises(ProviderAuthError) as caught:
        connect(UNKNOWN_KEY, sandbox.base_url)

    assert caught.value.message == (
        "API Key Invalid: Your API key may be invalid, or you've attempted to access the wrong datacenter."
    )
    assert caught.value.status == 401
    assert caught.value.provider_code == "API Key Invalid"
    assert UNKNOWN_KEY.split("-")[0] not in str(caught.value)


def test_mailchimp_connection_rejects_a_key_sent_to_the_wrong_data_center(sandbox: Sandbox) -> None:
    # The account exists, but its key names us6 and this server is us21.
    with pytest.raises(ProviderAuthError, match="wrong datacenter"):
        connect(OTHER_DATACENTER_KEY, sandbox.base_url)


def test_mailchimp_connection_calls_the_data_center_named_in_the_key() -> None:
    seen: list[httpx.Request] = []

    def root(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"account_id": "abc123", "account_name": "Freddie's Jokes"})

    with httpx.Client(transport=httpx.MockTransport(root)) as client:
        info = mailchimp_connection.test_connection({"api_key": DEMO_API_KEY}, PROVIDER.api_base_url, client)

    assert info.external_account_id == "abc123"
    (request,) = seen
    assert str(request.url) == "https://us21.api.mailchimp.com/3.0/"
    assert request.method == "GET"
    # HTTP Basic with any username and the key as the password.
    token = base64.b64encode(f"vrtx:{DEMO_API_KEY}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {token}"


def test_mailchimp_connection_rejects_a_key_without_a_data_center(sandbox: Sandbox) -> None:
    with pytest.raises(ProviderAuthError, match="data center"):
        connect(DEMO_API_KEY.split("-")[0], sandbox.base_url)

    assert sandbox.state.request_count == 0


def test_mailchimp_connection_reports_a_429_as_rate_limited_with_retry_after(sandbox: Sandbox) -> None:
    sandbox.state.rate_limit_next = 1
    sandbox.state.retry_after_s = 4

    with pytest.raises(ProviderRateLimited) as caught:
        connect(DEMO_API_KEY, sandbox.base_url)

    assert caught.value.retry_after == 4.0
    assert caught.value.message == ("Too Many Requests: You have exceeded the limit of 10 simultaneous connections.")


@pytest.mark.parametrize("status", [500, 503])
def test_mailchimp_connection_reports_a_5xx_as_provider_unavailable(sandbox: Sandbox, status: int) -> None:
    sandbox.state.fail_next_with_status = status

    with pytest.raises(ProviderUnavailable) as caught:
        connect(DEMO_API_KEY, sandbox.base_url)

    assert caught.value.status == status


def test_mailchimp_connection_reports_an_unreachable_host_as_provider_unavailable() -> None:
    with pytest.raises(ProviderUnavailable) as caught:
        connect(DEMO_API_KEY, f"http://127.0.0.1:{free_port()}/3.0")

    assert DEMO_API_KEY.split("-")[0] not in str(caught.value)


def test_mailchimp_connection_masks_a_key_the_provider_echoes() -> None:
    def echo_key(request: httpx.Request) -> httpx.Response:
        problem = {"title": "API Key Invalid", "status": 401, "detail": f"Key {DEMO_API_KEY} is not valid."}
        return httpx.Response(401, json=problem, headers={"content-type": "application/problem+json"})

    with (
        httpx.Client(transport=httpx.MockTransport(echo_key)) as client,
        pytest.raises(ProviderAuthError) as caught,
    ):
        mailchimp_connection.test_connection({"api_key": DEMO_API_KEY}, PROVIDER.api_base_url, client)

    assert DEMO_API_KEY.split("-")[0] not in caught.value.message
    assert caught.value.message.startswith("API Key Invalid: Key ****")


# --- The sandbox speaks Mailchimp's wire protocol --------------------------------------------------------


def test_mailchimp_sandbox_answers_a_missing_key_with_a_problem_document(sandbox: Sandbox) -> None:
    response = httpx.get(f"{sandbox.base_url}/")

    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"] == "https://mailchimp.com/developer/marketing/docs/errors/"
    assert (problem["title"], problem["status"]) == ("API Key Missing", 401)
    assert problem["detail"] == "Your request did not include an API key."
    assert re.fullmatch(r"[0-9a-f-]{36}", problem["instance"])


def test_mailchimp_sandbox_answers_unknown_resources_with_a_404_problem(sandbox: Sandbox) -> None:
    response = httpx.get(f"{sandbox.base_url}/lists", auth=("anystring", DEMO_API_KEY))

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["title"] == "Resource Not Found"
    assert response.json()["detail"] == "The requested resource could not be found."


def test_mailchimp_sandbox_api_root_describes_the_account(sandbox: Sandbox) -> None:
    response = httpx.get(f"{sandbox.base_url}/", auth=("anystring", DEMO_API_KEY))

    assert response.status_code == 200
    root = response.json()
    for key in ("account_id", "login_id", "account_name", "email", "username", "role", "contact", "_links"):
        assert key in root
    assert root["_links"][0]["rel"] == "self"


# --- The catalog entry -----------------------------------------------------------------------------------


def test_mailchimp_provider_offers_connect_and_nothing_else_yet() -> None:
    assert PROVIDER.implemented == frozenset({"connect"})
    assert PROVIDER.connectable
    assert PROVIDER.connection_tester is mailchimp_connection.test_connection
    assert PROVIDER.api_base_url == "https://{dc}.api.mailchimp.com/3.0"
    (field,) = PROVIDER.auth.fields
    assert field.name == "api_key" and field.secret and field.pattern
    assert re.fullmatch(field.pattern, DEMO_API_KEY)
    assert not re.fullmatch(field.pattern, DEMO_API_KEY.split("-")[0])


def test_mailchimp_settings_schema_is_valid_and_its_defaults_validate() -> None:
    schema = PROVIDER.config_schema
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    validator.validate(defaults_from_schema(schema))
    validator.validate({"audience_id": "a1b2c3d4e5", "double_opt_in": False})
    assert not validator.is_valid({"double_opt_in": "yes"})

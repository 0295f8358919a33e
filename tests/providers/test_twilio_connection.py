"""Connecting Twilio: the connection test against the Twilio sandbox, served over real HTTP on loopback."""

from __future__ import annotations

import email.utils
import json
import os
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
from jsonschema import Draft202012Validator

import providers.twilio.connection as twilio_connection
from providers.base import ConnectionInfo
from providers.errors import ProviderAuthError, ProviderRateLimited, ProviderUnavailable
from providers.sandbox_kit.faults import FaultKnobs, knobs_of
from providers.sandbox_kit.serve import ServedApp, free_port
from providers.schema import defaults_from_schema
from providers.twilio import PROVIDER
from providers.twilio.sandbox import (
    DEMO_ACCOUNT,
    DEMO_ACCOUNT_SID,
    DEMO_AUTH_TOKEN,
    TwilioSandboxAccount,
    account_resource,
    create_app,
)

SPECS_DIR = Path(os.environ.get("VRTX_PROVIDER_SPECS_DIR", "/work/shared/specs"))
WRONG_TOKEN = "0badc0ffee0badc0ffee0badc0ffee00"
SUBACCOUNT = TwilioSandboxAccount(
    sid="AC0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    auth_token="9e8d7c6b5a49382716050f1e2d3c4b5a",
    friendly_name="Vrtx Demo — Leeds shop",
    type="Trial",
    owner_account_sid=DEMO_ACCOUNT_SID,
)
SUSPENDED = TwilioSandboxAccount(
    sid="AC99999999999999999999999999999999",
    auth_token="11111111111111111111111111111111",
    friendly_name="Unpaid Ltd",
    status="suspended",
)


class Sandbox(NamedTuple):
    base_url: str
    state: FaultKnobs


def connect(account_sid: str, auth_token: str, base_url: str) -> ConnectionInfo:
    with httpx.Client(timeout=5.0) as client:
        return twilio_connection.test_connection(
            {"account_sid": account_sid, "auth_token": auth_token}, base_url, client
        )


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    app = create_app([DEMO_ACCOUNT, SUBACCOUNT, SUSPENDED])
    with ServedApp(app) as served:
        yield Sandbox(served.base_url, knobs_of(app))


def test_twilio_connection_identifies_an_active_account(sandbox: Sandbox) -> None:
    info = connect(DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN, sandbox.base_url)

    assert info.external_account_id == DEMO_ACCOUNT_SID
    assert info.external_account_name == "Vrtx Demo Coffee Roasters"
    assert info.details == {
        "status": "active",
        "account_type": "Full",
        "is_subaccount": False,
        "date_created": "Tue, 14 Nov 2023 09:30:00 +0000",
    }
    assert sandbox.state.request_count == 1


def test_twilio_connection_never_keeps_the_auth_token_twilio_returns(sandbox: Sandbox) -> None:
    # Twilio's account resource carries the account's auth_token; the connection info must not.
    info = connect(DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN, sandbox.base_url)

    assert DEMO_AUTH_TOKEN not in repr(info)


def test_twilio_connection_recognises_a_subaccount(sandbox: Sandbox) -> None:
    info = connect(SUBACCOUNT.sid, SUBACCOUNT.auth_token, sandbox.base_url)

    assert info.external_account_id == SUBACCOUNT.sid
    assert info.details["is_subaccount"] is True
    assert info.details["owner_account_sid"] == DEMO_ACCOUNT_SID
    assert info.details["account_type"] == "Trial"


def test_twilio_connection_rejects_a_wrong_auth_token_with_twilios_own_message(sandbox: Sandbox) -> None:
    with pytest.raises(ProviderAuthError) as caught:
        connect(DEMO_ACCOUNT_SID, WRONG_TOKEN, sandbox.base_url)

    assert caught.value.message == ("Authenticate (Twilio error 20003, see https://www.twilio.com/docs/errors/20003)")
    assert caught.value.status == 401
    assert caught.value.provider_code == "20003"
    assert WRONG_TOKEN not in str(caught.value)


def test_twilio_connection_rejects_a_suspended_account(sandbox: Sandbox) -> None:
    with pytest.raises(ProviderAuthError) as caught:
        connect(SUSPENDED.sid, SUSPENDED.auth_token, sandbox.base_url)

    assert caught.value.provider_code == "20003"
    assert SUSPENDED.auth_token not in str(caught.value)


def test_twilio_connection_refuses_an_account_whose_status_is_not_active() -> None:
    # Should Twilio answer the fetch for a suspended or closed account, its status still stops the connection.
    def suspended(request: httpx.Request) -> httpx.Response:
        body = account_resource(TwilioSandboxAccount(DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN, "Paused", "suspended"))
        return httpx.Response(200, json=body)

    with (
        httpx.Client(transport=httpx.MockTransport(suspended)) as client,
        pytest.raises(ProviderAuthError) as caught,
    ):
        twilio_connection.test_connection(
            {"account_sid": DEMO_ACCOUNT_SID, "auth_token": DEMO_AUTH_TOKEN}, "https://api.twilio.com", client
        )

    assert f"The Twilio account {DEMO_ACCOUNT_SID} is suspended" in caught.value.message
    assert caught.value.provider_code == "account_suspended"
    assert DEMO_AUTH_TOKEN not in caught.value.message


def test_twilio_connection_checks_the_sid_before_putting_it_in_a_url(sandbox: Sandbox) -> None:
    with pytest.raises(ProviderAuthError, match="Account SID"):
        connect("AC../../Accounts/other", DEMO_AUTH_TOKEN, sandbox.base_url)

    assert sandbox.state.request_count == 0


def test_twilio_connection_reports_a_429_as_rate_limited_with_retry_after(sandbox: Sandbox) -> None:
    sandbox.state.rate_limit_next = 1
    sandbox.state.retry_after_s = 3

    with pytest.raises(ProviderRateLimited) as caught:
        connect(DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN, sandbox.base_url)

    assert caught.value.retry_after == 3.0
    assert caught.value.message.startswith("Too Many Requests (Twilio error 20429")


@pytest.mark.parametrize("status", [500, 503])
def test_twilio_connection_reports_a_5xx_as_provider_unavailable(sandbox: Sandbox, status: int) -> None:
    sandbox.state.fail_next_with_status = status

    with pytest.raises(ProviderUnavailable) as caught:
        connect(DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN, sandbox.base_url)

    assert caught.value.status == status
    assert caught.value.provider_code == str(20000 + status)


def test_twilio_connection_reports_an_unreachable_host_as_provider_unavailable() -> None:
    with pytest.raises(ProviderUnavailable) as caught:
        connect(DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN, f"http://127.0.0.1:{free_port()}")

    assert DEMO_AUTH_TOKEN not in str(caught.value)


# --- The sandbox speaks Twilio's wire protocol -----------------------------------------------------------


@cache
def _twilio_spec() -> dict[str, Any]:
    path = SPECS_DIR / "twilio-twilio_api_v2010.json"
    if not path.exists():
        pytest.skip(f"{path} is not available")
    spec: dict[str, Any] = json.loads(path.read_text())
    return spec


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 -> JSON Schema: ``nullable: true`` becomes a ``null`` type; vendor keys are dropped."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {k: _json_schema(v) for k, v in node.items() if k != "nullable" and not k.startswith("x-")}
    if node.get("nullable") is True and isinstance(node.get("type"), str):
        converted["type"] = [node["type"], "null"]
    return converted


def _account_validator() -> Draft202012Validator:
    schemas = _twilio_spec()["components"]["schemas"]
    root = {
        "$ref": "#/components/schemas/api.v2010.account",
        "components": {"schemas": _json_schema(schemas)},
    }
    return Draft202012Validator(root)


def test_twilio_sandbox_account_validates_against_twilios_openapi_schema(sandbox: Sandbox) -> None:
    response = httpx.get(
        f"{sandbox.base_url}/2010-04-01/Accounts/{DEMO_ACCOUNT_SID}.json",
        auth=(DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN),
    )

    assert response.status_code == 200
    body = response.json()
    _account_validator().validate(body)
    schema_properties = _twilio_spec()["components"]["schemas"]["api.v2010.account"]["properties"]
    assert set(body) == set(schema_properties)
    for field in ("date_created", "date_updated"):
        assert email.utils.parsedate_to_datetime(body[field]).utcoffset() is not None
    example = _twilio_spec()["paths"]["/2010-04-01/Accounts/{Sid}.json"]["get"]["responses"]["200"]
    example_body = example["content"]["application/json"]["examples"]["fetch"]["value"]
    assert set(body["subresource_uris"]) == set(example_body["subresource_uris"])


def test_twilio_openapi_conversion_accepts_twilios_own_example() -> None:
    # Guards the nullable conversion above: the spec's example must pass it, and a bad status must not.
    example = _twilio_spec()["paths"]["/2010-04-01/Accounts/{Sid}.json"]["get"]["responses"]["200"]
    example_body = example["content"]["application/json"]["examples"]["fetch"]["value"]
    validator = _account_validator()

    validator.validate(example_body)
    validator.validate({**example_body, "friendly_name": None})
    assert not validator.is_valid({**example_body, "status": "paused"})


def test_twilio_sandbox_challenges_a_request_without_credentials(sandbox: Sandbox) -> None:
    response = httpx.get(f"{sandbox.base_url}/2010-04-01/Accounts/{DEMO_ACCOUNT_SID}.json")

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert response.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }


def test_twilio_sandbox_lets_a_parent_read_its_subaccount_but_not_the_reverse(sandbox: Sandbox) -> None:
    accounts = f"{sandbox.base_url}/2010-04-01/Accounts"

    as_parent = httpx.get(f"{accounts}/{SUBACCOUNT.sid}.json", auth=(DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN))
    as_child = httpx.get(f"{accounts}/{DEMO_ACCOUNT_SID}.json", auth=(SUBACCOUNT.sid, SUBACCOUNT.auth_token))

    assert as_parent.status_code == 200
    assert as_parent.json()["owner_account_sid"] == DEMO_ACCOUNT_SID
    assert as_child.status_code == 401
    assert as_child.json()["code"] == 20003


def test_twilio_sandbox_answers_unknown_resources_with_twilios_404(sandbox: Sandbox) -> None:
    messages_path = f"/2010-04-01/Accounts/{DEMO_ACCOUNT_SID}/Messages.json"
    response = httpx.get(f"{sandbox.base_url}{messages_path}", auth=(DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN))

    assert response.status_code == 404
    assert response.json() == {
        "code": 20404,
        "message": f"The requested resource {messages_path} was not found",
        "more_info": "https://www.twilio.com/docs/errors/20404",
        "status": 404,
    }


# --- The catalog entry -----------------------------------------------------------------------------------


def test_twilio_provider_offers_connect_and_nothing_else_yet() -> None:
    assert PROVIDER.implemented == frozenset({"connect"})
    assert PROVIDER.connectable
    assert PROVIDER.connection_tester is twilio_connection.test_connection
    assert PROVIDER.api_base_url == "https://api.twilio.com"
    sid_field, token_field = PROVIDER.auth.fields
    assert (sid_field.name, sid_field.secret) == ("account_sid", False)
    assert (token_field.name, token_field.secret) == ("auth_token", True)
    assert sid_field.pattern and re.fullmatch(sid_field.pattern, DEMO_ACCOUNT_SID)
    assert token_field.pattern and re.fullmatch(token_field.pattern, DEMO_AUTH_TOKEN)


def test_twilio_settings_schema_checks_sender_formats() -> None:
    schema = PROVIDER.config_schema
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    validator.validate(defaults_from_schema(schema))
    validator.validate({"default_from_number": "+14155552671", "messaging_service_sid": "MG" + "a" * 32})
    assert not validator.is_valid({"default_from_number": "07700 900123"})
    assert not validator.is_valid({"messaging_service_sid": "PN" + "a" * 32})

"""JSON from outside is parsed within limits: a signed webhook body nested 5,000 deep, with NaN, a BOM, escaped
NUL or a lone surrogate is a 400 with nothing stored, and the API's own JSON bodies get the same parser (400
invalid_json, 413 over the size limit) instead of a 500 or a silently accepted NaN. SQLite and PostgreSQL."""
# ruff: noqa: F811 -- fixtures are imported from tests/test_webhooks.py and tests/xero/conftest.py

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from tests.helpers import bearer, make_tenant
from tests.test_webhooks import (  # noqa: F401 -- fixtures
    KEY,
    Xero,
    acme,
    api,
    inbox,
    oauth_clients,
    post,
    xero_event,
    xero_payload,
)
from tests.xero.conftest import base_urls, xero  # noqa: F401 -- fixtures
from vrtx_pipelines.config import Settings


def bodies(org: str) -> dict[str, bytes]:
    good = xero_payload(org, xero_event(org, "INVOICE", "inv-1"))
    event = json.dumps(xero_event(org, "INVOICE", "inv-2"))
    return {
        "nested 5,000 deep": b'{"events": [], "entropy": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        "a NaN literal": good.replace(b'"firstEventSequence":1', b'"firstEventSequence":NaN'),
        "Infinity": good.replace(b'"firstEventSequence":1', b'"firstEventSequence":-Infinity'),
        "a byte-order mark": b"\xef\xbb\xbf" + good,
        "an escaped NUL in an id": good.replace(b'"resourceId":"inv-1"', b'"resourceId":"inv\\u00001"'),
        "a lone surrogate": good.replace(b'"resourceId":"inv-1"', b'"resourceId":"inv\\ud800"'),
        "not UTF-8": good.replace(b'"resourceId":"inv-1"', b'"resourceId":"inv\xff"'),
        "not JSON": b'{"events": [' + event.encode(),
    }


@pytest.mark.parametrize(
    "case",
    [
        "nested 5,000 deep",
        "a NaN literal",
        "Infinity",
        "a byte-order mark",
        "an escaped NUL in an id",
        "a lone surrogate",
        "not UTF-8",
        "not JSON",
    ],
)
def test_a_signed_webhook_body_outside_the_json_limits_is_a_400_and_nothing_is_stored(
    api: TestClient, settings: Settings, xero: Xero, acme: str, case: str
) -> None:
    answer = post(api, bodies(xero[2])[case], KEY)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "webhook_malformed"
    assert inbox(settings) == []


def test_the_app_url_applies_the_same_limits(api: TestClient, settings: Settings, xero: Xero, acme: str) -> None:
    from providers.xero.webhooks import sign

    body = bodies(xero[2])["nested 5,000 deep"]
    answer = api.post("/api/v1/webhooks/xero", content=body, headers={"x-xero-signature": sign(body, "app-key-1")})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "webhook_malformed"


API_BODIES = {
    "a NaN literal": b'{"url": "https://93.184.215.14/hook", "secret": null, "note": NaN}',
    "Infinity": b'{"url": "https://93.184.215.14/hook", "note": Infinity}',
    "a byte-order mark": b'\xef\xbb\xbf{"url": "https://93.184.215.14/hook"}',
    "nested 5,000 deep": b'{"url": "https://93.184.215.14/hook", "note": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "an escaped NUL": b'{"url": "https://93.184.215.14/hook\\u0000"}',
    "not JSON": b'{"url": ',
}


@pytest.mark.parametrize("case", list(API_BODIES))
def test_an_api_json_body_outside_the_limits_is_a_400_invalid_json_and_changes_nothing(
    api: TestClient, settings: Settings, case: str
) -> None:
    token = make_tenant(settings, "acme")
    headers = {**bearer(token), "Content-Type": "application/json"}
    answer = api.put("/api/v1/events/callback", content=API_BODIES[case], headers=headers)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_json" and error["details"][0]["field"] == "(body)"
    assert api.get("/api/v1/events/callback", headers=bearer(token)).json()["configured"] is False


def test_an_api_json_body_over_the_size_limit_is_a_413(api: TestClient, settings: Settings) -> None:
    token = make_tenant(settings, "acme")
    body = json.dumps({"url": "https://93.184.215.14/hook", "note": "x" * (1024 * 1024)}).encode()
    answer = api.put(
        "/api/v1/events/callback", content=body, headers={**bearer(token), "Content-Type": "application/json"}
    )
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "payload_too_large"


def test_a_json_body_within_the_limits_still_reaches_the_route(api: TestClient, settings: Settings) -> None:
    token = make_tenant(settings, "acme")
    body = b'{"url": "https://93.184.215.14/hook", "note": ["\\ud83d\\ude00", 1.5, {"a": [[[]]]}]}'
    headers = {**bearer(token), "Content-Type": "application/json; charset=utf-8"}
    answer = api.put("/api/v1/events/callback", content=body, headers=headers)
    assert answer.status_code == 200, answer.text

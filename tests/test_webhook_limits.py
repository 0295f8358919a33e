"""JSON from outside is parsed within limits: a signed webhook body nested 5,000 deep, with NaN, a BOM, escaped
NUL or a lone surrogate is a 400 with nothing stored, and the API's own JSON bodies get the same parser (400
invalid_json, 413 over the size limit) instead of a 500 or a silently accepted NaN. Webhook events dated beyond a
small clock skew, or with fields longer than their columns hold, are refused whole. SQLite and PostgreSQL."""
# ruff: noqa: F811 -- fixtures are imported from tests/test_webhooks.py and tests/xero/conftest.py

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from providers.base import WebhookEvent
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
from vrtx_pipelines.registry import get_provider
from vrtx_pipelines.webhooks.inbox import Target, WebhookMalformed, delivery


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


def dated(org: str, when: str, resource: str = "inv-9") -> dict[str, Any]:
    return {**xero_event(org, "INVOICE", resource), "eventDateUtc": when}


@pytest.mark.parametrize(
    "when",
    [
        "2099-01-01T00:00:00.000",
        "in ten minutes",  # computed in the test: a parameter's id must not change between collecting workers
        "9999-12-31T23:59:59-23:59",  # no UTC equivalent at all
    ],
)
def test_a_delivery_with_an_event_dated_in_the_future_is_refused_and_nothing_of_it_stored(
    api: TestClient, settings: Settings, xero: Xero, acme: str, when: str
) -> None:
    org = xero[2]
    if when == "in ten minutes":
        when = (datetime.now(UTC) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    body = xero_payload(org, xero_event(org, "CONTACT", "con-1"), dated(org, when))
    answer = post(api, body, KEY)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "webhook_malformed", answer.text
    assert inbox(settings) == []


def test_an_event_a_little_ahead_of_our_clock_is_within_the_skew_allowance(
    api: TestClient, settings: Settings, xero: Xero, acme: str
) -> None:
    org = xero[2]
    ahead = (datetime.now(UTC) + timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    assert post(api, xero_payload(org, dated(org, ahead)), KEY).status_code == 200
    assert [row.payload["external_id"] for row in inbox(settings)] == ["inv-9"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("resourceId", "r" * 5000), ("resourceId", "r" * 101), ("tenantId", "t" * 5000), ("eventType", "U" * 200)],
)
def test_an_event_with_a_field_longer_than_its_column_is_refused_never_cut_short(
    api: TestClient, settings: Settings, xero: Xero, acme: str, field: str, value: str
) -> None:
    org = xero[2]
    body = xero_payload(org, {**xero_event(org, "INVOICE", "inv-1"), field: value})
    answer = post(api, body, KEY)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "webhook_malformed", answer.text
    assert inbox(settings) == []


def test_an_id_as_long_as_its_column_is_stored(api: TestClient, settings: Settings, xero: Xero, acme: str) -> None:
    org = xero[2]
    assert post(api, xero_payload(org, xero_event(org, "INVOICE", "r" * 100)), KEY).status_code == 200
    assert [row.payload["external_id"] for row in inbox(settings)] == ["r" * 100]


def test_the_core_refuses_nul_characters_whatever_the_providers_body_format() -> None:
    """A provider whose bodies are not JSON (a form, say) hands the core whatever its parser read: the inbox
    itself refuses NUL characters and over-long fields before anything is stored."""
    xero_provider = get_provider("xero")
    assert xero_provider.webhooks is not None
    now = datetime.now(UTC)
    target = Target(1, "org-1", None, [], None, None)
    for bad in (
        {"external_id": "inv\x001"},
        {"external_tenant_id": "org\x00"},
        {"event_id": "e" * 201},
        {"occurred_at": now + timedelta(days=1)},
    ):
        event = WebhookEvent(
            **{
                "event_id": "evt-1",
                "event_type": "invoice.update",
                "entity": "invoices",
                "external_id": "inv-1",
                "external_tenant_id": "org-1",
                "occurred_at": now,
                **bad,
            }
        )
        spec = dataclasses.replace(xero_provider.webhooks, parse=lambda _body, _headers, e=event: [e])
        with pytest.raises(WebhookMalformed):
            delivery(xero_provider, spec, target, b"form=encoded", now=now)

"""Ids, cursors and date-times from clients are bounded before they reach a query: beyond what the database's
integer holds, or with no UTC equivalent, they are refused with the JSON error shape (422), or are simply not
found (404) -- never a 500 from an overflow. SQLite and PostgreSQL; Xero's sandbox for a connected tenant."""
# ruff: noqa: F811 -- the Xero fixtures imported below are requested by name

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from tests.helpers import bearer, make_tenant
from tests.xero.conftest import base_urls, connect_xero, oauth_clients, xero  # noqa: F401 -- fixtures
from vrtx_pipelines.config import Settings

HUGE = "99999999999999999999999"
JUST_OVER = str(2**63)
LARGEST = str(2**63 - 1)
PLACEHOLDERS = {"slug": "xero", "entity": "contacts", "tenant": "acme"}


@pytest.fixture
def acme(api: TestClient, settings: Settings, xero: Any) -> str:
    token = make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    return token


def _int_path_params(dependant: Dependant) -> Iterator[str]:
    for param in dependant.path_params:
        if param.field_info.annotation is int:
            yield param.name
    for sub in dependant.dependencies:
        yield from _int_path_params(sub)


def routes_with_int_path_params(api: TestClient) -> list[tuple[str, str, set[str]]]:
    found = []
    for context in iter_route_contexts(api.app.routes):  # type: ignore[attr-defined]
        route = context.route
        if isinstance(route, APIRoute):
            ints = set(_int_path_params(route.dependant))
            if ints:
                found += [(method, context.path, ints) for method in sorted(route.methods)]
    return found


def fill(path: str, ints: set[str], value: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: value if m[1] in ints else PLACEHOLDERS.get(m[1], "x"), path)


def assert_json_error(response: Any, *statuses: int) -> str:
    assert response.status_code in statuses, (response.request.url, response.status_code, response.text)
    error = response.json()["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    return str(error["code"])


def test_every_route_with_an_int_path_parameter_refuses_ids_beyond_the_database_integer(
    api: TestClient, settings: Settings, acme: str
) -> None:
    routes = routes_with_int_path_params(api)
    assert {path for _, path, _ in routes} >= {
        "/api/v1/integrations/{slug}/push/{push_id}",
        "/api/v1/integrations/{slug}/conflicts/{conflict_id}",
        "/api/v1/integrations/{slug}/conflicts/{conflict_id}/resolve",
        "/api/v1/events/{event_id}/redeliver",
    }
    for method, path, ints in routes:
        for value in (HUGE, JUST_OVER, "-" + HUGE, "0"):
            answer = api.request(method, fill(path, ints, value), headers=bearer(acme), json={"resolution": "crm"})
            assert assert_json_error(answer, 422) == "validation_failed"
        largest = api.request(method, fill(path, ints, LARGEST), headers=bearer(acme), json={"resolution": "crm"})
        assert_json_error(largest, 404)  # the largest id the database holds is a valid id of no row


@pytest.mark.parametrize("path", ["push", "conflicts"])
def test_a_before_id_beyond_the_database_integer_is_a_422(api: TestClient, acme: str, path: str) -> None:
    for value in (HUGE, JUST_OVER):
        answer = api.get(f"/api/v1/integrations/xero/{path}", params={"before_id": value}, headers=bearer(acme))
        assert assert_json_error(answer, 422) == "validation_failed"
    largest = api.get(f"/api/v1/integrations/xero/{path}", params={"before_id": LARGEST}, headers=bearer(acme))
    assert largest.status_code == 200, largest.text


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/api/v1/integrations/xero/records/contacts", "v1:" + HUGE),
        ("/api/v1/integrations/xero/records/contacts", "v1:" + JUST_OVER),
        ("/api/v1/integrations/xero/records/contacts", "v1:١٢٣"),  # digits, but not ASCII ones
        ("/api/v1/events", "e1:" + HUGE),
        ("/api/v1/events", "e1:" + JUST_OVER),
        ("/api/v1/integrations/xero/sync/logs", "l1|2024-01-01T00:00:00+00:00|" + HUGE),
        ("/api/v1/integrations/xero/sync/logs", "l1|9999-12-31T23:59:59-23:59|1"),
        ("/api/v1/integrations/xero/sync/logs", "l1|not a date|1"),
    ],
)
def test_a_cursor_carrying_an_out_of_range_value_is_refused(api: TestClient, acme: str, path: str, raw: str) -> None:
    answer = api.get(path, params={"cursor": cursor(raw)}, headers=bearer(acme))
    assert assert_json_error(answer, 422) == "validation_failed"
    assert answer.json()["error"]["details"] == [{"field": "cursor", "message": "invalid cursor"}]


def test_the_largest_cursor_values_are_valid_and_page_to_nothing(api: TestClient, acme: str) -> None:
    records = api.get(
        "/api/v1/integrations/xero/records/contacts", params={"cursor": cursor("v1:" + LARGEST)}, headers=bearer(acme)
    )
    assert records.status_code == 200 and records.json()["records"] == []
    events = api.get("/api/v1/events", params={"cursor": cursor("e1:" + LARGEST)}, headers=bearer(acme))
    assert events.status_code == 200, events.text


@pytest.mark.parametrize(
    "moment", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "99999-01-01T00:00:00Z", "2024-13-01"]
)
def test_sync_log_dates_without_a_utc_equivalent_are_a_422(api: TestClient, acme: str, moment: str) -> None:
    for name in ("since", "until"):
        answer = api.get("/api/v1/integrations/xero/sync/logs", params={name: moment}, headers=bearer(acme))
        assert assert_json_error(answer, 422) == "validation_failed"


def test_sync_log_dates_at_the_edges_of_the_calendar_still_filter(api: TestClient, acme: str) -> None:
    for params in (
        {"since": "9999-12-31T23:59:59+00:00"},
        {"until": "0001-01-01T00:00:00"},
        {"since": "2024-01-01T10:00:00+05:00"},
    ):
        answer = api.get("/api/v1/integrations/xero/sync/logs", params=params, headers=bearer(acme))
        assert answer.status_code == 200 and answer.json()["logs"] == [], (params, answer.text)

"""The catalog routes, authentication and the health check."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.helpers import bearer, make_tenant
from vrtx_pipelines.config import Settings


def test_healthz_answers_without_a_token(api: TestClient) -> None:
    response = api.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_catalog_lists_all_17_integrations_in_display_order(api: TestClient, settings: Settings) -> None:
    token = make_tenant(settings, "acme")
    response = api.get("/api/v1/integrations", headers=bearer(token))
    assert response.status_code == 200
    items = response.json()
    assert len(items) == 17
    assert [i["display_order"] for i in items] == sorted(i["display_order"] for i in items)
    assert items[0]["slug"] == "xero"
    assert {i["slug"] for i in items if i["connectable"]} == {
        "xero",
        "quickbooks",
        "stripe",
        "google_workspace",
        "microsoft365",
        "twilio",
        "mailchimp",
    }
    xero, quickbooks = items[0], items[1]
    assert xero["connectable"] is True and "pull:invoices" in xero["implemented"] and xero["connection"] is None
    assert quickbooks["connectable"] is True and "pull:invoices" in quickbooks["implemented"]
    sage = next(i for i in items if i["slug"] == "sage")
    assert sage["connectable"] is False and sage["implemented"] == []


def test_catalog_filters_by_category_and_search(api: TestClient, settings: Settings) -> None:
    token = make_tenant(settings, "acme")
    accounting = api.get("/api/v1/integrations?category=accounting", headers=bearer(token)).json()
    assert {i["slug"] for i in accounting} == {"xero", "quickbooks", "sage", "freshbooks"}
    found = api.get("/api/v1/integrations?q=SMS", headers=bearer(token)).json()
    assert "twilio" in {i["slug"] for i in found}
    assert api.get("/api/v1/integrations?q=zzzz-nothing", headers=bearer(token)).json() == []


def test_details_carry_schema_auth_fields_and_oauth_scopes(api: TestClient, settings: Settings) -> None:
    token = make_tenant(settings, "acme")
    twilio = api.get("/api/v1/integrations/twilio", headers=bearer(token)).json()
    assert [f["name"] for f in twilio["auth_fields"]] == ["account_sid", "auth_token"]
    assert twilio["config_schema"]["type"] == "object"
    xero = api.get("/api/v1/integrations/xero", headers=bearer(token)).json()
    assert xero["oauth"]["authorize_url"].startswith("https://login.xero.com/")
    assert "offline_access" in xero["oauth"]["scopes"]
    missing = api.get("/api/v1/integrations/nope", headers=bearer(token))
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "integration_not_found"


def test_requests_without_a_valid_token_get_401_and_learn_nothing(api: TestClient, settings: Settings) -> None:
    make_tenant(settings, "acme")
    cases = [
        {},
        {"Authorization": "Bearer vrtx_not-a-real-token"},
        {"Authorization": "Bearer something-else"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ]
    bodies = set()
    for headers in cases:
        response = api.get("/api/v1/integrations", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.json()["error"]["code"] == "unauthorized"
        bodies.add(response.json()["error"]["code"])
    assert bodies == {"unauthorized"}


def test_unknown_routes_and_methods_are_json_errors(api: TestClient, settings: Settings) -> None:
    token = make_tenant(settings, "acme")
    assert api.get("/api/v1/nowhere", headers=bearer(token)).json()["error"]["code"] == "not_found"
    wrong = api.patch("/api/v1/integrations/stripe/connect", headers=bearer(token))
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"


def test_openapi_describes_every_route(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    for path in (
        "/api/v1/integrations",
        "/api/v1/integrations/connected",
        "/api/v1/integrations/{slug}",
        "/api/v1/integrations/{slug}/connect",
        "/api/v1/integrations/{slug}/disconnect",
        "/api/v1/integrations/{slug}/test",
        "/api/v1/integrations/{slug}/status",
        "/api/v1/integrations/{slug}/settings",
        "/healthz",
    ):
        assert path in paths
    assert api.get("/docs").status_code == 200

"""A tenant never sees or touches another tenant's connections, through any tenant-scoped route."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from providers.stripe.sandbox import DEMO_ACCOUNT_ID, DEMO_SECRET_KEY
from tests.helpers import bearer, make_tenant
from vrtx_pipelines.config import Settings

TENANT_SCOPED_ROUTES = [
    ("GET", "/api/v1/integrations/stripe/status"),
    ("POST", "/api/v1/integrations/stripe/test"),
    ("GET", "/api/v1/integrations/stripe/settings"),
    ("PUT", "/api/v1/integrations/stripe/settings"),
    ("DELETE", "/api/v1/integrations/stripe/disconnect"),
]


@pytest.fixture
def two_tenants(api: TestClient, settings: Settings) -> tuple[str, str]:
    owner, other = make_tenant(settings, "owner"), make_tenant(settings, "other")
    response = api.post(
        "/api/v1/integrations/stripe/connect",
        json={"credentials": {"secret_key": DEMO_SECRET_KEY}},
        headers=bearer(owner),
    )
    assert response.status_code == 201
    return owner, other


@pytest.mark.parametrize(("method", "path"), TENANT_SCOPED_ROUTES)
def test_another_tenant_gets_404_and_the_connection_is_untouched(
    api: TestClient, two_tenants: tuple[str, str], method: str, path: str
) -> None:
    owner, other = two_tenants
    body = {"sync_frequency_minutes": 5} if method == "PUT" else None
    response = api.request(method, path, json=body, headers=bearer(other))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_connected"
    assert DEMO_ACCOUNT_ID not in response.text
    mine = api.get("/api/v1/integrations/stripe/status", headers=bearer(owner)).json()
    assert mine["status"] == "connected"
    assert (
        api.get("/api/v1/integrations/stripe/settings", headers=bearer(owner)).json()["settings"][
            "sync_frequency_minutes"
        ]
        == 60
    )


@pytest.mark.parametrize(("method", "path"), TENANT_SCOPED_ROUTES)
def test_no_token_or_a_bad_token_gets_401_on_every_tenant_route(
    api: TestClient, two_tenants: tuple[str, str], method: str, path: str
) -> None:
    for headers in ({}, {"Authorization": "Bearer vrtx_forged"}):
        response = api.request(method, path, headers=headers)
        assert response.status_code == 401
        assert DEMO_ACCOUNT_ID not in response.text


def test_lists_show_only_the_callers_connections(api: TestClient, two_tenants: tuple[str, str]) -> None:
    owner, other = two_tenants
    assert [c["integration"] for c in api.get("/api/v1/integrations/connected", headers=bearer(owner)).json()] == [
        "stripe"
    ]
    assert api.get("/api/v1/integrations/connected", headers=bearer(other)).json() == []
    catalog = {i["slug"]: i for i in api.get("/api/v1/integrations", headers=bearer(other)).json()}
    assert catalog["stripe"]["connection"] is None
    assert api.get("/api/v1/integrations/stripe", headers=bearer(other)).json()["connection"] is None


def test_connecting_the_same_account_keeps_tenants_separate(api: TestClient, two_tenants: tuple[str, str]) -> None:
    owner, other = two_tenants
    api.post(
        "/api/v1/integrations/stripe/connect",
        json={"credentials": {"secret_key": DEMO_SECRET_KEY}},
        headers=bearer(other),
    )
    api.put("/api/v1/integrations/stripe/settings", json={"sync_frequency_minutes": 5}, headers=bearer(other))
    api.delete("/api/v1/integrations/stripe/disconnect", headers=bearer(other))
    assert api.get("/api/v1/integrations/stripe/status", headers=bearer(owner)).json()["status"] == "connected"
    assert (
        api.get("/api/v1/integrations/stripe/settings", headers=bearer(owner)).json()["settings"][
            "sync_frequency_minutes"
        ]
        == 60
    )

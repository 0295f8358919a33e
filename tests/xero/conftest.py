"""Xero end-to-end tests: the Xero sandbox over real HTTP, the platform pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from providers.sandbox_kit.serve import ServedApp
from providers.xero.sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, XeroSandbox, create_app
from tests.helpers import bearer, consent
from vrtx_pipelines.config import Settings

SIZES = {"contacts": 30, "invoices": 120, "lines_per_invoice": 3, "payments": 25, "items": 8}


@pytest.fixture
def xero() -> Iterator[tuple[XeroSandbox, ServedApp, str]]:
    """(sandbox, its server, the demo organisation's tenantId): a fresh Xero for each test."""
    sandbox = XeroSandbox(seed=7)
    org = sandbox.add_organisation("Acme Trading", **SIZES)  # type: ignore[arg-type]
    with ServedApp(create_app(sandbox)) as served:
        yield sandbox, served, org


@pytest.fixture
def base_urls(sandboxes: dict[str, ServedApp], xero: tuple[XeroSandbox, ServedApp, str]) -> dict[str, str]:
    return {**{slug: s.base_url for slug, s in sandboxes.items()}, "xero": xero[1].base_url}


@pytest.fixture
def oauth_clients() -> dict[str, dict[str, str]]:
    return {"xero": {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}}


def connect_xero(settings: Settings, tenant_id: str, organisations: list[str] | None = None) -> None:
    """The real OAuth flow through the sandbox's consent page (what `vrtx connect xero` does)."""
    consent(settings, tenant_id, "xero", organisations)


def callback_path(location: str) -> str:
    """The path and query of a redirect to our callback, to replay through the in-process API client."""
    parts = urlsplit(location)
    return f"{parts.path}?{parts.query}"


def all_records(api: TestClient, token: str, entity: str) -> list[dict]:  # type: ignore[type-arg]
    """Every record of ``entity``, following the cursor to the end."""
    found, cursor = [], None
    while True:
        page = records(api, token, entity, cursor)
        found += page["records"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return found


def records(api: TestClient, token: str, entity: str, cursor: str | None = None, limit: int = 1000) -> dict:  # type: ignore[type-arg]
    params = {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
    response = api.get(f"/api/v1/integrations/xero/records/{entity}", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]

"""Stripe end-to-end tests: the Stripe sandbox over real HTTP, the platform pointed at it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from providers.sandbox_kit.clock import ManualClock
from providers.sandbox_kit.serve import ServedApp
from providers.stripe.sandbox import (
    DEMO_ACCOUNT_ID,
    DEMO_CONNECT_CLIENT_ID,
    DEMO_SECRET_KEY,
    StripeSandbox,
    create_app,
    demo_sandbox,
)
from tests.helpers import bearer
from vrtx_pipelines.cli.sync import sync_now
from vrtx_pipelines.config import Settings

WEBHOOK_SECRET = "whsec_vrtx_test_" + "w" * 24


@dataclass
class Stripe:
    sandbox: StripeSandbox
    served: ServedApp
    clock: ManualClock

    @property
    def account(self) -> Any:
        return self.sandbox.tenants[DEMO_ACCOUNT_ID]


@pytest.fixture
def stripe() -> Iterator[Stripe]:
    clock = ManualClock(time.time())
    sandbox = demo_sandbox(seed=3, clock=clock)
    with ServedApp(create_app(sandbox)) as served:
        yield Stripe(sandbox, served, clock)


@pytest.fixture
def base_urls(sandboxes: dict[str, ServedApp], stripe: Stripe) -> dict[str, str]:
    return {**{slug: s.base_url for slug, s in sandboxes.items()}, "stripe": stripe.served.base_url}


@pytest.fixture
def oauth_clients() -> dict[str, dict[str, str]]:
    # The platform's Connect app: its client secret is the platform's secret key; it also signs app-level webhooks.
    return {"stripe": {"client_id": DEMO_CONNECT_CLIENT_ID, "client_secret": DEMO_SECRET_KEY,
                       "webhook_key": WEBHOOK_SECRET}}  # fmt: skip


def connect_with_key(api: TestClient, token: str) -> None:
    answer = api.post(
        "/api/v1/integrations/stripe/connect",
        json={"credentials": {"secret_key": DEMO_SECRET_KEY}},
        headers=bearer(token),
    )
    assert answer.status_code == 201, answer.text


def sync(settings: Settings, instance: Any, entities: list[str], tenant: str = "acme") -> dict[str, dict[str, int]]:
    rows = sync_now(settings, "stripe", tenant, entities, instance=instance)
    return {row[0]: {"rows_loaded": int(row[1]), "changed": int(row[2])} for row in rows}


def records(api: TestClient, token: str, entity: str) -> dict[str, dict[str, Any]]:
    """Every canonical record of ``entity`` by external id (deleted ones too)."""
    found: dict[str, dict[str, Any]] = {}
    cursor = None
    while True:
        params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
        page = api.get(f"/api/v1/integrations/stripe/records/{entity}", params=params, headers=bearer(token)).json()
        found.update({r["external_id"]: r for r in page["records"]})
        if not page["has_more"]:
            return found
        cursor = page["next_cursor"]

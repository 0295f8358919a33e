"""QuickBooks end-to-end tests: the QuickBooks sandbox over real HTTP, the platform pointed at it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from dagster import DagsterInstance
from fastapi.testclient import TestClient

from providers.quickbooks.sandbox import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    QuickBooksKnobs,
    QuickBooksSandbox,
    create_app,
)
from providers.sandbox_kit.clock import ManualClock
from providers.sandbox_kit.serve import ServedApp
from tests.helpers import bearer, consent
from vrtx_pipelines.cli.sync import sync_now
from vrtx_pipelines.config import Settings

SIZES = {"customers": 30, "invoices": 120, "lines_per_invoice": 3, "payments": 25, "items": 8}
VERIFIER = "qbo-test-verifier-token-" + "v" * 20


@dataclass
class Qbo:
    sandbox: QuickBooksSandbox
    served: ServedApp
    realm: str
    clock: ManualClock
    knobs: QuickBooksKnobs


@pytest.fixture
def qbo() -> Iterator[Qbo]:
    """A fresh QuickBooks for each test, on a clock that reads real time until a test moves it."""
    clock = ManualClock(time.time())
    sandbox = QuickBooksSandbox(seed=7, clock=clock)
    realm = sandbox.add_company("Acme Trading", **SIZES)  # type: ignore[arg-type]
    knobs = QuickBooksKnobs()
    with ServedApp(create_app(sandbox, knobs=knobs)) as served:
        yield Qbo(sandbox, served, realm, clock, knobs)


@pytest.fixture
def base_urls(sandboxes: dict[str, ServedApp], qbo: Qbo) -> dict[str, str]:
    return {**{slug: s.base_url for slug, s in sandboxes.items()}, "quickbooks": qbo.served.base_url}


@pytest.fixture
def oauth_clients() -> dict[str, dict[str, str]]:
    app = {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET, "webhook_key": VERIFIER}
    return {"quickbooks": app}


def connect(settings: Settings, tenant_id: str, realms: list[str] | None = None) -> None:
    """The real OAuth flow through the sandbox's consent page (what `vrtx connect quickbooks` does)."""
    consent(settings, tenant_id, "quickbooks", realms)


def sync(settings: Settings, instance: DagsterInstance, tenant: str = "acme", **kwargs: Any) -> dict[str, Any]:
    rows = sync_now(settings, "quickbooks", tenant, kwargs.pop("entities", []), instance=instance, **kwargs)
    return {r[0]: {"rows_loaded": int(r[1]), "changed": int(r[2]), "cursor": r[4]} for r in rows}


def records(api: TestClient, token: str, entity: str, cursor: str | None = None) -> dict[str, Any]:
    params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
    answer = api.get(f"/api/v1/integrations/quickbooks/records/{entity}", params=params, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    page: dict[str, Any] = answer.json()
    return page

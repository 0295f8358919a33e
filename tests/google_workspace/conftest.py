"""Google Workspace end-to-end tests: the Google sandbox over real HTTP, the platform pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from dagster import DagsterInstance
from fastapi.testclient import TestClient

from providers.google_workspace.sandbox import GoogleKnobs, GoogleSandbox, create_app, demo_sandbox
from providers.google_workspace.sandbox_credentials import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_MAILBOX
from providers.sandbox_kit.serve import ServedApp
from tests.helpers import bearer, consent, make_tenant
from vrtx_pipelines.cli.sync import sync_now
from vrtx_pipelines.config import Settings
from vrtx_pipelines.warehouse import pipeline_for

SLUG = "google_workspace"


@dataclass
class Google:
    sandbox: GoogleSandbox
    served: ServedApp
    knobs: GoogleKnobs
    mailbox: str = DEMO_MAILBOX


@pytest.fixture
def google() -> Iterator[Google]:
    sandbox = demo_sandbox(seed=11)
    knobs = GoogleKnobs()
    with ServedApp(create_app(sandbox, knobs=knobs)) as served:
        yield Google(sandbox, served, knobs)


@pytest.fixture
def base_urls(sandboxes: dict[str, ServedApp], google: Google) -> dict[str, str]:
    return {**{slug: s.base_url for slug, s in sandboxes.items()}, SLUG: google.served.base_url}


@pytest.fixture
def oauth_clients() -> dict[str, dict[str, str]]:
    return {SLUG: {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}}


def connect(settings: Settings, tenant_id: str) -> None:
    """The real OAuth flow through the sandbox's consent page (what `vrtx connect google_workspace` does)."""
    consent(settings, tenant_id, SLUG)


@pytest.fixture
def connected(settings: Settings, google: Google) -> str:
    token = make_tenant(settings, "acme")
    connect(settings, "acme")
    return token


def sync(settings: Settings, instance: DagsterInstance, entities: list[str], tenant: str = "acme") -> dict[str, Any]:
    rows = sync_now(settings, SLUG, tenant, entities, instance=instance)
    return {r[0]: {"rows_loaded": int(r[1]), "changed": int(r[2])} for r in rows}


def records(api: TestClient, token: str, entity: str, cursor: str | None = None) -> dict[str, Any]:
    params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
    answer = api.get(f"/api/v1/integrations/{SLUG}/records/{entity}", params=params, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    page: dict[str, Any] = answer.json()
    return page


def by_id(api: TestClient, token: str, entity: str) -> dict[str, dict[str, Any]]:
    return {r["external_id"]: r for r in records(api, token, entity)["records"]}


def warehouse(settings: Settings, sql: str, tenant: str = "acme") -> list[tuple[object, ...]]:
    with pipeline_for(settings, SLUG, tenant).sql_client() as client:
        return [tuple(row) for row in client.execute_sql(sql)]

"""Google Workspace end-to-end tests: the Google sandbox over real HTTP, the platform pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from providers.google_workspace.sandbox import GoogleKnobs, GoogleSandbox, create_app, demo_sandbox
from providers.google_workspace.sandbox_credentials import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_MAILBOX
from providers.sandbox_kit.serve import ServedApp
from tests.helpers import consent, make_tenant
from tests.provider_driver import ProviderDriver
from vrtx_pipelines.config import Settings

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


DRIVER = ProviderDriver(SLUG)
sync, records, by_id, warehouse = DRIVER.sync, DRIVER.records, DRIVER.by_id, DRIVER.warehouse

"""Microsoft 365 end-to-end tests: the Microsoft 365 sandbox over real HTTP, the platform pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from providers.microsoft365.sandbox import MicrosoftKnobs, MicrosoftSandbox, create_app, demo_sandbox
from providers.microsoft365.sandbox_credentials import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from providers.sandbox_kit.serve import ServedApp
from tests.helpers import consent, make_tenant
from tests.provider_driver import ProviderDriver
from vrtx_pipelines.config import Settings
from vrtx_pipelines.connect.context import get_connection
from vrtx_pipelines.credentials.stored import read_credentials
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.db.session import engine_for, session_scope

SLUG = "microsoft365"


@dataclass
class Microsoft:
    sandbox: MicrosoftSandbox
    served: ServedApp
    knobs: MicrosoftKnobs


@pytest.fixture
def microsoft() -> Iterator[Microsoft]:
    sandbox = demo_sandbox(seed=11)
    knobs = MicrosoftKnobs()
    with ServedApp(create_app(sandbox, knobs=knobs)) as served:
        yield Microsoft(sandbox, served, knobs)


@pytest.fixture
def base_urls(sandboxes: dict[str, ServedApp], microsoft: Microsoft) -> dict[str, str]:
    return {**{slug: s.base_url for slug, s in sandboxes.items()}, SLUG: microsoft.served.base_url}


@pytest.fixture
def oauth_clients() -> dict[str, dict[str, str]]:
    return {SLUG: {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}}


def connect(settings: Settings, tenant_id: str) -> None:
    """The real OAuth flow through the sandbox's consent page (what `vrtx connect microsoft365` does)."""
    consent(settings, tenant_id, SLUG)


@pytest.fixture
def connected(settings: Settings, microsoft: Microsoft) -> str:
    token = make_tenant(settings, "acme")
    connect(settings, "acme")
    return token


DRIVER = ProviderDriver(SLUG)
sync, records, by_id, warehouse = DRIVER.sync, DRIVER.records, DRIVER.by_id, DRIVER.warehouse


def stored_tokens(settings: Settings, tenant_id: str) -> dict[str, Any]:
    """The connection's tokens as the vault gives them back (empty once its credentials are deleted)."""
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        connection = get_connection(session, tenant_id, SLUG)
        assert connection is not None
        if not connection.credentials:
            return {}
        return dict(read_credentials(vault_from_settings(settings), connection, SLUG))

"""Connect, for every provider a tenant can connect: good credentials connect, credentials the provider refuses
are reported and nothing is stored, and an unreachable provider is an outage, not a refusal."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import select

from providers.sandbox_kit.serve import ServedApp
from tests.flows.conftest import implementing
from tests.flows.harness import Flows
from tests.flows.providers import FLOWS
from tests.helpers import bearer
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.models import TenantIntegration
from vrtx_pipelines.db.session import engine_for, session_scope

CAPABILITY = "connect"


def stored_credentials(settings: Settings) -> list[str | None]:
    """Each connection's stored credentials as they sit in the database (encrypted envelopes), or None."""
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        rows = session.scalars(select(TenantIntegration))
        return [json.dumps(row.credentials) if row.credentials else None for row in rows]


def secret_field(flows: Flows, name: str) -> bool:
    return any(field.name == name and field.secret for field in flows.provider.auth.fields)


def test_every_implemented_flow_has_fixtures() -> None:
    """A provider joins the flow tests by adding its fixtures: implementing a flow without them fails here."""
    for capability in ("connect", "pull:", "push:", "webhooks"):
        missing = sorted(set(implementing(capability)) - set(FLOWS))
        assert not missing, f"{capability} is implemented by {missing} without flow fixtures (tests/flows)"
    for slug, flows in FLOWS.items():
        pushed = {f"push:{entity}" for entity in flows.pushes}
        assert pushed <= flows.provider.implemented, f"{slug}: fixtures for pushes it does not implement"
        assert {c for c in flows.provider.implemented if c.startswith("push:")} <= pushed, f"{slug}: push fixtures"


def test_good_credentials_connect_and_no_secret_comes_back(
    api: TestClient, settings: Settings, flows: Flows, token: str
) -> None:
    pending = flows.begin_connect(api, token)
    answer = flows.finish_connect(api, token, pending)
    assert answer.status_code in (200, 201), answer.text
    assert answer.json()["status"] == "connected"
    secrets = [value for name, value in (pending.credentials or {}).items() if secret_field(flows, name)]
    for secret in secrets:
        assert secret not in answer.text
    status = api.get(f"/api/v1/integrations/{flows.slug}/status", headers=bearer(token)).json()
    assert status["status"] == "connected" and status["last_error"] is None
    (credentials,) = stored_credentials(settings)
    assert credentials and all(secret not in credentials for secret in secrets)


def test_credentials_the_provider_refuses_are_reported_and_nothing_is_stored(
    api: TestClient, settings: Settings, flows: Flows, token: str
) -> None:
    answer = flows.finish_connect(api, token, flows.begin_connect(api, token, accept=False))
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] in ("provider_auth_failed", "oauth_denied")
    assert not any(stored_credentials(settings))
    status = api.get(f"/api/v1/integrations/{flows.slug}/status", headers=bearer(token))
    assert status.status_code == 404 or status.json()["status"] != "connected"


def test_an_unreachable_provider_is_an_outage_and_nothing_is_stored(
    api: TestClient, settings: Settings, flows: Flows, served: ServedApp, token: str
) -> None:
    pending = flows.begin_connect(api, token)
    served.stop()  # the provider goes away between the user's consent (or form) and our call
    answer = flows.finish_connect(api, token, pending)
    assert answer.status_code in (502, 503), answer.text
    assert answer.json()["error"]["code"] == "provider_unavailable"
    assert not any(stored_credentials(settings))

"""Disconnecting one tenant's Xero never breaks another's, and a grant that died shows as ``expired``.

Tenants of VRTX share one Xero app, so two tenants connecting the same organisation with the same Xero user share
Xero's connection (one per app, user and organisation) and, through the user, the grant: revoking the token
removes every connection the user made to the app. A disconnect gives back only what no other stored connection
holds (``vrtx_pipelines.connect.revocation``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest
from dagster import DagsterInstance
from fastapi.testclient import TestClient
from sqlalchemy import select

from providers.sandbox_kit.faults import knobs_of
from providers.sandbox_kit.serve import ServedApp
from providers.xero.sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, XeroSandbox
from tests.helpers import bearer, make_tenant
from tests.xero.conftest import all_records, connect_xero
from vrtx_pipelines.cli.sync import sync_now
from vrtx_pipelines.config import Settings
from vrtx_pipelines.credentials.stored import read_credentials
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.db.models import OutboundEvent, TenantIntegration
from vrtx_pipelines.db.session import engine_for, session_scope
from vrtx_pipelines.errors import IntegrationError

pytestmark = pytest.mark.dagster
Xero = tuple[XeroSandbox, ServedApp, str]


def stored(settings: Settings, tenant_id: str) -> tuple[TenantIntegration, dict[str, Any]]:
    """The tenant's connection row and its decrypted tokens."""
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        row = session.scalars(select(TenantIntegration).where(TenantIntegration.tenant_id == tenant_id)).one()
    return row, read_credentials(vault_from_settings(settings), row, "xero")


def xero_connections(served: ServedApp, access_token: str) -> list[dict[str, Any]]:
    """``GET /connections`` at the sandbox, as the user the token belongs to."""
    answer = httpx.get(f"{served.base_url}/connections", headers={"Authorization": f"Bearer {access_token}"})
    assert answer.status_code == 200, answer.text
    listed: list[dict[str, Any]] = answer.json()
    return listed


def revoke_at_xero(served: ServedApp, refresh_token: str) -> None:
    answer = httpx.post(
        f"{served.base_url}/connect/revocation",
        data={"token": refresh_token},
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
    )
    assert answer.status_code == 200


def refreshes(served: ServedApp, refresh_token: str) -> bool:
    answer = httpx.post(
        f"{served.base_url}/connect/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
    )
    return answer.status_code == 200


def sync_contacts(settings: Settings, instance: DagsterInstance, tenant: str) -> None:
    sync_now(settings, "xero", tenant, ["contacts"], instance=instance)


def status(api: TestClient, token: str) -> dict[str, Any]:
    answer = api.get("/api/v1/integrations/xero/status", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def last_event(settings: Settings, tenant_id: str) -> OutboundEvent:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        return session.scalars(
            select(OutboundEvent).where(OutboundEvent.tenant_id == tenant_id).order_by(OutboundEvent.id.desc())
        ).first()  # type: ignore[return-value]


def test_one_tenants_disconnect_leaves_another_tenant_on_the_same_organisation_and_user_syncing(
    api: TestClient, settings: Settings, xero: Xero, instance: DagsterInstance
) -> None:
    sandbox, served, org = xero
    tokens = {tenant: make_tenant(settings, tenant) for tenant in ("a", "b")}
    connect_xero(settings, "a")
    connect_xero(settings, "b")  # the same demo user, the same organisation
    (a_row, a_tokens), (b_row, _) = stored(settings, "a"), stored(settings, "b")
    assert a_row.meta and b_row.meta
    # One Xero connection for the (app, user, organisation), as at Xero: both tenants hold it.
    assert a_row.meta["provider_connection_id"] == b_row.meta["provider_connection_id"]

    gone = api.delete("/api/v1/integrations/xero/disconnect", headers=bearer(tokens["b"]))

    assert gone.status_code == 200 and gone.json()["status"] == "disconnected"
    assert last_event(settings, "b").payload | {"integration": "xero"} == {
        "integration": "xero",
        "purged": False,
        "revoked_at_provider": False,
        "unlinked_at_provider": 0,
        "kept_for_other_connections": True,
    }
    assert [c["tenantId"] for c in xero_connections(served, a_tokens["access_token"])] == [org]
    sync_contacts(settings, instance, "a")
    assert status(api, tokens["a"])["status"] == "connected"
    assert len(all_records(api, tokens["a"], "contacts")) == sandbox.count(org, "contacts")


def test_disconnecting_one_organisation_of_a_shared_user_removes_only_that_organisations_connection(
    api: TestClient, settings: Settings, xero: Xero, instance: DagsterInstance
) -> None:
    sandbox, served, first = xero
    second = sandbox.add_organisation("Globex", contacts=4, invoices=2, payments=1, items=1)
    tokens = {tenant: make_tenant(settings, tenant) for tenant in ("a", "b")}
    connect_xero(settings, "a", [first])
    connect_xero(settings, "b", [second])  # the same Xero user: the grant is shared, the connections are not
    _, a_tokens = stored(settings, "a")

    gone = api.delete("/api/v1/integrations/xero/disconnect", headers=bearer(tokens["b"]))

    assert gone.status_code == 200
    assert last_event(settings, "b").payload["unlinked_at_provider"] == 1
    assert last_event(settings, "b").payload["revoked_at_provider"] is False
    assert [c["tenantId"] for c in xero_connections(served, a_tokens["access_token"])] == [first]
    sync_contacts(settings, instance, "a")
    assert status(api, tokens["a"])["status"] == "connected"
    assert len(all_records(api, tokens["a"], "contacts")) == sandbox.count(first, "contacts")


def test_the_last_connection_of_a_grant_removes_its_xero_connection_and_revokes_the_token(
    api: TestClient, settings: Settings, xero: Xero
) -> None:
    _sandbox, served, _org = xero
    tokens = {tenant: make_tenant(settings, tenant) for tenant in ("a", "b")}
    connect_xero(settings, "a")
    connect_xero(settings, "b")
    api.delete("/api/v1/integrations/xero/disconnect", headers=bearer(tokens["b"]))
    _, a_tokens = stored(settings, "a")

    gone = api.delete("/api/v1/integrations/xero/disconnect", headers=bearer(tokens["a"]))

    assert gone.status_code == 200
    assert last_event(settings, "a").payload | {"integration": "xero"} == {
        "integration": "xero",
        "purged": False,
        "revoked_at_provider": True,
        "unlinked_at_provider": 1,
        "kept_for_other_connections": False,
    }
    assert not refreshes(served, a_tokens["refresh_token"])
    _, b_left = stored(settings, "b")
    assert b_left == {}  # b's tokens were forgotten when b disconnected


def test_a_grant_revoked_at_xero_turns_the_connection_expired_at_its_next_sync(
    api: TestClient, settings: Settings, xero: Xero, instance: DagsterInstance
) -> None:
    _sandbox, served, _org = xero
    token = make_tenant(settings, "a")
    connect_xero(settings, "a")
    _, tokens = stored(settings, "a")
    revoke_at_xero(served, tokens["refresh_token"])  # e.g. the user removed the app in Xero

    with pytest.raises(IntegrationError):
        sync_contacts(settings, instance, "a")

    after = status(api, token)
    assert after["status"] == "expired" and after["last_error"]
    assert last_event(settings, "a").event_type == "integration.expired"


def test_an_organisation_disconnected_at_xero_turns_the_connection_expired_even_though_the_token_refreshes(
    api: TestClient, settings: Settings, xero: Xero, instance: DagsterInstance
) -> None:
    """Xero answers 403 for an organisation the grant no longer reaches; a refresh works and changes nothing."""
    sandbox, served, _org = xero
    token = make_tenant(settings, "a")
    connect_xero(settings, "a")
    row, tokens = stored(settings, "a")
    assert row.meta is not None
    removed = httpx.delete(
        f"{served.base_url}/connections/{row.meta['provider_connection_id']}",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert removed.status_code == 204
    before = sandbox.stats.refresh_requests

    with pytest.raises(IntegrationError, match="AuthenticationUnsuccessful"):
        sync_contacts(settings, instance, "a")

    assert sandbox.stats.refresh_requests - before == 1  # refreshed once, then believed
    after = status(api, token)
    assert after["status"] == "expired" and "AuthenticationUnsuccessful" in after["last_error"]
    assert last_event(settings, "a").event_type == "integration.expired"
    with pytest.raises(IntegrationError, match="expired"):
        sync_contacts(settings, instance, "a")  # no further calls on a dead grant


def test_a_disconnect_racing_another_tenants_connect_with_the_same_grant_leaves_the_new_connection_working(
    api: TestClient, settings: Settings, xero: Xero, instance: DagsterInstance
) -> None:
    if not settings.uses_postgres:
        pytest.skip("the integration's row lock is PostgreSQL's: SQLite runs one writer at a time")
    sandbox, served, org = xero
    tokens = {tenant: make_tenant(settings, tenant) for tenant in ("a", "b")}
    connect_xero(settings, "a")
    knobs = knobs_of(served.app)
    before, failed = knobs.request_count, []

    def connect_b() -> None:
        try:
            connect_xero(settings, "b")  # the same Xero user: the same grant as a's
        except BaseException as exc:  # noqa: BLE001 -- handed to the test's thread
            failed.append(exc)

    knobs.latency_s = 1.5
    connecting = threading.Thread(target=connect_b)
    connecting.start()
    # Authorise, consent and the code exchange answered, the organisations being discovered: b's grant is issued
    # and not yet stored when a's disconnect decides whether anyone else holds it.
    deadline = time.monotonic() + 30
    while knobs.request_count < before + 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    gone = api.delete("/api/v1/integrations/xero/disconnect", headers=bearer(tokens["a"]))
    connecting.join(60)
    knobs.latency_s = 0

    assert not failed and gone.status_code == 200, (failed, gone.text)
    assert last_event(settings, "a").payload["revoked_at_provider"] is False
    _, b_tokens = stored(settings, "b")
    assert refreshes(served, b_tokens["refresh_token"])
    sync_contacts(settings, instance, "b")
    assert status(api, tokens["b"])["status"] == "connected"
    assert len(all_records(api, tokens["b"], "contacts")) == sandbox.count(org, "contacts")
